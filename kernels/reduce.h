#pragma once
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/reduce.h"

#define LETHE_REDUCE_LAUNCHERS                                                                 \
  /* x contiguous, viewed as [outer, k, inner]; out [outer, inner] (x's dtype) */              \
  void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t k, int64_t inner,           \
              const Tensor& out);                                                              \
  /* x contiguous, viewed as [outer, k]; out [outer] int64: index of the first maximum */      \
  void argmax_rows(const Tensor& x, int64_t outer, int64_t k, const Tensor& out);

LETHE_DECLARE_LAUNCHERS(LETHE_REDUCE_LAUNCHERS)
