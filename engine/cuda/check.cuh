#pragma once
// What every CUDA source needs, kernels and runtime alike: CUDA runtime status checks that throw
// lethe::Error, the per-device compute stream, and a scoped current device. The core layer's
// runtime (engine/cuda/) uses it; kernels/cuda/common.cuh adds cuBLAS, cuDNN and launch helpers.
#include <cuda_runtime.h>

#include "engine/cuda_runtime.h"
#include "engine/error.h"

namespace lethe::cuda::detail {

// A failed call also sets the runtime's last-error state; clearing it keeps the next
// LETHE_CUDA_CHECK_LAUNCH from reporting this failure a second time (sticky errors stay).
[[noreturn]] inline void fail(cudaError_t e, const char* expr, const char* file, int line) {
  cudaGetLastError();
  throw Error(::lethe::detail::concat("cuda: ", expr, " failed: ", cudaGetErrorName(e), " (",
                                      cudaGetErrorString(e), ") at ", file, ":", line));
}

}  // namespace lethe::cuda::detail

#define LETHE_CUDA_STATUS_CHECK_(expr, ok)                                     \
  do {                                                                         \
    const auto lethe_status_ = (expr);                                         \
    if (lethe_status_ != (ok))                                                 \
      ::lethe::cuda::detail::fail(lethe_status_, #expr, __FILE__, __LINE__);   \
  } while (0)

#define LETHE_CUDA_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, cudaSuccess)

// After a kernel launch: reports a bad launch configuration without synchronizing (errors
// raised while the kernel runs surface at the next synchronizing call).
#define LETHE_CUDA_CHECK_LAUNCH()                                                     \
  do {                                                                                \
    const cudaError_t lethe_status_ = cudaGetLastError();                             \
    if (lethe_status_ != cudaSuccess)                                                 \
      ::lethe::cuda::detail::fail(lethe_status_, "kernel launch", __FILE__, __LINE__); \
  } while (0)

namespace lethe::cuda {

// The device's single compute stream (non-blocking). Every lethe kernel, copy, cuBLAS and
// cuDNN call goes on it, so work is ordered by the stream alone and a CUDA-graph capture of
// the stream sees all of it. Created on first use.
cudaStream_t stream(int device);

// Makes `device` current for the scope and restores the previous device afterwards.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    LETHE_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) LETHE_CUDA_CHECK(cudaSetDevice(device));
    changed_ = previous_ != device;
  }
  // Restoring cannot fail for a device that was current a moment ago; a destructor must not
  // throw, so the status is ignored.
  ~DeviceGuard() {
    if (changed_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace lethe::cuda
