#include "unlearn/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace lethe::unlearn::stats {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// JSON has no NaN or infinities; an undefined statistic is null.
nlohmann::json number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// Stirling's series for ln Γ(z) − [(z − ½) ln z − z + ½ ln 2π]; the next term is below 1e-21 for z ≥ 100.
double stirling_remainder(double z) {
  const double r = 1 / z, r2 = r * r;
  return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 / 1680)));
}

// ln B(a, b). With one argument large, ln Γ(large + small) − ln Γ(large) is the difference of two
// huge numbers (~1e13 at df = 1e12): it is taken from Stirling's series instead, in a form without
// the cancellation, so the t distribution stays accurate for any df.
double log_beta(double a, double b) {
  const double lo = std::min(a, b), hi = std::max(a, b);
  if (hi < 100) return std::lgamma(lo) + std::lgamma(hi) - std::lgamma(lo + hi);
  const double log_gamma_ratio = (hi - 0.5) * std::log1p(lo / hi) + lo * std::log(hi + lo) - lo +
                                 stirling_remainder(hi + lo) - stirling_remainder(hi);
  return std::lgamma(lo) - log_gamma_ratio;
}

// The continued fraction of I_x(a, b) (Numerical Recipes §6.4), by the modified Lentz method. It
// converges fast for x < (a + 1)/(a + b + 2); the caller swaps to I_{1−x}(b, a) otherwise.
double beta_continued_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300;  // stands in for a zero denominator (Lentz's device)
  constexpr double eps = 4 * std::numeric_limits<double>::epsilon();
  constexpr int max_iterations = 100000;  // ~40 suffice in practice, even at df = 1e12
  auto guard = [](double v) { return std::abs(v) < tiny ? tiny : v; };
  double c = 1, d = 1 / guard(1 - (a + b) * x / (a + 1));
  double h = d;
  for (int m = 1; m <= max_iterations; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a - 1 + m2) * (a + m2));  // the even step
    d = 1 / guard(1 + aa * d);
    c = guard(1 + aa / c);
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + 1 + m2));  // the odd step
    d = 1 / guard(1 + aa * d);
    c = guard(1 + aa / c);
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) <= eps) return h;
  }
  LETHE_FAIL("incomplete beta", "the continued fraction did not converge for a = ", a, ", b = ", b, ", x = ", x);
}

// I_x(a, b) with y = 1 − x passed separately: the t distribution at large df has x within 1e-12 of
// 1, where 1 − x computed from x would keep only a few digits.
double incomplete_beta(double a, double b, double x, double y) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const double log_x = x < 0.5 ? std::log(x) : std::log1p(-y);
  const double log_y = y < 0.5 ? std::log(y) : std::log1p(-x);
  const double front = std::exp(a * log_x + b * log_y - log_beta(a, b));
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, y) / b;
}

// P(Z > z), the standard normal's upper tail.
double normal_tail(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

// Above this df the incomplete beta loses digits (x = df/(df + t²) sits within 1e-6 of 1, where
// the continued fraction cancels); its expansion in 1/df is then exact to double precision.
constexpr double kLargeDf = 1e6;

// P(T > t) for t ≥ 0: ½ I_x(df/2, ½) with x = df/(df + t²), written through r = df/t² so that
// neither t² nor df + t² overflows. For df > kLargeDf: Φ(−z) with z the normal deviate of the
// same probability, t − (t³ + t)/(4 df) + (13t⁵ + 8t³ + 3t)/(96 df²) (Fisher's expansion, the
// reversion of Cornish–Fisher, Abramowitz & Stegun 26.7.5; the next term is O(df⁻³)).
double t_tail(double t, double df) {
  if (t == 0) return 0.5;
  if (std::isinf(t)) return 0;
  if (df > kLargeDf) {
    const double t2 = t * t;
    const double z = t - t * (t2 + 1) / (4 * df) + t * ((13 * t2 + 8) * t2 + 3) / (96 * df * df);
    return normal_tail(z);
  }
  const double s = std::sqrt(df) / t, r = s * s;
  return 0.5 * incomplete_beta(df / 2, 0.5, r / (1 + r), 1 / (1 + r));
}

// The z ≥ 0 with tail(z) = q for a decreasing tail, 0 < q ≤ ½: doubling to bracket, then bisection
// to the last bit (robust, and at ~60 evaluations cheap enough for a confidence interval).
template <class Tail>
double invert_tail(double q, const Tail& tail) {
  double lo = 0, hi = 1;
  while (tail(hi) > q) {
    lo = hi;
    hi *= 2;
    if (std::isinf(hi)) return kInf;  // beyond the largest double (df ≈ 1, p within 1e-308 of 0 or 1)
  }
  for (int i = 0; i < 200; ++i) {
    const double mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    (tail(mid) > q ? lo : hi) = mid;
  }
  return lo + (hi - lo) / 2;
}

void check_probability(double p, const char* op) {
  LETHE_CHECK(p > 0 && p < 1, op, "the probability must be in (0, 1), got ", p);
}

void check_df(double df, const char* op) {
  LETHE_CHECK(df > 0, op, "the degrees of freedom must be > 0, got ", df);  // also rejects NaN
}

}  // namespace

