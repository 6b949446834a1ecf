// The CUDA backend's runtime, below the kernels: device discovery, the caching allocator, copies,
// graph pools and the per-device compute stream (engine/cuda/check.cuh). Storage allocates
// through it, so it is the core layer's; the cuBLAS and cuDNN handles are the kernels'
// (kernels/cuda/handles.cu).
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/cuda/check.cuh"
#include "engine/cuda_runtime.h"
#include "engine/device.h"

namespace lethe::cuda {
namespace {

// Rounding: requests up to 1 MiB round up to 512 B, larger ones to a multiple of 2 MiB. Few
// distinct sizes means the repeated shapes of a training loop find an exact fit in the cache.
// Blocks are never split; a cached block is reused whole, and only when it is at most a
// quarter larger than the rounded request, so a small tensor never pins a large block.
constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t{2} << 20;

size_t round_up(size_t bytes) {
  const size_t unit = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + unit - 1) / unit * unit;
}

using FreeBlocks = std::multimap<size_t, void*>;  // free blocks by size, for best fit

// A handed-out block: its size, and the graph pool it belongs to (0: none).
struct LiveBlock {
  size_t size = 0;
  int pool = 0;
};

struct DeviceState {
  std::mutex mutex;  // guards the allocator fields below
  FreeBlocks cached;
  std::unordered_map<void*, LiveBlock> live;
  // The private pools of captured CUDA graphs: the free blocks of each. A graph's replays write
  // the addresses its capture was given, so those blocks serve no one else while it exists.
  std::map<int, FreeBlocks> pools;
  int next_pool = 1;
  MemoryStats stats;

  std::once_flag stream_once;
  cudaStream_t stream = nullptr;
};

// Leaked on purpose, with every stream and block in it: tensors held by statics still
// release into the allocator during static destruction, and destroying CUDA objects after the
// runtime has begun shutting down at exit can crash. The driver reclaims all of it at exit.
DeviceState& state(int device) {
  static auto* const states = new std::vector<DeviceState>(device_count());
  LETHE_CHECK(device >= 0 && device < static_cast<int>(states->size()), "cuda", "no device cuda:",
              device, " (", states->size(), " visible)");
  return (*states)[device];
}

[[noreturn]] void out_of_memory(size_t bytes, int device, const MemoryStats& stats) {
  LETHE_FAIL("cuda", "out of memory allocating ", bytes, " bytes on cuda:", device, " (allocated ",
             stats.allocated_bytes, ", reserved ", stats.reserved_bytes, ")");
}

// The pool this thread's allocations on a device come from while it captures a graph.
struct Capturing {
  int device = -1;
  int pool = 0;
};
thread_local Capturing this_thread_capture;

int capture_pool(int device) { return this_thread_capture.device == device ? this_thread_capture.pool : 0; }

// Takes the best-fitting block of `blocks` for a rounded request, or returns nullptr.
void* take(FreeBlocks& blocks, size_t size, size_t& block) {
  const auto it = blocks.lower_bound(size);
  if (it == blocks.end() || it->first > size + size / 4) return nullptr;
  block = it->first;
  void* ptr = it->second;
  blocks.erase(it);
  return ptr;
}

// cudaFrees every cached block (not those of graph pools). Caller holds s.mutex.
void free_cached(int device, DeviceState& s) {
  if (s.cached.empty()) return;
  DeviceGuard guard(device);
  // A block released on the host may still be read or written by work queued on the stream.
  LETHE_CUDA_CHECK(cudaDeviceSynchronize());
  while (!s.cached.empty()) {
    const auto block = s.cached.extract(s.cached.begin());
    s.stats.reserved_bytes -= block.key();
    LETHE_CUDA_CHECK(cudaFree(block.mapped()));
  }
}

// A new block from the driver; on out-of-memory, returns the cache to the driver and tries once
// more. Caller holds s.mutex.
void* malloc_block(int device, DeviceState& s, size_t size, size_t requested) {
  DeviceGuard guard(device);
  void* ptr = nullptr;
  cudaError_t err = cudaSuccess;
  {
    // cudaMalloc is not a stream operation, so stream capture calls it unsafe; here it is safe:
    // the block goes to the capturing graph's pool, and the graph's nodes only name its address.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    LETHE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    err = cudaMalloc(&ptr, size);
    LETHE_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so later launch checks don't report it
    // Freeing the cache synchronizes the device, which a capture forbids.
    if (capture_pool(device) != 0) out_of_memory(requested, device, s.stats);
    free_cached(device, s);
    err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      out_of_memory(requested, device, s.stats);
    }
  }
  if (err != cudaSuccess) detail::fail(err, "cudaMalloc", __FILE__, __LINE__);
  s.stats.reserved_bytes += size;
  ++s.stats.device_allocations;
  return ptr;
}

}  // namespace

