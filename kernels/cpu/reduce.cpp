#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/reduce.h"

namespace lethe::cpu {

namespace {

// Reduces rows of `k` elements spaced `stride` apart; work items are (row, chunk) pairs, so one
// long row still spreads over the threads, and partials are combined in chunk order.
template <class R, class T, class Out>
void reduce_rows(const T* x, int64_t rows, int64_t k, int64_t inner, Out* out) {
  using acc_t = typename R::acc_t;
  const int64_t chunks = std::max<int64_t>(1, (k + kReduceChunk - 1) / kReduceChunk);
  std::vector<acc_t> partial(rows * chunks);
  // (k = 0, a sum over nothing: one empty chunk a row, R::init()'s value.)
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, std::min(k, kReduceChunk)));
  parallel_for(rows * chunks, grain, [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t row = w / chunks, c = w % chunks;
      // An index, not a pointer: with k = 0, x may be null, and null plus an offset is undefined.
      const int64_t first = (row / inner) * k * inner + row % inner;
      acc_t acc = R::init();
      const int64_t end = std::min(k, (c + 1) * kReduceChunk);
      for (int64_t i = c * kReduceChunk; i < end; ++i) acc = R::step(acc, x[first + i * inner], i);
      partial[w] = acc;
    }
  });
  for (int64_t row = 0; row < rows; ++row) {
    acc_t acc = partial[row * chunks];
    for (int64_t c = 1; c < chunks; ++c) acc = R::combine(acc, partial[row * chunks + c]);
    out[row] = R::value(acc);
  }
}

}  // namespace

namespace {
template <class T>
void reduce_typed(ReduceOp op, const T* x, int64_t rows, int64_t k, int64_t inner, T* out) {
#define LETHE_CASE(name, type) \
  case ReduceOp::name: return reduce_rows<red::type<T>>(x, rows, k, inner, out);
  switch (op) { LETHE_REDUCE_OPS(LETHE_CASE) }
#undef LETHE_CASE
}
}  // namespace

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, const Tensor& out) {
  LETHE_DISPATCH_ALL(x.dtype(), "reduce",
                     reduce_typed(op, static_cast<const scalar_t*>(x.data_ptr()), outer * inner, k, inner,
                                  static_cast<scalar_t*>(out.data_ptr())));
}

void argmax_rows(const Tensor& x, int64_t outer, int64_t k, const Tensor& out) {
  LETHE_DISPATCH_ALL(x.dtype(), "argmax", {
    reduce_rows<red::ArgMax<scalar_t>>(static_cast<const scalar_t*>(x.data_ptr()), outer, k, 1,
                                       static_cast<int64_t*>(out.data_ptr()));
  });
}

}  // namespace lethe::cpu