// --- Distributions ---------------------------------------------------------------------------

double regularized_incomplete_beta(double a, double b, double x) {
  LETHE_CHECK(a > 0 && b > 0, "incomplete beta", "a and b must be > 0, got a = ", a, ", b = ", b);
  LETHE_CHECK(x >= 0 && x <= 1, "incomplete beta", "x must be in [0, 1], got ", x);
  return incomplete_beta(a, b, x, 1 - x);
}

double student_t_cdf(double t, double df) {
  check_df(df, "student_t_cdf");
  LETHE_CHECK(!std::isnan(t), "student_t_cdf", "t is NaN");
  const double tail = std::isinf(df) ? normal_tail(std::abs(t)) : t_tail(std::abs(t), df);
  return t >= 0 ? 1 - tail : tail;
}

double normal_quantile(double p) {
  check_probability(p, "normal_quantile");
  if (p == 0.5) return 0;
  const double z = invert_tail(std::min(p, 1 - p), normal_tail);  // 1 − p is exact for p ≥ ½
  return p > 0.5 ? z : -z;
}

double student_t_quantile(double p, double df) {
  check_probability(p, "student_t_quantile");
  check_df(df, "student_t_quantile");
  if (std::isinf(df)) return normal_quantile(p);
  if (p == 0.5) return 0;
  const double t = invert_tail(std::min(p, 1 - p), [df](double u) { return t_tail(u, df); });
  return p > 0.5 ? t : -t;
}

// --- Replicates ------------------------------------------------------------------------------

Summary summarize(const std::vector<double>& x, double confidence) {
  LETHE_CHECK(!x.empty(), "summarize", "no values");
  LETHE_CHECK(confidence > 0 && confidence < 1, "summarize", "the confidence must be in (0, 1), got ", confidence);
  for (size_t i = 0; i < x.size(); ++i)
    LETHE_CHECK(std::isfinite(x[i]), "summarize", "value ", i, " is ", x[i], " (filter diverged runs first)");
  Summary s;
  s.n = static_cast<int64_t>(x.size());
  s.confidence = confidence;
  double sum = 0;
  for (const double v : x) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n == 1) {
    // One replicate says nothing about the spread: no standard deviation, so no interval.
    s.sd = s.se = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  double ss = 0;  // two passes: no cancellation between Σx² and n·mean²
  for (const double v : x) ss += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(s.n - 1));
  s.se = s.sd / std::sqrt(static_cast<double>(s.n));
  const double half = student_t_quantile((1 + confidence) / 2, static_cast<double>(s.n - 1)) * s.se;
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b, double confidence) {
  LETHE_CHECK(a.size() == b.size(), "paired_difference", "the two sides have ", a.size(), " and ", b.size(),
              " replicates; pairs need the same seeds on both");
  LETHE_CHECK(!a.empty(), "paired_difference", "no replicates");
  PairedDifference d;
  d.differences.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    LETHE_CHECK(std::isfinite(a[i]) && std::isfinite(b[i]), "paired_difference", "pair ", i, " is (", a[i], ", ",
                b[i], ") (filter diverged runs from both sides first)");
    d.differences[i] = a[i] - b[i];
  }
  d.summary = summarize(d.differences, confidence);
  // With sd = 0 (every difference equal) the interval is the point itself, so a nonzero difference
  // counts as significant: the replicates show no spread to doubt it.
  d.significant = d.summary.n >= 2 && (d.summary.ci_low > 0 || d.summary.ci_high < 0);
  return d;
}

