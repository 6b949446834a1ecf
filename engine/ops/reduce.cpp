// Reductions. Every reduction is run as [outer, k, inner]: over a contiguous range of dims in
// place, otherwise after permuting the reduced dims to the end.
#include <algorithm>
#include <numeric>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/reduce.h"

namespace lethe {

namespace {

std::vector<int> normalize_dims(const std::vector<int>& dims, int rank, const char* op) {
  std::vector<int> out;
  if (dims.empty()) {
    out.resize(rank);
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  for (int d : dims) out.push_back(normalize_dim(d, rank, op));
  std::sort(out.begin(), out.end());
  LETHE_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), op, "a dim is repeated");
  return out;
}

bool contains(const std::vector<int>& dims, int d) {
  return std::find(dims.begin(), dims.end(), d) != dims.end();
}

Shape keepdim_shape(const Shape& shape, const std::vector<int>& dims) {
  Shape out = shape;
  for (int d : dims) out[d] = 1;
  return out;
}

Shape result_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim) {
  if (keepdim) return keepdim_shape(shape, dims);
  Shape out;
  for (int d = 0; d < shape.size(); ++d)
    if (!contains(dims, d)) out.push_back(shape[d]);
  return out;
}

// x arranged so the reduced dims are the last ones: [kept..., reduced...] contiguous, with the
// permutation used and its inverse.
struct Rows {
  Tensor x;
  std::vector<int> perm, inverse;
  int64_t outer = 1, k = 1;
};
Rows reduced_last(const Tensor& x, const std::vector<int>& dims) {
  Rows r;
  for (int d = 0; d < x.dim(); ++d)
    if (!contains(dims, d)) r.perm.push_back(d);
  for (int d : dims) r.perm.push_back(d);
  r.inverse.resize(r.perm.size());
  for (size_t i = 0; i < r.perm.size(); ++i) r.inverse[r.perm[i]] = static_cast<int>(i);
  for (int d = 0; d < x.dim(); ++d) (contains(dims, d) ? r.k : r.outer) *= x.shape()[d];
  r.x = x.permute(r.perm).contiguous();
  return r;
}

// Values of `op` over `dims` (normalised), in the keepdim shape; no autograd.
Tensor reduce_values(ReduceOp op, const Tensor& x, const std::vector<int>& dims, const char* name) {
  NoGradGuard no_grad;
  Tensor out = Tensor::empty(keepdim_shape(x.shape(), dims), x.dtype(), x.device());
  int64_t outer = 1, k = 1, inner = 1;
  Tensor src;
  const bool range = dims.empty() || dims.back() - dims.front() + 1 == static_cast<int>(dims.size());
  if (range) {
    src = x.contiguous();
    for (int d = 0; d < x.dim(); ++d) {
      if (!dims.empty() && d < dims.front()) outer *= x.shape()[d];
      else if (!dims.empty() && d > dims.back()) inner *= x.shape()[d];
      else k *= x.shape()[d];
    }
  } else {
    Rows r = reduced_last(x, dims);
    src = r.x;
    outer = r.outer;
    k = r.k;
  }
  LETHE_CHECK(k > 0 || op == ReduceOp::sum, name, "reduction over an empty dim of ", x.str());
  LETHE_DISPATCH(x.device(), reduce, op, src, outer, k, inner, out);
  return out;
}

// Index of the first maximum of each row of r.x, as a 0/1 mask in x's layout of rows.
Tensor first_max_mask(const Rows& r) {
  Tensor idx = Tensor::empty(Shape{r.outer}, DType::i64, r.x.device());
  LETHE_DISPATCH(r.x.device(), argmax_rows, r.x, r.outer, r.k, idx);
  const Tensor pos = Tensor::arange(0, static_cast<double>(r.k), 1, r.x.dtype(), r.x.device());
  return eq(pos.view(Shape{1, r.k}), idx.to(r.x.dtype()).view(Shape{r.outer, 1}));
}

