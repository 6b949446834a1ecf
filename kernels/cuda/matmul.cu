#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"

namespace lethe::cuda {

namespace {

cublasStatus_t gemm_strided(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const float* alpha, const float* a, int lda,
                            long long sa, const float* b, int ldb, long long sb, const float* beta,
                            float* c, int ldc, long long sc, int batch) {
  return cublas_library().sgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                                ldc, sc, batch);
}
cublasStatus_t gemm_strided(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const double* alpha, const double* a, int lda,
                            long long sa, const double* b, int ldb, long long sb,
                            const double* beta, double* c, int ldc, long long sc, int batch) {
  return cublas_library().dgemm_strided_batched(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c,
                                                ldc, sc, batch);
}

int as_int(int64_t v, const char* what) {
  LETHE_CHECK(v >= 0 && v <= INT_MAX, "gemm", what, " = ", v, " does not fit cuBLAS's 32-bit integers");
  return static_cast<int>(v);
}

}  // namespace

// cuBLAS is column-major, and a row-major matrix read as column-major is its transpose; so the
// row-major C = op(A)·op(B) is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. with the
// operands swapped and m, n exchanged.
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb,
                  int64_t stride_b, const Tensor& c, int64_t ldc, int64_t stride_c, double beta) {
  const int device = c.device().index;
  DeviceGuard guard(device);
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  LETHE_DISPATCH_FLOAT(c.dtype(), "matmul", {
    const scalar_t one = 1, beta_t = static_cast<scalar_t>(beta);
    LETHE_CUBLAS_CHECK(gemm_strided(
        cublas(device), op_b, op_a, as_int(n, "n"), as_int(m, "m"), as_int(k, "k"), &one,
        static_cast<const scalar_t*>(b.data_ptr()), as_int(ldb, "ldb"), stride_b,
        static_cast<const scalar_t*>(a.data_ptr()), as_int(lda, "lda"), stride_a, &beta_t,
        static_cast<scalar_t*>(c.data_ptr()), as_int(ldc, "ldc"), stride_c, as_int(batch, "batch")));
  });
}

}  // namespace lethe::cuda
