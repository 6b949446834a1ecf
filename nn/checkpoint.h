#pragma once
// Checkpoints: a safetensors file holding the model's state dict under PyTorch's names (so
// torch's load_state_dict accepts it), the optimizer state under "optimizer.", and metadata that
// says how to rebuild and continue the run. Written atomically; loading validates everything.
#include <map>
#include <optional>
#include <string>

#include "nn/models.h"
#include "nn/optim.h"
#include "nn/train.h"

namespace lethe::nn {

inline constexpr const char* kOptimizerPrefix = "optimizer.";

// What a checkpoint says about the run that wrote it. Wall-clock times are deliberately absent:
// two runs with the same seed write byte-identical files.
struct CheckpointInfo {
  ModelSpec model;
  std::string dataset;             // "fashion-mnist", "mnist", "cifar10", or "" when unknown
  std::optional<Recipe> recipe;    // absent in files not written by `lethe train`
  int64_t epoch = 0;               // completed epochs
  int64_t step = 0;                // completed optimizer steps
  uint64_t seed = 0;
  std::map<std::string, std::string> extra;  // other metadata, kept as is
};

// Model state (and the optimizer's when given) plus `info` as metadata. Refuses, naming the tensor,
// to write a NaN or ±inf: a checkpoint no command would load again.
void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                     const CheckpointInfo& info);

struct Checkpoint {
  CheckpointInfo info;
  NamedTensors model_state;      // the state dict
  NamedTensors optimizer_state;  // names without the prefix; empty when none was saved
  bool plain = false;            // no lethe metadata: a plain state dict, `info.model` the fallback
  std::map<std::string, std::string> widened;  // tensors read as float32 from the file's BF16
};
// Whether a load accepts weights or optimizer state holding NaN or ±inf. A ReLU maps NaN to 0, so
// such a model can still give a finite loss and an accuracy: every command refuses it, but for
// eval's --allow-nonfinite (forensics: how broken is it?).
enum class NonFinite { refuse, allow };

// Reads and validates a checkpoint. A file without lethe metadata (a PyTorch state dict saved
// as safetensors) gives the spec `fallback` with the tensors as they are. PyTorch's pickle files
// (torch.save) are refused with the command that saves them as safetensors.
Checkpoint load_checkpoint(const std::string& path, const std::optional<ModelSpec>& fallback = std::nullopt,
                           NonFinite nonfinite = NonFinite::refuse);

// The data a checkpoint is about to be run on.
struct DataShape {
  std::string dataset;  // its name
  int64_t channels = 0, image_size = 0, classes = 0;
};
// Refuses, naming the file, a checkpoint made for another data set or for images or classes other
// than these (its model would misread them, or its outputs name classes the data does not have).
void check_fits_data(const CheckpointInfo& info, const std::string& path, const DataShape& data);

// A model on `device` with the checkpoint's weights and buffers (names and shapes checked).
Model load_model(const Checkpoint& checkpoint, Device device, int grad_buffers = 1);

}  // namespace lethe::nn
