// lethe's sgemm: picks the instruction set's kernel and handles the empty shapes.
#include "kernels/cpu/sgemm.h"

#include "engine/error.h"

namespace lethe::cpu {

namespace {

const SgemmIsa& isa(blas::SgemmKernel kernel) {
  LETHE_CHECK(kernel != blas::SgemmKernel::openblas, "gemm", "OpenBLAS is not one of lethe's sgemm kernels");
  LETHE_CHECK(blas::cpu_has(kernel), "gemm", "lethe's ", blas::sgemm_kernel_name(kernel), " sgemm needs ",
              blas::sgemm_kernel_needs(kernel), ", which this CPU lacks");
  return kernel == blas::SgemmKernel::avx512 ? kSgemmAvx512 : kSgemmAvx2;
}

// C = beta·C (k == 0: nothing to multiply).
void scale(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
}

}  // namespace

void sgemm(blas::SgemmKernel kernel, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const SgemmIsa& run = isa(kernel);
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scale(m, n, beta, c, ldc);
  run.gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm_rows(blas::SgemmKernel kernel, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                const int64_t* a_rows, int64_t lda, const float* b, const int64_t* b_rows, int64_t ldb, float beta,
                float* c, int64_t ldc, Runs columns, Runs steps) {
  const SgemmIsa& run = isa(kernel);
  LETHE_CHECK(columns.length >= 0 && steps.length >= 0, "gemm", "runs of negative length (", columns.length, " columns, ",
              steps.length, " k-steps)");
  if (columns.length > 0) {
    LETHE_CHECK(columns.length <= columns.stride && n % columns.stride == 0, "gemm", "column runs of ",
                columns.length, " every ", columns.stride, " do not tile ", n, " columns");
    LETHE_CHECK(m <= 1 || ldc >= n + kSgemmMaxCols - 1, "gemm", "column runs over ", n, " columns write up to ",
                kSgemmMaxCols - 1, " past them, but C's rows are ", ldc, " apart");
  }
  LETHE_CHECK(steps.length == 0 || steps.length <= steps.stride, "gemm", "runs of ", steps.length, " k-steps every ",
              steps.stride, " overlap");
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return scale(m, n, beta, c, ldc);
  run.rows(m, n, k, alpha, a, a_rows, lda, b, b_rows, ldb, beta, c, ldc, columns, steps);
}

}  // namespace lethe::cpu
