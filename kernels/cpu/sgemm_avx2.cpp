// lethe's sgemm for AVX2 + FMA (CPUs without AVX-512): the kernels of kernels/cpu/sgemm_kernel.h on
// 8-lane ymm vectors. AVX2's masked loads and stores (vmaskmovps) take a lane mask in a vector
// register and cost more than plain ones (a masked store is microcoded on AMD CPUs), so the
// kernels use them for the last columns and the last chunk of k only.
#include <immintrin.h>

#define LETHE_SGEMM_TARGET __attribute__((target("avx2,fma")))
#include "kernels/cpu/sgemm_kernel.h"

namespace lethe::cpu {

namespace {

struct Avx2 {
  using Vec = __m256;
  using Mask = __m256i;
  static constexpr int kLanes = 8;
  // 6 × 16 of the 16 ymm registers: 12 accumulators, 2 vectors of B and a broadcast. 12
  // independent fused multiply-adds a step cover the FMA latency (4-5 cycles) on two ports, and
  // each step's 8 loads (2 of B, 6 broadcasts) fit two load ports while its 12 FMAs run. 16
  // columns, not 24 (4 × 24 has the same 12 accumulators and fewer broadcasts), because
  // convolutions' weight gradients have 16 or 32 columns (output channels): 24 would waste a third
  // of a block at 32.
  static constexpr int kRows = 6, kCols = 16;
  // 3 × 2 dot products over 16-wide chunks of k (two vectors each): 12 accumulators, 2 vectors of
  // B and one of A.
  static constexpr int kDotRows = 3, kDotCols = 2;

  LETHE_SGEMM_OP Vec zero() { return _mm256_setzero_ps(); }
  LETHE_SGEMM_OP Vec broadcast(float x) { return _mm256_set1_ps(x); }
  LETHE_SGEMM_OP Mask mask(int64_t count) {  // lane i is on (all ones) when i < count
    const int lanes = static_cast<int>(std::clamp<int64_t>(count, 0, kLanes));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  LETHE_SGEMM_OP Vec load(const float* p) { return _mm256_loadu_ps(p); }
  LETHE_SGEMM_OP Vec load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  LETHE_SGEMM_OP void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  LETHE_SGEMM_OP void store(float* p, Vec v, Mask m) { _mm256_maskstore_ps(p, m, v); }
  LETHE_SGEMM_OP Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  LETHE_SGEMM_OP Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  LETHE_SGEMM_OP Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
};

}  // namespace

const SgemmIsa kSgemmAvx2 = sgemm_isa<Avx2>();

}  // namespace lethe::cpu
