#include "engine/layout.h"
#include "kernels/common/philox.h"
#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"

namespace lethe::cuda {

namespace {

template <class D, class S>
__global__ void copy_kernel(D* dst, Layout dl, const S* src, Layout sl, int64_t n, bool flat) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (flat) {
      dst[i] = static_cast<D>(src[i]);
    } else {
      dst[dl.offset_of(i)] = static_cast<D>(src[sl.offset_of(i)]);
    }
  }
}

template <class T>
__global__ void fill_kernel(T* dst, Layout dl, int64_t n, T value, bool flat) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[flat ? i : dl.offset_of(i)] = value;
}

template <class T>
__global__ void arange_kernel(T* dst, int64_t n, double start, double step) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = static_cast<T>(start + static_cast<double>(i) * step);
}

// One thread per Philox block of 4 numbers, addressed by element index as on the CPU.
template <class T, bool Normal>
__global__ void random_kernel(T* dst, int64_t n, uint64_t seed, uint64_t stream) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    float v[4];
    if constexpr (Normal) {
      philox::normal4(seed, stream, static_cast<uint64_t>(b), v);
    } else {
      philox::uniform4(seed, stream, static_cast<uint64_t>(b), v);
    }
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) dst[b * 4 + j] = static_cast<T>(v[j]);
  }
}

}  // namespace

namespace {
template <class D>
void copy_to(D* d, const Layout& dl, const Tensor& src, const Layout& sl, int64_t n, bool flat, cudaStream_t s) {
  LETHE_DISPATCH_ALL(src.dtype(), "copy",
                     copy_kernel<<<grid_for(n), kThreads, 0, s>>>(
                         d, dl, static_cast<const scalar_t*>(src.data_ptr()), sl, n, flat));
  LETHE_CUDA_CHECK_LAUNCH();
}
}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src, const Layout& src_layout) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  const bool flat = dst.is_contiguous() && src.is_contiguous() && src.numel() == n;
  LETHE_DISPATCH_ALL(dst.dtype(), "copy",
                     copy_to(static_cast<scalar_t*>(dst.data_ptr()), layout_of(dst), src, src_layout, n,
                             flat, stream(dst.device().index)));
}

void fill(const Tensor& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  LETHE_DISPATCH_ALL(dst.dtype(), "fill", {
    fill_kernel<<<grid_for(n), kThreads, 0, stream(dst.device().index)>>>(
        static_cast<scalar_t*>(dst.data_ptr()), layout_of(dst), n, static_cast<scalar_t>(value),
        dst.is_contiguous());
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void arange(const Tensor& dst, double start, double step) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  LETHE_DISPATCH_ALL(dst.dtype(), "arange", {
    arange_kernel<<<grid_for(n), kThreads, 0, stream(dst.device().index)>>>(
        static_cast<scalar_t*>(dst.data_ptr()), n, start, step);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

namespace {
template <bool Normal>
void random_fill(const Tensor& dst, uint64_t seed, uint64_t stream_id) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  DeviceGuard guard(dst.device().index);
  LETHE_DISPATCH_FLOAT(dst.dtype(), "random", {
    random_kernel<scalar_t, Normal><<<grid_for((n + 3) / 4), kThreads, 0, stream(dst.device().index)>>>(
        static_cast<scalar_t*>(dst.data_ptr()), n, seed, stream_id);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}
}  // namespace

void random_uniform(const Tensor& dst, uint64_t seed, uint64_t s) { random_fill<false>(dst, seed, s); }
void random_normal(const Tensor& dst, uint64_t seed, uint64_t s) { random_fill<true>(dst, seed, s); }

}  // namespace lethe::cuda
