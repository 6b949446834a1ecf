#pragma once
// What the scenario-aware subcommands (split, train, unlearn, eval) share: where the split comes
// from (--split FILE, or drawn from --scenario and --split-seed), and the metadata that ties a
// checkpoint to the split its training set came from.
#include <CLI/CLI.hpp>

#include <string>

#include "common.h"
#include "nn/checkpoint.h"
#include "unlearn/scenario.h"

namespace lethe::cli {

struct ScenarioArgs {
  std::string scenario;  // random:0.1, class:0, mislabeled:0.1, backdoor:0.05[:TARGET]
  std::string split;     // a split file written before
  uint64_t split_seed = 0;
  int64_t limit = 0;     // draw over the first `limit` training samples only (0: all)
  bool given() const { return !scenario.empty() || !split.empty(); }
};
void add_scenario_options(CLI::App& cmd, ScenarioArgs& args);

// The split of --split, or a fresh draw of --scenario (exactly one of them must be given).
unlearn::Split resolve_split(const ScenarioArgs& args, const DataSource& source);

// Checkpoint metadata keys: the scenario and split digest of a model's training set.
inline constexpr const char* kScenarioKey = "scenario";
inline constexpr const char* kSplitDigestKey = "split_digest";
// A model trained on a poisoned set must have been trained on this split's; others may come
// from any training on the clean set. Throws lethe::Error saying what does not match.
void check_trained_for(const nn::CheckpointInfo& info, const std::string& path, const unlearn::Split& split);

}  // namespace lethe::cli
