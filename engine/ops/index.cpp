// Joining (concat, stack) and indexing (index_select, gather).
#include <algorithm>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/index.h"

namespace lethe {

namespace {

// autograd records at most this many inputs per op (one bit each in Needs).
constexpr size_t kMaxRecordedInputs = 32;

bool any_requires_grad(const std::vector<Tensor>& xs) {
  if (!autograd::grad_enabled()) return false;
  for (const Tensor& x : xs)
    if (x.requires_grad()) return true;
  return false;
}

// An int32/int64 index on x's device.
void check_index_tensor(const char* op, const Tensor& index, const Tensor& x) {
  LETHE_CHECK(index.defined(), op, "undefined index");
  LETHE_CHECK(index.dtype() == DType::i32 || index.dtype() == DType::i64, op,
              "index must be int32 or int64, got ", index.str());
  LETHE_CHECK(index.device() == x.device(), op, "index ", index.str(), " and input ", x.str(),
              " are on different devices");
}

}  // namespace

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  LETHE_CHECK(!xs.empty(), "concat", "needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) LETHE_CHECK(xs[i].defined(), "concat", "tensor ", i, " is undefined");
  const Tensor& first = xs[0];
  const int d = normalize_dim(dim, first.dim(), "concat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    LETHE_CHECK(x.dtype() == first.dtype() && x.device() == first.device(), "concat", "tensor ", i,
                " is ", x.str(), " but tensor 0 is ", first.str(), "; all need one dtype and device");
    bool match = x.dim() == first.dim();
    for (int k = 0; match && k < x.dim(); ++k) match = k == d || x.size(k) == first.size(k);
    LETHE_CHECK(match, "concat", "tensor ", i, " has shape ", x.shape().str(), " but tensor 0 has ",
                first.shape().str(), "; shapes must match except in dim ", d);
    shape[d] += x.size(d);
  }
  if (xs.size() > kMaxRecordedInputs && any_requires_grad(xs)) {
    std::vector<Tensor> groups;
    for (size_t i = 0; i < xs.size(); i += kMaxRecordedInputs)
      groups.push_back(concat({xs.begin() + i, xs.begin() + std::min(xs.size(), i + kMaxRecordedInputs)}, d));
    return concat(groups, d);
  }

  // Each input is copied into its slice of the output by the strided copy kernel.
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<int64_t> lengths;
  {
    NoGradGuard no_grad;
    int64_t offset = 0;
    for (const Tensor& x : xs) {
      out.narrow(d, offset, x.size(d)).copy_(x);
      lengths.push_back(x.size(d));
      offset += x.size(d);
    }
  }
  if (any_requires_grad(xs)) {
    autograd::record("concat", out, xs, [d, lengths](const Tensor& g, autograd::Needs needs) {
      std::vector<Tensor> grads;
      int64_t offset = 0;
      for (size_t i = 0; i < lengths.size(); ++i) {
        grads.push_back(needs[i] ? g.narrow(d, offset, lengths[i]) : Tensor());
        offset += lengths[i];
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int dim) {
  LETHE_CHECK(!xs.empty(), "stack", "needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) {
    LETHE_CHECK(xs[i].defined(), "stack", "tensor ", i, " is undefined");
    LETHE_CHECK(xs[i].shape() == xs[0].shape(), "stack", "tensor ", i, " has shape ",
                xs[i].shape().str(), " but tensor 0 has ", xs[0].shape().str(),
                "; stack needs equal shapes");
  }
  const int d = normalize_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (const Tensor& x : xs) parts.push_back(x.unsqueeze(d));
  return concat(parts, d);
}

Tensor index_select(const Tensor& x_in, int dim, const Tensor& index_in) {
  LETHE_CHECK(x_in.defined(), "index_select", "undefined input");
  const int d = normalize_dim(dim, x_in.dim(), "index_select");
  check_index_tensor("index_select", index_in, x_in);
  LETHE_CHECK(index_in.dim() == 1, "index_select", "index must be 1-d, got ", index_in.str());
  const Tensor x = x_in.contiguous(), index = index_in.contiguous();
  const IndexCheck check{"index_select", "index", "position", detail::concat(" (dim ", d, " of ", x.str(), ")")};
  LETHE_DISPATCH(x.device(), check_index_range, index, x.size(d), check);

  SliceShape s;
  for (int k = 0; k < d; ++k) s.outer *= x.size(k);
  for (int k = d + 1; k < x.dim(); ++k) s.inner *= x.size(k);
  s.size = x.size(d);
  s.count = index.numel();
  Shape shape = x.shape();
  shape[d] = s.count;
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), index_select_forward, x, index, s, out);

  const Shape x_shape = x.shape();
  autograd::record("index_select", out, {&x_in}, [s, x_shape, si = autograd::Saved(index)](const Tensor& g_in, autograd::Needs) {
    const Tensor g = g_in.contiguous(), idx = si.get();
    Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
    LETHE_DISPATCH(g.device(), index_select_backward, g, idx, s, gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

Tensor gather(const Tensor& x_in, int dim, const Tensor& index_in) {
  LETHE_CHECK(x_in.defined(), "gather", "undefined input");
  const int d = normalize_dim(dim, x_in.dim(), "gather");
  check_index_tensor("gather", index_in, x_in);
  LETHE_CHECK(index_in.dim() == x_in.dim(), "gather", "index ", index_in.str(), " must have the rank of input ",
              x_in.str());
  for (int k = 0; k < x_in.dim(); ++k)
    LETHE_CHECK(k == d || index_in.size(k) <= x_in.size(k), "gather", "index shape ", index_in.shape().str(),
                " exceeds input shape ", x_in.shape().str(), " in dim ", k, " (only dim ", d, " may be larger)");
  const Tensor x = x_in.contiguous(), index = index_in.contiguous();
  const IndexCheck check{"gather", "index", "position", detail::concat(" (dim ", d, " of ", x.str(), ")")};
  LETHE_DISPATCH(x.device(), check_index_range, index, x.size(d), check);

  GatherShape s;
  s.rank = x.dim();
  s.dim = d;
  const Shape x_strides = contiguous_strides(x.shape()), index_strides = contiguous_strides(index.shape());
  for (int k = 0; k < s.rank; ++k) {
    s.x_size[k] = x.size(k);
    s.x_stride[k] = x_strides[k];
    s.index_size[k] = index.size(k);
    s.index_stride[k] = index_strides[k];
  }
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), gather_forward, x, index, s, out);

  autograd::record("gather", out, {&x_in}, [s, si = autograd::Saved(index)](const Tensor& g_in, autograd::Needs) {
    const Tensor g = g_in.contiguous(), idx = si.get();
    Shape x_shape;
    for (int k = 0; k < s.rank; ++k) x_shape.push_back(s.x_size[k]);
    Tensor gx = Tensor::empty(x_shape, g.dtype(), g.device());
    LETHE_DISPATCH(g.device(), gather_backward, g, idx, s, gx);
    return std::vector<Tensor>{gx};
  });
  return out;
}

}  // namespace lethe
