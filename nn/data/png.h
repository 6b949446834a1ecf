#pragma once
// Pictures of images as PNG files (libpng's simplified API): generator samples, as a grid.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace lethe::data {

// 8-bit pixels, rows top to bottom, `channels` interleaved (1: gray, 3: RGB).
struct Picture {
  std::vector<uint8_t> pixels;
  int64_t width = 0, height = 0;
  int channels = 1;
};

// images [N,C,H,W] (C = 1 or 3, pixels in [0, 1]; any device, float32/float64) as one picture:
// `columns` tiles a row, in order, `gap` black pixels between tiles and around them. Values are
// clamped to [0, 1] and rounded to v·255; a non-finite pixel is an error naming the image.
Picture image_grid(const Tensor& images, int64_t columns, int64_t gap = 2);

// The PNG file's bytes.
std::string encode_png(const Picture& picture);

}  // namespace lethe::data
