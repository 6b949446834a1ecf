#pragma once
// Shared by every .cu file of the CUDA kernels: the runtime's checks, stream and device guard
// (engine/cuda/check.cuh), cuBLAS and cuDNN status checks and handles, and launch helpers.
#include <cublas_v2.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdint>

#include "engine/cuda/check.cuh"

namespace lethe::cuda {

// The cuBLAS entry points lethe calls, from the library loaded on first use (dlopen: linking it
// costs every process about 0.35 s at start; kernels/cuda/cublas_library.cu). Throws, naming the
// paths tried, where it cannot be loaded.
struct Cublas {
  decltype(&cublasCreate) create = nullptr;
  decltype(&cublasSetStream) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSetWorkspace) set_workspace = nullptr;
  decltype(&cublasSgemmStridedBatched) sgemm_strided_batched = nullptr;
  decltype(&cublasDgemmStridedBatched) dgemm_strided_batched = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};
const Cublas& cublas_library();

}  // namespace lethe::cuda

namespace lethe::cuda::detail {

[[noreturn]] inline void fail(cublasStatus_t s, const char* expr, const char* file, int line) {
  const Cublas& lib = cublas_library();  // loaded: a call returned this status
  throw Error(::lethe::detail::concat("cublas: ", expr, " failed: ", lib.status_name(s), " (",
                                      lib.status_string(s), ") at ", file, ":", line));
}
[[noreturn]] inline void fail(cudnnStatus_t s, const char* expr, const char* file, int line) {
  throw Error(::lethe::detail::concat("cudnn: ", expr, " failed: ", cudnnGetErrorString(s),
                                      " at ", file, ":", line));
}

}  // namespace lethe::cuda::detail

#define LETHE_CUBLAS_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, CUBLAS_STATUS_SUCCESS)
#define LETHE_CUDNN_CHECK(expr) LETHE_CUDA_STATUS_CHECK_(expr, CUDNN_STATUS_SUCCESS)

namespace lethe::cuda {

// The device's cuBLAS handle, bound to stream(device): default math (no TF32, to match the
// fp32 CPU reference) and a fixed workspace from the caching allocator, so results are
// reproducible run to run (kernels/cuda/handles.cu).
cublasHandle_t cublas(int device);
// The device's cuDNN handle, bound to stream(device).
cudnnHandle_t cudnn(int device);

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
