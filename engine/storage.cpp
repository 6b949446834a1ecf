#include "engine/storage.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/dispatch.h"
#include "engine/error.h"
#if defined(LETHE_WITH_CUDA)
#include "engine/cuda_runtime.h"
#endif

namespace lethe {

namespace {

// Host buffers are cached by exact (aligned) size: a training step allocates the same sizes
// every step, and reusing them skips the allocator's mmap/munmap of large blocks and the page
// faults of touching fresh pages, which otherwise cost as much as the arithmetic. Blocks are
// never split or shared; at most kCpuCacheLimit bytes wait in the cache (beyond that a released
// block goes back to the system), and cpu_empty_cache() returns all of them.
constexpr size_t kCpuCacheLimit = size_t{1} << 30;

class HostCache {
 public:
  static size_t block_size(size_t bytes) { return (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment; }

  void* allocate(size_t bytes) {
    const size_t size = block_size(bytes);
    {
      std::lock_guard lock(mutex_);
      if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
        return p;
      }
    }
    void* p = std::aligned_alloc(kCpuAlignment, size);
    LETHE_CHECK(p != nullptr, "storage", "out of host memory allocating ", bytes, " bytes");
    return p;
  }

  void release(void* p, size_t bytes) {
    const size_t size = block_size(bytes);
    {
      std::lock_guard lock(mutex_);
      if (cached_bytes_ + size <= kCpuCacheLimit) {
        free_[size].push_back(p);
        cached_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }

  void empty() {
    std::unordered_map<size_t, std::vector<void*>> blocks;
    {
      std::lock_guard lock(mutex_);
      blocks.swap(free_);
      cached_bytes_ = 0;
    }
    for (auto& [size, list] : blocks)
      for (void* p : list) std::free(p);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // block size -> free blocks
  size_t cached_bytes_ = 0;
};

// Leaked on purpose: tensors held by statics release into it during static destruction.
HostCache& host_cache() {
  static auto* const cache = new HostCache;
  return *cache;
}

}  // namespace

StorageImpl::StorageImpl(size_t n, Device dev) : bytes(n), device(dev) {
  if (n == 0) return;
  if (device.is_cpu()) {
    data = host_cache().allocate(n);
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
    host_cache().release(data, bytes);
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

void cpu_empty_cache() { host_cache().empty(); }

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
