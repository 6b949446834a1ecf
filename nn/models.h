#pragma once
// The models of shared/WORKLOADS.md, by name: `mlp`, `cnn-s`, `resnet18c`, `linear`
// (multinomial logistic regression on the flattened image: one affine map, a convex loss, for
// exact weight-space dynamics), and the generators `cvae` and `ddpm-s` (nn/generative.h, W5 in the
// README). Names are API: they appear in checkpoints, configs and the CLI.
#include <memory>
#include <string>
#include <vector>

#include "engine/arena.h"
#include "nn/module.h"

namespace lethe::nn {

class Generator;

struct ModelSpec {
  std::string name = "cnn-s";
  int64_t in_channels = 1;
  int64_t image_size = 28;  // square inputs
  int64_t classes = 10;
  double width = 1;  // resnet18c's width multiplier: stages of 64·w, 128·w, 256·w, 512·w channels
  // The parameters' and buffers' floating dtype (last, so aggregate initialisation without it
  // still compiles). A float64 model starts from the float32 model's values, converted exactly.
  DType dtype = DType::f32;
  // linear only: average-pool the image P×P before the affine map (a fixed, parameter-free feature
  // map: 28×28 → 7×7 at P = 4), so a convex problem can be small enough for dense linear algebra.
  int64_t input_pool = 1;
};

// The known names, for help texts and errors.
const std::vector<std::string>& model_names();

// The network of `spec` with zero float32 parameters on the CPU (call initialize, or load a state
// dict; Module::to(spec.dtype) converts it).
std::shared_ptr<Module> build_network(const ModelSpec& spec);

// A network with its parameters drawn from `seed` and packed in one ParamArena on `device`
// (gradient buffers included), so an optimizer step or the IEU update is one pass over the model.
// The parameters are drawn in float32 and then converted to spec.dtype, so a float64 model starts
// exactly where the float32 one does.
class Model {
 public:
  Model(const ModelSpec& spec, uint64_t seed, Device device, int grad_buffers = 1);

  // Images of another dtype (the loaders give float32) are converted to the model's first.
  Tensor forward(const Tensor& images);
  Tensor operator()(const Tensor& images) { return forward(images); }
  void train(bool on = true) { net_->train(on); }
  void eval() { net_->train(false); }

  const ModelSpec& spec() const { return spec_; }
  uint64_t seed() const { return seed_; }
  // The network as a generator, or null for a classifier.
  Generator* generator();
  Device device() const { return device_; }
  Module& net() { return *net_; }
  const Module& net() const { return *net_; }
  const ParamArena& arena() const { return arena_; }
  ParamArena& arena() { return arena_; }

 private:
  ModelSpec spec_;
  uint64_t seed_;
  Device device_;
  std::shared_ptr<Module> net_;
  ParamArena arena_;
};

}  // namespace lethe::nn