// --- Censored values -------------------------------------------------------------------------

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::exact: return "exact";
    case Bound::at_least: return "at_least";
    case Bound::at_most: return "at_most";
    case Bound::none: return "none";
  }
  return "none";
}

std::vector<KaplanMeierPoint> kaplan_meier(const std::vector<CensoredValue>& x) {
  for (size_t i = 0; i < x.size(); ++i)
    LETHE_CHECK(std::isfinite(x[i].value), "kaplan_meier", "value ", i, " is ", x[i].value,
                " (drop diverged runs first; summarize_censored counts them)");
  std::vector<CensoredValue> sorted = x;
  std::sort(sorted.begin(), sorted.end(),
            [](const CensoredValue& p, const CensoredValue& q) { return p.value < q.value; });
  std::vector<KaplanMeierPoint> out;
  double survival = 1;
  for (size_t i = 0; i < sorted.size();) {
    KaplanMeierPoint p;
    p.time = sorted[i].value;
    p.at_risk = static_cast<int64_t>(sorted.size() - i);  // everything not yet passed, censored-at-t included
    for (; i < sorted.size() && sorted[i].value == p.time; ++i) (sorted[i].censored ? p.censored : p.events) += 1;
    survival *= 1 - static_cast<double>(p.events) / static_cast<double>(p.at_risk);
    p.survival = survival;
    out.push_back(p);
  }
  return out;
}

CensoredSummary summarize_censored(const std::vector<CensoredValue>& x) {
  LETHE_CHECK(!x.empty(), "summarize_censored", "no observations");
  CensoredSummary s;
  std::vector<CensoredValue> kept;
  for (size_t i = 0; i < x.size(); ++i) {
    LETHE_CHECK(!std::isinf(x[i].value), "summarize_censored", "value ", i, " is ", x[i].value,
                " (a run that never relearned is censored at the cap; a diverged one is NaN)");
    // A diverged run neither relearned at a step nor stayed unlearned to the cap: counting it as
    // either would bias the curve, so it is reported apart.
    if (std::isnan(x[i].value)) {
      ++s.diverged;
      continue;
    }
    kept.push_back(x[i]);
    s.censored += x[i].censored;
  }
  s.n = static_cast<int64_t>(kept.size());
  s.median = s.km_median = {kNaN, Bound::none};
  if (kept.empty()) return s;

  // The median: a censored value ranks at its value, the smallest its true value can be, and after
  // an uncensored value equal to it. If one ranks at or below the median position, its true value
  // may lie above the median and push it up: the median of the ranked values is then only a lower
  // bound.
  std::sort(kept.begin(), kept.end(), [](const CensoredValue& p, const CensoredValue& q) {
    return p.value < q.value || (p.value == q.value && !p.censored && q.censored);
  });
  const size_t n = kept.size(), upper = n / 2, lower = n % 2 == 1 ? upper : upper - 1;
  bool bounded = false;
  for (size_t i = 0; i <= upper; ++i) bounded = bounded || kept[i].censored;
  s.median = {(kept[lower].value + kept[upper].value) / 2, bounded ? Bound::at_least : Bound::exact};

  s.km = kaplan_meier(kept);
  for (const KaplanMeierPoint& p : s.km)
    if (p.survival <= 0.5) {
      s.km_median = {p.time, Bound::exact};
      return s;
    }
  // Not reached: more than half were still unlearned at the last follow-up, which (S > 0 at the end)
  // is a censored value; the median lies beyond it.
  double last_censored = -kInf;
  for (const CensoredValue& v : kept)
    if (v.censored) last_censored = std::max(last_censored, v.value);
  s.km_median = {last_censored, Bound::at_least};
  return s;
}

