// The replicated-study statistics (unlearn/stats.h) on cases small enough to compute by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "unlearn/stats.h"

using namespace lethe;
using namespace lethe::unlearn::stats;

namespace {

// Censored and uncensored observations, spelled short.
CensoredValue at(double v) { return {v, false}; }
CensoredValue cens(double v) { return {v, true}; }

}  // namespace

TEST_CASE("stats: the incomplete beta function on closed forms") {
  for (const double x : {0.0, 0.1, 0.37, 0.5, 0.9, 1.0}) {
    CHECK(regularized_incomplete_beta(1, 1, x) == doctest::Approx(x).epsilon(1e-14));  // uniform
    CHECK(regularized_incomplete_beta(3, 1, x) == doctest::Approx(x * x * x).epsilon(1e-14));
    CHECK(regularized_incomplete_beta(1, 2.5, x) == doctest::Approx(1 - std::pow(1 - x, 2.5)).epsilon(1e-14));
  }
  CHECK(regularized_incomplete_beta(7.5, 7.5, 0.5) == doctest::Approx(0.5).epsilon(1e-14));  // symmetry
  CHECK_THROWS_AS(regularized_incomplete_beta(0, 1, 0.5), lethe::Error);
  CHECK_THROWS_AS(regularized_incomplete_beta(1, 1, 1.5), lethe::Error);
}

TEST_CASE("stats: Student-t quantiles match the tables") {
  // Two-sided 95% critical values, to the 9 decimals the tables give.
  CHECK(std::abs(student_t_quantile(0.975, 1) - 12.706204736) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 2) - 4.302652730) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 4) - 2.776445105) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 9) - 2.262157163) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 29) - 2.045229642) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 1000) - 1.962339) < 1e-6);
  // Very large df tends to the normal: t_{.975, 1e12} − z_{.975} ≈ (z³ + z)/(4·1e12) ≈ 2.4e-12.
  CHECK(std::abs(normal_quantile(0.975) - 1.959963985) < 1e-9);
  CHECK(std::abs(student_t_quantile(0.975, 1e12) - 1.959963985) < 1e-9);
  CHECK(student_t_quantile(0.975, std::numeric_limits<double>::infinity()) == normal_quantile(0.975));
  // Closed forms: df 1 is Cauchy, t = tan(π(p − ½)); df 2 has t = (2p − 1)/√(2p(1 − p)).
  for (const double p : {0.001, 0.05, 0.3, 0.6, 0.9, 0.995}) {
    CHECK(student_t_quantile(p, 1) == doctest::Approx(std::tan(std::numbers::pi * (p - 0.5))).epsilon(1e-12));
    CHECK(student_t_quantile(p, 2) == doctest::Approx((2 * p - 1) / std::sqrt(2 * p * (1 - p))).epsilon(1e-12));
  }
  // Symmetry, the median, and the CDF as the inverse.
  CHECK(student_t_quantile(0.025, 4) == doctest::Approx(-student_t_quantile(0.975, 4)).epsilon(1e-14));
  CHECK(student_t_quantile(0.5, 3) == 0);
  CHECK(student_t_cdf(1, 1) == doctest::Approx(0.75).epsilon(1e-14));  // ½ + atan(1)/π
  CHECK(student_t_cdf(0, 7) == 0.5);
  for (const double df : {1.0, 3.0, 9.0, 29.0, 1e6})
    for (const double p : {0.01, 0.2, 0.975})
      CHECK(student_t_cdf(student_t_quantile(p, df), df) == doctest::Approx(p).epsilon(1e-12));
  CHECK_THROWS_AS(student_t_quantile(1, 4), lethe::Error);
  CHECK_THROWS_AS(student_t_quantile(0.9, 0), lethe::Error);
  CHECK_THROWS_AS(normal_quantile(0), lethe::Error);
}