int device_count() {
  // No driver or no device is an error from the runtime; for lethe it just means 0 devices.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

// Zero-byte requests get nullptr, and release(nullptr) is a no-op.
void* allocate(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  const size_t size = round_up(bytes);
  if (size < bytes) out_of_memory(bytes, device, s.stats);  // rounding wrapped around

  // One stream per device: a block released on the host is free for the next work queued on
  // the stream, which runs after all earlier users of the block, so no event is needed. (A
  // graph is launched on that stream too.) While a graph is captured, its pool's free blocks
  // come first; a block taken from the shared cache or the driver joins the pool.
  const int pool = capture_pool(device);
  size_t block = size;
  void* ptr = pool != 0 ? take(s.pools.at(pool), size, block) : nullptr;
  if (ptr == nullptr) ptr = take(s.cached, size, block);
  if (ptr == nullptr) ptr = malloc_block(device, s, size, bytes);
  s.live.emplace(ptr, LiveBlock{block, pool});
  s.stats.allocated_bytes += block;
  s.stats.peak_allocated_bytes = std::max(s.stats.peak_allocated_bytes, s.stats.allocated_bytes);
  return ptr;
}

void release(void* ptr, size_t bytes, int device) {
  if (ptr == nullptr) return;
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  const auto it = s.live.find(ptr);
  LETHE_CHECK(it != s.live.end() && it->second.size >= bytes, "cuda",
              "release of a pointer that was not allocated on cuda:", device);
  const LiveBlock b = it->second;
  s.stats.allocated_bytes -= b.size;
  const auto pool = s.pools.find(b.pool);  // a retired pool's blocks go back to everyone
  (pool != s.pools.end() ? pool->second : s.cached).emplace(b.size, ptr);
  s.live.erase(it);
}

int begin_graph_pool(int device) {
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  LETHE_CHECK(this_thread_capture.pool == 0, "cuda graph", "this thread is already capturing a graph");
  const int pool = s.next_pool++;
  s.pools.emplace(pool, FreeBlocks{});
  this_thread_capture = {device, pool};
  return pool;
}

void end_graph_pool() { this_thread_capture = {}; }

void retire_graph_pool(int device, int pool) {
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  const auto it = s.pools.find(pool);
  if (it == s.pools.end()) return;
  // Replays already queued on the stream run before any later user of these blocks.
  s.cached.merge(it->second);
  s.pools.erase(it);
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  if (dst_device == src_device) {
    // Same device: ordered by the stream like any kernel, so it can stay asynchronous.
    DeviceGuard guard(dst_device.index);
    LETHE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                     stream(dst_device.index)));
    return;
  }
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    // Across devices the two streams are not ordered with each other; such copies are rare, so
    // draining the destination's stream first and waiting for the copy is simpler than events.
    cudaStream_t src_stream = stream(src_device.index);
    {
      DeviceGuard guard(dst_device.index);
      LETHE_CUDA_CHECK(cudaStreamSynchronize(stream(dst_device.index)));
    }
    DeviceGuard guard(src_device.index);
    LETHE_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, bytes,
                                         src_stream));
    LETHE_CUDA_CHECK(cudaStreamSynchronize(src_stream));
    return;
  }
  const int device = dst_device.is_cuda() ? dst_device.index : src_device.index;
  const cudaMemcpyKind kind =
      dst_device.is_cuda() ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  LETHE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
  // The caller reads (or reuses) the host buffer as soon as copy returns.
  LETHE_CUDA_CHECK(cudaStreamSynchronize(s));
}

MemoryStats memory_stats(int device) {
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  return s.stats;
}

void reset_peak_memory(int device) {
  DeviceState& s = state(device);
  std::lock_guard lock(s.mutex);
  s.stats.peak_allocated_bytes = s.stats.allocated_bytes;
}

void empty_cache() {
  for (int d = 0; d < device_count(); ++d) {
    DeviceState& s = state(d);
    std::lock_guard lock(s.mutex);
    free_cached(d, s);
  }
}

void synchronize(int device) {
  state(device);  // validates the index
  DeviceGuard guard(device);
  LETHE_CUDA_CHECK(cudaDeviceSynchronize());
}

cudaStream_t stream(int device) {
  DeviceState& s = state(device);
  std::call_once(s.stream_once, [&] {
    DeviceGuard guard(device);
    // Non-blocking: no implicit ordering with the legacy default stream, which lethe never uses.
    LETHE_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  });
  return s.stream;
}

bool capturing(int device) {
  DeviceGuard guard(device);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  LETHE_CUDA_CHECK(cudaStreamIsCapturing(stream(device), &status));
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace lethe::cuda

namespace lethe {

bool cuda_available() { return cuda::device_count() > 0; }
int cuda_device_count() { return cuda::device_count(); }

}  // namespace lethe
