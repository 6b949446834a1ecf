#pragma once
// 2-d pooling launchers over NCHW tensors (all contiguous; planes = N·C).
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/pool.h"

#define LETHE_POOL_LAUNCHERS                                                                      \
  /* y [N,C,OH,OW] and argmax (int64, y's shape: index h·W + w within the plane) */              \
  void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolGeometry& g); \
  /* gx [N,C,H,W]: each gy element goes to its window's argmax */                                \
  void max_pool2d_backward(const Tensor& gy, const Tensor& argmax, const Tensor& gx, const PoolGeometry& g); \
  void avg_pool2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g);              \
  void avg_pool2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g);              \
  /* nearest upsampling (kernels/common/pool.h's upsample_value and upsample_grad) */            \
  void upsample_nearest2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g);      \
  void upsample_nearest2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g);

LETHE_DECLARE_LAUNCHERS(LETHE_POOL_LAUNCHERS)
