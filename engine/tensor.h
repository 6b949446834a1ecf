#pragma once
// Tensor: a strided view (shape, strides, offset) into shared Storage, plus autograd state.
// Copying a Tensor copies a handle; two handles to the same TensorImpl are the same tensor.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace lethe {

namespace autograd {
struct Node;
}

struct TensorImpl {
  Storage storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  // 0, step, 2·step, ... below `end` (a 1-d tensor).
  static Tensor arange(double start, double end, double step = 1, DType dtype = DType::f32,
                       Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = Device::cpu()) {
    return from_host(values.data(), values.size(), dtype_v<T>, shape, device);
  }
  static Tensor from_host(const void* data, size_t count, DType dtype, const Shape& shape,
                          Device device = Device::cpu());
  // Philox streams addressed by (seed, stream, element index): the same numbers on every device.
  static Tensor rand(const Shape& shape, uint64_t seed, uint64_t stream = 0, DType dtype = DType::f32,
                     Device device = Device::cpu());  // uniform [0, 1)
  static Tensor randn(const Shape& shape, uint64_t seed, uint64_t stream = 0,
                      DType dtype = DType::f32, Device device = Device::cpu());  // N(0, 1)

  // ---- metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int dim() const { return impl().shape.size(); }
  int64_t size(int d) const;
  int64_t numel() const { return impl().shape.numel(); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  bool is_cuda() const { return device().is_cuda(); }
  int64_t offset() const { return impl().offset; }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "float32[128,10] on cpu"

  // ---- raw access
  void* data_ptr() const;  // on the tensor's device: a device pointer for a CUDA tensor
  // Host access: the elements of a CPU tensor; refuses a CUDA tensor or another dtype.
  template <class T>
  T* data() const {
    check_access(dtype_v<T>, "data");
    return static_cast<T*>(data_ptr());
  }
  // A kernel launcher's access: the elements on the tensor's own device (a device pointer for a
  // CUDA tensor, never to be read on the host). Checks the dtype only.
  template <class T>
  T* ptr() const {
    check_dtype(dtype_v<T>, "ptr");
    return static_cast<T*>(data_ptr());
  }
  // Host copy of all elements in row-major order (any device, any strides).
  template <class T>
  std::vector<T> to_vector() const {
    Tensor c = to(Device::cpu()).contiguous();
    c.check_access(dtype_v<T>, "to_vector");
    const T* p = c.data<T>();
    return std::vector<T>(p, p + c.numel());
  }
  double item() const;  // the single element of a one-element tensor, as double

  // ---- views (share storage; recorded by autograd)
  Tensor view(const Shape& shape) const;     // requires a compatible layout
  Tensor reshape(const Shape& shape) const;  // views when possible, copies otherwise
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor transpose(int d0, int d1) const;
  Tensor permute(const std::vector<int>& dims) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor select(int dim, int64_t index) const;  // narrow + drop the dim
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor expand(const Shape& shape) const;  // stride-0 broadcast view, read-only by convention
  Tensor t() const { return transpose(0, 1); }

  // ---- copies
  Tensor contiguous() const;  // self when already contiguous
  Tensor clone() const;
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor detach() const;  // same storage, no autograd history

  // ---- in-place (not recorded by autograd; refused on tensors that need grad while grad mode is on)
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype, crosses devices
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0); }
  Tensor& add_(const Tensor& other, double alpha = 1);  // self += alpha * other

  // ---- autograd
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool on = true);
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g);
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // Marks an in-place write: storage version bump and the autograd guard.
  void check_writable(const char* op) const;

 private:
  void check_dtype(DType want, const char* op) const;
  void check_access(DType want, const char* op) const;  // dtype, and a CPU tensor
  std::shared_ptr<TensorImpl> impl_;
};

// A kernel's optional operand: `t.ptr<T>()` on its own device, or null when `t` is undefined.
// Launchers of every backend use it; kernels/cuda/ must never call the host-only data<T>()
// (tests/host_access_guard.sh fails the suite when it does).
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.ptr<std::remove_const_t<T>>() : nullptr;
}

// A new tensor viewing `base`'s storage with the given layout (no autograd).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace lethe
