#pragma once
// One output row of a 2×2, stride-2 max-pool on the CPU, from its two input rows: max_pool2d's
// path for MaxPool2d(2) (kernels/cpu/pool.cpp) and the fused convolution epilogue's
// (kernels/cpu/conv.cpp), so both take the same values in the same order (max_2x2's).
#include <cstdint>

#include "kernels/common/pool.h"

namespace lethe::cpu {

// y[ow] = the maximum of top[2ow], top[2ow + 1], bottom[2ow], bottom[2ow + 1] for ow < out_w and,
// with `index`, where it lies in the plane: top[0] is plane element `at`, bottom[0] is `at + width`.
template <class T>
void max_pool_2x2_row(const T* top, const T* bottom, int64_t out_w, T* y, int64_t* index, int64_t at, int64_t width) {
  if (index == nullptr) {  // no argmax to track: a loop the compiler vectorises
    for (int64_t ow = 0; ow < out_w; ++ow) y[ow] = max_2x2(top[2 * ow], top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1]);
    return;
  }
  for (int64_t ow = 0; ow < out_w; ++ow)
    y[ow] = max_2x2(top[2 * ow], top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1], at + 2 * ow, width, &index[ow]);
}

}  // namespace lethe::cpu
