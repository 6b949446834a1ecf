#pragma once
// Hyper-parameter search spaces of the unlearning methods (`lethe tune`, README "Tuning"): per
// method the options a search varies and the range of each, declared once here, printed by
// `lethe tune --list`, and the deterministic draw of one trial's values.
//
// Every method gets the same number of trials. Trial 0 is the method's defaults (the shared
// budget, WORKLOADS.md), so a search can only find a setting at least as good on validation; trial
// k ≥ 1 draws every axis independently from Philox keyed by (seed, method, k) (and the axis's
// option name, so an axis draws the same whichever other axes its space has), so a trial's values
// depend on nothing but those three: trials can run in any order, in parallel, or again after a kill.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lethe::unlearn {

// One axis: a method option (a name of method_options()) and its range, both ends included.
struct SearchAxis {
  enum class Scale { log, linear, integer };  // log: log-uniform (lo > 0); integer: uniform over [lo, hi]
  std::string name;
  Scale scale = Scale::log;
  double lo = 0, hi = 0;
};
const char* scale_name(SearchAxis::Scale s);  // "log" | "linear" | "integer"

struct SearchSpace {
  std::string method;
  std::vector<SearchAxis> axes;
};

// The default space of every method that can be tuned (every method but retrain, the reference),
// in methods() order; the ranges and why are in search_space.cpp, the table in README "Tuning".
const std::vector<SearchSpace>& default_search_spaces();
// The default space of `method`; throws lethe::Error for retrain or an unknown method.
const SearchSpace& default_search_space(const std::string& method);

// `space` with axes replaced or added from a study's [tune.space.METHOD] table: option name →
// [lo, hi]. A replaced axis keeps its scale; a new one is integer for an integer option, else log
// when lo > 0 and linear from 0. Throws lethe::Error naming `origin` and the key for: a name that is
// no option of the methods (with the known names), an option the method does not read or one that
// is not a number (a string, the flag --single-pass, --seed; with the options it can vary), a bound
// outside the option's own range (with it), lo > hi, an infinite bound, lo ≤ 0 on a log axis. An
// axis whose range is [x, x] pins the option to x.
SearchSpace with_ranges(SearchSpace space, const std::map<std::string, std::pair<double, double>>& ranges,
                        const std::string& origin);
// Throws lethe::Error naming `origin` when the space has no axis (an empty search space).
void check_search_space(const SearchSpace& space, const std::string& origin);

// One trial's values, in the space's axis order, each as the text of its flag ("--lr=0.01234").
// Trial 0: every axis at `defaults` (flag name → value: the method's setting without tuning, its
// options as the study gives them resolved for the scenario; a missing axis is a std::logic_error).
// Trials ≥ 1: the `steps` axis is capped at `step_budget`: hi = min(hi, step_budget), lo = min(lo, hi);
// reals are written with 4 significant digits (more only where 4 would leave the axis: a bound or a
// pinned value with more), and `values` holds what the text reads back as, the value that runs.
// Trial 0 writes each default exactly (the shortest text that reads back as it). Integers as integers.
// An axis with lo > hi, or lo ≤ 0 on a log axis (with_ranges makes none), is a std::logic_error.
struct TrialValues {
  std::vector<std::pair<std::string, double>> values;  // name → value, axis order
  std::vector<std::string> flags;                      // "--name=value", axis order
};
TrialValues trial_values(const SearchSpace& space, uint64_t seed, int64_t trial, int64_t step_budget,
                         const std::map<std::string, double>& defaults);

// The criterion a trial is ranked by (lower is better), in fraction units: the average gap to the
// retrained model on the validation split, plus, with rcd_weight > 0, rcd_weight × the relearning
// shortfall max(0, 1 − rcd / rcd_retrained) (0 for a model that relearns the forget set at least as
// slowly as the retrained model, 1 for one that has it back at step 0). `rcd` of a model censored
// at the cap is the cap (a lower bound: the shortfall is then an upper bound). With rcd_weight 0 it
// is the gap whatever the rcds; with rcd_weight > 0 a NaN rcd (not measured) gives NaN, a criterion
// best_trial never chooses. Throws lethe::Error for a negative or non-finite rcd_weight.
double tuning_criterion(double validation_gap, double rcd_weight, double rcd, double rcd_retrained);

// The index of the smallest finite criterion (the lowest index on ties); NaN or infinite ones (a
// trial that failed or diverged) are never chosen. Throws lethe::Error when none is finite.
int64_t best_trial(const std::vector<double>& criteria);

// [{"name", "scale", "lo", "hi"}, ...] in axis order; an integer axis's bounds as JSON integers.
nlohmann::json to_json(const SearchSpace& space);
// Fixed-width text of every space, for `lethe tune --list`: method, option, scale, range and the
// option's help, cut to end the line by column 100.
std::string search_spaces_text(const std::vector<SearchSpace>& spaces);

}  // namespace lethe::unlearn
