// The AVX2 + FMA path of cpu::normal_blocks (kernels/cpu/normal_blocks.h): 8 Philox blocks a
// step, their four Box-Muller pairs as four chains of 4 doubles a ymm vector
// (kernels/cpu/normal_vector.h). Compiled for AVX2 and FMA by target attributes and taken only
// where the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/normal_blocks.h"

#define LETHE_NORMAL_TARGET __attribute__((target("avx2,fma")))
#include "kernels/cpu/normal_vector.h"

namespace lethe::cpu::detail {

namespace {

// Eight Philox blocks side by side: word w of block j in lane j of v[w] (32-bit lanes).
struct Words8 {
  __m256i v[4];
};

// The high 32 bits of a * m in each 32-bit lane (m broadcast): philox::detail::mulhi.
LETHE_NORMAL_OP __m256i mulhi32(__m256i a, __m256i m) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6: 64-bit products
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b10101010);
}

// philox::random4 of blocks first .. first + 7.
LETHE_NORMAL_OP Words8 random8(uint64_t seed, uint64_t stream, uint64_t first) {
  alignas(32) uint32_t lo[8], hi[8];
  for (int j = 0; j < 8; ++j) {
    const uint64_t block = first + static_cast<uint64_t>(j);
    lo[j] = static_cast<uint32_t>(block);
    hi[j] = static_cast<uint32_t>(block >> 32);
  }
  __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
  __m256i c2 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
  __m256i c3 = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  for (int round = 0; round < 10; ++round) {
    const __m256i k0 = _mm256_set1_epi32(static_cast<int>(key0)), k1 = _mm256_set1_epi32(static_cast<int>(key1));
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(mulhi32(c2, m1), c1), k0);
    const __m256i n1 = _mm256_mullo_epi32(c2, m1);
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(mulhi32(c0, m0), c3), k1);
    const __m256i n3 = _mm256_mullo_epi32(c0, m0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// normal_vector's traits on ymm vectors of 4 doubles, fed by 4 words of an xmm vector.
struct Avx2 {
  using D = __m256d;
  using W = __m128i;
  using F = __m128;
  LETHE_NORMAL_OP D splat(double x) { return _mm256_set1_pd(x); }
  LETHE_NORMAL_OP D add(D a, D b) { return _mm256_add_pd(a, b); }
  LETHE_NORMAL_OP D sub(D a, D b) { return _mm256_sub_pd(a, b); }
  LETHE_NORMAL_OP D mul(D a, D b) { return _mm256_mul_pd(a, b); }
  LETHE_NORMAL_OP D div(D a, D b) { return _mm256_div_pd(a, b); }
  LETHE_NORMAL_OP D sqrt(D a) { return _mm256_sqrt_pd(a); }
  LETHE_NORMAL_OP D fmadd(D a, D b, D c) { return _mm256_fmadd_pd(a, b, c); }
  LETHE_NORMAL_OP D round_toward_zero(D a) { return _mm256_round_pd(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  LETHE_NORMAL_OP F to_float(D a) { return _mm256_cvtpd_ps(a); }
  // Exactly: the signed conversion of bits - 2^31, plus 2^31.
  LETHE_NORMAL_OP D words_to_double(W bits) {
    const __m128i shifted = _mm_xor_si128(bits, _mm_set1_epi32(static_cast<int>(0x80000000u)));
    return _mm256_add_pd(_mm256_cvtepi32_pd(shifted), _mm256_set1_pd(2147483648.0));
  }
  LETHE_NORMAL_OP void split_log(D x, D* m_out, D* e_out) {
    const __m256i u = _mm256_castpd_si256(x);
    __m256i e = _mm256_sub_epi64(_mm256_srli_epi64(u, 52), _mm256_set1_epi64x(1023));
    D m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
                                              _mm256_set1_epi64x(0x3FF0000000000000ll)));
    const D above = _mm256_cmp_pd(m, splat(1.4142135623730951), _CMP_GT_OQ);
    *m_out = _mm256_blendv_pd(m, _mm256_mul_pd(m, splat(0.5)), above);
    e = _mm256_sub_epi64(e, _mm256_castpd_si256(above));  // + 1 where the mask is all ones (-1)
    // double(e), exactly for |e| < 2^51: e added to the bits of 1.5 * 2^52, then 1.5 * 2^52 taken away.
    *e_out = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(e, _mm256_set1_epi64x(0x4338000000000000ll))),
                           splat(6755399441055744.0));
  }
  // The quarter turns q & 3: odd ones swap sin and cos, 2 and 3 negate sin, 1 and 2 negate cos.
  LETHE_NORMAL_OP void rotate(D q, D sin_a, D cos_a, D* sin_out, D* cos_out) {
    const __m256i quadrant = _mm256_cvtepi32_epi64(_mm_and_si128(_mm256_cvttpd_epi32(q), _mm_set1_epi32(3)));
    const D q1 = _mm256_castsi256_pd(_mm256_cmpeq_epi64(quadrant, _mm256_set1_epi64x(1)));
    const D q2 = _mm256_castsi256_pd(_mm256_cmpeq_epi64(quadrant, _mm256_set1_epi64x(2)));
    const D q3 = _mm256_castsi256_pd(_mm256_cmpeq_epi64(quadrant, _mm256_set1_epi64x(3)));
    const D swap = _mm256_or_pd(q1, q3), sign = splat(-0.0);
    *sin_out = _mm256_xor_pd(_mm256_blendv_pd(sin_a, cos_a, swap), _mm256_and_pd(_mm256_or_pd(q2, q3), sign));
    *cos_out = _mm256_xor_pd(_mm256_blendv_pd(cos_a, sin_a, swap), _mm256_and_pd(_mm256_or_pd(q1, q2), sign));
  }
};

