#pragma once
// conv2d launchers: on the CPU im2col + GEMM, or implicit GEMMs on lethe's AVX-512 sgemm
// (kernels/cpu/conv.cpp); cuDNN or im2col + cuBLAS on CUDA.
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/conv.h"

namespace lethe {

// Which implementation CUDA convolutions use (the CPU chooses by the GEMM path, kernels/cpu/conv.cpp).
// Both are deterministic; cudnn is the default, im2col is lethe's own and is there to compare.
enum class ConvBackend { cudnn, im2col };
void set_conv_backend(ConvBackend backend);
ConvBackend conv_backend();

}  // namespace lethe

#define LETHE_CONV_LAUNCHERS                                                                     \
  /* y [N,O,OH,OW] = conv(x [N,C,H,W], w [O,C/groups,kh,kw]) + bias [O] (bias may be undefined); \
     all contiguous, one floating dtype. */                                                      \
  void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,     \
                      const ConvGeometry& g);                                                    \
  /* From gy (contiguous, y's shape): gx (x's shape) and gw (w's shape), each written only when  \
     defined. */                                                                                 \
  void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,     \
                       const Tensor& gw, const ConvGeometry& g);

LETHE_DECLARE_LAUNCHERS(LETHE_CONV_LAUNCHERS)
