// The tensor itself: storage, shape and strides, metadata, host access, detach and the autograd
// flags. The members that run kernels or record autograd (creation with values, views, copies,
// in-place writes, backward) belong to the op layer: engine/ops/tensor.cpp.
#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/autograd.h"

namespace lethe {

namespace {

std::shared_ptr<TensorImpl> new_impl(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) LETHE_CHECK(d >= 0, "empty", "negative extent in shape ", shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<StorageImpl>(shape.numel() * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

}  // namespace

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- creation

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(new_impl(shape, dtype, device));
}

Tensor Tensor::from_host(const void* data, size_t count, DType dtype, const Shape& shape,
                         Device device) {
  LETHE_CHECK(static_cast<int64_t>(count) == shape.numel(), "from_vector", count,
              " values do not fill shape ", shape.str());
  Tensor t = empty(shape, dtype, device);
  copy_bytes(t.data_ptr(), device, data, Device::cpu(), t.nbytes());
  return t;
}

// ---- metadata and access

TensorImpl& Tensor::impl() const {
  LETHE_CHECK(impl_ != nullptr, "tensor", "use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int d) const { return shape()[normalize_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int d = dim() - 1; d >= 0; --d) {
    if (shape()[d] != 1 && strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape().str() + " on " + device().str();
}

void* Tensor::data_ptr() const {
  const TensorImpl& t = impl();
  if (t.storage->data == nullptr) return nullptr;
  return static_cast<char*>(t.storage->data) + t.offset * dtype_size(t.dtype);
}

void Tensor::check_dtype(DType want, const char* op) const {
  LETHE_CHECK(dtype() == want, op, "tensor is ", dtype_name(dtype()), ", asked for ",
              dtype_name(want));
}

void Tensor::check_access(DType want, const char* op) const {
  check_dtype(want, op);
  LETHE_CHECK(device().is_cpu(), op, "tensor is on ", device().str(),
              "; host access needs a cpu tensor (use .to(Device::cpu()))");
}

Tensor Tensor::detach() const {
  return make_view(*this, shape(), strides(), offset());
}

// ---- in-place

void Tensor::check_writable(const char* op) const {
  LETHE_CHECK(!(requires_grad() && autograd::grad_enabled()), op,
              "in-place write to a tensor that requires grad (", str(),
              "); wrap it in NoGradGuard or write to .detach()");
  ++impl().storage->version;
}

// ---- autograd

Tensor& Tensor::set_requires_grad(bool on) {
  LETHE_CHECK(!on || is_floating(dtype()), "requires_grad", "only floating tensors can require grad, got ", str());
  LETHE_CHECK(is_leaf(), "requires_grad", "only leaf tensors can change requires_grad");
  impl().requires_grad = on;
  return *this;
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined()) {
    LETHE_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad",
                "gradient ", g.str(), " does not match tensor ", str());
  }
  impl().grad = g.impl_ptr();
}

}  // namespace lethe
