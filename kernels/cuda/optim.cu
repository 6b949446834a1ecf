#include "kernels/common/reduce.h"
#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"

namespace lethe::cuda {

namespace {

// One thread: count the step and derive the scalars the update kernel reads.
__global__ void sgd_advance_kernel(double* scalars) { optim::sgd_advance(scalars); }
__global__ void adamw_advance_kernel(double* scalars, AdamWConfig c) { optim::adamw_advance(scalars, c); }

template <class T>
__global__ void sgd_kernel(T* theta, const T* grad, T* momentum, int64_t n, const double* scalars, SgdConfig c) {
  const optim::SgdStep<T> s = optim::sgd_step_values<T>(scalars, c);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T th = theta[i];
    T v = momentum ? momentum[i] : T(0);
    optim::sgd_update(th, grad[i], v, s);
    theta[i] = th;
    if (momentum) momentum[i] = v;
  }
}

template <class T>
__global__ void adamw_kernel(T* theta, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, const double* scalars,
                             AdamWConfig c) {
  const optim::AdamWStep<T> s = optim::adamw_step_values<T>(scalars, c);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T th = theta[i], m = exp_avg[i], v = exp_avg_sq[i];
    optim::adamw_update(th, grad[i], m, v, s);
    theta[i] = th;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
  }
}

// Sum over the block's kThreads threads as a fixed-shape tree: the same order on every run.
__device__ double block_sum(double x) {
  __shared__ double tree[kThreads];
  tree[threadIdx.x] = x;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) tree[threadIdx.x] += tree[threadIdx.x + width];
    __syncthreads();
  }
  return tree[0];
}

// Pass 1: one block per chunk of kReduceChunk gradients, its sum of squares.
template <class T>
__global__ void square_partials(const T* g, int64_t n, double* partial) {
  const int64_t begin = blockIdx.x * kReduceChunk, end = min(n, begin + kReduceChunk);
  double acc = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc = optim::add_square(acc, g[i]);
  const double total = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Pass 2, one block: the norm, and the clip coefficient into partial[chunks].
__global__ void finish_norm(double* partial, int64_t chunks, double max_norm, double* norm) {
  double acc = 0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) acc += partial[c];
  const double total = block_sum(acc);
  if (threadIdx.x == 0) {
    *norm = sqrt(total);
    partial[chunks] = optim::clip_coefficient(*norm, max_norm);
  }
}

template <class T>
__global__ void scale_kernel(T* g, int64_t n, const double* coefficient) {
  const double c = *coefficient;
  if (c == 1) return;  // g·1 == g: skip the pass
  const T ct = static_cast<T>(c);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    g[i] = g[i] * ct;
}

}  // namespace

void sgd_step(const Tensor& params, const Tensor& grad, const Tensor& momentum, const Tensor& scalars,
              const SgdConfig& config) {
  const int device = params.device().index;
  DeviceGuard guard(device);
  const cudaStream_t s = stream(device);
  double* sp = static_cast<double*>(scalars.data_ptr());
  sgd_advance_kernel<<<1, 1, 0, s>>>(sp);
  LETHE_CUDA_CHECK_LAUNCH();
  const int64_t n = params.numel();
  LETHE_DISPATCH_FLOAT(params.dtype(), "sgd_step", {
    sgd_kernel<<<grid_for(n), kThreads, 0, s>>>(static_cast<scalar_t*>(params.data_ptr()),
                                                 static_cast<const scalar_t*>(grad.data_ptr()),
                                                 ptr_or_null<scalar_t>(momentum), n, sp, config);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void adamw_step(const Tensor& params, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const Tensor& scalars, const AdamWConfig& config) {
  const int device = params.device().index;
  DeviceGuard guard(device);
  const cudaStream_t s = stream(device);
  double* sp = static_cast<double*>(scalars.data_ptr());
  adamw_advance_kernel<<<1, 1, 0, s>>>(sp, config);
  LETHE_CUDA_CHECK_LAUNCH();
  const int64_t n = params.numel();
  LETHE_DISPATCH_FLOAT(params.dtype(), "adamw_step", {
    adamw_kernel<<<grid_for(n), kThreads, 0, s>>>(
        static_cast<scalar_t*>(params.data_ptr()), static_cast<const scalar_t*>(grad.data_ptr()),
        static_cast<scalar_t*>(exp_avg.data_ptr()), static_cast<scalar_t*>(exp_avg_sq.data_ptr()), n, sp, config);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void clip_by_global_norm(const Tensor& grad, double max_norm, const Tensor& norm) {
  const int device = grad.device().index;
  DeviceGuard guard(device);
  const cudaStream_t s = stream(device);
  const int64_t n = grad.numel();
  const int64_t chunks = std::max<int64_t>(1, (n + kReduceChunk - 1) / kReduceChunk);
  LETHE_CHECK(chunks < (int64_t{1} << 31), "clip_grad_norm", "too many elements for one launch: ", n);
  // chunks partial sums, then the clip coefficient
  Tensor scratch = Tensor::empty(Shape{chunks + 1}, DType::f64, grad.device());
  double* partial = static_cast<double*>(scratch.data_ptr());
  LETHE_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm", {
    scalar_t* g = static_cast<scalar_t*>(grad.data_ptr());
    square_partials<<<static_cast<unsigned>(chunks), kThreads, 0, s>>>(g, n, partial);
    LETHE_CUDA_CHECK_LAUNCH();
    finish_norm<<<1, kThreads, 0, s>>>(partial, chunks, max_norm, static_cast<double*>(norm.data_ptr()));
    LETHE_CUDA_CHECK_LAUNCH();
    scale_kernel<<<grid_for(n), kThreads, 0, s>>>(g, n, partial + chunks);
    LETHE_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace lethe::cuda