TEST_CASE("stats: summarize gives mean, sd, se and the t interval") {
  const Summary s = summarize({1, 2, 3, 4, 5});
  CHECK(s.n == 5);
  CHECK(s.mean == 3);
  CHECK(s.sd == doctest::Approx(std::sqrt(2.5)).epsilon(1e-14));  // Σ(x − 3)² = 10, / (n − 1)
  CHECK(s.se == doctest::Approx(std::sqrt(0.5)).epsilon(1e-14));  // √2.5 / √5
  // Half-width t_{.975, 4}·√0.5 = 2.776445105·0.707106781 = 1.963243...
  CHECK(s.ci_high - s.mean == doctest::Approx(1.9632432).epsilon(1e-7));
  CHECK(s.mean - s.ci_low == doctest::Approx(s.ci_high - s.mean).epsilon(1e-14));
  CHECK(s.confidence == 0.95);
  // 90%: t_{.95, 4} = 2.131846786.
  CHECK(summarize({1, 2, 3, 4, 5}, 0.9).ci_high - 3 == doctest::Approx(2.131846786 * std::sqrt(0.5)).epsilon(1e-9));
  // Equal values: a zero-width interval.
  const Summary flat = summarize({2, 2, 2});
  CHECK(flat.sd == 0);
  CHECK(flat.ci_low == 2);
  CHECK(flat.ci_high == 2);
}

TEST_CASE("stats: one replicate has a mean but no spread or interval") {
  const Summary s = summarize({0.42});
  CHECK(s.n == 1);
  CHECK(s.mean == 0.42);
  CHECK(std::isnan(s.sd));
  CHECK(std::isnan(s.se));
  CHECK(std::isnan(s.ci_low));
  CHECK(std::isnan(s.ci_high));
  const nlohmann::json j = to_json(s);
  CHECK(j["mean"] == 0.42);
  CHECK(j["sd"].is_null());
  CHECK(j["ci_low"].is_null());
  CHECK(j.dump().find("NaN") == std::string::npos);
}

TEST_CASE("stats: summarize rejects no values, non-finite values and a bad confidence") {
  CHECK_THROWS_WITH_AS(summarize({}), "summarize: no values", lethe::Error);
  CHECK_THROWS_WITH_AS(summarize({1, std::nan(""), 3}), doctest::Contains("value 1 is nan"), lethe::Error);
  CHECK_THROWS_AS(summarize({1, std::numeric_limits<double>::infinity()}), lethe::Error);
  CHECK_THROWS_AS(summarize({1, 2}, 1.0), lethe::Error);
  CHECK_THROWS_AS(summarize({1, 2}, 0.0), lethe::Error);
}

TEST_CASE("stats: paired differences and their significance") {
  // Differences {1, 2, 1, 2}: mean 1.5, sd √(4·0.25/3) = 0.57735, se 0.288675, t_{.975, 3} =
  // 3.182446305: interval 1.5 ∓ 0.918710 = [0.581290, 2.418710], which excludes 0.
  const PairedDifference d = paired_difference({10, 12, 14, 16}, {9, 10, 13, 14});
  CHECK(d.differences == std::vector<double>{1, 2, 1, 2});
  CHECK(d.summary.mean == 1.5);
  CHECK(d.summary.sd == doctest::Approx(std::sqrt(1.0 / 3)).epsilon(1e-14));
  CHECK(d.summary.ci_low == doctest::Approx(1.5 - 3.182446305 * std::sqrt(1.0 / 12)).epsilon(1e-9));
  CHECK(d.significant);
  // Differences {1, −1, 2, −2}: mean 0, the interval straddles 0.
  CHECK_FALSE(paired_difference({1, 1, 2, 0}, {0, 2, 0, 2}).significant);
  // Negative and significant.
  CHECK(paired_difference({0, 0, 0}, {1, 1.1, 0.9}).significant);
  // One pair: no interval, never significant.
  const PairedDifference one = paired_difference({5}, {1});
  CHECK(one.summary.mean == 4);
  CHECK_FALSE(one.significant);
  const nlohmann::json j = to_json(d);
  CHECK(j["significant"] == true);
  CHECK(j["differences"].size() == 4);
  CHECK(j["summary"]["n"] == 4);
  CHECK_THROWS_WITH_AS(paired_difference({1, 2, 3}, {1, 2}), doctest::Contains("3 and 2 replicates"), lethe::Error);
  CHECK_THROWS_WITH_AS(paired_difference({}, {}), "paired_difference: no replicates", lethe::Error);
  CHECK_THROWS_WITH_AS(paired_difference({1, 2}, {1, std::nan("")}), doctest::Contains("pair 1 is (2, nan)"),
                       lethe::Error);
}

