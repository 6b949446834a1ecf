// CUDA graphs: capture of the work queued on a device's compute stream, with the allocations
// made meanwhile served from a pool private to the graph (engine/cuda/runtime.cu), and replay.
#include <memory>

#include "kernels/cuda/common.cuh"
#include "kernels/graph.h"

namespace lethe::cuda {

struct Graph {
  int device = 0;
  int pool = 0;
  cudaGraphExec_t exec = nullptr;
};

namespace {

// Ends a capture that `work` left by throwing, discarding what was captured.
void abandon_capture(cudaStream_t s) {
  cudaGraph_t partial = nullptr;
  if (cudaStreamEndCapture(s, &partial) == cudaSuccess && partial != nullptr) cudaGraphDestroy(partial);
  cudaGetLastError();  // the failed capture's error is reported by the exception in flight
}

}  // namespace

Graph* capture_graph(int device, const std::function<void()>& work) {
  DeviceGuard guard(device);
  const cudaStream_t s = stream(device);
  // The library handles first: creating one (and cuBLAS's workspace) is not capturable work, and
  // the workspace must not land in the graph's private pool.
  (void)cublas(device);
  (void)cudnn(device);
  auto g = std::make_unique<Graph>();
  g->device = device;
  g->pool = begin_graph_pool(device);
  cudaGraph_t graph = nullptr;
  try {
    // Thread-local: a call on this thread that would break the capture (a synchronisation, a
    // host read) fails at once, naming itself, instead of leaving a graph that is wrong.
    LETHE_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    try {
      work();
    } catch (...) {
      abandon_capture(s);
      throw;
    }
    LETHE_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    end_graph_pool();
    const cudaError_t status = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
    LETHE_CUDA_CHECK(status);
  } catch (...) {
    end_graph_pool();
    retire_graph_pool(device, g->pool);
    throw;
  }
  return g.release();
}

void launch_graph(Graph* g) {
  DeviceGuard guard(g->device);
  LETHE_CUDA_CHECK(cudaGraphLaunch(g->exec, stream(g->device)));
}

void destroy_graph(Graph* g) {
  if (g == nullptr) return;
  {
    DeviceGuard guard(g->device);
    // Queued replays still use the executable graph and the pool.
    cudaStreamSynchronize(stream(g->device));
    cudaGraphExecDestroy(g->exec);
  }
  try {
    retire_graph_pool(g->device, g->pool);
  } catch (...) {  // a destructor's path: the blocks stay reserved, nothing is lost but memory
  }
  delete g;
}

}  // namespace lethe::cuda
