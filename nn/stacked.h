#pragma once
// StackedModel: N models of one network stacked along a leading model dimension and run as ONE
// batched pass (grouped convolutions, batched GEMMs), for relearning many models at once. On the
// CPU, model n's logits, gradients and optimizer steps are bitwise those of the model run alone
// (nn::Model, cross_entropy, backward, a step of nn/optim.h) at the same thread count: every
// kernel computes model n's part with the GEMM shapes and reduction orders of the single model
// (tests/test_stacked.cpp checks each claim). On CUDA (cuDNN grouped convolution, cuBLAS
// batched GEMM) they agree within float32 tolerance, not bitwise.
//
// Layouts: the conv part runs channel-stacked, [B, N·C, H, W] with model n's channels in group
// n (the shared input is replicated N times along channels before the first Conv2d or
// BatchNorm2d); a Flatten of those activations switches once to model-major [N, B, F] (a
// strided view, no copy) for the Linear layers; a Linear on the shared input (mlp's first)
// reads it broadcast over the models.
#include <memory>
#include <string>
#include <vector>

#include "engine/arena.h"
#include "engine/ops.h"
#include "nn/models.h"
#include "nn/module.h"

namespace lethe::nn {

// Whether `spec`'s network can be stacked: mlp, cnn-s and linear can; resnet18c cannot (its
// residual blocks are not a Sequential).
bool stackable(const ModelSpec& spec);
// Whether a network can: a Sequential of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten (start
// dim 1) and Linear layers in CNN order: convolutions, BatchNorm2d and pools before one Flatten,
// at least one Linear after it.
bool stackable(const Module& network);

namespace detail {
// One layer of a stacked network (internal to StackedModel).
struct StackedLayer {
  enum class Kind {
    conv,        // conv2d with the stacked weight, groups × N
    batch_norm,  // batch_norm over N·C channels: per model, per channel statistics
    linear,      // linear on [N, B, F]
    split,       // a Flatten of channel-stacked activations: [B, N·C, H, W] -> [N, B, C·H·W]
    stateless,   // ReLU, MaxPool2d, or a Flatten of the shared input: the single layer as it is
  };
  enum class Input { as_is, replicate, broadcast };  // what the layer's input needs first
  std::string name;
  Kind kind = Kind::stateless;
  Input input = Input::as_is;
  std::shared_ptr<Module> single;
  Tensor weight, bias, running_mean, running_var, batches_tracked;  // stacked; undefined where absent
  Conv2dOptions conv;
  double eps = 0, momentum = 0;
};
}  // namespace detail

// Every parameter and buffer of the single model becomes one tensor holding the N models' values
// one after another along dim 0: conv weight [N·O, C/groups, kh, kw] (the layout of a grouped
// conv with groups = N), conv bias [N·O], BatchNorm2d weight, bias and running stats [N·C] and
// num_batches_tracked [N], linear weight [N, out, in], linear bias [N, out]. The parameters live
// in one ParamArena on `device` (in the single model's parameter order), as nn::Model's do, in
// the states' dtype (the spec's: float32 or float64).
class StackedModel {
 public:
  // `states`: one state dict per model, as Module::state_dict() of `spec`'s network returns it
  // (any device; names in any order). Throws lethe::Error naming the model and the entry when a
  // state does not fit the spec, when there are no states, or when the spec cannot be stacked.
  StackedModel(const ModelSpec& spec, const std::vector<NamedTensors>& states, Device device,
               int grad_buffers = 1);
  // The same for a stackable network given directly, which serves as the template of names and
  // shapes and is not modified (its stateless layers are run). For networks no spec names, such
  // as one with BatchNorm2d; spec() then has an empty name.
  StackedModel(std::shared_ptr<Module> network, const std::vector<NamedTensors>& states, Device device,
               int grad_buffers = 1);

  int64_t models() const { return models_; }
  const ModelSpec& spec() const { return spec_; }
  Device device() const { return device_; }

  // images [B,C,H,W] on device() (converted to the models' dtype first when they differ), the
  // same batch for every model -> logits [N, B, classes] (contiguous). In training mode
  // BatchNorm2d layers update every model's running statistics.
  Tensor forward(const Tensor& images);
  Tensor operator()(const Tensor& images) { return forward(images); }
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool is_training() const { return training_; }

  ParamArena& arena() { return arena_; }
  const ParamArena& arena() const { return arena_; }
  // Model n's state dict with the single model's names, shapes and order (copies, on device()).
  NamedTensors state_dict(int64_t n) const;
  // Its parameters only (no buffers), likewise.
  NamedTensors parameters(int64_t n) const;
  // A flat buffer laid out like arena().data() (the arena's data or a gradient, an optimizer's
  // momentum or moment buffer) -> model n's part, laid out like a single nn::Model's arena of the
  // same network: each parameter at that arena's offset, the alignment padding zero. On the
  // buffer's device, in its dtype.
  Tensor model_flat(const Tensor& stacked_flat, int64_t n) const;
  // The inverse: N single-model flat buffers (one dtype and device) -> one buffer laid out like
  // arena().data(), on device(), padding zero (what the single buffers hold in their padding,
  // such as IEU noise, is dropped).
  Tensor stack_flat(const std::vector<Tensor>& single_flats) const;

 private:
  StackedModel(const ModelSpec& spec, std::shared_ptr<Module> network, const std::vector<NamedTensors>& states,
               Device device, int grad_buffers);
  const Tensor& stacked(const std::string& name) const;  // undefined when the network has no such entry

  ModelSpec spec_;
  Device device_;
  int64_t models_ = 0;
  std::shared_ptr<Module> network_;  // the single network: names, shapes, stateless layers
  NamedTensors single_state_;        // the single network's state dict: the names, shapes, dtypes
  NamedTensors state_;               // stacked, in state_dict order
  std::vector<detail::StackedLayer> layers_;
  ParamArena arena_;
  ParamArena single_arena_;  // a single model's arena layout, over stand-in tensors
  bool training_ = true;
};

// The relearning loss of a stacked forward: total = Σ_n cross_entropy(logits[n], labels) (each
// the mean over the batch), built so that the gradient reaching model n's logits is bitwise the
// one cross_entropy(logits_n, labels) gives a single model (d total / d loss_n is exactly 1).
// per_model holds the N losses, [N] in the logits' dtype on their device, detached (bitwise the
// single models' losses; read it with to_vector when needed, which syncs on CUDA).
struct StackedLoss {
  Tensor total, per_model;
};
// logits [N, B, classes], labels [B] (int32 or int64), the same labels for every model.
// `labels_checked`: as CrossEntropyOptions::labels_checked.
StackedLoss stacked_cross_entropy(const Tensor& logits, const Tensor& labels, bool labels_checked = false);

}  // namespace lethe::nn
