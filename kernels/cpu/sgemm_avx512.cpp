// lethe's sgemm for AVX-512 (AVX512F): the kernels of kernels/cpu/sgemm_kernel.h on 16-lane zmm
// vectors, whose masked loads and stores cost no more than plain ones.
#include <immintrin.h>

#define LETHE_SGEMM_TARGET __attribute__((target("avx512f")))
#include "kernels/cpu/sgemm_kernel.h"

namespace lethe::cpu {

namespace {

struct Avx512 {
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  // 8 × 32: 16 accumulators, 2 vectors of B and a broadcast of the 32 zmm registers; 16
  // independent fused multiply-adds a step hide their latency on both FMA ports.
  static constexpr int kRows = 8, kCols = 32;
  // 4 × 4 dot products: 16 accumulators, 4 rows of B and one of A.
  static constexpr int kDotRows = 4, kDotCols = 4;

  LETHE_SGEMM_OP Vec zero() { return _mm512_setzero_ps(); }
  LETHE_SGEMM_OP Vec broadcast(float x) { return _mm512_set1_ps(x); }
  LETHE_SGEMM_OP Mask mask(int64_t count) {
    return count >= kLanes ? Mask(0xFFFF) : count <= 0 ? Mask(0) : Mask((1u << count) - 1);
  }
  LETHE_SGEMM_OP Vec load(const float* p) { return _mm512_loadu_ps(p); }
  LETHE_SGEMM_OP Vec load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  LETHE_SGEMM_OP void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  LETHE_SGEMM_OP void store(float* p, Vec v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
  LETHE_SGEMM_OP Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  LETHE_SGEMM_OP Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  LETHE_SGEMM_OP Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
};

}  // namespace

const SgemmIsa kSgemmAvx512 = sgemm_isa<Avx512>();

}  // namespace lethe::cpu
