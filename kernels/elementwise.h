#pragma once
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/elementwise.h"
#include "kernels/common/layout.h"

#define LETHE_ELEMENTWISE_LAUNCHERS                                                             \
  /* y = op(x); x and y contiguous, same shape and dtype */                                     \
  void unary(UnaryOp op, const Tensor& x, const Tensor& y, UnaryParams p);                      \
  /* gx = dop(x, y, g); all contiguous */                                                       \
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g,            \
                      const Tensor& gx, UnaryParams p);                                         \
  /* out = op(a, b); out contiguous; a and b read through layouts broadcast to out's shape */   \
  void binary(BinaryOp op, const Tensor& a, const Layout& la, const Tensor& b, const Layout& lb, \
              const Tensor& out);

LETHE_DECLARE_LAUNCHERS(LETHE_ELEMENTWISE_LAUNCHERS)
