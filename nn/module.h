#pragma once
// Module: a node of a network with named parameters, buffers and child modules. Names compose
// with dots exactly as PyTorch's do (`layer1.0.bn1.running_mean`), so a state dict means the same
// thing on both sides and checkpoints interoperate.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lethe {
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
}

namespace lethe::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Recursive, in registration order: own entries first, then each child's under "child.".
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  // PyTorch's state_dict order: per module its parameters, then its buffers, then its children.
  NamedTensors state_dict() const;
  // Copies values in (any device, same dtype and shape); every name of state_dict() must be
  // present and no other. Errors name the missing, unexpected or mismatched entries.
  void load_state_dict(const NamedTensors& state);
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves every parameter and buffer to `device` in place: tensor handles held elsewhere stay
  // valid and see the new storage.
  void to(Device device);
  // Converts every floating parameter and buffer to the floating `dtype` in place, likewise
  // (integer buffers such as num_batches_tracked stay); parameters stay leaves requiring grad.
  void to(DType dtype);

  // Draws this module's own parameters from Philox (seed, stream): own parameter j uses stream
  // first_stream + j. Modules without parameters do nothing.
  virtual void reset_parameters(uint64_t seed, uint64_t first_stream);

 protected:
  const Tensor& register_parameter(std::string name, Tensor value);
  const Tensor& register_buffer(std::string name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> child) {
    add_child(std::move(name), child);
    return child;
  }
  const NamedTensors& own_parameters() const { return parameters_; }
  const NamedTensors& own_buffers() const { return buffers_; }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 private:
  void add_child(std::string name, std::shared_ptr<Module> child);
  void collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors& out) const;
  // Resets own parameters then the children's; returns the next unused stream.
  uint64_t reset_tree(uint64_t seed, uint64_t first_stream);
  friend void initialize(Module& root, uint64_t seed);

  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Draws every parameter of `root` from Philox with `seed`: the i-th parameter of
// named_parameters() uses stream i, so the values do not depend on the device.
void initialize(Module& root, uint64_t seed);

}  // namespace lethe::nn
