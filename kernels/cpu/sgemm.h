#pragma once
// lethe's own float32 GEMM, one kernel per vector instruction set (AVX2 + FMA, AVX-512), used by
// blas::gemm<float> in place of OpenBLAS's sgemm where it runs (kernels/cpu/blas.h says which runs
// when). Why: this machine family forces OpenBLAS onto its AVX2 (Haswell) kernels through
// OPENBLAS_CORETYPE, since old OpenBLAS builds misbehave with their AVX-512 kernels on current
// CPUs; lethe's kernels are ours to test, they read their operands in place (so convolutions run as
// implicit GEMMs, below), and the convolutions, almost all of a small CNN's time, are GEMMs.
//
// Every element of C is computed by one fixed sequence of fused multiply-adds and adds, chosen by
// the transposes and the sizes alone: the result depends on neither the thread count nor how the
// work is split, and it is the same on every instruction set (the kernels share one source,
// kernels/cpu/sgemm_kernel.h, whose lanes are independent and whose dot products sum the same
// 16-wide chunks in the same order).
#include <cstdint>

#include "kernels/cpu/blas.h"

namespace lethe::cpu {

inline constexpr int64_t kSgemmKBlock = 256;

// Row-major C = alpha·op(A)·op(B) + beta·C on lethe's kernel `kernel` (avx2 or avx512, one this CPU
// has: else a lethe::Error), with blas::gemm's conventions (op(A) [m,k], op(B) [k,n], a transposed
// operand stored as its transpose). beta == 0 never reads C. Parallel over blocks of rows of C
// with lethe's threads, unless called inside a parallel region.
void sgemm(blas::SgemmKernel kernel, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The widest register block of any kernel, in columns of C.
inline constexpr int64_t kSgemmMaxCols = 32;

// Runs of `length` indices from every `stride`-th on (0, stride, 2·stride, ...); none (length 0)
// stands for every index. A convolution's output rows on the padded width, of which the last
// stride − length columns are dropped (cnn-s's conv2: 14 of every 18), are such runs; sgemm_rows
// skips what lies outside them:
//  - in the columns of C: column blocks start only where a run needs one, and each is computed
//    whole, so up to kSgemmMaxCols − 1 columns past n are read from B's rows and written to C's
//    (ldc must leave room); the columns outside the runs get unspecified values. The runs'
//    elements have the bits they have without runs: every lane sums its own products in one order.
//  - in k: only the k-steps in the runs are summed, in the same order and k blocks as all of them.
//    Where the skipped steps' rows of B are zeros and A is finite, the result has the bits of the
//    whole sum, up to the sign of a zero (x + ±0 = x for every x but a zero).
struct Runs {
  int64_t length = 0, stride = 0;
};

// C [m,n] = alpha·A·B + beta·C (row-major, ldc) for operands whose rows lie at given offsets, as a
// convolution's column matrix does in its zero-padded image: row i of A (k contiguous elements)
// at a + a_rows[i], or a + i·lda when a_rows is null; row s of B (n contiguous elements) at
// b + b_rows[s], or b + s·ldb when b_rows is null. The same kernels and guarantees as above.
void sgemm_rows(blas::SgemmKernel kernel, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                const int64_t* a_rows, int64_t lda, const float* b, const int64_t* b_rows, int64_t ldb, float beta,
                float* c, int64_t ldc, Runs columns = {}, Runs steps = {});

// One instruction set's kernel (kernels/cpu/sgemm_<isa>.cpp), behind sgemm() and sgemm_rows(),
// which hand it m, n, k > 0 only.
struct SgemmIsa {
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void (*rows)(int64_t m, int64_t n, int64_t k, float alpha, const float* a, const int64_t* a_rows, int64_t lda,
               const float* b, const int64_t* b_rows, int64_t ldb, float beta, float* c, int64_t ldc, Runs columns,
               Runs steps);
};
extern const SgemmIsa kSgemmAvx2, kSgemmAvx512;

}  // namespace lethe::cpu
