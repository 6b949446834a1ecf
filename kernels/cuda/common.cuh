#pragma once
// Shared by every .cu file of the CUDA backend: error checks that throw lethe::Error, the
// per-device compute stream and library handles, and launch helpers.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>

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
[[noreturn]] inline void fail(cublasStatus_t s, const char* expr, const char* file, int line) {
  throw Error(::lethe::detail::concat("cublas: ", expr, " failed: ", cublasGetStatusName(s), " (",
                                      cublasGetStatusString(s), ") at ", file, ":", line));
}
[[noreturn]] inline void fail(cudnnStatus_t s, const char* expr, const char* file, int line) {
  throw Error(::lethe::detail::concat("cudnn: ", expr, " failed: ", cudnnGetErrorString(s),
                                      " at ", file, ":", line));
}

}  // namespace lethe::cuda::detail

#define LETHE_CUDA_STATUS_CHECK_(expr, ok)                                     \
  do {                                                                         \
    const auto lethe_status_ = (expr);                                         \
    if (lethe_status_ != (ok))                                                 \
      ::lethe::cuda::detail::fail(lethe_status_, #expr, __FILE__, __LINE__);   \
  } while (0)

#define LETHE_CUDA_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, cudaSuccess)
#define LETHE_CUBLAS_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, CUBLAS_STATUS_SUCCESS)
#define LETHE_CUDNN_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, CUDNN_STATUS_SUCCESS)

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
// The device's cuBLAS handle, bound to stream(device): default math (no TF32, to match the
// fp32 CPU reference) and a fixed workspace from the caching allocator, so results are
// reproducible run to run.
cublasHandle_t cublas(int device);
// The device's cuDNN handle, bound to stream(device).
cudnnHandle_t cudnn(int device);

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

// Kernels use grid-stride loops over 64-bit indices, so the grid only needs to fill the GPU:
// 8192 blocks of 256 threads is several waves on an H200 (132 SMs × 2048 threads). At least
// one block, so a launch for n == 0 is still a valid configuration.
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, kMaxBlocks));
}

}  // namespace lethe::cuda
