#pragma once
// The CUDA backend's runtime services, as seen from host code: allocation, copies, streams.
// Implemented in kernels/cuda/runtime.cu; only called when LETHE_WITH_CUDA is defined.
#include <cstddef>

#include "engine/storage.h"

namespace lethe::cuda {

int device_count();
void* allocate(size_t bytes, int device);
void release(void* ptr, size_t bytes, int device);
// dst/src may each be host or device memory. A copy that involves the host has completed when
// this returns; a device-to-device copy on one device is queued on the compute stream, which
// orders it before any later kernel.
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
MemoryStats memory_stats(int device);
void reset_peak_memory(int device);
void empty_cache();
void synchronize(int device);

}  // namespace lethe::cuda
