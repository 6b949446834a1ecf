#include "kernels/elementwise.h"

#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {

template <class Op, class T>
void unary_loop(const T* x, T* y, int64_t n, UnaryParams p) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = Op::f(x[i], p);
  });
}

template <class Op, class T>
void unary_backward_loop(const T* x, const T* y, const T* g, T* gx, int64_t n, UnaryParams p) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) gx[i] = Op::df(x[i], y[i], g[i], p);
  });
}

// Walks the output row by row (rows of its last dim), so the broadcast offsets are computed
// once per row and the inner loop is a plain strided loop.
template <class Op, class T>
void binary_loop(const T* a, Layout la, const T* b, Layout lb, T* out, int64_t n) {
  // Same-shape contiguous operands (strides 1 on a single row): split by elements, so a long
  // flat vector (a parameter arena) still uses every thread.
  if (la.rank <= 1 && lb.rank <= 1 && (la.rank == 0 || (la.stride[0] == 1 && lb.stride[0] == 1))) {
    parallel_for(n, kGrain, [&](int64_t b0, int64_t e0) {
      for (int64_t i = b0; i < e0; ++i) out[i] = Op::f(a[i], b[i]);
    });
    return;
  }
  const int last = la.rank - 1;
  const int64_t row = la.rank ? la.size[last] : 1;
  const int64_t sa = la.rank ? la.stride[last] : 0, sb = lb.rank ? lb.stride[last] : 0;
  if (row == 0) return;
  parallel_for(n / row, grain_for(row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* pa = a + la.offset_of(r * row);
      const T* pb = b + lb.offset_of(r * row);
      T* po = out + r * row;
      for (int64_t j = 0; j < row; ++j) po[j] = Op::f(pa[j * sa], pb[j * sb]);
    }
  });
}

template <class T>
void unary_typed(UnaryOp op, const T* x, T* y, int64_t n, UnaryParams p) {
#define LETHE_CASE(name, type) \
  case UnaryOp::name: return unary_loop<ew::type>(x, y, n, p);
  switch (op) { LETHE_UNARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
}

template <class T>
void unary_backward_typed(UnaryOp op, const T* x, const T* y, const T* g, T* gx, int64_t n, UnaryParams p) {
#define LETHE_CASE(name, type) \
  case UnaryOp::name: return unary_backward_loop<ew::type>(x, y, g, gx, n, p);
  switch (op) { LETHE_UNARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
}

template <class T>
void binary_typed(BinaryOp op, const T* a, Layout la, const T* b, Layout lb, T* out, int64_t n) {
#define LETHE_CASE(name, type) \
  case BinaryOp::name: return binary_loop<ew::type>(a, la, b, lb, out, n);
  switch (op) { LETHE_BINARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& y, UnaryParams p) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "unary",
                       unary_typed(op, static_cast<const scalar_t*>(x.data_ptr()),
                                   static_cast<scalar_t*>(y.data_ptr()), x.numel(), p));
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, const Tensor& gx,
                    UnaryParams p) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "unary_backward",
                       unary_backward_typed(op, static_cast<const scalar_t*>(x.data_ptr()),
                                            static_cast<const scalar_t*>(y.data_ptr()),
                                            static_cast<const scalar_t*>(g.data_ptr()),
                                            static_cast<scalar_t*>(gx.data_ptr()), x.numel(), p));
}

void binary(BinaryOp op, const Tensor& a, const Layout& la, const Tensor& b, const Layout& lb,
            const Tensor& out) {
  LETHE_DISPATCH_ALL(a.dtype(), "binary",
                     binary_typed(op, static_cast<const scalar_t*>(a.data_ptr()), la,
                                  static_cast<const scalar_t*>(b.data_ptr()), lb,
                                  static_cast<scalar_t*>(out.data_ptr()), out.numel()));
}

}  // namespace lethe::cpu
