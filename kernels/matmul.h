#pragma once
// Batched GEMM launchers (OpenBLAS on the CPU, cuBLAS on CUDA).
#include <cstdint>

#include "engine/dispatch.h"
#include "engine/tensor.h"

#define LETHE_MATMUL_LAUNCHERS                                                                     \
  /* For each i < batch, row-major C_i = op(A_i)·op(B_i) + beta·C_i (beta 0 or 1), where A_i      \
     starts at a.data_ptr() + i·stride_a (likewise B_i, C_i), op(A_i) is [m,k], op(B_i) [k,n],   \
     C_i [m,n]; a transposed operand is stored as its transpose with leading dim lda / ldb.      \
     A stride of 0 reuses one matrix for the whole batch (inputs only). a, b, c share one        \
     floating dtype and device; m, n, k > 0. */                                                   \
  void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,   \
                    const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb, \
                    int64_t stride_b, const Tensor& c, int64_t ldc, int64_t stride_c, double beta);

LETHE_DECLARE_LAUNCHERS(LETHE_MATMUL_LAUNCHERS)