// normal4 of blocks first .. first + 7 into out[0 .. 32).
LETHE_NORMAL_OP void normal8(uint64_t seed, uint64_t stream, uint64_t first, float* out) {
  const Words8 w = random8(seed, stream, first);
  // Chain 2 * half + pair: blocks 4 * half .. 4 * half + 3, their words 2 * pair and 2 * pair + 1,
  // which give their normals 2 * pair (cos) and 2 * pair + 1 (sin).
  __m128i bits1[4], bits2[4];
  for (int half = 0; half < 2; ++half)
    for (int pair = 0; pair < 2; ++pair) {
      const __m256i first_words = w.v[2 * pair], second_words = w.v[2 * pair + 1];
      bits1[2 * half + pair] = half == 0 ? _mm256_castsi256_si128(first_words) : _mm256_extracti128_si256(first_words, 1);
      bits2[2 * half + pair] = half == 0 ? _mm256_castsi256_si128(second_words) : _mm256_extracti128_si256(second_words, 1);
    }
  __m128 n_cos[4], n_sin[4];
  normal_vector::box_muller<Avx2, 4>(bits1, bits2, n_cos, n_sin);
  for (int half = 0; half < 2; ++half) {
    __m128 n0 = n_cos[2 * half], n1 = n_sin[2 * half], n2 = n_cos[2 * half + 1], n3 = n_sin[2 * half + 1];
    _MM_TRANSPOSE4_PS(n0, n1, n2, n3);  // now one block's four normals each
    _mm_storeu_ps(out + 16 * half, n0);
    _mm_storeu_ps(out + 16 * half + 4, n1);
    _mm_storeu_ps(out + 16 * half + 8, n2);
    _mm_storeu_ps(out + 16 * half + 12, n3);
  }
}

}  // namespace

LETHE_NORMAL_TARGET int64_t normal_blocks_avx2(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks,
                                               float* out) {
  int64_t k = 0;
  for (; k + 8 <= blocks; k += 8) normal8(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  return k;
}

}  // namespace lethe::cpu::detail
