#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace lethe::cuda {

namespace {

template <class Op, class T>
__global__ void unary_kernel(const T* x, T* y, int64_t n, UnaryParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = Op::f(x[i], p);
}

template <class Op, class T>
__global__ void unary_backward_kernel(const T* x, const T* y, const T* g, T* gx, int64_t n, UnaryParams p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    gx[i] = Op::df(x[i], y[i], g[i], p);
}

// Same-shape operands: 16-byte vector loads of 4 floats where the pointers allow.
template <class Op>
__global__ void binary_flat_float4(const float4* a, const float4* b, float4* out, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4; i += int64_t(gridDim.x) * blockDim.x) {
    const float4 x = a[i], y = b[i];
    out[i] = make_float4(Op::f(x.x, y.x), Op::f(x.y, y.y), Op::f(x.z, y.z), Op::f(x.w, y.w));
  }
}

template <class Op, class T>
__global__ void binary_kernel(const T* a, Layout la, const T* b, Layout lb, T* out, int64_t begin,
                              int64_t n, bool flat) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = flat ? Op::f(a[i], b[i]) : Op::f(a[la.offset_of(i)], b[lb.offset_of(i)]);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class Op, class T>
void launch_binary(const Tensor& a, const Layout& la, const Tensor& b, const Layout& lb, const Tensor& out) {
  const int64_t n = out.numel();
  const cudaStream_t s = stream(out.device().index);
  const T* ap = static_cast<const T*>(a.data_ptr());
  const T* bp = static_cast<const T*>(b.data_ptr());
  T* op = static_cast<T*>(out.data_ptr());
  const bool flat = a.is_contiguous() && b.is_contiguous() && a.numel() == n && b.numel() == n;
  int64_t done = 0;
  if constexpr (std::is_same_v<T, float>) {
    if (flat && aligned16(ap) && aligned16(bp) && aligned16(op) && n >= 4) {
      const int64_t n4 = n / 4;
      binary_flat_float4<Op><<<grid_for(n4), kThreads, 0, s>>>(
          reinterpret_cast<const float4*>(ap), reinterpret_cast<const float4*>(bp),
          reinterpret_cast<float4*>(op), n4);
      LETHE_CUDA_CHECK_LAUNCH();
      done = n4 * 4;
    }
  }
  if (done < n) {
    binary_kernel<Op><<<grid_for(n - done), kThreads, 0, s>>>(ap, la, bp, lb, op, done, n, flat);
    LETHE_CUDA_CHECK_LAUNCH();
  }
}

template <class T>
void unary_typed(UnaryOp op, const T* x, T* y, int64_t n, UnaryParams p, cudaStream_t s) {
#define LETHE_CASE(name, type) \
  case UnaryOp::name: unary_kernel<ew::type><<<grid_for(n), kThreads, 0, s>>>(x, y, n, p); break;
  switch (op) { LETHE_UNARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
  LETHE_CUDA_CHECK_LAUNCH();
}

template <class T>
void unary_backward_typed(UnaryOp op, const T* x, const T* y, const T* g, T* gx, int64_t n, UnaryParams p,
                          cudaStream_t s) {
#define LETHE_CASE(name, type)                                                            \
  case UnaryOp::name:                                                                     \
    unary_backward_kernel<ew::type><<<grid_for(n), kThreads, 0, s>>>(x, y, g, gx, n, p); \
    break;
  switch (op) { LETHE_UNARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
  LETHE_CUDA_CHECK_LAUNCH();
}

template <class T>
void binary_typed(BinaryOp op, const Tensor& a, const Layout& la, const Tensor& b, const Layout& lb,
                  const Tensor& out) {
#define LETHE_CASE(name, type) \
  case BinaryOp::name: return launch_binary<ew::type, T>(a, la, b, lb, out);
  switch (op) { LETHE_BINARY_OPS(LETHE_CASE) }
#undef LETHE_CASE
}

}  // namespace

void unary(UnaryOp op, const Tensor& x, const Tensor& y, UnaryParams p) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "unary",
                       unary_typed(op, static_cast<const scalar_t*>(x.data_ptr()),
                                   static_cast<scalar_t*>(y.data_ptr()), x.numel(), p,
                                   stream(x.device().index)));
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, const Tensor& gx,
                    UnaryParams p) {
  if (x.numel() == 0) return;
  DeviceGuard guard(x.device().index);
  LETHE_DISPATCH_FLOAT(x.dtype(), "unary_backward",
                       unary_backward_typed(op, static_cast<const scalar_t*>(x.data_ptr()),
                                            static_cast<const scalar_t*>(y.data_ptr()),
                                            static_cast<const scalar_t*>(g.data_ptr()),
                                            static_cast<scalar_t*>(gx.data_ptr()), x.numel(), p,
                                            stream(x.device().index)));
}

void binary(BinaryOp op, const Tensor& a, const Layout& la, const Tensor& b, const Layout& lb,
            const Tensor& out) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index);
  LETHE_DISPATCH_ALL(a.dtype(), "binary", binary_typed<scalar_t>(op, a, la, b, lb, out));
}

}  // namespace lethe::cuda
