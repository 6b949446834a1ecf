#pragma once
// Trajectory log: the weight-space path of a deterministic unlearning or relearning run, as CSV.
// Per recorded step, one row per parameter tensor and one "model" row over all parameters
// together (long format, so runs and phases concatenate into one file):
//   run,phase,step,layer,numel,norm,dist_start,dist_original,dist_retrained
// norm = ‖θ‖ and dist_X = ‖θ − θ_X‖, L2 in float64 summed in the parameters' order, exactly as
// unlearn/metrics.h's weight_distances (so the last row's dist_original is bit for bit the report's
// l2 to the original). Parameters only: buffers (batch-norm statistics) are not weights.
// Numbers are written shortest round-trip, so the same run gives the same bytes.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "engine/file.h"
#include "nn/checkpoint.h"
#include "nn/module.h"

namespace lethe::unlearn {

// Reference points for the distance columns; any may be empty (its columns are then left blank).
struct TrajectoryReferences {
  NamedTensors start, original, retrained;
};

// Host copies of `params` (owned, contiguous): a reference that later steps cannot change.
NamedTensors snapshot(const NamedTensors& params);
// The parameters (not buffers) of a checkpoint's model, on the host.
NamedTensors checkpoint_parameters(const nn::Checkpoint& checkpoint);

// Appends rows to a CSV as a run goes (flushed after every record, so an interrupted run keeps
// what it logged).
class TrajectoryLog {
 public:
  static constexpr const char* kHeader = "run,phase,step,layer,numel,norm,dist_start,dist_original,dist_retrained";

  // Truncates `csv` and writes the header; with `append`, adds to an existing file instead (the
  // header only when the file is new or empty; an existing file must start with it).
  TrajectoryLog(const std::filesystem::path& csv, TrajectoryReferences refs, int64_t every = 1, bool append = false);

  // Records when step % every == 0 (and always when `force`); `run` labels the model (e.g. "ieu"),
  // `phase` is "unlearn" or "relearn". Checks that params match the references' names and shapes,
  // in order, as named_parameters() lists them (lethe::Error otherwise; skipped steps are not
  // checked). Parameters may be on any device: each is copied to the host once.
  void record(const std::string& run, const std::string& phase, int64_t step, const NamedTensors& params,
              bool force = false);

  int64_t every() const { return every_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Reference {
    const char* label;
    NamedTensors tensors;  // host, contiguous
  };
  std::filesystem::path path_;
  std::vector<Reference> refs_;  // start, original, retrained: the column order
  int64_t every_;
  std::optional<AppendFile> out_;
};

}  // namespace lethe::unlearn
