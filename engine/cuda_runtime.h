#pragma once
// The CUDA backend's runtime services, as seen from host code: allocation, copies, streams.
// Implemented in engine/cuda/ (the core layer: storage allocates through it); only called when
// LETHE_WITH_CUDA is defined.
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

// Graph pools: from begin_graph_pool until end_graph_pool, this thread's allocations on `device`
// come from a new pool private to the graph being captured, and the pool's blocks return to it
// when released, until retire_graph_pool hands them back to everyone.
int begin_graph_pool(int device);
void end_graph_pool();
void retire_graph_pool(int device, int pool);
// Whether the work queued on `device`'s compute stream is being captured into a CUDA graph
// (by any thread): such work runs nothing now, so it must not read back, synchronise or make
// per-call host decisions that a replay would freeze.
bool capturing(int device);

}  // namespace lethe::cuda

struct CUevent_st;  // the CUDA runtime's event type: cudaEvent_t is CUevent_st*

namespace lethe::cuda {

// Pinned (page-locked) host memory and events, in engine/cuda/pinned.cu: a host-to-device copy
// from pinned memory runs asynchronously on the compute stream, and an event recorded after it
// tells when the host may write that memory again, without waiting for the rest of the stream.
using Event = CUevent_st*;
void* allocate_pinned(size_t bytes);
void release_pinned(void* ptr);  // never throws
// Queues the copy on `device`'s compute stream and returns at once: `pinned_src` must keep its
// contents until an event recorded after the copy has completed.
void copy_to_device_async(void* dst, int device, const void* pinned_src, size_t bytes);
Event create_event(int device);
void destroy_event(Event event);  // waits for its work first; never throws
void record_event(Event event, int device);  // marks the work queued so far on the stream
void wait_event(Event event);  // blocks the host until that work has run

}  // namespace lethe::cuda
