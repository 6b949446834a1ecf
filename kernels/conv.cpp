// Which implementation CUDA convolutions use (kernels/conv.h): one process-wide setting of the
// kernels, read by kernels/cuda/conv.cu at each launch.
#include <atomic>

#include "kernels/conv.h"

namespace lethe {

namespace {
std::atomic<ConvBackend> g_conv_backend{ConvBackend::cudnn};
}

void set_conv_backend(ConvBackend backend) { g_conv_backend.store(backend); }
ConvBackend conv_backend() { return g_conv_backend.load(); }

}  // namespace lethe
