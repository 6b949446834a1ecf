#pragma once
// Per-pixel math of the data pipeline, shared by the CPU and CUDA launchers: a uint8 pixel to a
// normalised float, and which input pixel an output pixel of a randomly cropped (with zero
// padding) and horizontally flipped image comes from, as torchvision's
// RandomCrop(size, padding) followed by RandomHorizontalFlip computes it.
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace lethe {

inline constexpr int kMaxImageChannels = 4;

// Per-channel mean and standard deviation on the [0, 1] pixel scale.
struct PixelNorm {
  float mean[kMaxImageChannels];
  float std[kMaxImageChannels];
};

// (v/255 − mean) / std in float32: the operations of ToTensor + Normalize, in their order, so
// the result is the same bits as data::normalize_images gives.
LETHE_HD float normalize_pixel(uint8_t v, float mean, float stddev) {
  return (static_cast<float>(v) / 255.0f - mean) / stddev;
}

struct ImageGeometry {
  int64_t channels = 0, height = 0, width = 0;
  LETHE_HD int64_t plane() const { return height * width; }
  LETHE_HD int64_t size() const { return channels * height * width; }
};

// One sample's augmentation: the crop window starts (dy, dx) away from the unpadded image's
// corner, each in [−padding, padding]; flip mirrors the cropped image left to right.
struct Crop {
  int32_t dy = 0, dx = 0, flip = 0;
};

// Sample b's crop in an int32 [B,3] array of (dy, dx, flip) rows; none where there is no array.
LETHE_HD Crop crop_at(const int32_t* crops, int64_t b) {
  return crops == nullptr ? Crop{} : Crop{crops[3 * b], crops[3 * b + 1], crops[3 * b + 2]};
}

// The crop of the sample with key `key` from one Philox block of (seed, stream): lanes 0 and 1
// place the window (multiply-shift, uniform over the 2·padding + 1 positions), lane 2's top bit
// decides the flip.
LETHE_HD Crop draw_crop(uint64_t seed, uint64_t stream, uint64_t key, int32_t padding, bool flip) {
  const philox::Block r = philox::random4(seed, stream, key);
  const uint64_t positions = 2 * static_cast<uint64_t>(padding) + 1;
  return {static_cast<int32_t>((r.v[0] * positions) >> 32) - padding,
          static_cast<int32_t>((r.v[1] * positions) >> 32) - padding,
          flip ? static_cast<int32_t>(r.v[2] >> 31) : 0};
}

// Output pixel (c, y, x) of `image` (uint8 CHW) under `crop`: it shows input pixel
// (c, y + dy, x' + dx) with x' = W−1−x when flipped, else x; outside the image it shows the zero
// padding, normalised like any pixel.
LETHE_HD float cropped_pixel(const ImageGeometry& g, const uint8_t* image, int64_t c, int64_t y,
                             int64_t x, Crop crop, const PixelNorm& norm) {
  const int64_t sy = y + crop.dy, sx = (crop.flip ? g.width - 1 - x : x) + crop.dx;
  const bool inside = sy >= 0 && sy < g.height && sx >= 0 && sx < g.width;
  const uint8_t v = inside ? image[c * g.plane() + sy * g.width + sx] : uint8_t{0};
  return normalize_pixel(v, norm.mean[c], norm.std[c]);
}

}  // namespace lethe
