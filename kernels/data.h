#pragma once
// The data pipeline's launcher: a gathered batch of uint8 images to normalised, optionally
// cropped and flipped float32 images (the per-pixel math is in kernels/common/data.h).
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/data.h"

#define LETHE_DATA_LAUNCHERS                                                                    \
  /* out float32 [B,C,H,W] from images uint8 [B,C,H,W]; crops int32 [B,3] (dy, dx, flip per   \
     sample) or undefined for none. All contiguous, on out's device. */                         \
  void augment_normalize(const Tensor& out, const Tensor& images, const Tensor& crops,          \
                         const ImageGeometry& g, const PixelNorm& norm);

LETHE_DECLARE_LAUNCHERS(LETHE_DATA_LAUNCHERS)
