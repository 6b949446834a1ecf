#pragma once
// OpenBLAS, loaded at run time (see blas.cpp for why), behind a small row-major GEMM interface.
#include <cstdint>
#include <string>
#include <vector>

namespace lethe::blas {

// Row-major C = alpha·op(A)·op(B) + beta·C with op(A) [m,k], op(B) [k,n], C [m,n]; a transposed
// operand is stored as its transpose ([k,m] or [n,k]) with the given leading dimension.
// Defined for T = float and double.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc);

// The eigenvalues, ascending, of the symmetric n×n matrix `a` (stored whole; LAPACK reads one
// triangle), by LAPACK's dsyevd from the same OpenBLAS; with `vectors`, also the orthonormal
// eigenvectors, row-major n×n with eigenvector j in column j. Throws lethe::Error if LAPACK
// fails (a matrix with NaN, say).
std::vector<double> symmetric_eigenvalues(int64_t n, std::vector<double> a, std::vector<double>* vectors = nullptr);

// LAPACK's Cholesky factorisation, in place: the row-major symmetric positive definite n×n `a`
// becomes L (lower triangle, row-major) with A = L·Lᵀ; the upper triangle keeps A's values.
// Throws lethe::Error when A is not positive definite.
void cholesky(int64_t n, double* a);
// Solves A·X = B in place for `columns` right-hand sides stored column by column in `b` (n values
// each), from cholesky()'s factor.
void cholesky_solve(int64_t n, int64_t columns, const double* factor, double* b);

// float32 GEMMs run lethe's AVX-512 kernel (kernels/cpu/sgemm.h) on CPUs with AVX512F, unless
// the environment says LETHE_SGEMM=openblas or use_lethe_sgemm(false) was called; float64 GEMMs
// and other CPUs use OpenBLAS.
bool uses_lethe_sgemm();
void use_lethe_sgemm(bool on);  // true needs AVX512F (throws lethe::Error without it)
// The kernel set OpenBLAS chose at load time ("Haswell", "SkylakeX", ...).
std::string core_name();
// What runs float32 GEMMs: "lethe-avx512" or "openblas-<core>".
std::string sgemm_name();
void set_threads(int threads);
int threads();  // OpenBLAS's own thread count, as set by set_threads

}  // namespace lethe::blas
