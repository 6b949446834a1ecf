#pragma once
// The models of shared/WORKLOADS.md, by name: `mlp`, `cnn-s`, `resnet18c`. Names are API: they
// appear in checkpoints, configs and the CLI.
#include <memory>
#include <string>
#include <vector>

#include "engine/arena.h"
#include "nn/module.h"

namespace lethe::nn {

struct ModelSpec {
  std::string name = "cnn-s";
  int64_t in_channels = 1;
  int64_t image_size = 28;  // square inputs
  int64_t classes = 10;
  double width = 1;  // resnet18c's width multiplier: stages of 64·w, 128·w, 256·w, 512·w channels
};

// The known names, for help texts and errors.
const std::vector<std::string>& model_names();

// The network of `spec` with zero parameters on the CPU (call initialize, or load a state dict).
std::shared_ptr<Module> build_network(const ModelSpec& spec);

// A network with its parameters drawn from `seed` and packed in one ParamArena on `device`
// (gradient buffers included), so an optimizer step or the IEU update is one pass over the model.
class Model {
 public:
  Model(const ModelSpec& spec, uint64_t seed, Device device, int grad_buffers = 1);

  Tensor forward(const Tensor& images) { return net_->forward(images); }
  Tensor operator()(const Tensor& images) { return forward(images); }
  void train(bool on = true) { net_->train(on); }
  void eval() { net_->train(false); }

  const ModelSpec& spec() const { return spec_; }
  Device device() const { return device_; }
  Module& net() { return *net_; }
  const Module& net() const { return *net_; }
  const ParamArena& arena() const { return arena_; }
  ParamArena& arena() { return arena_; }

 private:
  ModelSpec spec_;
  Device device_;
  std::shared_ptr<Module> net_;
  ParamArena arena_;
};

}  // namespace lethe::nn
