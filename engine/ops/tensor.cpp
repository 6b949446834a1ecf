// Tensor's members that run kernels or record autograd: creation with values, views (recorded,
// so gradients flow through them), copies across layouts, dtypes and devices, in-place writes and
// backward. They are the op layer's, like the ops of engine/ops.h; the tensor's data structure and
// metadata are the core's (engine/tensor.cpp).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/autograd.h"
#include "engine/layout.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "kernels/copy.h"

namespace lethe {

namespace {

// Resolves one -1 extent against numel.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      LETHE_CHECK(infer < 0, op, "only one -1 allowed in ", shape.str());
      infer = i;
    } else {
      LETHE_CHECK(out[i] >= 0, op, "invalid extent in ", shape.str());
      known *= out[i];
    }
  }
  if (infer >= 0) {
    LETHE_CHECK(known != 0 && numel % known == 0, op, "cannot infer -1 in ", shape.str(), " for ",
                numel, " elements");
    out[infer] = numel / known;
  }
  LETHE_CHECK(out.numel() == numel, op, "shape ", shape.str(), " does not hold ", numel,
              " elements");
  return out;
}

}  // namespace

// ---- creation

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  LETHE_DISPATCH(device, fill, t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0, dtype, device);
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1, dtype, device);
}
Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full(Shape{}, value, dtype, device);
}

Tensor Tensor::arange(double start, double end, double step, DType dtype, Device device) {
  LETHE_CHECK(step != 0 && std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
              "arange", "invalid range start=", start, " end=", end, " step=", step);
  const double n = std::ceil((end - start) / step);
  Tensor t = empty(Shape{static_cast<int64_t>(std::max(0.0, n))}, dtype, device);
  LETHE_DISPATCH(device, arange, t, start, step);
  return t;
}

Tensor Tensor::rand(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype,
                    Device device) {
  LETHE_CHECK(is_floating(dtype), "rand", "needs a floating dtype, got ", dtype_name(dtype));
  Tensor t = empty(shape, dtype, device);
  LETHE_DISPATCH(device, random_uniform, t, seed, stream);
  return t;
}

Tensor Tensor::randn(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype,
                     Device device) {
  LETHE_CHECK(is_floating(dtype), "randn", "needs a floating dtype, got ", dtype_name(dtype));
  Tensor t = empty(shape, dtype, device);
  LETHE_DISPATCH(device, random_normal, t, seed, stream);
  return t;
}

double Tensor::item() const {
  LETHE_CHECK(numel() == 1, "item", "needs a one-element tensor, got ", str());
  Tensor c = to(Device::cpu()).contiguous();
  double v = 0;
  LETHE_DISPATCH_ALL(c.dtype(), "item", v = static_cast<double>(*static_cast<scalar_t*>(c.data_ptr())));
  return v;
}

// ---- views

