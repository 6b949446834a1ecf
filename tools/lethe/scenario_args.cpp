#include "scenario_args.h"

#include "engine/error.h"
#include "option_range.h"

namespace lethe::cli {

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
}

unlearn::Split resolve_split(const ScenarioArgs& args, const DataSource& source) {
  LETHE_CHECK(args.scenario.empty() != args.split.empty(), "scenario",
              "give exactly one of --scenario (draw a split) and --split FILE (reuse one)");
  if (!args.split.empty()) {
    unlearn::Split split = unlearn::load_split(args.split);
    unlearn::check_split_fits(split, *source.train, source.classes, args.split);
    return split;
  }
  LETHE_CHECK(args.limit >= 0 && args.limit <= source.train->size(), "scenario", "--split-limit ", args.limit,
              " must be in [0, ", source.train->size(), "]");
  const data::Dataset train = args.limit > 0 ? unlearn::leading_samples(*source.train, args.limit) : *source.train;
  return unlearn::make_split(unlearn::parse_scenario(args.scenario), train, source.classes, args.split_seed);
}

void check_trained_for(const nn::CheckpointInfo& info, const std::string& path, const unlearn::Split& split) {
  if (!split.scenario.poisons()) return;
  const auto it = info.extra.find(kSplitDigestKey);
  LETHE_CHECK(it != info.extra.end(), "scenario", split.scenario.str(), " needs a model trained on its poisoned "
              "training set (lethe train --split FILE), but ", path, " was not trained for a split");
  LETHE_CHECK(it->second == split.digest(), "scenario", path, " was trained for split ", it->second, " (",
              info.extra.count(kScenarioKey) ? info.extra.at(kScenarioKey) : "?", "), not for this one (",
              split.digest(), ", ", split.scenario.str(), ")");
}

}  // namespace lethe::cli
