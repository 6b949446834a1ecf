#include "kernels/matmul.h"

#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

// Below this many multiply-adds OpenBLAS runs a GEMM on one thread anyway, so a batch of such
// small GEMMs is spread over our threads instead (one matrix per call, BLAS single-threaded
// inside the parallel region). Each product is computed exactly as it would be on its own.
constexpr int64_t kSmallGemm = 64 * 64 * 64;

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  const Tensor& a, int64_t lda, int64_t stride_a, const Tensor& b, int64_t ldb,
                  int64_t stride_b, const Tensor& c, int64_t ldc, int64_t stride_c, double beta) {
  LETHE_DISPATCH_FLOAT(c.dtype(), "matmul", {
    const scalar_t* ap = static_cast<const scalar_t*>(a.data_ptr());
    const scalar_t* bp = static_cast<const scalar_t*>(b.data_ptr());
    scalar_t* cp = static_cast<scalar_t*>(c.data_ptr());
    const int64_t grain = m * n * k <= kSmallGemm ? 1 : batch;
    parallel_for(batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        blas::gemm(trans_a, trans_b, m, n, k, 1.0, ap + i * stride_a, lda, bp + i * stride_b, ldb,
                   beta, cp + i * stride_c, ldc);
    });
  });
}

}  // namespace lethe::cpu
