// The CUDA runtime layer: device count, the caching allocator and its statistics, copies, CUDA
// graphs (each check a recorded skip without a device).
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "engine/cuda_graph.h"
#include "engine/cuda_runtime.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "harness.h"
#if defined(LETHE_WITH_CUDA)
#include "kernels/cuda/common.cuh"
#endif

TEST_CASE("cuda: availability agrees with the device count and never throws") {
  bool available = true;
  int count = -1;
  CHECK_NOTHROW(available = lethe::cuda_available());
  CHECK_NOTHROW(count = lethe::cuda_device_count());
  CHECK(available == (count > 0));
  if (!available) CHECK(count == 0);
#if defined(LETHE_WITH_CUDA)
  CHECK(lethe::cuda::device_count() == count);
#endif
}

#if defined(LETHE_WITH_CUDA)

namespace {

// Whether a library whose file name contains `name` is mapped into this process.
bool mapped(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find(name) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("cuda: cuBLAS is loaded on first use, not at start, and every entry point lethe calls resolves") {
  // Linked, libcublasLt's constructors cost every process about 0.35 s at start. Without a device
  // nothing before this test uses cuBLAS (with one, an earlier test of this process may have).
  if (!lethe::cuda_available()) CHECK_FALSE(mapped("libcublas"));
  const lethe::cuda::Cublas& lib = lethe::cuda::cublas_library();
  CHECK(mapped("libcublas.so"));
  for (const void* fn : {reinterpret_cast<const void*>(lib.create), reinterpret_cast<const void*>(lib.set_stream),
                         reinterpret_cast<const void*>(lib.set_math_mode), reinterpret_cast<const void*>(lib.set_workspace),
                         reinterpret_cast<const void*>(lib.sgemm_strided_batched),
                         reinterpret_cast<const void*>(lib.dgemm_strided_batched),
                         reinterpret_cast<const void*>(lib.status_name), reinterpret_cast<const void*>(lib.status_string)})
    CHECK(fn != nullptr);
  CHECK(std::string(lib.status_name(CUBLAS_STATUS_NOT_INITIALIZED)) == "CUBLAS_STATUS_NOT_INITIALIZED");
}

TEST_CASE("cuda: allocate and release update the stats and reuse cached blocks") {
  if (!lethe::test::cuda_or_skip("CUDA allocator stats and cache")) return;
  namespace cuda = lethe::cuda;
  CHECK(cuda::allocate(0, 0) == nullptr);
  cuda::release(nullptr, 0, 0);

  for (size_t bytes : {size_t{1000}, size_t{3} << 20}) {
    CAPTURE(bytes);
    const lethe::MemoryStats before = cuda::memory_stats(0);
    void* p = cuda::allocate(bytes, 0);
    REQUIRE(p != nullptr);
    const lethe::MemoryStats held = cuda::memory_stats(0);
    CHECK(held.allocated_bytes >= before.allocated_bytes + bytes);
    CHECK(held.reserved_bytes >= held.allocated_bytes);
    cuda::release(p, bytes, 0);
    CHECK(cuda::memory_stats(0).allocated_bytes == before.allocated_bytes);

    // The steady state of a training loop: the same size again comes from the cache.
    void* q = cuda::allocate(bytes, 0);
    CHECK(cuda::memory_stats(0).device_allocations == held.device_allocations);
    cuda::release(q, bytes, 0);
  }
}

TEST_CASE("cuda: host to device to host copies preserve the bytes") {
  if (!lethe::test::cuda_or_skip("host/device copies")) return;
  namespace cuda = lethe::cuda;
  const size_t bytes = (size_t{1} << 20) + 3;
  std::vector<uint8_t> host(bytes), back(bytes, 0);
  for (size_t i = 0; i < bytes; ++i) host[i] = static_cast<uint8_t>(i * 131 + 7);

  const lethe::Device gpu = lethe::Device::cuda(0), cpu = lethe::Device::cpu();
  void* a = cuda::allocate(bytes, 0);
  void* b = cuda::allocate(bytes, 0);
  cuda::copy(a, gpu, host.data(), cpu, bytes);
  cuda::copy(b, gpu, a, gpu, bytes);  // asynchronous, ordered before the next copy by the stream
  cuda::copy(back.data(), cpu, b, gpu, bytes);
  CHECK(back == host);
  cuda::release(a, bytes, 0);
  cuda::release(b, bytes, 0);
}

TEST_CASE("cuda: reset_peak_memory lowers the peak to what is allocated now") {
  if (!lethe::test::cuda_or_skip("CUDA peak memory reset")) return;
  namespace cuda = lethe::cuda;
  const size_t bytes = size_t{8} << 20;
  void* p = cuda::allocate(bytes, 0);
  cuda::release(p, bytes, 0);
  const lethe::MemoryStats s = cuda::memory_stats(0);
  CHECK(s.peak_allocated_bytes >= s.allocated_bytes + bytes);
  cuda::reset_peak_memory(0);
  CHECK(cuda::memory_stats(0).peak_allocated_bytes == s.allocated_bytes);
}

TEST_CASE("cuda: an impossible allocation throws lethe::Error") {
  if (!lethe::test::cuda_or_skip("CUDA out-of-memory error")) return;
  CHECK_THROWS_WITH_AS(lethe::cuda::allocate(size_t{1} << 50, 0),
                       doctest::Contains("cuda: out of memory allocating"), lethe::Error);
  // The allocator still works afterwards.
  void* p = lethe::cuda::allocate(4096, 0);
  CHECK(p != nullptr);
  lethe::cuda::release(p, 4096, 0);
}

TEST_CASE("cuda graph: a replay computes what the captured work computes, on the inputs' new values") {
  using lethe::Tensor;
  if (!lethe::test::cuda_or_skip("CUDA graph replay")) return;
  const lethe::Device cuda = lethe::Device::cuda();
  Tensor x = Tensor::from_vector(std::vector<float>{-1, 0, 2, 3}, {4}).to(cuda);
  Tensor y = Tensor::zeros({4}, lethe::DType::f32, cuda);
  // Temporaries are allocated inside the capture: they come from the graph's pool.
  lethe::CudaGraph graph(0, [&] { y.copy_(lethe::relu(x * 2.0 + 1.0) * x); });
  CHECK(y.to(lethe::Device::cpu()).to_vector<float>() == std::vector<float>{0, 0, 0, 0});  // capture runs nothing
  for (const float v : {1.0f, -2.0f}) {
    x.copy_(Tensor::full({4}, v, lethe::DType::f32, lethe::Device::cpu()));
    // Tensors allocated between replays must never share a block with the graph's temporaries.
    Tensor bystander = Tensor::full({4}, 7, lethe::DType::f32, cuda);
    graph.launch();
    const float want = std::max(0.0f, v * 2 + 1) * v;
    CHECK(y.to(lethe::Device::cpu()).to_vector<float>() == std::vector<float>(4, want));
    CHECK(bystander.to(lethe::Device::cpu()).to_vector<float>() == std::vector<float>(4, 7));
  }
}

TEST_CASE("cuda graph: work that reads back to the host cannot be captured, and the stream still works") {
  using lethe::Tensor;
  if (!lethe::test::cuda_or_skip("CUDA graph capture errors")) return;
  const lethe::Device cuda = lethe::Device::cuda();
  const Tensor x = Tensor::ones({4}, lethe::DType::f32, cuda);
  CHECK_THROWS_AS(lethe::CudaGraph(0, [&] { (void)(x + 1.0).to(lethe::Device::cpu()); }), lethe::Error);
  CHECK((x + 1.0).to(lethe::Device::cpu()).to_vector<float>() == std::vector<float>(4, 2));
}

TEST_CASE("cuda graph: a process's first cuBLAS call can be captured (the handles are made before)") {
  using lethe::Tensor;
  if (!lethe::test::cuda_or_skip("CUDA graph handle warm-up")) return;
  // ctest runs each case in its own process: here the capture is the first use of cuBLAS.
  const lethe::Device cuda = lethe::Device::cuda();
  const Tensor a = Tensor::ones({8, 8}, lethe::DType::f32, cuda);
  Tensor y = Tensor::zeros({8, 8}, lethe::DType::f32, cuda);
  lethe::CudaGraph graph(0, [&] { y.copy_(lethe::matmul(a, a)); });
  graph.launch();
  CHECK(y.to(lethe::Device::cpu()).to_vector<float>() == std::vector<float>(64, 8));
}

TEST_CASE("cuda graph: dropout and an unplanned convolution refuse to be captured") {
  using lethe::Tensor;
  if (!lethe::test::cuda_or_skip("CUDA graph refusals")) return;
  const lethe::Device cuda = lethe::Device::cuda();
  const Tensor x = Tensor::ones({2, 3, 8, 8}, lethe::DType::f32, cuda);
  const Tensor w = Tensor::ones({4, 3, 3, 3}, lethe::DType::f32, cuda);
  lethe::Conv2dOptions same;
  same.pad_h = same.pad_w = 1;
  CHECK_THROWS_WITH_AS(lethe::CudaGraph(0, [&] { (void)lethe::dropout(x, 0.5, true, 1, 0); }),
                       doctest::Contains("dropout: cannot be captured"), lethe::Error);
  CHECK_THROWS_WITH_AS(lethe::CudaGraph(0, [&] { (void)lethe::conv2d(x, w, Tensor(), same); }),
                       doctest::Contains("run the work once eagerly first"), lethe::Error);
  // Once run eagerly, the same convolution captures and replays its eager result.
  const Tensor eager = lethe::conv2d(x, w, Tensor(), same);
  Tensor y = Tensor::zeros(eager.shape(), lethe::DType::f32, cuda);
  lethe::CudaGraph graph(0, [&] { y.copy_(lethe::conv2d(x, w, Tensor(), same)); });
  graph.launch();
  CHECK(y.to(lethe::Device::cpu()).to_vector<float>() == eager.to(lethe::Device::cpu()).to_vector<float>());
}

TEST_CASE("cuda graph: a destroyed graph's pool goes back to the cache, which can be freed") {
  using lethe::Tensor;
  if (!lethe::test::cuda_or_skip("CUDA graph pool reclaim")) return;
  const lethe::Device cuda = lethe::Device::cuda();
  const Tensor x = Tensor::ones({1 << 20}, lethe::DType::f32, cuda);
  Tensor y = Tensor::zeros({1 << 20}, lethe::DType::f32, cuda);
  // A process's first capture makes the library handles, and cuBLAS's workspace (32 MiB) stays
  // reserved with them: made before the measurement, it is not counted as the graph's.
  { lethe::CudaGraph first(0, [&] { y.copy_(x); }); }
  lethe::cuda_empty_cache();
  const size_t before = lethe::cuda_memory_stats().reserved_bytes;
  {
    // 4 MiB temporaries from the graph's private pool, held while the graph lives.
    lethe::CudaGraph graph(0, [&] { y.copy_((x * 2.0) + 1.0); });
    graph.launch();
    lethe::cuda_empty_cache();
    CHECK(lethe::cuda_memory_stats().reserved_bytes > before);
  }
  // Retired: what out-of-memory recovery and empty_cache free.
  lethe::cuda_empty_cache();
  CHECK(lethe::cuda_memory_stats().reserved_bytes == before);
}

#endif
