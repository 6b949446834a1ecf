#pragma once
// A study as a graph of phases (README, "Phases"): what `lethe run --plan` prints and what
// `lethe run --phase ID` runs one node of. Per replicate R: rR/original (train), per scenario
// rR/SCENARIO/split, rR/SCENARIO/retrain and rR/SCENARIO/METHOD (unlearn), with [tune]
// r0/SCENARIO/search, and rR/SCENARIO/relearn (measure and relearn every model); then report
// (results.json, the tables and report.html) after every relearn phase. A generator study without
// [study] evaluator trains its judge first: phase "evaluator" (W1's cnn-s), before every relearn.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "unlearn/study/study_config.h"

namespace lethe::study {

struct PlannedPhase {
  std::string id;
  std::string kind;                  // evaluator | train | split | unlearn | search | relearn | report
  int64_t replicate = -1;            // -1 for evaluator and report
  std::string scenario;              // the scenario's canonical text; empty for original and report
  std::string method;                // unlearn: the method (retrain among them)
  std::vector<std::string> command;  // the `lethe` command it runs (evaluator, train, split, unlearn), else empty
  bool tuned = false;                // unlearn: the search's chosen flags go over `command`'s
  std::vector<std::string> inputs, outputs;  // files
  std::vector<std::string> after;            // the ids of the phases it needs, each listed before it
};

// Every phase of the study `s` writing into `out`, each after the phases it needs, in the order
// `lethe run` runs them.
std::vector<PlannedPhase> plan_study(const Study& s, const std::filesystem::path& out);

// The arguments of `lethe` that run phase `id` alone: run [CONFIG] --out=OUT [--quick] --phase=ID.
std::vector<std::string> phase_args(const std::string& config, const std::string& out, bool quick,
                                    const std::string& id);

// The phase `id`, or a lethe::Error naming it and how to list the ids.
const PlannedPhase& find_phase(const std::vector<PlannedPhase>& plan, const std::string& id);

// `lethe run --plan`: {"study", "out", "phases": [{id, kind, command, tuned, inputs, outputs,
// after}, ...]}, or a Graphviz digraph with --format dot.
nlohmann::json plan_json(const Study& s, const std::filesystem::path& out, const std::vector<PlannedPhase>& plan);
std::string plan_dot(const Study& s, const std::vector<PlannedPhase>& plan);

}  // namespace lethe::study
