#pragma once
// Storage: one owned buffer on one device, shared by every tensor that views it.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/device.h"

namespace lethe {

struct StorageImpl {
  StorageImpl(size_t bytes, Device device);
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  // Bumped by every in-place write, so autograd can tell that a tensor it saved was overwritten.
  uint64_t version = 0;
};
using Storage = std::shared_ptr<StorageImpl>;

// CPU buffers are 64-byte aligned (a cache line; AVX-512 loads) and come from a cache of
// released blocks of the same size (engine/storage.cpp); CUDA buffers come from the caching
// allocator in engine/cuda/runtime.cu.
inline constexpr size_t kCpuAlignment = 64;
// Returns the CPU buffers the cache holds (not those of live tensors) to the system.
void cpu_empty_cache();

// Copies `bytes` between any two devices. Host memory involved: complete on return. Device to
// same device: ordered on the compute stream like every kernel.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

struct MemoryStats {
  size_t allocated_bytes = 0;  // held by live tensors
  size_t reserved_bytes = 0;   // held by the caching allocator, live or cached
  size_t peak_allocated_bytes = 0;
  uint64_t device_allocations = 0;  // cudaMalloc calls so far (steady state: no new ones)
};
MemoryStats cuda_memory_stats(int device = 0);
void cuda_reset_peak_memory(int device = 0);
void cuda_empty_cache();
void cuda_synchronize(int device = 0);

}  // namespace lethe
