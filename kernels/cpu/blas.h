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

// What runs float32 GEMMs (gemm<float>): OpenBLAS's sgemm, or one of lethe's own kernels
// (kernels/cpu/sgemm.h), for AVX2 + FMA or for AVX-512. By default the best this CPU has (avx512,
// else avx2, else openblas); LETHE_SGEMM=openblas|avx2|avx512 in the environment forces one, and a
// kernel the CPU lacks (or another value) is a lethe::Error at the first float32 GEMM. float64
// GEMMs always use OpenBLAS.
enum class SgemmKernel { openblas, avx2, avx512 };
// Every kernel, best first.
inline constexpr SgemmKernel kSgemmKernels[] = {SgemmKernel::avx512, SgemmKernel::avx2, SgemmKernel::openblas};
// LETHE_SGEMM's name for it: "openblas", "avx2", "avx512".
const char* sgemm_kernel_name(SgemmKernel kernel);
// The CPU features it needs ("AVX512F", "AVX2 and FMA"; "" for openblas), and whether this CPU has them.
const char* sgemm_kernel_needs(SgemmKernel kernel);
bool cpu_has(SgemmKernel kernel);
// The kernel LETHE_SGEMM=`setting` asks for; null or empty: the best this CPU has. Throws
// lethe::Error for another name or a kernel this CPU lacks.
SgemmKernel choose_sgemm_kernel(const char* setting);
SgemmKernel sgemm_kernel();                 // the one in use
void use_sgemm_kernel(SgemmKernel kernel);  // throws lethe::Error where the CPU lacks it
// Whether one of lethe's kernels is in use; use_lethe_sgemm(true) switches to the best this CPU
// has (throws lethe::Error without AVX2 and FMA), false to OpenBLAS.
bool uses_lethe_sgemm();
void use_lethe_sgemm(bool on);
// The kernel set OpenBLAS chose at load time ("Haswell", "SkylakeX", ...).
std::string core_name();
// What runs float32 GEMMs: "lethe-avx512", "lethe-avx2" or "openblas-<core>".
std::string sgemm_name();
void set_threads(int threads);
int threads();  // OpenBLAS's own thread count, as set by set_threads

}  // namespace lethe::blas
