#include "nn/data/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace lethe::data {

Picture image_grid(const Tensor& images, int64_t columns, int64_t gap) {
  LETHE_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) &&
                  is_floating(images.dtype()) && images.size(0) > 0,
              "image_grid", "expects float images [N,1 or 3,H,W], N > 0, got ", images.str());
  LETHE_CHECK(columns > 0 && gap >= 0 && gap <= 64, "image_grid", "bad layout: ", columns, " columns, gap ", gap);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  Picture p;
  p.channels = static_cast<int>(c);
  p.width = cols * (w + gap) + gap;
  p.height = rows * (h + gap) + gap;
  LETHE_CHECK(p.width <= 1 << 15 && p.height <= 1 << 15, "image_grid", "a ", p.width, "×", p.height,
              " picture is too large (32768 a side at most)");
  p.pixels.assign(static_cast<size_t>(p.width * p.height * c), 0);
  const std::vector<double> v = images.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = gap + (i / cols) * (h + gap), left = gap + (i % cols) * (w + gap);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double value = v[static_cast<size_t>(((i * c + ch) * h + y) * w + x)];
          LETHE_CHECK(std::isfinite(value), "image_grid", "image ", i, " has a non-finite pixel (", value, ")");
          p.pixels[static_cast<size_t>(((top + y) * p.width + left + x) * c + ch)] =
              static_cast<uint8_t>(std::lround(std::clamp(value, 0.0, 1.0) * 255));
        }
  }
  return p;
}

std::string encode_png(const Picture& picture) {
  LETHE_CHECK((picture.channels == 1 || picture.channels == 3) && picture.width > 0 && picture.height > 0 &&
                  picture.pixels.size() == static_cast<size_t>(picture.width * picture.height * picture.channels),
              "png", "bad picture: ", picture.width, "×", picture.height, "×", picture.channels, " with ",
              picture.pixels.size(), " bytes");
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(picture.width);
  image.height = static_cast<png_uint_32>(picture.height);
  image.format = picture.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  // First call: the size; second: the bytes.
  png_alloc_size_t size = 0;
  const auto stride = static_cast<png_int_32>(picture.width * picture.channels);
  bool ok = png_image_write_to_memory(&image, nullptr, &size, 0, picture.pixels.data(), stride, nullptr) != 0;
  std::string bytes(ok ? size : 0, '\0');
  ok = ok && png_image_write_to_memory(&image, bytes.data(), &size, 0, picture.pixels.data(), stride, nullptr) != 0;
  const std::string why = image.message;
  png_image_free(&image);
  LETHE_CHECK(ok, "png", "libpng could not encode a ", picture.width, "×", picture.height, " picture: ", why);
  bytes.resize(size);
  return bytes;
}

}  // namespace lethe::data
