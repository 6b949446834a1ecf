#pragma once
// lethe's own float32 GEMM for CPUs with AVX-512, used by blas::gemm<float> in place of
// OpenBLAS's sgemm where it runs (kernels/cpu/blas.cpp says when). Why: this machine family forces
// OpenBLAS onto its AVX2 (Haswell) kernels through OPENBLAS_CORETYPE, since old OpenBLAS builds
// misbehave with their AVX-512 kernels on current CPUs; lethe's kernel is ours to test, and the
// convolutions, almost all of a small CNN's time, are GEMMs.
//
// Every element of C is computed by one fixed sequence of fused multiply-adds and adds, chosen by
// the transposes and the sizes alone: the result depends on neither the thread count nor how
// the work is split, and is bitwise reproducible on any AVX-512 CPU.
#include <cstdint>

namespace lethe::cpu {

inline constexpr int64_t kSgemmKBlock = 256;

// Whether this CPU has what sgemm_avx512 needs (AVX512F).
bool has_avx512_sgemm();

// Row-major C = alpha·op(A)·op(B) + beta·C, with blas::gemm's conventions (op(A) [m,k], op(B)
// [k,n], a transposed operand stored as its transpose). beta == 0 never reads C. Parallel over
// blocks of rows of C with lethe's threads, unless called inside a parallel region.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// C [m,n] = alpha·A·B + beta·C (row-major, ldc) for operands whose rows lie at given offsets, as a
// convolution's column matrix does in its zero-padded image: row i of A (k contiguous elements)
// at a + a_rows[i], or a + i·lda when a_rows is null; row s of B (n contiguous elements) at
// b + b_rows[s], or b + s·ldb when b_rows is null. The same kernel and guarantees as above.
void sgemm_avx512_rows(int64_t m, int64_t n, int64_t k, float alpha, const float* a, const int64_t* a_rows,
                       int64_t lda, const float* b, const int64_t* b_rows, int64_t ldb, float beta, float* c,
                       int64_t ldc);

}  // namespace lethe::cpu
