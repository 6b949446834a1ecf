#pragma once
// The hyper-parameter search of `lethe tune` and of a study's [tune] (README, "lethe tune"): per
// scenario, every searched method gets the same number of trials; each trial runs the method at
// one setting drawn from its space (unlearn/search_space.h) and is measured on the validation
// split against the retrained model; the setting with the smallest criterion is chosen.
//
// A trial is a phase: its record (SCENARIO/trials/METHOD-K.json) is written atomically with the
// key it ran with, so a killed search resumes without repeating a finished trial, and trials can
// run in separate processes (`--jobs N`: `lethe tune ... --worker ID`, one per trial).
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "unlearn/study/common.h"
#include "unlearn/study/study_config.h"
#include "unlearn/study/study_phases.h"

namespace lethe::study {

// What the search of one scenario runs on: replicate 0's original, split and retrained model.
struct SearchScenario {
  unlearn::Scenario scenario;
  PhaseOutput original, split, retrained;
};

// How a trial process is started again (--jobs > 1): `lethe tune CONFIG --out OUT [--quick]` with
// the search's settings as flags.
struct TuneInvocation {
  std::string config, out;
  bool quick = false;
};

// The methods the search tunes among `methods`: every one but retrain, and but IEU's ablations
// when IEU is among them: a control runs at IEU's chosen setting (its own term still off), so it
// differs from IEU in that term only. Without IEU, an ablation is searched as any method.
std::vector<std::string> searched_methods(const std::vector<std::string>& methods);

// Runs (or resumes) every trial of `at`'s scenario and returns its record (the "scenarios" entry
// of tune.json, README "lethe tune").
nlohmann::json search_scenario(const Study& s, ReplicatePhases& phases, const SearchScenario& at,
                               const DataSource& source, Device device, const TuneInvocation& invocation);

// In a trial process (`--worker`): runs the one trial `index` of `method` and writes its record.
void run_worker_trial(const Study& s, ReplicatePhases& phases, const SearchScenario& at, const DataSource& source,
                      Device device, const std::string& method, int64_t index);

// Checks every searched method's space (README: an empty one, an unknown option, a range outside
// the option's) before anything runs.
void check_search_spaces(const Study& s);

// The chosen flags of every method of a scenario record; IEU's ablations get IEU's.
std::map<std::string, std::vector<std::string>> chosen_flags(const nlohmann::json& scenario_record,
                                                             const std::vector<std::string>& methods);

// tune.json's fields besides "scenarios" and the times.
nlohmann::json tune_header(const Study& s);
// Adds what the scenarios' records give: the pool's sizes and "search_seconds", the trials' time.
void finish_tune_record(nlohmann::json& record);

// Applies `lethe run --quick`/`lethe tune --quick`'s small setting to the study (README): a pool
// of at most 4,000 of the `train_size` training images (the first 4,000 without a pool), 2
// epochs, 40 unlearning steps, a relearning cap of 60.
void apply_quick(Study& s, int64_t train_size);

}  // namespace lethe::study
