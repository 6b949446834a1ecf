#pragma once
// Launchers that move and create data: strided copies with dtype conversion, fills, ranges and
// Philox random fills. `dst` is written in its own layout (any strides).
#include <cstdint>

#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/layout.h"

#define LETHE_COPY_LAUNCHERS                                                                \
  /* dst[i] = convert(src[i]); src is read through `src_layout` (already broadcast to dst's \
     shape); both on dst's device. */                                                       \
  void copy_strided(const Tensor& dst, const Tensor& src, const Layout& src_layout);       \
  void fill(const Tensor& dst, double value);                                               \
  /* contiguous dst: dst[i] = start + i·step */                                             \
  void arange(const Tensor& dst, double start, double step);                                \
  /* contiguous floating dst: Philox uniform [0,1) or normal, element i from (seed, stream, i) */ \
  void random_uniform(const Tensor& dst, uint64_t seed, uint64_t stream);                  \
  void random_normal(const Tensor& dst, uint64_t seed, uint64_t stream);

LETHE_DECLARE_LAUNCHERS(LETHE_COPY_LAUNCHERS)
