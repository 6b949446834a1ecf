#include "kernels/copy.h"
#include "kernels/cuda/common.cuh"
#include "kernels/index.h"

namespace lethe::cuda {

namespace {

// Lowers *first to the smallest position of an out-of-range entry. An integer min is the same
// whatever order the threads run in.
template <class I>
__global__ void first_out_of_range_kernel(const I* index, int64_t n, int64_t limit, long long* first) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x)
    if (!idx::in_range(index[p], limit)) atomicMin(first, static_cast<long long>(p));
}

template <class T, class I>
__global__ void index_select_kernel(const T* x, const I* index, SliceShape s, T* out, int64_t n) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x)
    out[p] = idx::select_at(p, x, index, s);
}

template <class T, class I>
__global__ void index_select_backward_kernel(const T* g, const I* index, SliceShape s, T* gx, int64_t n) {
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < n; q += int64_t(gridDim.x) * blockDim.x)
    gx[q] = idx::select_grad_at(q, g, index, s);
}

template <class T, class I>
__global__ void gather_kernel(const T* x, const I* index, GatherShape s, T* out, int64_t n) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x)
    out[p] = idx::gather_at(p, x, index, s);
}

template <class T, class I>
__global__ void gather_backward_kernel(const T* g, const I* index, GatherShape s, T* gx, int64_t n) {
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < n; q += int64_t(gridDim.x) * blockDim.x)
    gx[q] = idx::gather_grad_at(q, g, index, s);
}

}  // namespace

void check_index_range(const Tensor& index, int64_t limit, const IndexCheck& check) {
  const int64_t n = index.numel();
  if (n == 0) return;
  const int device = index.device().index;
  DeviceGuard guard(device);
  if (capturing(device)) return;  // a read-back cannot be captured
  Tensor first = Tensor::empty({1}, DType::i64, index.device());
  fill(first, static_cast<double>(n));
  int64_t position = n, value = 0;
  LETHE_DISPATCH_INDEX(index.dtype(), check.op, {
    first_out_of_range_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const scalar_t*>(index.data_ptr()), n, limit, static_cast<long long*>(first.data_ptr()));
    LETHE_CUDA_CHECK_LAUNCH();
    copy_bytes(&position, Device::cpu(), first.data_ptr(), index.device(), sizeof position);
    if (position < n) {
      scalar_t entry{};
      copy_bytes(&entry, Device::cpu(), static_cast<const scalar_t*>(index.data_ptr()) + position, index.device(),
                 sizeof entry);
      value = static_cast<int64_t>(entry);
    }
  });
  if (position < n) fail_index_range(check, index.shape(), position, value, limit);
}

void index_select_forward(const Tensor& x, const Tensor& index, SliceShape s, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  dispatch_all_index(x.dtype(), index.dtype(), "index_select", [&](auto t, auto i) {
    using T = decltype(t);
    index_select_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(x.data_ptr()), static_cast<const decltype(i)*>(index.data_ptr()), s,
        static_cast<T*>(out.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void index_select_backward(const Tensor& g, const Tensor& index, SliceShape s, const Tensor& gx) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  const int device = gx.device().index;
  DeviceGuard guard(device);
  dispatch_float_index(g.dtype(), index.dtype(), "index_select_backward", [&](auto t, auto i) {
    using T = decltype(t);
    index_select_backward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(g.data_ptr()), static_cast<const decltype(i)*>(index.data_ptr()), s,
        static_cast<T*>(gx.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void gather_forward(const Tensor& x, const Tensor& index, const GatherShape& s, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int device = out.device().index;
  DeviceGuard guard(device);
  dispatch_all_index(x.dtype(), index.dtype(), "gather", [&](auto t, auto i) {
    using T = decltype(t);
    gather_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(x.data_ptr()), static_cast<const decltype(i)*>(index.data_ptr()), s,
        static_cast<T*>(out.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

void gather_backward(const Tensor& g, const Tensor& index, const GatherShape& s, const Tensor& gx) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  const int device = gx.device().index;
  DeviceGuard guard(device);
  dispatch_float_index(g.dtype(), index.dtype(), "gather_backward", [&](auto t, auto i) {
    using T = decltype(t);
    gather_backward_kernel<<<grid_for(n), kThreads, 0, stream(device)>>>(
        static_cast<const T*>(g.data_ptr()), static_cast<const decltype(i)*>(index.data_ptr()), s,
        static_cast<T*>(gx.data_ptr()), n);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
