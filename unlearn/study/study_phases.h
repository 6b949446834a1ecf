#pragma once
// The phases of a study (`lethe run`) and of a search (`lethe tune`): train the original, draw a
// scenario's split, make one model (retrain or a method) — each the `lethe` subcommand a user could
// run by hand, run in this process with the study's flags.
//
// A phase's outputs are written atomically, then a small record of the flags it and its inputs ran
// with and of its files' digests (`NAME.done.json`); a phase whose record matches, whose files still
// have those digests and whose checkpoint loads is skipped, so after Ctrl-C (or a kill, or a crash)
// a run resumes where it stopped (the original's training from its last finished epoch), a corrupt
// or edited file re-runs the phase that made it, and a changed phase re-runs what depends on it.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unlearn/study/processes.h"
#include "unlearn/study/study_config.h"
#include "unlearn/scenario.h"

namespace lethe::study {

namespace fs = std::filesystem;

std::vector<std::string> joined(std::initializer_list<std::vector<std::string>> parts);
// `flags` with each flag of `overrides` set to the override's value (CLI11 refuses a flag given twice).
std::vector<std::string> overridden(std::vector<std::string> flags, const std::vector<std::string>& overrides);
// A scenario's folder name: its canonical text with ':' and ',' as '-'.
std::string scenario_dir(const std::string& scenario);
std::string utc_now();
// FNV-1a, 64 bits, of `bytes`, with their length ("fnv1a64:HEX:LENGTH"): against corruption and
// edits, not forgery.
std::string fnv1a64(std::string_view bytes);
double timed(const std::function<void()>& f);

// ---- phase records: `key` is what a phase ran with (its flags, then its inputs' keys, each with
// the digest of the file it made); the record's digests are those of the phase's output and input
// files when it finished.

// The record of `output` when it was made with `key` from `inputs`, and the output and the inputs
// still have the digests they had then (and, for checkpoints, the output still loads).
std::optional<nlohmann::json> finished(const fs::path& output, const std::vector<std::string>& key, bool checkpoint,
                                       const std::vector<fs::path>& inputs = {});
void write_record(const fs::path& output, const std::vector<std::string>& key, double seconds,
                  const std::vector<fs::path>& inputs = {});
// "--digest=D": the digest of `file` as the record of a phase that finished saw it, what the keys
// of phases made from it hold.
std::string recorded_digest(const nlohmann::json& record, const fs::path& file);

// Numbered progress lines on stderr ("== [3/20] what (41 s so far)").
class Phases {
 public:
  explicit Phases(int64_t total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  void begin(const std::string& what);
  double seconds() const;

 private:
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Runs a `lethe` subcommand in this process, given its arguments (["train", "--model=cnn-s", ...]):
// the app's dispatcher (tools/lethe/commands.h, run_command), handed to the study by the app, as a
// phase *is* the subcommand a user could run by hand.
using CommandRunner = std::function<void(const std::vector<std::string>& args)>;

// What one replicate runs with: its seed (study_seed + index) and its folder.
struct Replicate {
  int64_t index = 0;
  uint64_t seed = 0;
  fs::path dir;
};

// Replicate `index` of the study whose output folder is `out` (OUT/replicate-INDEX).
Replicate replicate_of(const Study& s, const fs::path& out, int64_t index);

// A phase's output file, the key phases made from it hold, and its record.
struct PhaseOutput {
  fs::path path;
  std::vector<std::string> key;
  nlohmann::json record;
};

// The study's run flags (--dataset, --device, --threads, --data), which every phase's command has.
std::vector<std::string> run_flags(const Study& s);

// A generator study's judge: [study] evaluator, or OUT/evaluator.safetensors, which its phase
// "evaluator" trains: `lethe train` of W1's cnn-s on the whole training set with seed study_seed
// (Study::evaluator_train over W1's recipe, the defaults of `lethe train`).
inline constexpr const char* kEvaluatorPhase = "evaluator";
fs::path evaluator_file(const Study& s, const fs::path& out);
std::vector<std::string> evaluator_command(const Study& s, const fs::path& out);

// The phases of one replicate of a study. Each skips itself when its record says it is done.
//
// Each phase has an id (README, "Phases"): rR/original, rR/SCENARIO/split, rR/SCENARIO/METHOD
// (retrain among the methods), with SCENARIO the scenario's folder name. After only(ID), a phase
// that is not done runs only if it is ID; any other throws, naming it: what `lethe run --phase ID`
// runs, so a phase never runs its inputs itself.
class ReplicatePhases {
 public:
  ReplicatePhases(const Study& study, Replicate rep, Phases& phases, nlohmann::json& timings, CommandRunner command);
  void only(const std::string& phase_id) { only_ = phase_id; }
  // The id of the replicate's phase `what` ("original", "SCENARIO/split", ...).
  std::string id(const std::string& what) const;
  std::string id(const unlearn::Scenario& scenario, const std::string& what) const;
  // Throws unless the phase `phase_id`, which is not done, may run (only()); `output` is its file.
  void check_may_run(const std::string& phase_id, const fs::path& output) const;
  // Whether the lines of phase `phase_id` are printed: every phase's without only(), else its own.
  bool shown(const std::string& phase_id) const { return only_.empty() || only_ == phase_id; }
  const Replicate& replicate() const { return rep_; }
  // "rN: " for a study of several replicates, "" otherwise: what progress lines and timings begin with.
  const std::string& tag() const { return tag_; }
  // The study's run flags (--dataset, --device, --threads, --data).
  const std::vector<std::string>& run_flags() const { return run_; }
  // Runs the `lethe` subcommand `args` (a phase's, a search trial's) in this process.
  void run_command(const std::vector<std::string>& args) const { command_(args); }

  // The original (trained on the study's pool), resuming an interrupted training.
  PhaseOutput original();
  // The scenario's folder in the replicate's.
  fs::path scenario_folder(const unlearn::Scenario& scenario) const;
  // The scenario's split, drawn in the study's pool with the replicate's seed.
  PhaseOutput split(const unlearn::Scenario& scenario);
  // `method` run on the original under `split` with the study's [unlearn] flags, its
  // [unlearn.METHOD] flags, then `extra` (a tuned setting) over them; written to model_file.
  PhaseOutput model(const unlearn::Scenario& scenario, const PhaseOutput& original, const PhaseOutput& split,
                    const std::string& method, const std::vector<std::string>& extra);
  // The flags of `lethe unlearn` for `method` in this study (its [unlearn] and [unlearn.METHOD]
  // tables, then `extra` over them), without the files.
  std::vector<std::string> unlearn_flags(const std::string& method, const std::vector<std::string>& extra) const;

  // The `lethe` commands the phases run (each phase's own key begins with them).
  std::vector<std::string> original_command() const;
  std::vector<std::string> split_command(const unlearn::Scenario& scenario) const;
  std::vector<std::string> model_command(const unlearn::Scenario& scenario, const std::string& method,
                                         const std::vector<std::string>& extra) const;
  // The phases' files in the replicate's folder: original.safetensors, SCENARIO/split.json and
  // SCENARIO/METHOD.safetensors.
  fs::path original_file() const { return rep_.dir / "original.safetensors"; }
  fs::path split_file(const unlearn::Scenario& scenario) const { return scenario_folder(scenario) / "split.json"; }
  fs::path model_file(const unlearn::Scenario& scenario, const std::string& method) const;

 private:
  void timing(const std::string& phase, const nlohmann::json& record);
  const Study& s_;
  Replicate rep_;
  Phases& phases_;
  nlohmann::json& timings_;
  std::string tag_;
  std::vector<std::string> run_;
  std::string only_;
  CommandRunner command_;
};

}  // namespace lethe::study
