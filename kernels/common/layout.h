#pragma once
// Layout: the extents and element strides of one operand, as a plain struct that can be passed
// by value to a CUDA kernel. offset_of maps a row-major linear index of the (output) shape to the
// operand's element offset; a stride of 0 broadcasts.
#include <cstdint>

#include "kernels/common/hd.h"

namespace lethe {

inline constexpr int kLayoutDims = 6;

struct Layout {
  int rank = 0;
  int64_t size[kLayoutDims] = {};
  int64_t stride[kLayoutDims] = {};

  LETHE_HD int64_t offset_of(int64_t linear) const {
    int64_t off = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = linear % size[d];
      linear /= size[d];
      off += i * stride[d];
    }
    return off;
  }
};

}  // namespace lethe
