#include "unlearn/study/scenario_args.h"

#include <CLI/CLI.hpp>

#include "engine/error.h"
#include "unlearn/study/option_range.h"

namespace lethe::study {

void add_scenario_options(CLI::App& cmd, ScenarioArgs& args) {
  cmd.add_option("--scenario", args.scenario,
                 "what to forget: random:F, class:C[,C...], mislabeled:F or backdoor:F[:TARGET]");
  cmd.add_option("--split", args.split, "a split file (lethe split) to reuse, instead of --scenario");
  cmd.add_option("--split-seed", args.split_seed, "seed of the --scenario draw")
      ->check(range_check(seed_range()))
      ->capture_default_str();
  cmd.add_option("--split-limit", args.limit, "--scenario: draw over the first N training samples only (0: all)")
      ->check(range_check(integer_in(0, kMaxCount)))
      ->capture_default_str();
  cmd.add_option("--subset", args.subset,
                 "the pool: a seeded subset of N training samples, the only ones trained on, forgotten or retained "
                 "(0: all)")
      ->check(range_check(integer_in(0, kMaxCount)))
      ->capture_default_str();
  cmd.add_option("--validation", args.validation,
                 "the pool: hold this fraction of it out as the validation split, never trained on")
      ->check(range_check(real_in(0, 0.5)))
      ->capture_default_str();
  cmd.add_option("--pool-seed", args.pool_seed, "seed of the pool's draws (--subset, --validation)")
      ->check(range_check(seed_range()))
      ->capture_default_str();
}

unlearn::Split resolve_split(const ScenarioArgs& args, const DataSource& source) {
  LETHE_CHECK(args.scenario.empty() != args.split.empty(), "scenario",
              "give exactly one of --scenario (draw a split) and --split FILE (reuse one)");
  const unlearn::Pool pool = args.pool();
  if (!args.split.empty()) {
    unlearn::Split split = unlearn::load_split(args.split);
    unlearn::check_split_fits(split, *source.train, source.classes, args.split);
    LETHE_CHECK(pool.trivial() || pool.str() == split.pool.str(), "scenario", args.split, " was drawn in the pool ",
                split.pool.str(), ", not in ", pool.str(), " (--subset, --validation, --pool-seed): the file says its "
                "pool; drop those flags");
    LETHE_CHECK(split.pool.trivial() || split.train_size == source.train->size(), "scenario", args.split,
                "'s pool ", split.pool.str(), " was drawn over the first ", split.train_size, " training samples, not "
                "over all ", source.train->size(), " as lethe draws pools");
    return split;
  }
  LETHE_CHECK(args.limit >= 0 && args.limit <= source.train->size(), "scenario", "--split-limit ", args.limit,
              " must be in [0, ", source.train->size(), "]");
  LETHE_CHECK(args.limit == 0 || pool.trivial(), "scenario", "--split-limit and a pool (--subset, --validation) do "
              "not go together: a pool is drawn over the whole training set (--subset N keeps N samples)");
  const data::Dataset train = args.limit > 0 ? unlearn::leading_samples(*source.train, args.limit) : *source.train;
  return unlearn::make_split(unlearn::parse_scenario(args.scenario), train, source.classes, args.split_seed, pool);
}

std::string recorded_pool(const nn::CheckpointInfo& info) {
  const auto it = info.extra.find(kPoolKey);
  return it == info.extra.end() ? unlearn::Pool{}.str() : it->second;
}

void check_trained_for(const nn::CheckpointInfo& info, const std::string& path, const unlearn::Split& split) {
  const std::string pool = recorded_pool(info);
  LETHE_CHECK(pool == split.pool.str(), "scenario", path, " was trained in the pool ", pool, ", but the split (",
              split.scenario.str(), ") was drawn in the pool ", split.pool.str(), ": draw the split with the pool "
              "the model was trained in (--subset, --validation, --pool-seed)");
  if (!split.scenario.poisons()) return;
  const auto it = info.extra.find(kSplitDigestKey);
  LETHE_CHECK(it != info.extra.end(), "scenario", split.scenario.str(), " needs a model trained on its poisoned "
              "training set (lethe train --split FILE), but ", path, " was not trained for a split");
  LETHE_CHECK(it->second == split.digest(), "scenario", path, " was trained for split ", it->second, " (",
              info.extra.count(kScenarioKey) ? info.extra.at(kScenarioKey) : "?", "), not for this one (",
              split.digest(), ", ", split.scenario.str(), ")");
}

}  // namespace lethe::study