TEST_CASE("stats: Kaplan-Meier on a textbook case") {
  // Times 3, 4+, 5, 5, 5+, 8, 10+, 12 (+ = censored), by hand:
  //   t    at risk  events  censored  S(t)
  //   3    8        1       0         1 · 7/8            = 0.875
  //   4    7        0       1         0.875
  //   5    6        2       1         0.875 · 4/6        = 0.583333 (the run censored at 5 is at risk at 5)
  //   8    3        1       0         0.583333 · 2/3     = 0.388889
  //   10   2        0       1         0.388889
  //   12   1        1       0         0.388889 · 0/1     = 0
  // KM median: the first S ≤ 0.5, at t = 8.
  const std::vector<CensoredValue> x = {at(5), cens(10), at(3), cens(5), at(12), cens(4), at(8), at(5)};
  const std::vector<KaplanMeierPoint> km = kaplan_meier(x);
  REQUIRE(km.size() == 6);
  const double times[] = {3, 4, 5, 8, 10, 12};
  const int64_t risk[] = {8, 7, 6, 3, 2, 1}, events[] = {1, 0, 2, 1, 0, 1}, censored[] = {0, 1, 1, 0, 1, 0};
  const double survival[] = {0.875, 0.875, 0.875 * 4 / 6, 0.875 * 4 / 6 * 2 / 3, 0.875 * 4 / 6 * 2 / 3, 0};
  for (size_t i = 0; i < km.size(); ++i) {
    CAPTURE(i);
    CHECK(km[i].time == times[i]);
    CHECK(km[i].at_risk == risk[i]);
    CHECK(km[i].events == events[i]);
    CHECK(km[i].censored == censored[i]);
    CHECK(km[i].survival == doctest::Approx(survival[i]).epsilon(1e-14));
  }
  const CensoredSummary s = summarize_censored(x);
  CHECK(s.n == 8);
  CHECK(s.censored == 3);
  CHECK(s.diverged == 0);
  CHECK(s.km_median.value == 8);
  CHECK(s.km_median.bound == Bound::exact);
  // Sorted 3, 4+, 5, 5, 5+, 8, 10+, 12: the middle pair is 5, 5+, and 4+ ranks below it (its true
  // value may be anything ≥ 4), so the median (5 + 5)/2 is a lower bound.
  CHECK(s.median.value == 5);
  CHECK(s.median.bound == Bound::at_least);
  CHECK(kaplan_meier({}).empty());
  CHECK_THROWS_AS(kaplan_meier({at(1), at(std::nan(""))}), lethe::Error);
}

TEST_CASE("stats: the censored median is exact below the censoring and a bound on it") {
  // RCD steps capped at 300: censored values are the largest.
  CensoredSummary s = summarize_censored({at(40), at(10), cens(300), at(30), at(20)});
  CHECK(s.median.value == 30);  // 10 20 [30] 40 300+
  CHECK(s.median.bound == Bound::exact);
  s = summarize_censored({at(10), at(20), at(30), at(40), cens(300), cens(300)});
  CHECK(s.median.value == 35);  // 10 20 [30 40] 300+ 300+
  CHECK(s.median.bound == Bound::exact);
  s = summarize_censored({at(10), at(20), cens(300), cens(300), cens(300)});
  CHECK(s.median.value == 300);  // 10 20 [300+] 300+ 300+
  CHECK(s.median.bound == Bound::at_least);
  CHECK(format_bound(s.median, 0) == "≥ 300");
  // KM: S(10) = 4/5, S(20) = 3/5 and never ≤ ½: the median lies beyond the last censoring.
  CHECK(s.km_median.value == 300);
  CHECK(s.km_median.bound == Bound::at_least);
  s = summarize_censored({at(10), at(20), at(30), cens(300)});
  CHECK(s.median.value == 25);  // 10 [20 30] 300+
  CHECK(s.median.bound == Bound::exact);
  // Ties: an uncensored 20 ranks before a censored 20; the median position 1 holds the uncensored one.
  s = summarize_censored({cens(20), at(20), at(5)});
  CHECK(s.median.value == 20);
  CHECK(s.median.bound == Bound::exact);
  // All censored: only a bound.
  s = summarize_censored({cens(300), cens(300)});
  CHECK(s.median.bound == Bound::at_least);
  CHECK(s.km_median.bound == Bound::at_least);
  CHECK(s.km.size() == 1);
  CHECK(s.km[0].survival == 1);
}

