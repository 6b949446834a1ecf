#include "engine/arena.h"

namespace lethe {

ParamArena::ParamArena(const std::vector<Tensor>& params, int grad_buffers) : params_(params) {
  LETHE_CHECK(!params.empty(), "arena", "no parameters");
  LETHE_CHECK(grad_buffers >= 0, "arena", "negative number of gradient buffers");
  const DType dtype = params[0].dtype();
  const Device device = params[0].device();
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    LETHE_CHECK(p.defined() && p.is_leaf(), "arena", "parameter ", i, " is not a leaf tensor");
    LETHE_CHECK(p.dtype() == dtype && p.device() == device, "arena", "parameter ", i, " is ", p.str(),
                ", expected ", dtype_name(dtype), " on ", device.str());
    LETHE_CHECK(is_floating(dtype), "arena", "parameters must be floating, got ", p.str());
    offsets_.push_back(total);
    total += (p.numel() + kAlignElements - 1) / kAlignElements * kAlignElements;
  }
  data_ = Tensor::zeros({total}, dtype, device);
  for (int k = 0; k < grad_buffers; ++k) grads_.push_back(Tensor::zeros({total}, dtype, device));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    data_.narrow(0, offsets_[i], p.numel()).view(p.shape()).copy_(p.detach());
    TensorImpl& impl = p.impl();
    impl.storage = data_.impl().storage;
    impl.offset = offsets_[i];
    impl.strides = contiguous_strides(impl.shape);
    impl.grad = nullptr;
  }
  if (grad_buffers > 0) bind_grads(0);
}

const Tensor& ParamArena::grad(int k) const {
  LETHE_CHECK(k >= 0 && k < grad_buffers(), "arena", "no gradient buffer ", k, " (", grad_buffers(), " allocated)");
  return grads_[k];
}

void ParamArena::bind_grads(int k) {
  const Tensor& g = grad(k);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor slice = g.narrow(0, offsets_[i], params_[i].numel()).view(params_[i].shape());
    params_[i].impl().grad = slice.impl_ptr();
  }
}

void ParamArena::zero_grad(int k) { Tensor(grad(k)).zero_(); }

}  // namespace lethe