Tensor Tensor::view(const Shape& shape_in) const {
  const Shape target = infer_shape(shape_in, numel(), "view");
  LETHE_CHECK(is_contiguous(), "view", "needs a contiguous tensor, got strides ", strides().str(),
              " for ", shape().str(), " (use reshape)");
  Tensor out = make_view(*this, target, contiguous_strides(target), offset());
  const Shape from = this->shape();
  autograd::record("view", out, {this}, [from](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g.reshape(from)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::flatten(int start_dim, int end_dim) const {
  if (dim() == 0) return reshape(Shape{1});
  const int s = normalize_dim(start_dim, dim(), "flatten");
  const int e = normalize_dim(end_dim, dim(), "flatten");
  LETHE_CHECK(s <= e, "flatten", "start_dim ", start_dim, " after end_dim ", end_dim);
  Shape out;
  for (int d = 0; d < s; ++d) out.push_back(shape()[d]);
  int64_t n = 1;
  for (int d = s; d <= e; ++d) n *= shape()[d];
  out.push_back(n);
  for (int d = e + 1; d < dim(); ++d) out.push_back(shape()[d]);
  return reshape(out);
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  LETHE_CHECK(static_cast<int>(dims.size()) == dim(), "permute", "got ", dims.size(),
              " dims for a ", dim(), "-d tensor");
  Shape shape, strides;
  std::vector<int> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int d = normalize_dim(dims[i], dim(), "permute");
    LETHE_CHECK(inverse[d] < 0, "permute", "dim ", d, " repeated");
    inverse[d] = static_cast<int>(i);
    shape.push_back(this->shape()[d]);
    strides.push_back(this->strides()[d]);
  }
  Tensor out = make_view(*this, shape, strides, offset());
  autograd::record("permute", out, {this}, [inverse](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g.permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int d0, int d1) const {
  std::vector<int> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim(d0, dim(), "transpose")], dims[normalize_dim(d1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::narrow(int dim_in, int64_t start, int64_t length) const {
  const int d = normalize_dim(dim_in, dim(), "narrow");
  LETHE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow", "range [",
              start, ", ", start + length, ") outside dim ", d, " of ", shape().str());
  Shape shape = this->shape();
  shape[d] = length;
  Tensor out = make_view(*this, shape, strides(), offset() + start * strides()[d]);
  const Shape from = this->shape();
  const DType dt = dtype();
  const Device dev = device();
  autograd::record("narrow", out, {this}, [from, dt, dev, d, start, length](const Tensor& g, autograd::Needs) {
    Tensor full = Tensor::zeros(from, dt, dev);
    full.narrow(d, start, length).copy_(g);
    return std::vector<Tensor>{full};
  });
  return out;
}

Tensor Tensor::select(int dim_in, int64_t index) const {
  const int d = normalize_dim(dim_in, dim(), "select");
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int dim_in) const {
  const int d = normalize_dim(dim_in, dim() + 1, "unsqueeze");
  Shape shape = this->shape();
  shape.insert(d, 1);
  return reshape(shape);
}

Tensor Tensor::squeeze(int dim_in) const {
  const int d = normalize_dim(dim_in, dim(), "squeeze");
  LETHE_CHECK(shape()[d] == 1, "squeeze", "dim ", d, " of ", shape().str(), " is not 1");
  Shape shape = this->shape();
  shape.erase(d);
  Shape strides = this->strides();
  strides.erase(d);
  Tensor out = make_view(*this, shape, strides, offset());
  const Shape from = this->shape();
  autograd::record("squeeze", out, {this}, [from](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g.reshape(from)};
  });
  return out;
}

Tensor Tensor::expand(const Shape& shape) const {
  const Layout l = broadcast_layout(*this, shape);
  Shape strides;
  for (int d = 0; d < l.rank; ++d) strides.push_back(l.stride[d]);
  Tensor out = make_view(*this, shape, strides, offset());
  const Shape from = this->shape();
  autograd::record("expand", out, {this}, [from](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{sum_to(g, from)};
  });
  return out;
}

// ---- copies

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  LETHE_DISPATCH(device(), copy_strided, out, *this, layout_of(*this));
  autograd::record("clone", out, {this}, [](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g};
  });
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor src = contiguous().detach();
  Tensor out = empty(shape(), dtype(), target);
  copy_bytes(out.data_ptr(), target, src.data_ptr(), src.device(), nbytes());
  const Device from = device();
  autograd::record("to_device", out, {this}, [from](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g.to(from)};
  });
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  LETHE_DISPATCH(device(), copy_strided, out, *this, layout_of(*this));
  if (is_floating(target)) {
    const DType from = dtype();
    autograd::record("to_dtype", out, {this}, [from](const Tensor& g, autograd::Needs) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_writable("copy_");
  Tensor s = src.device() == device() ? src : src.to(device());
  LETHE_DISPATCH(device(), copy_strided, *this, s, broadcast_layout(s, shape()));
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_writable("fill_");
  LETHE_DISPATCH(device(), fill, *this, value);
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  NoGradGuard no_grad;
  Tensor sum = alpha == 1 ? add(*this, other) : add(*this, mul(other, alpha));
  return copy_(sum);
}

// ---- autograd

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

}  // namespace lethe
