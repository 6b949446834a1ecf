// The data launcher on CUDA: one thread per output pixel (grid-stride), reading the gathered
// uint8 batch that the loader copied over from pinned host memory.
#include "kernels/cuda/common.cuh"
#include "kernels/data.h"

namespace lethe::cuda {

namespace {

__global__ void augment_normalize_kernel(float* out, const uint8_t* images, const int32_t* crops,
                                         ImageGeometry g, PixelNorm norm, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = e / g.size(), k = e % g.size();
    const int64_t c = k / g.plane(), y = k % g.plane() / g.width, x = k % g.width;
    out[e] = cropped_pixel(g, images + b * g.size(), c, y, x, crop_at(crops, b), norm);
  }
}

}  // namespace

void augment_normalize(const Tensor& out, const Tensor& images, const Tensor& crops,
                       const ImageGeometry& g, const PixelNorm& norm) {
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  // Device pointers: Tensor::data<T>() is for host access only.
  const auto* crop = ptr_or_null<const int32_t>(crops);
  augment_normalize_kernel<<<grid_for(n), kThreads, 0, stream(out.device().index)>>>(
      static_cast<float*>(out.data_ptr()), static_cast<const uint8_t*>(images.data_ptr()), crop, g, norm, n);
  LETHE_CUDA_CHECK_LAUNCH();
}

}  // namespace lethe::cuda
