#pragma once
// ParamArena: one contiguous buffer holding a set of parameters, and gradient buffers of the same
// layout, so an optimizer step or the IEU update is ONE pass over all parameters. The parameter
// tensors keep their identity: packing rebinds them to views of the arena.
#include <vector>

#include "engine/tensor.h"

namespace lethe {

class ParamArena {
 public:
  // Each parameter starts at a multiple of this many elements (64 bytes of float32), so kernels
  // may use aligned vector loads on every parameter.
  static constexpr int64_t kAlignElements = 16;

  ParamArena() = default;
  // `params`: leaf tensors of one floating dtype on one device. Their values are copied in;
  // `grad_buffers` gradient buffers are allocated (zeroed) and buffer 0 is bound as their .grad.
  explicit ParamArena(const std::vector<Tensor>& params, int grad_buffers = 1);

  const Tensor& data() const { return data_; }  // [size()]; padding is zero unless IEU noise was added
  const Tensor& grad(int k = 0) const;          // [size()]
  int grad_buffers() const { return static_cast<int>(grads_.size()); }
  // Points every parameter's .grad at its slice of gradient buffer k (backward then accumulates
  // there), so two backward passes can fill two buffers without copies.
  void bind_grads(int k);
  void zero_grad(int k);
  int64_t size() const { return data_.defined() ? data_.numel() : 0; }
  const std::vector<Tensor>& params() const { return params_; }
  int64_t offset(size_t i) const { return offsets_.at(i); }

 private:
  std::vector<Tensor> params_;
  std::vector<int64_t> offsets_;
  Tensor data_;
  std::vector<Tensor> grads_;
};

}  // namespace lethe
