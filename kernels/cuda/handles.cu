// The cuBLAS and cuDNN handles of each device, bound to its compute stream (engine/cuda/runtime.cu),
// created on first use.
#include <mutex>
#include <vector>

#include "kernels/cuda/common.cuh"

namespace lethe::cuda {

namespace {

// cuBLAS's recommended workspace on Hopper.
constexpr size_t kCublasWorkspace = size_t{32} << 20;

struct Handles {
  std::once_flag cublas_once, cudnn_once;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
};

// Leaked on purpose, like the runtime's device state: destroying handles after the CUDA runtime
// has begun shutting down at exit can crash, and the driver reclaims them.
Handles& handles(int device) {
  static auto* const all = new std::vector<Handles>(device_count());
  LETHE_CHECK(device >= 0 && device < static_cast<int>(all->size()), "cuda", "no device cuda:", device, " (",
              all->size(), " visible)");
  return (*all)[device];
}

}  // namespace

cublasHandle_t cublas(int device) {
  Handles& s = handles(device);
  std::call_once(s.cublas_once, [&] {
    DeviceGuard guard(device);
    const Cublas& lib = cublas_library();
    cublasHandle_t handle = nullptr;
    LETHE_CUBLAS_CHECK(lib.create(&handle));
    // cublasSetStream resets the workspace to cuBLAS's own pool, so the workspace comes after.
    LETHE_CUBLAS_CHECK(lib.set_stream(handle, stream(device)));
    LETHE_CUBLAS_CHECK(lib.set_math_mode(handle, CUBLAS_DEFAULT_MATH));
    LETHE_CUBLAS_CHECK(lib.set_workspace(handle, allocate(kCublasWorkspace, device), kCublasWorkspace));
    s.cublas = handle;
  });
  return s.cublas;
}

cudnnHandle_t cudnn(int device) {
  Handles& s = handles(device);
  std::call_once(s.cudnn_once, [&] {
    DeviceGuard guard(device);
    cudnnHandle_t handle = nullptr;
    LETHE_CUDNN_CHECK(cudnnCreate(&handle));
    LETHE_CUDNN_CHECK(cudnnSetStream(handle, stream(device)));
    s.cudnn = handle;
  });
  return s.cudnn;
}

}  // namespace lethe::cuda
