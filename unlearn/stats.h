#pragma once
// The statistics of a replicated unlearning study (issue 12), each small enough to check by hand:
//  - summarize: mean, sample standard deviation (n − 1), standard error and a two-sided Student-t
//    confidence interval mean ± t_{1−α/2, n−1}·sd/√n over the replicates (seeds) of one number.
//  - paired_difference: the same over per-replicate differences a_i − b_i (two methods run on the
//    same seeds share their noise, so the paired interval is the honest one).
//  - Censored values (RCD steps): a run that had not relearned by the cap is right-censored there,
//    its true step is only known to be ≥ the cap. Such values get a median, a Kaplan–Meier curve
//    and a Kaplan–Meier median, each with a Bound saying whether the number is exact or a bound;
//    never a mean, which would treat the cap as the value.
//  - fit_temperature: temperature scaling (Guo et al. 2017), the T > 0 minimising the mean NLL of
//    softmax(logits / T) on held-out data.
//  - membership_gap: mean test loss − mean forget loss, in nats.
//  - wilson_interval: a binomial share's confidence interval (Wilson's score interval).
//  - Display: format_bound prints "≥ 300", "≤ 0.5" or "n/a" — a ratio with a censored denominator
//    prints as a bound or n/a, never as a number that looks exact.
// Everything is float64; inputs that cannot be summarised (empty, non-finite, mismatched) throw
// lethe::Error naming the function and the reason.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lethe::unlearn::stats {

// --- Distributions ---------------------------------------------------------------------------

// I_x(a, b), the regularized incomplete beta function, a, b > 0, 0 ≤ x ≤ 1 (continued fraction,
// modified Lentz; relative accuracy ~1e-15 where the result is not tiny).
double regularized_incomplete_beta(double a, double b, double x);
// P(T ≤ t) for Student's t with df > 0 degrees of freedom (df = +inf: the standard normal).
double student_t_cdf(double t, double df);
// The p-quantile of Student's t, 0 < p < 1, df > 0 (df = +inf: the standard normal), by bisection
// on the CDF; absolute error ≤ 1e-11 (checked against 60-digit arithmetic, df 1 to 1e12).
double student_t_quantile(double p, double df);
// The p-quantile of the standard normal, 0 < p < 1.
double normal_quantile(double p);

// --- Replicates ------------------------------------------------------------------------------

struct Summary {
  int64_t n = 0;
  double mean = 0;
  double sd = 0;  // sample standard deviation (n − 1); NaN for n = 1
  double se = 0;  // sd / √n; NaN for n = 1
  double confidence = 0.95;
  double ci_low = 0, ci_high = 0;  // mean ∓ t_{(1+confidence)/2, n−1}·se; NaN for n = 1
};
// Throws for no values, a non-finite value (filter diverged runs first) or confidence ∉ (0, 1).
Summary summarize(const std::vector<double>& x, double confidence = 0.95);

struct PairedDifference {
  std::vector<double> differences;  // a_i − b_i
  Summary summary;                  // of the differences
  bool significant = false;         // the interval excludes 0; false for n < 2
};
// a and b hold the same replicates in the same order (the same seeds); their sizes must match.
PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   double confidence = 0.95);

// --- Censored values -------------------------------------------------------------------------

// exact: the value; at_least / at_most: the true value is ≥ / ≤ it; none: nothing can be said.
enum class Bound { exact, at_least, at_most, none };
const char* bound_name(Bound b);  // "exact", "at_least", "at_most", "none"

struct BoundedValue {
  double value = 0;  // NaN with Bound::none
  Bound bound = Bound::none;
};
using RatioBound = BoundedValue;

// One observation: censored = the event (relearning) had not happened by `value` (the cap), so the
// true value is ≥ it. A NaN value marks a diverged run (summarize_censored counts it apart).
struct CensoredValue {
  double value = 0;
  bool censored = false;
};

