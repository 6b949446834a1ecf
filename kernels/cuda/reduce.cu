#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace lethe::cuda {

namespace {

// Pass 1 for contiguous rows (inner == 1): one block per (row, chunk), a strided walk per thread,
// then a fixed-shape tree in shared memory, so the result never varies run to run.
template <class R, class T>
__global__ void chunk_partials_block(const T* x, int64_t k, int64_t chunks, typename R::acc_t* partial) {
  using acc_t = typename R::acc_t;
  __shared__ acc_t tree[kThreads];
  const int64_t row = blockIdx.x / chunks, c = blockIdx.x % chunks;
  const int64_t begin = c * kReduceChunk, end = min(k, begin + kReduceChunk);
  const T* base = x + row * k;
  acc_t acc = R::init();
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc = R::step(acc, base[i], i);
  tree[threadIdx.x] = acc;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) tree[threadIdx.x] = R::combine(tree[threadIdx.x], tree[threadIdx.x + width]);
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = tree[0];
}

// Pass 1 for strided rows (inner > 1): one thread per (row, chunk); neighbouring threads read
// neighbouring addresses, so loads coalesce.
template <class R, class T>
__global__ void chunk_partials_thread(const T* x, int64_t rows, int64_t k, int64_t inner, int64_t chunks,
                                      typename R::acc_t* partial) {
  for (int64_t w = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; w < rows * chunks; w += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = w / rows, row = w % rows;
    const T* base = x + (row / inner) * k * inner + row % inner;
    typename R::acc_t acc = R::init();
    const int64_t end = min(k, (c + 1) * kReduceChunk);
    for (int64_t i = c * kReduceChunk; i < end; ++i) acc = R::step(acc, base[i * inner], i);
    partial[row * chunks + c] = acc;
  }
}

// Pass 2: each row combines its chunk partials in chunk order.
template <class R, class Out>
__global__ void combine_partials(const typename R::acc_t* partial, int64_t rows, int64_t chunks, Out* out) {
  for (int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; row < rows; row += int64_t(gridDim.x) * blockDim.x) {
    typename R::acc_t acc = partial[row * chunks];
    for (int64_t c = 1; c < chunks; ++c) acc = R::combine(acc, partial[row * chunks + c]);
    out[row] = R::value(acc);
  }
}

template <class R, class T, class Out>
void reduce_rows(const Tensor& x, int64_t rows, int64_t k, int64_t inner, Out* out) {
  using acc_t = typename R::acc_t;
  if (rows == 0) return;
  const int64_t chunks = std::max<int64_t>(1, (k + kReduceChunk - 1) / kReduceChunk);
  const int device = x.device().index;
  const cudaStream_t s = stream(device);
  Tensor scratch = Tensor::empty(Shape{static_cast<int64_t>(rows * chunks * sizeof(acc_t))}, DType::u8, x.device());
  acc_t* partial = static_cast<acc_t*>(scratch.data_ptr());
  const T* xp = static_cast<const T*>(x.data_ptr());
  if (inner == 1) {
    LETHE_CHECK(rows * chunks < (int64_t{1} << 31), "reduce", "too many rows for one launch: ", rows);
    chunk_partials_block<R><<<static_cast<unsigned>(rows * chunks), kThreads, 0, s>>>(xp, k, chunks, partial);
  } else {
    chunk_partials_thread<R><<<grid_for(rows * chunks), kThreads, 0, s>>>(xp, rows, k, inner, chunks, partial);
  }
  LETHE_CUDA_CHECK_LAUNCH();
  combine_partials<R><<<grid_for(rows), kThreads, 0, s>>>(partial, rows, chunks, out);
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace

namespace {
template <class T>
void reduce_typed(ReduceOp op, const Tensor& x, int64_t rows, int64_t k, int64_t inner, T* out) {
#define LETHE_CASE(name, type) \
  case ReduceOp::name: return reduce_rows<red::type<T>, T>(x, rows, k, inner, out);
  switch (op) { LETHE_REDUCE_OPS(LETHE_CASE) }
#undef LETHE_CASE
}
}  // namespace

void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner, const Tensor& out) {
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_ALL(x.dtype(), "reduce",
                     reduce_typed(op, x, outer * inner, k, inner, static_cast<scalar_t*>(out.data_ptr())));
}

void argmax_rows(const Tensor& x, int64_t outer, int64_t k, const Tensor& out) {
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_ALL(x.dtype(), "argmax", {
    reduce_rows<red::ArgMax<scalar_t>, scalar_t>(x, outer, k, 1, static_cast<int64_t*>(out.data_ptr()));
  });
}

}  // namespace lethe::cuda
