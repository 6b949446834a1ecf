#include "kernels/cuda/common.cuh"
#include "kernels/ieu.h"

namespace lethe::cuda {

namespace {

// One thread: count the step, and gate α on the device-resident forget loss (null: no gate).
template <class L>
__global__ void ieu_advance_kernel(double* scalars, const L* forget_loss, double cap) {
  ieu::advance(scalars, forget_loss, cap);
}

// Four consecutive elements, moved as one vector access where the arrays allow it.
template <class T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};
template <class T, bool kVector>
__device__ void load4(const T* p, int64_t base, int64_t n, T out[4]) {
  if (kVector && base + 4 <= n) {
    const Quad<T> q = *reinterpret_cast<const Quad<T>*>(p + base);
    for (int j = 0; j < 4; ++j) out[j] = q.v[j];
    return;
  }
  for (int j = 0; j < 4; ++j) out[j] = base + j < n ? p[base + j] : T(0);
}
template <class T, bool kVector>
__device__ void store4(T* p, int64_t base, int64_t n, const T in[4]) {
  if (kVector && base + 4 <= n) {
    Quad<T> q;
    for (int j = 0; j < 4; ++j) q.v[j] = in[j];
    *reinterpret_cast<Quad<T>*>(p + base) = q;
    return;
  }
  for (int j = 0; j < 4; ++j)
    if (base + j < n) p[base + j] = in[j];
}

// One kernel for the whole arena; each thread takes a Philox block of 4 elements, so one Philox
// call feeds all four. kVector: every array is aligned to 4 elements.
template <class T, bool kVector>
__global__ void ieu_kernel(T* theta, const T* g_r, const T* g_f, T* momentum, int64_t n, const double* scalars,
                           IeuConfig c) {
  const ieu::Step<T> s = ieu::step_values<T>(scalars, c, g_f != nullptr);
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = 4 * b;
    T th[4], gr[4], gf[4] = {}, v[4] = {};
    float xi[4] = {};
    load4<T, kVector>(theta, base, n, th);
    load4<T, kVector>(g_r, base, n, gr);
    if (s.use_forget) load4<T, kVector>(g_f, base, n, gf);
    if (s.use_momentum) load4<T, kVector>(momentum, base, n, v);
    if (s.use_noise) philox::normal4(s.seed, s.stream, static_cast<uint64_t>(b), xi);
    for (int j = 0; j < 4; ++j) ieu::update(th[j], gr[j], gf[j], v[j], T(xi[j]), s);
    store4<T, kVector>(theta, base, n, th);
    if (s.use_momentum) store4<T, kVector>(momentum, base, n, v);
  }
}

bool quad_aligned(const void* p, size_t element_size) {
  return reinterpret_cast<uintptr_t>(p) % (4 * element_size) == 0;
}

}  // namespace

void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget, const Tensor& momentum,
                const Tensor& scalars, const Tensor& forget_loss, const IeuConfig& config) {
  const int device = params.device().index;
  DeviceGuard guard(device);
  const cudaStream_t s = stream(device);
  double* sp = static_cast<double*>(scalars.data_ptr());
  const double cap = config.forget_loss_cap;
  if (!forget_loss.defined()) ieu_advance_kernel<double><<<1, 1, 0, s>>>(sp, nullptr, cap);
  else if (forget_loss.dtype() == DType::f32)
    ieu_advance_kernel<<<1, 1, 0, s>>>(sp, static_cast<const float*>(forget_loss.data_ptr()), cap);
  else ieu_advance_kernel<<<1, 1, 0, s>>>(sp, static_cast<const double*>(forget_loss.data_ptr()), cap);
  LETHE_CUDA_CHECK_LAUNCH();
  const int64_t n = params.numel();
  const size_t size = dtype_size(params.dtype());
  bool vector = true;
  for (const Tensor* t : {&params, &grad_retain, &grad_forget, &momentum})
    vector = vector && (!t->defined() || quad_aligned(t->data_ptr(), size));
  LETHE_DISPATCH_FLOAT(params.dtype(), "ieu_update", {
    auto* kernel = vector ? ieu_kernel<scalar_t, true> : ieu_kernel<scalar_t, false>;
    kernel<<<grid_for((n + 3) / 4), kThreads, 0, s>>>(
        static_cast<scalar_t*>(params.data_ptr()), static_cast<const scalar_t*>(grad_retain.data_ptr()),
        ptr_or_null<const scalar_t>(grad_forget), ptr_or_null<scalar_t>(momentum), n, sp, config);
  });
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