TEST_CASE("stats: diverged runs are counted apart from the censored summary") {
  const double nan = std::nan("");
  CensoredSummary s = summarize_censored({at(10), {nan, false}, at(30), {nan, true}, cens(300)});
  CHECK(s.n == 3);
  CHECK(s.diverged == 2);
  CHECK(s.censored == 1);
  CHECK(s.median.value == 30);
  CHECK(s.median.bound == Bound::exact);
  s = summarize_censored({{nan, false}});
  CHECK(s.n == 0);
  CHECK(s.diverged == 1);
  CHECK(s.median.bound == Bound::none);
  CHECK(s.km_median.bound == Bound::none);
  CHECK(format_bound(s.median, 0) == "n/a");
  const nlohmann::json j = to_json(s);
  CHECK(j["median"]["value"].is_null());
  CHECK(j["median"]["bound"] == "none");
  CHECK(j["kaplan_meier"].empty());
  CHECK_THROWS_WITH_AS(summarize_censored({}), "summarize_censored: no observations", lethe::Error);
  CHECK_THROWS_AS(summarize_censored({at(std::numeric_limits<double>::infinity())}), lethe::Error);
}

TEST_CASE("stats: censored summary as JSON") {
  const nlohmann::json j = to_json(summarize_censored({at(10), at(20), cens(300), cens(300), cens(300)}));
  CHECK(j["n"] == 5);
  CHECK(j["censored"] == 3);
  CHECK(j["diverged"] == 0);
  CHECK(j["median"] == nlohmann::json{{"value", 300.0}, {"bound", "at_least"}});
  CHECK(j["km_median"]["bound"] == "at_least");
  REQUIRE(j["kaplan_meier"].size() == 3);
  const nlohmann::json& last = j["kaplan_meier"][2];  // 10 and 20 relearned: S = 4/5 · 3/4 = 0.6
  CHECK(last["time"] == 300.0);
  CHECK(last["at_risk"] == 3);
  CHECK(last["events"] == 0);
  CHECK(last["censored"] == 3);
  CHECK(last["survival"].get<double>() == doctest::Approx(0.6).epsilon(1e-14));
}

TEST_CASE("stats: a ratio with a censored side is a bound or n/a") {
  RatioBound r = ratio_bound(at(300), at(100));
  CHECK(r.value == 3);
  CHECK(r.bound == Bound::exact);
  r = ratio_bound(cens(300), at(100));  // the numerator can only be larger
  CHECK(r.value == 3);
  CHECK(r.bound == Bound::at_least);
  r = ratio_bound(at(50), cens(100));  // the denominator can only be larger
  CHECK(r.value == 0.5);
  CHECK(r.bound == Bound::at_most);
  r = ratio_bound(cens(300), cens(300));  // anything
  CHECK(r.bound == Bound::none);
  CHECK(std::isnan(r.value));
  CHECK(ratio_bound(at(5), at(0)).bound == Bound::none);
  CHECK(ratio_bound(at(0), cens(300)).bound == Bound::exact);  // 0 / anything is 0
  CHECK(ratio_bound({std::nan(""), false}, at(3)).bound == Bound::none);
  CHECK_THROWS_AS(ratio_bound(at(-1), at(3)), lethe::Error);
}

TEST_CASE("stats: format_bound prints bounds, n/a and numbers") {
  CHECK(format_bound(300, Bound::at_least, 0) == "≥ 300");
  CHECK(format_bound(0.5, Bound::at_most, 1) == "≤ 0.5");
  CHECK(format_bound(2.345, Bound::exact, 2) == "2.35");
  CHECK(format_bound(12, Bound::none, 2) == "n/a");
  CHECK(format_bound(std::nan(""), Bound::exact, 2) == "n/a");
  CHECK(format_bound(ratio_bound(at(50), cens(100)), 2) == "≤ 0.50");
  CHECK(bound_name(Bound::at_least) == std::string("at_least"));
  CHECK(to_json(BoundedValue{0.5, Bound::at_most}) == nlohmann::json{{"value", 0.5}, {"bound", "at_most"}});
}

namespace {

// n samples of 5-class logits z ~ N(0, scale²) with labels drawn from softmax(z / t0).
void synthetic(double t0, double scale, int n, uint64_t seed, std::vector<double>& logits,
               std::vector<int64_t>& labels) {
  constexpr int classes = 5;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, scale);
  std::uniform_real_distribution<double> uniform(0, 1);
  logits.clear();
  labels.clear();
  for (int i = 0; i < n; ++i) {
    double z[classes], p[classes], sum = 0, m = -1e300;
    for (double& v : z) m = std::max(m, v = normal(rng));
    for (int j = 0; j < classes; ++j) sum += p[j] = std::exp((z[j] - m) / t0);
    double u = uniform(rng) * sum;
    int label = classes - 1;
    for (int j = 0; j < classes; ++j) {
      if (u < p[j]) {
        label = j;
        break;
      }
      u -= p[j];
    }
    logits.insert(logits.end(), z, z + classes);
    labels.push_back(label);
  }
}

}  // namespace

