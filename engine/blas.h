#pragma once
// OpenBLAS, loaded at run time (see blas.cpp for why), behind a small row-major GEMM interface.
#include <cstdint>
#include <string>

namespace lethe::blas {

// Row-major C = alpha·op(A)·op(B) + beta·C with op(A) [m,k], op(B) [k,n], C [m,n]; a transposed
// operand is stored as its transpose ([k,m] or [n,k]) with the given leading dimension.
// Defined for T = float and double.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc);

// The kernel set OpenBLAS chose at load time ("Haswell", "SkylakeX", ...).
std::string core_name();
void set_threads(int threads);
int threads();  // OpenBLAS's own thread count, as set by set_threads

}  // namespace lethe::blas
