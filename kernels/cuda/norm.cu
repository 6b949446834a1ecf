#include "kernels/common/philox.h"
#include "kernels/cuda/common.cuh"
#include "kernels/norm.h"

namespace lethe::cuda {

namespace {

// The block's total of one value per thread, added in a fixed tree order (no atomics), so the
// result is the same on every run; every thread gets it. blockDim.x must be kThreads.
__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) shared[threadIdx.x] += shared[threadIdx.x + width];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // `shared` is reused by the caller's next block_sum
  return total;
}

// One block per channel: two passes (mean, then squared deviations) over the channel's elements.
template <class T>
__global__ void stats_kernel(const T* x, ChannelShape s, BatchNormParams p, T* running_mean,
                             T* running_var, double* mean, double* invstd) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, count = s.count();
  if (!p.training) {
    if (threadIdx.x == 0) {
      mean[c] = static_cast<double>(running_mean[c]);
      invstd[c] = norm::invstd(static_cast<double>(running_var[c]), p.eps);
    }
    return;
  }
  double acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) acc += static_cast<double>(x[s.offset(c, j)]);
  const double mu = block_sum(acc, shared) / static_cast<double>(count);
  acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) {
    const double d = static_cast<double>(x[s.offset(c, j)]) - mu;
    acc += d * d;
  }
  const double var = block_sum(acc, shared) / static_cast<double>(count);
  if (threadIdx.x == 0) {
    mean[c] = mu;
    invstd[c] = norm::invstd(var, p.eps);
    if (running_mean) bn::update_running(running_mean, running_var, c, mu, var, count, p.momentum);
  }
}

template <class T>
__global__ void forward_kernel(const T* x, ChannelShape s, const double* mean, const double* invstd,
                               const T* weight, const T* bias, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bn::forward(x[i], s.channel_of(i), mean, invstd, weight, bias);
}

template <class T>
__global__ void backward_reduce_kernel(const T* g, const T* x, ChannelShape s, const double* mean,
                                       const double* invstd, double* sum_dy, double* sum_dy_xhat) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x, count = s.count();
  double dy = 0, dy_xhat = 0;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) {
    const int64_t o = s.offset(c, j);
    dy += static_cast<double>(g[o]);
    dy_xhat += static_cast<double>(g[o]) * (static_cast<double>(x[o]) - mean[c]) * invstd[c];
  }
  dy = block_sum(dy, shared);
  dy_xhat = block_sum(dy_xhat, shared);
  if (threadIdx.x == 0) {
    sum_dy[c] = dy;
    sum_dy_xhat[c] = dy_xhat;
  }
}

template <class T>
__global__ void backward_kernel(const T* g, const T* x, ChannelShape s, const double* mean,
                                const double* invstd, const T* weight, const double* sum_dy,
                                const double* sum_dy_xhat, bool training, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    gx[i] = bn::backward(g[i], x[i], s.channel_of(i), mean, invstd, weight, sum_dy, sum_dy_xhat,
                         s.count(), training);
}

// One block per row (sample, group) of count() contiguous elements: mean, then squared deviations.
template <class T>
__global__ void group_stats_kernel(const T* x, GroupShape s, double eps, double* mean, double* invstd) {
  __shared__ double shared[kThreads];
  const int64_t r = blockIdx.x, count = s.count();
  const T* row = x + r * count;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) acc += static_cast<double>(row[j]);
  const double mu = block_sum(acc, shared) / static_cast<double>(count);
  acc = 0;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) {
    const double d = static_cast<double>(row[j]) - mu;
    acc += d * d;
  }
  const double var = block_sum(acc, shared) / static_cast<double>(count);
  if (threadIdx.x == 0) {
    mean[r] = mu;
    invstd[r] = norm::invstd(var, eps);
  }
}

template <class T>
__global__ void group_forward_kernel(const T* x, GroupShape s, const double* mean, const double* invstd,
                                     const T* weight, const T* bias, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = s.row_of(i);
    y[i] = norm::affine(x[i], mean[r], invstd[r], s.channel_of(i), weight, bias);
  }
}

// One block per (sample, channel) plane of `inner` contiguous elements.
template <class T>
__global__ void group_backward_reduce_kernel(const T* g, const T* x, GroupShape s, const double* mean,
                                             const double* invstd, double* sum_dy, double* sum_dy_xhat) {
  __shared__ double shared[kThreads];
  const int64_t p = blockIdx.x, r = p / s.group_channels, at = p * s.inner;
  double dy = 0, dy_xhat = 0;
  for (int64_t j = threadIdx.x; j < s.inner; j += kThreads) {
    dy += static_cast<double>(g[at + j]);
    dy_xhat += static_cast<double>(g[at + j]) * ((static_cast<double>(x[at + j]) - mean[r]) * invstd[r]);
  }
  dy = block_sum(dy, shared);
  dy_xhat = block_sum(dy_xhat, shared);
  if (threadIdx.x == 0) {
    sum_dy[p] = dy;
    sum_dy_xhat[p] = dy_xhat;
  }
}