RatioBound ratio_bound(CensoredValue numerator, CensoredValue denominator) {
  const double a = numerator.value, b = denominator.value;
  if (std::isnan(a) || std::isnan(b)) return {kNaN, Bound::none};  // a diverged run has no ratio
  // The bound directions below hold for a ≥ 0, b > 0 only (steps, counts).
  LETHE_CHECK(a >= 0 && b >= 0, "ratio_bound", "the values must be ≥ 0, got ", a, " / ", b);
  if (b == 0 || (numerator.censored && denominator.censored)) return {kNaN, Bound::none};
  if (numerator.censored) return {a / b, Bound::at_least};  // true a' ≥ a: a'/b ≥ a/b
  if (denominator.censored) return {a / b, a == 0 ? Bound::exact : Bound::at_most};  // b' ≥ b: a/b' ≤ a/b
  return {a / b, Bound::exact};
}

std::string format_bound(double value, Bound b, int precision) {
  if (b == Bound::none || !std::isfinite(value)) return "n/a";
  char number[64];
  std::snprintf(number, sizeof number, "%.*f", std::clamp(precision, 0, 17), value);
  if (b == Bound::at_least) return std::string("≥ ") + number;
  if (b == Bound::at_most) return std::string("≤ ") + number;
  return number;
}

// --- Calibration and membership --------------------------------------------------------------

namespace {

void check_logits(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels,
                  const char* op) {
  LETHE_CHECK(!labels.empty(), op, "the held-out set is empty");
  LETHE_CHECK(classes >= 2, op, "needs at least 2 classes, got ", classes);
  LETHE_CHECK(logits.size() == labels.size() * static_cast<size_t>(classes), op, "logits hold ", logits.size(),
              " values, not ", labels.size(), " samples × ", classes, " classes");
  for (size_t i = 0; i < labels.size(); ++i)
    LETHE_CHECK(labels[i] >= 0 && labels[i] < classes, op, "label ", i, " is ", labels[i], ", not in [0, ", classes,
                ")");
  for (size_t i = 0; i < logits.size(); ++i)
    LETHE_CHECK(std::isfinite(logits[i]), op, "logit ", i, " (sample ", i / static_cast<size_t>(classes), ") is ",
                logits[i]);
}

struct NllAt {
  double nll = 0, slope = 0, curvature = 0;  // mean NLL and its first two derivatives in β = 1/T
};

// With β = 1/T: NLL_i(β) = log Σ_j exp(β z_j) − β z_y, dNLL_i/dβ = E_p[z] − z_y and
// d²NLL_i/dβ² = Var_p[z] ≥ 0, p = softmax(β z): convex in β.
NllAt nll_at(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels, double beta) {
  const size_t c = static_cast<size_t>(classes);
  NllAt r;
  std::vector<double> p(c);
  for (size_t i = 0; i < labels.size(); ++i) {
    const double* z = logits.data() + i * c;
    double m = -kInf;
    for (size_t j = 0; j < c; ++j) m = std::max(m, beta * z[j]);
    double sum = 0;  // log-sum-exp: every exponent ≤ 0
    for (size_t j = 0; j < c; ++j) sum += p[j] = std::exp(beta * z[j] - m);
    double mean = 0;
    for (size_t j = 0; j < c; ++j) mean += (p[j] /= sum) * z[j];
    double var = 0;
    for (size_t j = 0; j < c; ++j) var += p[j] * (z[j] - mean) * (z[j] - mean);
    const double zy = z[static_cast<size_t>(labels[i])];
    r.nll += m + std::log(sum) - beta * zy;
    r.slope += mean - zy;
    r.curvature += var;
  }
  const double n = static_cast<double>(labels.size());
  r.nll /= n, r.slope /= n, r.curvature /= n;
  return r;
}

}  // namespace

double temperature_nll(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels,
                       double temperature) {
  check_logits(logits, classes, labels, "temperature nll");
  LETHE_CHECK(temperature > 0 && std::isfinite(temperature), "temperature nll", "T must be finite and > 0, got ",
              temperature);
  return nll_at(logits, classes, labels, 1 / temperature).nll;
}

