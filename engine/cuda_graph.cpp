#include "engine/cuda_graph.h"

#include "engine/dispatch.h"

#if defined(LETHE_WITH_CUDA)
#include "kernels/graph.h"
#endif

namespace lethe {

#if defined(LETHE_WITH_CUDA)
CudaGraph::CudaGraph(int device, const std::function<void()>& work) : graph_(cuda::capture_graph(device, work)) {}
CudaGraph::~CudaGraph() { cuda::destroy_graph(graph_); }
void CudaGraph::launch() { cuda::launch_graph(graph_); }
#else
CudaGraph::CudaGraph(int, const std::function<void()>&) { detail::no_cuda("cuda graph"); }
CudaGraph::~CudaGraph() = default;
void CudaGraph::launch() { detail::no_cuda("cuda graph"); }
#endif

}  // namespace lethe
