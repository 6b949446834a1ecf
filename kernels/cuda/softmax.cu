#include "kernels/cuda/common.cuh"
#include "kernels/index.h"
#include "kernels/softmax.h"

namespace lethe::cuda {

namespace {

// One thread per row: the rows of this engine's workloads are short (10 classes), and a row
// summed by one thread adds in the same order as the CPU loop.
template <class T>
__global__ void softmax_forward_kernel(const T* x, T* y, RowShape s, bool log_out) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < s.rows(); r += int64_t(gridDim.x) * blockDim.x)
    sm::forward(x + s.base(r), y + s.base(r), s.size, s.inner, log_out);
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* g, T* gx, RowShape s, bool log_out) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < s.rows(); r += int64_t(gridDim.x) * blockDim.x)
    sm::backward(y + s.base(r), g + s.base(r), gx + s.base(r), s.size, s.inner, log_out);
}

template <class T, class I>
__global__ void cross_entropy_forward_kernel(const T* x, const I* labels, const T* weight, double smoothing,
                                             T* loss, int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N; i += int64_t(gridDim.x) * blockDim.x)
    loss[i] = static_cast<T>((weight ? static_cast<double>(weight[i]) : 1.0) *
                             sm::cross_entropy(x + i * C, C, labels[i], smoothing));
}

template <class T, class I>
__global__ void cross_entropy_backward_kernel(const T* x, const I* labels, const T* weight, double smoothing,
                                              const T* g, int64_t g_stride, double g_scale, T* gx,
                                              int64_t N, int64_t C) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N; i += int64_t(gridDim.x) * blockDim.x) {
    const double scale = static_cast<double>(g[i * g_stride]) * (weight ? static_cast<double>(weight[i]) : 1.0) * g_scale;
    sm::cross_entropy_grad(x + i * C, C, labels[i], smoothing, scale, gx + i * C);
  }
}

template <class T, class I>
__global__ void one_hot_kernel(const I* labels, int64_t num_classes, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = sm::one_hot<T>(labels[i / num_classes], i % num_classes);
}

}  // namespace

void softmax_forward(const Tensor& x, RowShape s, bool log_out, const Tensor& y) {
  if (x.numel() == 0) return;
  const int device = x.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(x.dtype(), "softmax", {
    softmax_forward_kernel<<<grid_for(s.rows()), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(x.data_ptr()), static_cast<scalar_t*>(y.data_ptr()), s, log_out);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void softmax_backward(const Tensor& y, const Tensor& g, RowShape s, bool log_out, const Tensor& gx) {
  if (y.numel() == 0) return;
  const int device = y.device().index;
  DeviceGuard guard(device);
  LETHE_DISPATCH_FLOAT(y.dtype(), "softmax_backward", {
    softmax_backward_kernel<<<grid_for(s.rows()), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(y.data_ptr()), static_cast<const scalar_t*>(g.data_ptr()),
        static_cast<scalar_t*>(gx.data_ptr()), s, log_out);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& weight,
                           double smoothing, const Tensor& loss) {
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0) return;
  const int device = logits.device().index;
  DeviceGuard guard(device);
  dispatch_float_index(logits.dtype(), labels.dtype(), "cross_entropy", [&](auto t, auto i) {
    using T = decltype(t);
    cross_entropy_forward_kernel<<<grid_for(N), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(logits.data_ptr()), static_cast<const decltype(i)*>(labels.data_ptr()),
        ptr_or_null<const T>(weight), smoothing, static_cast<T*>(loss.data_ptr()), N, C);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& weight,
                            double smoothing, const Tensor& g, double g_scale, const Tensor& glogits) {
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0) return;
  const int64_t g_stride = g.numel() == 1 ? 0 : 1;
  const int device = logits.device().index;
  DeviceGuard guard(device);
  dispatch_float_index(logits.dtype(), labels.dtype(), "cross_entropy_backward", [&](auto t, auto i) {
    using T = decltype(t);
    cross_entropy_backward_kernel<<<grid_for(N), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(logits.data_ptr()), static_cast<const decltype(i)*>(labels.data_ptr()),
        ptr_or_null<const T>(weight), smoothing, static_cast<const T*>(g.data_ptr()), g_stride, g_scale,
        static_cast<T*>(glogits.data_ptr()), N, C);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void one_hot(const Tensor& labels, int64_t num_classes, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  dispatch_all_index(out.dtype(), labels.dtype(), "one_hot", [&](auto t, auto i) {
    one_hot_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const decltype(i)*>(labels.data_ptr()), num_classes,
        static_cast<decltype(t)*>(out.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