Tensor extremum(ReduceOp op, const char* name, const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  const std::vector<int> dims = normalize_dims(dims_in, x.dim(), name);
  Tensor out = reduce_values(op, x, dims, name).reshape(result_shape(x.shape(), dims, keepdim));
  // The gradient goes to the first extremum of each reduced group (ties are not split).
  autograd::record(name, out, {&x}, [op, dims, sx = autograd::Saved(x)](const Tensor& g, autograd::Needs) {
    const Tensor xv = sx.get();
    const Rows r = reduced_last(op == ReduceOp::max ? xv : neg(xv), dims);
    const Tensor gx_rows = mul(first_max_mask(r), g.reshape(Shape{r.outer, 1}));
    Shape permuted;
    for (int d : r.perm) permuted.push_back(xv.shape()[d]);
    return std::vector<Tensor>{gx_rows.view(permuted).permute(r.inverse)};
  });
  return out;
}

int64_t count_over(const Tensor& x, const std::vector<int>& dims) {
  int64_t n = 1;
  for (int d : dims) n *= x.shape()[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& dims_in, bool keepdim) {
  const std::vector<int> dims = normalize_dims(dims_in, x.dim(), "sum");
  Tensor out = reduce_values(ReduceOp::sum, x, dims, "sum").reshape(result_shape(x.shape(), dims, keepdim));
  const Shape kept = keepdim_shape(x.shape(), dims), from = x.shape();
  autograd::record("sum", out, {&x}, [kept, from](const Tensor& g, autograd::Needs) {
    return std::vector<Tensor>{g.reshape(kept).expand(from)};
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  LETHE_CHECK(is_floating(x.dtype()), "mean", "needs a floating tensor, got ", x.str());
  const int64_t n = count_over(x, normalize_dims(dims, x.dim(), "mean"));
  LETHE_CHECK(n > 0, "mean", "mean over no elements of ", x.str());
  return div(sum(x, dims, keepdim), static_cast<double>(n));
}

Tensor var(const Tensor& x, const std::vector<int>& dims, int64_t correction, bool keepdim) {
  LETHE_CHECK(is_floating(x.dtype()), "var", "needs a floating tensor, got ", x.str());
  const int64_t n = count_over(x, normalize_dims(dims, x.dim(), "var"));
  LETHE_CHECK(n - correction > 0, "var", n, " elements leave no degrees of freedom with correction ",
              correction, " for ", x.str());
  const Tensor d = sub(x, mean(x, dims, true));
  return div(sum(mul(d, d), dims, keepdim), static_cast<double>(n - correction));
}

Tensor max(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return extremum(ReduceOp::max, "max", x, dims, keepdim);
}
Tensor min(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return extremum(ReduceOp::min, "min", x, dims, keepdim);
}

Tensor argmax(const Tensor& x, int dim, bool keepdim) {
  const std::vector<int> dims{normalize_dim(dim, x.dim(), "argmax")};
  NoGradGuard no_grad;
  const Rows r = reduced_last(x, dims);
  LETHE_CHECK(r.k > 0, "argmax", "empty dim ", dim, " of ", x.str());
  Tensor idx = Tensor::empty(Shape{r.outer}, DType::i64, x.device());
  LETHE_DISPATCH(x.device(), argmax_rows, r.x, r.outer, r.k, idx);
  return idx.reshape(result_shape(x.shape(), dims, keepdim));
}

Tensor argmax(const Tensor& x) {
  LETHE_CHECK(x.numel() > 0, "argmax", "empty tensor ", x.str());
  const Tensor flat = x.detach().contiguous();
  Tensor idx = Tensor::empty(Shape{}, DType::i64, x.device());
  LETHE_DISPATCH(x.device(), argmax_rows, flat, 1, x.numel(), idx);
  return idx;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.dim() - shape.size();
  LETHE_CHECK(lead >= 0, "sum_to", x.shape().str(), " cannot be summed to ", shape.str());
  std::vector<int> dims;
  for (int d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(d);
    } else {
      LETHE_CHECK(shape[d - lead] == x.shape()[d], "sum_to", x.shape().str(), " cannot be summed to ", shape.str());
    }
  }
  return sum(x, dims, true).reshape(shape);
}

}  // namespace lethe