double fit_temperature(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels) {
  check_logits(logits, classes, labels, "temperature fit");
  // The NLL is convex in β, so its minimum is where the slope crosses 0; a slope that does not
  // change sign inside the range puts the minimum at (or past) the end it points to.
  double lo = 1 / kMaxTemperature, hi = 1 / kMinTemperature;
  const double slope_lo = nll_at(logits, classes, labels, lo).slope;
  const double slope_hi = nll_at(logits, classes, labels, hi).slope;
  if (slope_lo == 0 && slope_hi == 0) return 1;  // a monotone slope 0 at both ends: the NLL is flat
  if (slope_lo >= 0) return kMaxTemperature;
  if (slope_hi <= 0) return kMinTemperature;
  // Newton from T = 1, kept inside the shrinking bracket [lo, hi] (a step leaving it is replaced by
  // bisection in log β, the range spanning four decades).
  double beta = 1;
  for (int i = 0; i < 200; ++i) {
    const NllAt r = nll_at(logits, classes, labels, beta);
    if (r.slope == 0) break;
    (r.slope > 0 ? hi : lo) = beta;
    double next = r.curvature > 0 ? beta - r.slope / r.curvature : kNaN;
    if (!(next > lo && next < hi)) next = std::sqrt(lo * hi);
    const bool converged = std::abs(next - beta) <= 1e-12 * beta;
    beta = next;
    if (converged || hi - lo <= 1e-14 * hi) break;
  }
  return 1 / beta;
}

double membership_gap(const std::vector<double>& test_losses, const std::vector<double>& forget_losses) {
  LETHE_CHECK(!test_losses.empty(), "membership_gap", "no test losses");
  LETHE_CHECK(!forget_losses.empty(), "membership_gap", "no forget losses");
  auto mean = [](const std::vector<double>& v, const char* what) {
    double sum = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      LETHE_CHECK(std::isfinite(v[i]), "membership_gap", what, " loss ", i, " is ", v[i]);
      sum += v[i];
    }
    return sum / static_cast<double>(v.size());
  };
  return mean(test_losses, "test") - mean(forget_losses, "forget");
}

// --- JSON ------------------------------------------------------------------------------------

nlohmann::json to_json(const Summary& s) {
  return {{"n", s.n},
          {"mean", number(s.mean)},
          {"sd", number(s.sd)},
          {"se", number(s.se)},
          {"confidence", s.confidence},
          {"ci_low", number(s.ci_low)},
          {"ci_high", number(s.ci_high)}};
}

nlohmann::json to_json(const PairedDifference& d) {
  nlohmann::json differences = nlohmann::json::array();
  for (const double v : d.differences) differences.push_back(number(v));
  return {{"differences", differences}, {"summary", to_json(d.summary)}, {"significant", d.significant}};
}

nlohmann::json to_json(const BoundedValue& v) { return {{"value", number(v.value)}, {"bound", bound_name(v.bound)}}; }

nlohmann::json to_json(const CensoredSummary& s) {
  nlohmann::json km = nlohmann::json::array();
  for (const KaplanMeierPoint& p : s.km)
    km.push_back({{"time", number(p.time)},
                  {"at_risk", p.at_risk},
                  {"events", p.events},
                  {"censored", p.censored},
                  {"survival", number(p.survival)}});
  return {{"n", s.n},
          {"censored", s.censored},
          {"diverged", s.diverged},
          {"median", to_json(s.median)},
          {"km_median", to_json(s.km_median)},
          {"kaplan_meier", km}};
}

Proportion wilson_interval(int64_t hits, int64_t count, double confidence) {
  LETHE_CHECK(count > 0 && hits >= 0 && hits <= count, "wilson_interval", "needs 0 ≤ hits ≤ count, count > 0; got ",
              hits, " of ", count);
  LETHE_CHECK(confidence > 0 && confidence < 1, "wilson_interval", "confidence ", confidence, " is not in (0, 1)");
  const double n = static_cast<double>(count), p = static_cast<double>(hits) / n;
  const double z = normal_quantile(0.5 + confidence / 2), z2n = z * z / n;
  const double centre = (p + z2n / 2) / (1 + z2n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
  return {hits, count, p, std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

}  // namespace lethe::unlearn::stats
