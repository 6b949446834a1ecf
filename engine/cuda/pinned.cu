// Pinned host memory, asynchronous host-to-device copies and events (declared in
// engine/cuda_runtime.h): what the data loader needs to overlap its copies with compute.
#include "engine/cuda/check.cuh"

namespace lethe::cuda {

void* allocate_pinned(size_t bytes) {
  void* ptr = nullptr;
  if (bytes > 0) LETHE_CUDA_CHECK(cudaMallocHost(&ptr, bytes));
  return ptr;
}

// Called from destructors: a failure can only be reported as a sticky error later.
void release_pinned(void* ptr) {
  if (ptr != nullptr) (void)cudaFreeHost(ptr);
}

void copy_to_device_async(void* dst, int device, const void* pinned_src, size_t bytes) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  LETHE_CUDA_CHECK(cudaMemcpyAsync(dst, pinned_src, bytes, cudaMemcpyHostToDevice, stream(device)));
}

Event create_event(int device) {
  DeviceGuard guard(device);
  cudaEvent_t event = nullptr;
  LETHE_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}

void destroy_event(Event event) {
  if (event == nullptr) return;
  (void)cudaEventSynchronize(event);
  (void)cudaEventDestroy(event);
}

void record_event(Event event, int device) {
  DeviceGuard guard(device);
  LETHE_CUDA_CHECK(cudaEventRecord(event, stream(device)));
}

void wait_event(Event event) { LETHE_CUDA_CHECK(cudaEventSynchronize(event)); }

}  // namespace lethe::cuda
