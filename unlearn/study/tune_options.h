#pragma once
// The settings of a hyper-parameter search (`lethe tune`, a study's [tune] table), each declared
// once: the flags of `lethe tune` and the keys of [tune] are these names. The search spaces are
// not here: unlearn/search_space.h declares the defaults, [tune.space.METHOD] tables replace them.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nn/option_table.h"

namespace lethe::study {

struct TuneOptions {
  int64_t trials = 8;       // per method, every method the same
  double validation = 0.1;  // fraction of the training pool held out as the validation split
  uint64_t search_seed = 0; // the trials' draws (unlearn/search_space.h)
  double rcd_weight = 0;    // weight of the relearning shortfall in the criterion (0: the gap only)
  int64_t jobs = 1;         // trials run at once, each in its own process
};
const nn::OptionTable<TuneOptions>& tune_options();

// Option name → [lo, hi] per method: a study's [tune.space.METHOD] tables, each replacing that
// method's default space.
using SpaceRanges = std::map<std::string, std::map<std::string, std::pair<double, double>>>;

}  // namespace lethe::study