TEST_CASE("stats: temperature scaling recovers the temperature the labels were drawn at") {
  std::vector<double> logits;
  std::vector<int64_t> labels;
  for (const double t0 : {2.5, 0.5}) {
    CAPTURE(t0);
    // 20000 samples: over 200 seeds (std::mt19937_64, libstdc++) every fit was within 3% of t0.
    synthetic(t0, 2, 20000, 12, logits, labels);
    const double t = fit_temperature(logits, 5, labels);
    CHECK(std::abs(t / t0 - 1) < 0.04);
    // A minimum: no better at T = 1 or 10% either side.
    const double nll = temperature_nll(logits, 5, labels, t);
    CHECK(nll <= temperature_nll(logits, 5, labels, 1));
    CHECK(nll <= temperature_nll(logits, 5, labels, 0.9 * t));
    CHECK(nll <= temperature_nll(logits, 5, labels, 1.1 * t));
    CHECK(nll <= temperature_nll(logits, 5, labels, 0.999 * t));
    CHECK(nll <= temperature_nll(logits, 5, labels, 1.001 * t));
  }
}

TEST_CASE("stats: temperature scaling at the ends of its range") {
  // Every label has the largest logit: sharper is always better, the fit stops at the lower bound.
  CHECK(fit_temperature({2, 0, 0, 0, 1, 0}, 3, {0, 1}) == kMinTemperature);
  // Every label has the smallest logit: flatter is always better, the fit stops at the upper bound.
  CHECK(fit_temperature({2, 0, 1, 1, 0, 1}, 3, {1, 1}) == kMaxTemperature);
  // Equal logits: T does not matter.
  CHECK(fit_temperature({0, 0, 3, 3}, 2, {0, 1}) == 1);
  // Hand case, 2 classes, logits (1, 0): label 0 three times, label 1 once; the fit makes
  // p(label 0) = ¾, i.e. 1/T = ln 3.
  CHECK(fit_temperature({1, 0, 1, 0, 1, 0, 1, 0}, 2, {0, 0, 0, 1}) ==
        doctest::Approx(1 / std::log(3.0)).epsilon(1e-10));
  CHECK(temperature_nll({1, 0}, 2, {0}, 1) == doctest::Approx(std::log(1 + std::exp(-1.0))).epsilon(1e-14));
}

TEST_CASE("stats: temperature scaling rejects an empty or malformed held-out set") {
  CHECK_THROWS_WITH_AS(fit_temperature({}, 5, {}), "temperature fit: the held-out set is empty", lethe::Error);
  CHECK_THROWS_WITH_AS(fit_temperature({1, 2, 3}, 2, {0, 1}), doctest::Contains("3 values, not 2 samples"),
                       lethe::Error);
  CHECK_THROWS_WITH_AS(fit_temperature({1, 2, 3, 4}, 2, {0, 2}), doctest::Contains("label 1 is 2"), lethe::Error);
  CHECK_THROWS_AS(fit_temperature({1, 2, 3, 4}, 2, {-1, 0}), lethe::Error);
  CHECK_THROWS_AS(fit_temperature({1, 2}, 1, {0, 0}), lethe::Error);
  CHECK_THROWS_AS(fit_temperature({1, std::nan("")}, 2, {0}), lethe::Error);
  CHECK_THROWS_AS(temperature_nll({1, 2}, 2, {0}, 0), lethe::Error);
}

TEST_CASE("stats: membership gap is test loss minus forget loss") {
  // Remembered: forget losses lower than test losses.
  CHECK(membership_gap({1.0, 2.0, 3.0}, {0.5, 0.5}) == 1.5);
  // Never seen: the same distribution, gap 0.
  CHECK(membership_gap({0.2, 0.4}, {0.4, 0.2, 0.3}) == doctest::Approx(0.0).epsilon(1e-15));
  CHECK(membership_gap({0.3}, {0.9}) == doctest::Approx(-0.6).epsilon(1e-15));
  CHECK_THROWS_WITH_AS(membership_gap({}, {1}), "membership_gap: no test losses", lethe::Error);
  CHECK_THROWS_WITH_AS(membership_gap({1}, {}), "membership_gap: no forget losses", lethe::Error);
  CHECK_THROWS_AS(membership_gap({1, std::numeric_limits<double>::infinity()}, {1}), lethe::Error);
}