template <class T>
__global__ void group_backward_kernel(const T* g, const T* x, GroupShape s, const double* mean,
                                      const double* invstd, const T* weight, const double* sum_d,
                                      const double* sum_d_xhat, T* gx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = s.row_of(i);
    gx[i] = gn::backward(g[i], x[i], s.channel_of(i), mean[r], invstd[r], weight, sum_d[r], sum_d_xhat[r],
                         s.count());
  }
}

// One thread per Philox block of 4 elements, addressed by element index as on the CPU.
template <class T>
__global__ void dropout_kernel(const T* x, double p, T scale, uint64_t seed, uint64_t stream_id, T* y,
                               int64_t n) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    float u[4];
    philox::uniform4(seed, stream_id, static_cast<uint64_t>(b), u);
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) y[b * 4 + j] = drop::apply(x[b * 4 + j], u[j], p, scale);
  }
}

}  // namespace

void batch_norm_stats(const Tensor& x, ChannelShape s, BatchNormParams p, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& mean, const Tensor& invstd) {
  if (s.channels == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    stats_kernel<<<static_cast<unsigned>(s.channels), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), s, p, ptr_or_null<scalar_t>(running_mean),
        ptr_or_null<scalar_t>(running_var), ptr_or_null<double>(mean), ptr_or_null<double>(invstd));
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void batch_norm_forward(const Tensor& x, ChannelShape s, const Tensor& mean, const Tensor& invstd,
                        const Tensor& weight, const Tensor& bias, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    forward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), s, ptr_or_null<double>(mean),
        ptr_or_null<double>(invstd), ptr_or_null<scalar_t>(weight), ptr_or_null<scalar_t>(bias),
        static_cast<scalar_t*>(y.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void batch_norm_backward_reduce(const Tensor& g, const Tensor& x, ChannelShape s, const Tensor& mean,
                                const Tensor& invstd, const Tensor& sum_dy, const Tensor& sum_dy_xhat) {
  if (s.channels == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", {
    backward_reduce_kernel<<<static_cast<unsigned>(s.channels), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(g.data_ptr()), static_cast<const scalar_t*>(x.data_ptr()), s,
        ptr_or_null<double>(mean), ptr_or_null<double>(invstd), ptr_or_null<double>(sum_dy),
        ptr_or_null<double>(sum_dy_xhat));
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void batch_norm_backward(const Tensor& g, const Tensor& x, ChannelShape s, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& sum_dy,
                         const Tensor& sum_dy_xhat, bool training, const Tensor& gx) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", {
    backward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(g.data_ptr()), static_cast<const scalar_t*>(x.data_ptr()), s,
        ptr_or_null<double>(mean), ptr_or_null<double>(invstd), ptr_or_null<scalar_t>(weight),
        ptr_or_null<double>(sum_dy), ptr_or_null<double>(sum_dy_xhat), training,
        static_cast<scalar_t*>(gx.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void group_norm_stats(const Tensor& x, GroupShape s, double eps, const Tensor& mean, const Tensor& invstd) {
  if (s.rows() == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm", {
    group_stats_kernel<<<static_cast<unsigned>(s.rows()), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), s, eps, ptr_or_null<double>(mean), ptr_or_null<double>(invstd));
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void group_norm_forward(const Tensor& x, GroupShape s, const Tensor& mean, const Tensor& invstd,
                        const Tensor& weight, const Tensor& bias, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm", {
    group_forward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), s, ptr_or_null<double>(mean), ptr_or_null<double>(invstd),
        ptr_or_null<scalar_t>(weight), ptr_or_null<scalar_t>(bias), static_cast<scalar_t*>(y.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void group_norm_backward_reduce(const Tensor& g, const Tensor& x, GroupShape s, const Tensor& mean,
                                const Tensor& invstd, const Tensor& sum_dy, const Tensor& sum_dy_xhat) {
  const int64_t planes = s.batch * s.channels();
  if (planes == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", {
    group_backward_reduce_kernel<<<static_cast<unsigned>(planes), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(g.data_ptr()), static_cast<const scalar_t*>(x.data_ptr()), s,
        ptr_or_null<double>(mean), ptr_or_null<double>(invstd), ptr_or_null<double>(sum_dy),
        ptr_or_null<double>(sum_dy_xhat));
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void group_norm_backward(const Tensor& g, const Tensor& x, GroupShape s, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& sum_d,
                         const Tensor& sum_d_xhat, const Tensor& gx) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", {
    group_backward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(g.data_ptr()), static_cast<const scalar_t*>(x.data_ptr()), s,
        ptr_or_null<double>(mean), ptr_or_null<double>(invstd), ptr_or_null<scalar_t>(weight),
        ptr_or_null<double>(sum_d), ptr_or_null<double>(sum_d_xhat), static_cast<scalar_t*>(gx.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void dropout_apply(const Tensor& x, double p, uint64_t seed, uint64_t stream_id, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "dropout", {
    dropout_kernel<<<grid_for((n + 3) / 4), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), p, static_cast<scalar_t>(1 / (1 - p)), seed,
        stream_id, static_cast<scalar_t*>(y.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
