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

namespace lethe::cpu {
// The op conv2d_relu_max_pool2 on the CPU (CUDA runs conv2d, relu and max_pool2d). Forward:
// y [N,O,OH/2,OW/2] = max_pool2d(relu(conv2d(x, w) + bias), 2) and, when defined, argmax (int64,
// y's shape: the index h·OW + w in the convolution's output plane), bitwise those ops' values, each
// image's convolution output kept in cache. Backward: gz [N,O,OH,OW], the gradient of the
// convolution's output, from gy (y's shape), y and argmax.
void conv2d_relu_max_pool2_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                                   const Tensor& argmax, const ConvGeometry& g);
void relu_max_pool2_backward(const Tensor& gy, const Tensor& y, const Tensor& argmax, const Tensor& gz,
                             const ConvGeometry& g);
}  // namespace lethe::cpu
