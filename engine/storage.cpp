#include "engine/storage.h"

#include <cstdlib>
#include <cstring>

#include "engine/dispatch.h"
#include "engine/error.h"
#if defined(LETHE_WITH_CUDA)
#include "engine/cuda_runtime.h"
#endif

namespace lethe {

StorageImpl::StorageImpl(size_t n, Device dev) : bytes(n), device(dev) {
  if (n == 0) return;
  if (device.is_cpu()) {
    const size_t rounded = (n + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    data = std::aligned_alloc(kCpuAlignment, rounded);
    LETHE_CHECK(data != nullptr, "storage", "out of host memory allocating ", n, " bytes");
    return;
  }
#if defined(LETHE_WITH_CUDA)
  LETHE_CHECK(device.index < cuda::device_count(), "storage", "no device ", device.str(), " (",
              cuda::device_count(), " visible)");
  data = cuda::allocate(n, device.index);
#else
  detail::no_cuda("storage");
#endif
}

StorageImpl::~StorageImpl() {
  if (data == nullptr) return;
  if (device.is_cpu()) {
    std::free(data);
    return;
  }
#if defined(LETHE_WITH_CUDA)
  cuda::release(data, bytes, device.index);
#endif
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if defined(LETHE_WITH_CUDA)
  cuda::copy(dst, dst_device, src, src_device, bytes);
#else
  detail::no_cuda("copy");
#endif
}

#if defined(LETHE_WITH_CUDA)
MemoryStats cuda_memory_stats(int device) { return cuda::memory_stats(device); }
void cuda_reset_peak_memory(int device) { cuda::reset_peak_memory(device); }
void cuda_empty_cache() { cuda::empty_cache(); }
void cuda_synchronize(int device) { cuda::synchronize(device); }
#else
MemoryStats cuda_memory_stats(int) { detail::no_cuda("cuda_memory_stats"); }
void cuda_reset_peak_memory(int) { detail::no_cuda("cuda_reset_peak_memory"); }
void cuda_empty_cache() {}
void cuda_synchronize(int) {}
#endif

}  // namespace lethe
