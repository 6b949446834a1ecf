#pragma once
// A study's TOML file (README, "lethe run"): its [study] table and the [train], [split], [unlearn]
// (with [unlearn.METHOD]) and [relearn] tables of flags for those subcommands.
//
// Every malformed file or value is a lethe::Error naming the file and the key (or a CLI::Error from
// table_flags for a value that is no flag), never another exception: numbers are range-checked
// before they are converted, with the allowed range in the message.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common.h"
#include "unlearn/relearn.h"

namespace lethe::cli {

struct Study {
  std::string name = "default";
  std::string model = "cnn-s";
  RunOptions run;
  std::vector<std::string> scenarios = {"random:0.1", "class:0"};
  std::vector<std::string> methods;  // default: every method but retrain (which always runs)
  // Replicate r (0-based) trains, draws its split and relearns with seed study_seed + r: each its
  // own original, retrained model and unlearned models (README, "Replicates").
  int64_t replicates = 1;
  uint64_t study_seed = 0;
  double confidence = 0.95;
  double margin = 0.02;
  unlearn::RelearnMode relearn_mode = unlearn::RelearnMode::automatic;
  // The [train], [split], [unlearn], [relearn] tables as flags of those subcommands; [unlearn.M]
  // tables add flags for method M only.
  std::vector<std::string> train, split, unlearn, relearn;
  std::map<std::string, std::vector<std::string>> method_flags;
  nlohmann::json config;  // the file as read, for the report
};

// The range of [study] replicates (threads: as --threads, kMaxThreads).
inline constexpr int64_t kMaxReplicates = 1000;

// The study of the TOML text `toml_text`; `origin` (its path) names it in errors.
Study parse_study(std::string_view toml_text, const std::string& origin);
// The study of the file at `path`; the default study when `path` is empty.
Study read_study(const std::string& path);

}  // namespace lethe::cli
