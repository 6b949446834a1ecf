#pragma once
// What the scenario-aware subcommands (split, train, unlearn, eval, relearn) share: where the split
// comes from (--split FILE, or drawn from --scenario and --split-seed in the pool of --subset,
// --validation and --pool-seed), and the metadata that ties a checkpoint to the split and pool its
// training set came from.
#include "unlearn/study/cli_fwd.h"

#include <string>

#include "unlearn/study/common.h"
#include "nn/checkpoint.h"
#include "unlearn/scenario.h"

namespace lethe::study {

struct ScenarioArgs {
  std::string scenario;  // random:0.1, class:0, mislabeled:0.1, backdoor:0.05[:TARGET]
  std::string split;     // a split file written before
  uint64_t split_seed = 0;
  int64_t limit = 0;     // draw over the first `limit` training samples only (0: all)
  // The pool (unlearn::Pool), always drawn over the whole training set.
  int64_t subset = 0;
  double validation = 0;
  uint64_t pool_seed = 0;
  bool given() const { return !scenario.empty() || !split.empty(); }
  unlearn::Pool pool() const { return {subset, validation, pool_seed}; }
};
void add_scenario_options(CLI::App& cmd, ScenarioArgs& args);

// The split of --split, or a fresh draw of --scenario in the pool (exactly one of them must be
// given). With --split, pool flags that say another pool than the file's are refused; a pool does
// not go with --split-limit (pools are drawn over the whole training set, which `lethe train`
// with pool flags alone trains on).
unlearn::Split resolve_split(const ScenarioArgs& args, const DataSource& source);

// Checkpoint metadata keys: the scenario and split digest of a model's training set, and its pool
// (unlearn::Pool::str(), written only for a non-trivial pool: a checkpoint without it was trained
// on the whole training set).
inline constexpr const char* kScenarioKey = "scenario";
inline constexpr const char* kSplitDigestKey = "split_digest";
inline constexpr const char* kPoolKey = "pool";
// The pool a checkpoint's metadata records ("all" when none).
std::string recorded_pool(const nn::CheckpointInfo& info);
// A model must have been trained in the split's pool (any scenario: a model that saw the
// validation samples, or samples outside the pool, is not the split's original), and one trained
// on a poisoned set on this split's; others may come from any training on the clean pool. Throws
// lethe::Error saying what does not match.
void check_trained_for(const nn::CheckpointInfo& info, const std::string& path, const unlearn::Split& split);

}  // namespace lethe::study
