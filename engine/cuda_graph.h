#pragma once
// A piece of GPU work captured once as a CUDA graph and then replayed: one launch for all its
// kernels, so a small model's step costs no per-kernel launch overhead.
//
// The work must queue everything on the device's compute stream and must not wait for the GPU
// (no reads to the host, no synchronisation): capturing runs none of it. It reads and writes
// fixed addresses on every replay, so inputs are copied into tensors that outlive the graph, and
// what the work allocates while captured comes from a memory pool private to the graph (the
// caching allocator keeps those blocks for it until the graph is destroyed).
#include <functional>

namespace lethe {

namespace cuda {
struct Graph;
}

class CudaGraph {
 public:
  CudaGraph(int device, const std::function<void()>& work);  // captures; runs nothing
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void launch();  // queues one replay on the compute stream

 private:
  cuda::Graph* graph_ = nullptr;
};

}  // namespace lethe
