// Pooling on CUDA: one thread per output pixel forward, one per input pixel backward (a gather,
// so no atomics and a fixed summation order).
#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace lethe::cuda {

namespace {

template <class T>
__global__ void max_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t* argmax, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / g.out_plane(), o = e % g.out_plane();
    max_window(g, x + p * g.plane(), o / g.out_w, o % g.out_w, &y[e], argmax != nullptr ? &argmax[e] : nullptr);
  }
}

template <class T>
__global__ void max_backward_kernel(PoolGeometry g, const T* gy, const int64_t* argmax, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / g.plane(), q = i % g.plane();
    gx[i] = max_pool_grad(g, gy + p * g.out_plane(), argmax + p * g.out_plane(), q / g.width, q % g.width);
  }
}

template <class T>
__global__ void avg_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / g.out_plane(), o = e % g.out_plane();
    y[e] = avg_window(g, x + p * g.plane(), o / g.out_w, o % g.out_w);
  }
}

template <class T>
__global__ void avg_backward_kernel(PoolGeometry g, const T* gy, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / g.plane(), q = i % g.plane();
    gx[i] = avg_pool_grad(g, gy + p * g.out_plane(), q / g.width, q % g.width);
  }
}

template <class T>
const T* in(const Tensor& t) { return static_cast<const T*>(t.data_ptr()); }
template <class T>
T* out(const Tensor& t) { return static_cast<T*>(t.data_ptr()); }

template <class T>
__global__ void upsample_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = e / g.out_plane(), o = e % g.out_plane();
    y[e] = upsample_value(g, x + p * g.plane(), o / g.out_w, o % g.out_w);
  }
}

template <class T>
__global__ void upsample_backward_kernel(PoolGeometry g, const T* gy, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i / g.plane(), q = i % g.plane();
    gx[i] = upsample_grad(g, gy + p * g.out_plane(), q / g.width, q % g.width);
  }
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolGeometry& g) {
  const int64_t n = y.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "max_pool2d", {
    max_forward_kernel<<<grid_for(n), kThreads, 0, stream(x.device().index)>>>(
        g, in<scalar_t>(x), out<scalar_t>(y), ptr_or_null<int64_t>(argmax), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void max_pool2d_backward(const Tensor& gy, const Tensor& argmax, const Tensor& gx, const PoolGeometry& g) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  DeviceGuard guard(gx.device().index);
  LETHE_DISPATCH_FLOAT(gx.dtype(), "max_pool2d_backward", {
    max_backward_kernel<<<grid_for(n), kThreads, 0, stream(gx.device().index)>>>(
        g, in<scalar_t>(gy), in<int64_t>(argmax), out<scalar_t>(gx), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g) {
  const int64_t n = y.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", {
    avg_forward_kernel<<<grid_for(n), kThreads, 0, stream(x.device().index)>>>(
        g, in<scalar_t>(x), out<scalar_t>(y), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void avg_pool2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  DeviceGuard guard(gx.device().index);
  LETHE_DISPATCH_FLOAT(gx.dtype(), "avg_pool2d_backward", {
    avg_backward_kernel<<<grid_for(n), kThreads, 0, stream(gx.device().index)>>>(
        g, in<scalar_t>(gy), out<scalar_t>(gx), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void upsample_nearest2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g) {
  const int64_t n = y.numel();
  if (n == 0) return;
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "upsample_nearest2d", {
    upsample_forward_kernel<<<grid_for(n), kThreads, 0, stream(x.device().index)>>>(
        g, in<scalar_t>(x), out<scalar_t>(y), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void upsample_nearest2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  DeviceGuard guard(gx.device().index);
  LETHE_DISPATCH_FLOAT(gx.dtype(), "upsample_nearest2d_backward", {
    upsample_backward_kernel<<<grid_for(n), kThreads, 0, stream(gx.device().index)>>>(
        g, in<scalar_t>(gy), out<scalar_t>(gx), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
