#pragma once
// Launchers of index_select and gather, and the index range check that they, cross_entropy,
// nll_loss and one_hot share; with the per-element math both backends run. Tensors are contiguous;
// indices are int32 or int64. Backward passes are deterministic without atomics: every gradient
// element adds its contributions in index order.
#include <cstdint>
#include <string>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/common/hd.h"
#include "kernels/common/layout.h"

namespace lethe {

// How check_index_range names a bad entry: "<op>: <name> <value> at <at> <i> is outside [0, n)
// <context>" for a 1-d index ("label 12 at row 3"), "... at [i,j] ..." otherwise.
struct IndexCheck {
  const char* op;
  const char* name;
  const char* at;
  std::string context;
};

[[noreturn]] inline void fail_index_range(const IndexCheck& check, const Shape& shape, int64_t position,
                                          int64_t value, int64_t limit) {
  std::string where;
  if (shape.size() == 1) {
    where = std::string(check.at) + " " + std::to_string(position);
  } else {
    Shape coords = shape;  // row-major coordinates of `position`
    for (int d = shape.size() - 1; d >= 0; --d) {
      coords[d] = position % shape[d];
      position /= shape[d];
    }
    where = coords.str();
  }
  LETHE_FAIL(check.op, check.name, " ", value, " at ", where, " is outside [0, ", limit, ")", check.context);
}

// index_select: x viewed as [outer, size, inner] around the dim, out as [outer, count, inner].
struct SliceShape {
  int64_t outer = 1, size = 1, count = 1, inner = 1;
};

// gather: out and index share a shape; x has the same rank and may be larger except along dim.
// Strides are the contiguous ones of each shape.
struct GatherShape {
  int rank = 0, dim = 0;
  int64_t x_size[kLayoutDims] = {}, x_stride[kLayoutDims] = {};
  int64_t index_size[kLayoutDims] = {}, index_stride[kLayoutDims] = {};
};

// Runs f(T{}, I{}) with T the C++ type of `data` and I that of the int32/int64 `index`, so
// launchers that take an index tensor dispatch both dtypes without nesting the dispatch macros.
template <class F>
void dispatch_index_type(DType index, const char* op, F&& f) {
  LETHE_DISPATCH_INDEX(index, op, f(scalar_t{}));
}
template <class F>
void dispatch_float_index(DType data, DType index, const char* op, F&& f) {
  LETHE_DISPATCH_FLOAT(data, op, dispatch_index_type(index, op, [&](auto i) { f(scalar_t{}, i); }));
}
template <class F>
void dispatch_all_index(DType data, DType index, const char* op, F&& f) {
  LETHE_DISPATCH_ALL(data, op, dispatch_index_type(index, op, [&](auto i) { f(scalar_t{}, i); }));
}

namespace idx {

// Out-of-range indices are rejected by the ops; the kernels still never read out of bounds.
template <class I>
LETHE_HD bool in_range(I i, int64_t limit) { return i >= 0 && i < limit; }

// out[o,k,i] = x[o,index[k],i]
template <class T, class I>
LETHE_HD T select_at(int64_t p, const T* x, const I* index, const SliceShape& s) {
  const int64_t o = p / (s.count * s.inner), k = (p / s.inner) % s.count, i = p % s.inner;
  const I j = index[k];
  return in_range(j, s.size) ? x[(o * s.size + j) * s.inner + i] : T(0);
}

// gx[o,j,i] = Σ_k [index[k] == j]·g[o,k,i], in order k
template <class T, class I>
LETHE_HD T select_grad_at(int64_t q, const T* g, const I* index, const SliceShape& s) {
  const int64_t o = q / (s.size * s.inner), j = (q / s.inner) % s.size, i = q % s.inner;
  T acc = T(0);
  for (int64_t k = 0; k < s.count; ++k)
    if (index[k] == j) acc += g[(o * s.count + k) * s.inner + i];
  return acc;
}

// out[p] = x at p's coordinates with the dim coordinate replaced by index[p]
template <class T, class I>
LETHE_HD T gather_at(int64_t p, const T* x, const I* index, const GatherShape& s) {
  const I j = index[p];
  if (!in_range(j, s.x_size[s.dim])) return T(0);
  int64_t off = 0, rest = p;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t c = rest % s.index_size[d];
    rest /= s.index_size[d];
    off += (d == s.dim ? static_cast<int64_t>(j) : c) * s.x_stride[d];
  }
  return x[off];
}

// gx at x-position q: Σ_k g[p_k] over the index positions p_k that share q's coordinates except
// along dim (k = 0, 1, ... in order) and whose index is q's dim coordinate.
template <class T, class I>
LETHE_HD T gather_grad_at(int64_t q, const T* g, const I* index, const GatherShape& s) {
  int64_t base = 0, rest = q, target = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const int64_t c = rest % s.x_size[d];
    rest /= s.x_size[d];
    if (d == s.dim) {
      target = c;
    } else {
      if (c >= s.index_size[d]) return T(0);  // no index position reaches this element
      base += c * s.index_stride[d];
    }
  }
  T acc = T(0);
  for (int64_t k = 0; k < s.index_size[s.dim]; ++k) {
    const int64_t p = base + k * s.index_stride[s.dim];
    if (index[p] == target) acc += g[p];
  }
  return acc;
}

}  // namespace idx

}  // namespace lethe

#define LETHE_INDEX_LAUNCHERS                                                                     \
  /* Throws (fail_index_range) for the first entry of `index` outside [0, limit). CUDA: a small   \
     kernel and a read-back, i.e. one stream sync; skipped while the stream is being captured     \
     into a CUDA graph (the kernels' own guards then keep bad entries in bounds). */              \
  void check_index_range(const Tensor& index, int64_t limit, const IndexCheck& check);            \
  void index_select_forward(const Tensor& x, const Tensor& index, SliceShape s, const Tensor& out); \
  void index_select_backward(const Tensor& g, const Tensor& index, SliceShape s, const Tensor& gx); \
  void gather_forward(const Tensor& x, const Tensor& index, const GatherShape& s, const Tensor& out); \
  void gather_backward(const Tensor& g, const Tensor& index, const GatherShape& s, const Tensor& gx);

LETHE_DECLARE_LAUNCHERS(LETHE_INDEX_LAUNCHERS)
