#pragma once
// A study's TOML file (README, "lethe run"): its [study] table, the [train], [split], [unlearn]
// (with [unlearn.METHOD]) and [relearn] tables of flags for those subcommands, and [tune] (with
// [tune.space.METHOD]), the flags of `lethe tune`, and [slurm], the --slurm flags of `lethe run`.
//
// Every malformed file or value is a lethe::Error naming the file and the key (or a CLI::Error from
// table_flags for a value that is no flag), never another exception: numbers are range-checked
// before they are converted, with the allowed range in the message.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unlearn/study/common.h"
#include "unlearn/study/slurm_options.h"
#include "unlearn/study/tune_options.h"
#include "unlearn/relearn.h"

namespace lethe::study {

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
  // The training pool (unlearn::Pool): a seeded subset of this many training samples (0: all),
  // drawn with seed study_seed, the same for every replicate.
  int64_t subset = 0;
  // [tune]: search every method's hyper-parameters first (README, "lethe tune"), on a validation
  // split held out of the pool; [tune.space.METHOD] tables replace a method's default space.
  std::optional<TuneOptions> tune;
  SpaceRanges spaces;
  // Generators (cvae, ddpm-s): the classifier that judges their samples ([study] evaluator; empty:
  // the study trains one, W1's cnn-s, in its "evaluator" phase) and the metrics' sizes ([study]
  // samples_per_class, loss_images; their seed is the replicate's).
  std::string evaluator;
  std::vector<std::string> evaluator_train;  // flags of its `lethe train` over W1's recipe (--quick's)
  unlearn::GeneratorMetricOptions generator;
  SlurmOptions slurm;     // [slurm]: how `lethe run --slurm` submits the phases
  nlohmann::json config;  // the file as read, for the report
};

// The pool flags of `lethe train` and `lethe split` for the study (none for the trivial pool):
// --subset, --validation (with [tune]) and --pool-seed = study_seed.
std::vector<std::string> pool_flags(const Study& s);

// Whether the study's model is a generator (cvae, ddpm-s): its relearning phases need an evaluator.
bool generative(const Study& s);

// The range of [study] replicates (threads: as --threads, kMaxThreads).
inline constexpr int64_t kMaxReplicates = 1000;

// The study of the TOML text `toml_text`; `origin` (its path) names it in errors.
Study parse_study(std::string_view toml_text, const std::string& origin);
// The study of the file at `path`; the default study when `path` is empty.
Study read_study(const std::string& path);

}  // namespace lethe::study