struct KaplanMeierPoint {
  double time = 0;
  int64_t at_risk = 0;   // observations with value ≥ time
  int64_t events = 0;    // uncensored observations at time
  int64_t censored = 0;  // censored observations at time
  double survival = 1;   // S(time): the fraction estimated not to have relearned by time (inclusive)
};
// One point per distinct time, ascending (censoring-only times included, survival unchanged
// there). Ties: events count before censorings at the same time, so a run censored at t is at
// risk at t. Throws for a non-finite value (summarize_censored drops diverged runs first).
std::vector<KaplanMeierPoint> kaplan_meier(const std::vector<CensoredValue>& x);

struct CensoredSummary {
  int64_t n = 0;         // finite observations, censored ones included
  int64_t censored = 0;  // of those n
  int64_t diverged = 0;  // NaN observations, not in n and not in anything below
  // The sample median with censored values ranked at their value (the smallest they can be):
  // exact when no censored value ranks at or below the median position, else at_least; none for
  // n = 0.
  BoundedValue median;
  // The smallest time with S(time) ≤ 0.5: exact (an estimate, not a bound); at_least the largest
  // censored value when the curve never reaches 0.5; none for n = 0.
  BoundedValue km_median;
  std::vector<KaplanMeierPoint> km;
};
// Throws for no observations, or an infinite value.
CensoredSummary summarize_censored(const std::vector<CensoredValue>& x);

// numerator / denominator of two non-negative values (steps): neither censored → exact; only the
// numerator censored → at_least; only the denominator censored → at_most (exact 0 for a 0
// numerator); both censored, a zero denominator or a NaN (diverged) value → none.
RatioBound ratio_bound(CensoredValue numerator, CensoredValue denominator);

// "≥ 300", "≤ 0.50", "n/a" (Bound::none, or a non-finite value) or the number, with `precision`
// digits after the point.
std::string format_bound(double value, Bound b, int precision);
inline std::string format_bound(const BoundedValue& v, int precision) {
  return format_bound(v.value, v.bound, precision);
}

// --- Calibration and membership --------------------------------------------------------------

// The range fit_temperature searches; a fit that would leave it returns the bound it hit.
constexpr double kMinTemperature = 0.01, kMaxTemperature = 100;

// Mean NLL (nats) of softmax(logits / T) at the labels; logits row-major [labels.size(), classes].
double temperature_nll(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels,
                       double temperature);
// The T in [kMinTemperature, kMaxTemperature] minimising temperature_nll on held-out data. Returns
// kMinTemperature when the NLL is still falling as T drops to 0.01 (logits that rank every label
// first: sharper is always better), kMaxTemperature when it is still falling as T rises to 100
// (logits that carry no signal about the labels, or an inverted one), and 1 when the logits are
// equal within every row (the NLL does not depend on T).
double fit_temperature(const std::vector<double>& logits, int64_t classes, const std::vector<int64_t>& labels);

// A binomial share hits/count with its Wilson score interval at `confidence` (right at 0 and 1,
// unlike the normal approximation's): a generator's fidelity.
struct Proportion {
  int64_t hits = 0, count = 0;
  double value = 0, lo = 0, hi = 0;
};
Proportion wilson_interval(int64_t hits, int64_t count, double confidence = 0.95);

// Mean test loss − mean forget loss (per-sample cross-entropy, nats): ≈ 0 for a model that never saw
// the forget set, > 0 when it still fits the forget set better than unseen data.
double membership_gap(const std::vector<double>& test_losses, const std::vector<double>& forget_losses);

// --- JSON ------------------------------------------------------------------------------------
// NaN and infinities as null; bounds as {"value", "bound": "exact" | "at_least" | "at_most" | "none"}.

nlohmann::json to_json(const Summary& s);
nlohmann::json to_json(const PairedDifference& d);
nlohmann::json to_json(const BoundedValue& v);
nlohmann::json to_json(const CensoredSummary& s);

}  // namespace lethe::unlearn::stats
