#pragma once
// The CUDA backend's graph capture and replay (kernels/cuda/graph.cu), behind lethe::CudaGraph
// (engine/cuda_graph.h). Capturing creates the device's cuBLAS and cuDNN handles first, so it
// lives with the kernels that use them. Only called when LETHE_WITH_CUDA is defined.
#include <functional>

namespace lethe::cuda {

struct Graph;
Graph* capture_graph(int device, const std::function<void()>& work);
void launch_graph(Graph* graph);
void destroy_graph(Graph* graph);  // never throws

}  // namespace lethe::cuda
