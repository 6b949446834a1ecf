#include "kernels/data.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

void augment_normalize(const Tensor& out, const Tensor& images, const Tensor& crops,
                       const ImageGeometry& g, const PixelNorm& norm) {
  const int64_t image = g.size();
  if (out.numel() == 0) return;
  float* dst = out.data<float>();
  const uint8_t* src = images.data<uint8_t>();
  const int32_t* crop = crops.defined() ? crops.data<int32_t>() : nullptr;
  parallel_for(out.size(0), grain_for(image), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const uint8_t* in = src + b * image;
      const Crop sample_crop = crop_at(crop, b);
      for (int64_t c = 0; c < g.channels; ++c) {
        float* o = dst + b * image + c * g.plane();
        if (crop == nullptr) {  // the hot path: a straight loop the compiler vectorises
          const uint8_t* i = in + c * g.plane();
          const float mean = norm.mean[c], stddev = norm.std[c];  // locals: o cannot alias them
          for (int64_t k = 0; k < g.plane(); ++k) o[k] = normalize_pixel(i[k], mean, stddev);
        } else {
          for (int64_t y = 0; y < g.height; ++y)
            for (int64_t x = 0; x < g.width; ++x) o[y * g.width + x] = cropped_pixel(g, in, c, y, x, sample_crop, norm);
        }
      }
    }
  });
}

}  // namespace lethe::cpu
