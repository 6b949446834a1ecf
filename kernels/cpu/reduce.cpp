#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/reduce.h"

namespace lethe::cpu {

namespace {

// Reduces rows of `k` elements spaced `inner` apart; work items are (block of rows, chunk) pairs, so
// one long row still spreads over the threads, and partials are combined in chunk order. A block's
// rows advance together, element i of every row before element i + 1: each row's accumulator sees
// its elements in index order as if alone (the same bits), but the rows' dependency chains
// overlap, where one row at a time waits on every addition.
template <class R, class T, class Out>
void reduce_rows(const T* x, int64_t rows, int64_t k, int64_t inner, Out* out) {
  using acc_t = typename R::acc_t;
  constexpr int64_t kBlock = 8;
  const int64_t chunks = std::max<int64_t>(1, (k + kReduceChunk - 1) / kReduceChunk);
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  std::vector<acc_t> partial(rows * chunks);
  // (k = 0, a sum over nothing: one empty chunk a row, R::init()'s value.)
  parallel_for(blocks * chunks, grain_for(std::min(k, kReduceChunk) * kBlock), [&](int64_t b, int64_t e) {
    for (int64_t w = b; w < e; ++w) {
      const int64_t row0 = (w / chunks) * kBlock, c = w % chunks, lanes = std::min(kBlock, rows - row0);
      // Indices, not pointers: with k = 0, x may be null, and null plus an offset is undefined.
      int64_t first[kBlock];
      acc_t acc[kBlock];
      for (int64_t j = 0; j < lanes; ++j) {
        first[j] = ((row0 + j) / inner) * k * inner + (row0 + j) % inner;
        acc[j] = R::init();
      }
      const int64_t end = std::min(k, (c + 1) * kReduceChunk);
      with_block_size<kBlock>(lanes, [&](auto count) {
        for (int64_t i = c * kReduceChunk; i < end; ++i)
          for (int64_t j = 0; j < count; ++j) acc[j] = R::step(acc[j], x[first[j] + i * inner], i);
      });
      for (int64_t j = 0; j < lanes; ++j) partial[(row0 + j) * chunks + c] = acc[j];
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
