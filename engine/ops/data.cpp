// augment_normalize: the data pipeline's batch of uint8 images to normalised float32 images,
// optionally cropped and flipped per sample (kernels/data.h; the per-pixel math is
// kernels/common/data.h). Not differentiable: it makes a model's inputs.
#include "engine/ops.h"
#include "kernels/data.h"

namespace lethe {

Tensor augment_normalize(const Tensor& images, const Tensor& crops, const PixelNorm& norm) {
  const char* op = "augment_normalize";
  LETHE_CHECK(images.defined() && images.dtype() == DType::u8 && images.dim() == 4 && images.is_contiguous(), op,
              "images must be contiguous uint8 [B,C,H,W], got ", images.str());
  LETHE_CHECK(images.size(1) <= kMaxImageChannels, op, "images ", images.str(), " have more than ",
              kMaxImageChannels, " channels");
  const Device device = images.device();
  const int64_t batch = images.size(0);
  LETHE_CHECK(!crops.defined() || (crops.dtype() == DType::i32 && crops.shape() == Shape{batch, 3} &&
                                   crops.is_contiguous() && crops.device() == device),
              op, "crops is ", crops.str(), ", expected a contiguous int32[", batch, ",3] on ", device.str(),
              " or none");
  Tensor out = Tensor::empty(images.shape(), DType::f32, device);
  LETHE_DISPATCH(device, augment_normalize, out, images, crops,
                 ImageGeometry{images.size(1), images.size(2), images.size(3)}, norm);
  return out;
}

}  // namespace lethe
