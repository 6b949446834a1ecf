#pragma once
// What `lethe tune` writes from a search's record (tune.json, schema in README "lethe tune"): the
// table of every trial (CSV), the chosen setting of every method as a TOML fragment a study can
// paste, and the HTML page with the validation criterion plotted against the trial. The study
// report (report.h) shows the same record, when its results.json holds one, in its "Tuning" section.
//
// Every function reads the record whole first: a missing or mistyped field is a lethe::Error
// naming it ("tune: missing field scenarios[1].methods[0].chosen"), never a nlohmann exception.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lethe::study {

struct JsonField;  // report.h

// trials.csv: one row per trial: scenario,method,trial,chosen,criterion,gap,fa,ra,va,mia,rcd,
// rcd_censored,seconds,error,flags (metrics, gap and criterion as fractions as in tune.json; flags
// joined by spaces; text fields quoted). Header line included.
std::string tune_trials_csv(const nlohmann::json& tune);
// For the scenario at `index` of tune["scenarios"]: one [unlearn.METHOD] table per method with its
// chosen trial's flags as keys (numbers bare, other values as strings), after a comment naming the
// study, scenario, trials, seed and criterion. Parses as a study's tables (study_config.h) into
// exactly those flags. A method whose every trial failed gets a comment instead of a table.
std::string tuned_toml(const nlohmann::json& tune, size_t index);
// An <svg> of the criterion (in points) against the trial, one panel per scenario, one series per
// method (coloured as the study report colours its models), the chosen trial of each ringed,
// failed trials shown as crosses at the panel's top edge; a log axis when criteria span more than
// two decades.
std::string tune_plot_svg(const nlohmann::json& tune);
// A standalone page: the search's setting, then per scenario the plot, per method the table of
// trials (the chosen row marked) and the chosen configs as the TOML fragment.
std::string tune_report_html(const nlohmann::json& tune);

// Writes trials.csv, tuned-SCENARIO.toml per scenario (every character of its name but letters,
// digits, '.', '_' and '-' as '-') and report.html into the existing folder `dir`, each atomically;
// nothing is written when the record is malformed.
void write_tune_outputs(const nlohmann::json& tune, const std::filesystem::path& dir);

// ---- The record as read, for the study report.

struct TuneTrial {
  int64_t trial = 0;
  std::vector<std::pair<std::string, double>> values;  // option → value, by name
  std::vector<std::string> flags;                      // "--name=value": what ran
  std::optional<double> fa, ra, va, mia, gap, rcd, criterion, seconds;  // fractions; rcd in steps
  bool rcd_censored = false;
  std::string error;  // why the trial failed; empty when it ran
  bool failed() const { return !error.empty() || !criterion; }
};

struct TuneAxis {
  std::string name, scale;  // scale: log | linear | integer
  double lo = 0, hi = 0;
};

struct TuneMethod {
  std::string method;
  std::vector<TuneAxis> space;
  std::vector<TuneTrial> trials;
  std::optional<size_t> chosen;  // an index of trials; none when every trial failed
};

struct TuneScenario {
  std::string scenario;
  std::optional<double> forget, retain, validation;  // sample counts
  std::optional<double> fa, ra, va, mia, rcd;        // the retrained model's
  bool rcd_censored = false;
  std::vector<TuneMethod> methods;
};

struct TuneRecord {
  std::string study, model, dataset, version;
  uint64_t seed = 0;
  int64_t trials = 0;  // per method
  std::optional<double> step_budget, rcd_weight, search_seconds, wall_seconds;
  std::optional<double> subset, validation_fraction, pool_seed, training, validation_size;  // the pool
  std::vector<TuneScenario> scenarios;
};

// The record at `tune` (results.json's "tune", or a tune.json at its root).
TuneRecord read_tune(const JsonField& tune);
// The study report's <section id="tuning">: the setting, the plot, per scenario and method the
// trials run and the chosen values.
std::string tuning_section_html(const TuneRecord& tune);

}  // namespace lethe::study
