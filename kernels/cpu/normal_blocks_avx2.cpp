// The AVX2 + FMA path of cpu::normal_blocks (kernels/cpu/normal_blocks.h): 16 Philox blocks a
// step as two groups of 8 in the lanes of ymm vectors, their Box-Muller pairs as four chains of 8
// floats (kernels/cpu/normal_vector.h). Compiled for AVX2 and FMA by target attributes and taken only
// where the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/normal_blocks.h"

#define LETHE_NORMAL_TARGET __attribute__((target("avx2,fma")))
#include "kernels/cpu/normal_vector.h"

namespace lethe::cpu::detail {

namespace {

LETHE_NORMAL_OP __m256i splat32(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }

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

// philox::random4 of blocks first .. first + 8 * G - 1: group g (blocks first + 8 * g ..) in w[g].
// One group's ten rounds are a chain of dependent multiplies; two groups a round keep the
// multipliers busy (one alone: measured 1.9x slower for the Philox).
template <int G>
LETHE_NORMAL_OP void random8(uint64_t seed, uint64_t stream, uint64_t first, Words8* w) {
  __m256i c0[G], c1[G], c2[G], c3[G];
  for (int g = 0; g < G; ++g) {
    // The blocks' low words (mod 2^32), and their high words, one more where the low word wrapped:
    // the unsigned compare low < the group's first low word, as a signed compare with the sign bits
    // flipped. (Built in registers: eight scalar stores read back as a vector stall the core.)
    const uint64_t group_first = first + 8 * static_cast<uint64_t>(g);
    const __m256i first_lo = splat32(static_cast<uint32_t>(group_first)), sign = splat32(0x80000000u);
    c0[g] = _mm256_add_epi32(first_lo, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(first_lo, sign), _mm256_xor_si256(c0[g], sign));
    c1[g] = _mm256_sub_epi32(splat32(static_cast<uint32_t>(group_first >> 32)), wrapped);
    c2[g] = splat32(static_cast<uint32_t>(stream)), c3[g] = splat32(static_cast<uint32_t>(stream >> 32));
  }
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  const __m256i m0 = splat32(0xD2511F53u), m1 = splat32(0xCD9E8D57u);
  _Pragma("GCC unroll 10") for (int round = 0; round < 10; ++round) {
    const __m256i k0 = splat32(key0), k1 = splat32(key1);
    _Pragma("GCC unroll 2") for (int g = 0; g < G; ++g) {
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(mulhi32(c2[g], m1), c1[g]), k0);
      const __m256i n1 = _mm256_mullo_epi32(c2[g], m1);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(mulhi32(c0[g], m0), c3[g]), k1);
      const __m256i n3 = _mm256_mullo_epi32(c0[g], m0);
      c0[g] = n0, c1[g] = n1, c2[g] = n2, c3[g] = n3;
    }
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  for (int g = 0; g < G; ++g) w[g] = {{c0[g], c1[g], c2[g], c3[g]}};
}

LETHE_NORMAL_OP __m256 ps(__m256d x) { return _mm256_castpd_ps(x); }
LETHE_NORMAL_OP __m256d pd(__m256 x) { return _mm256_castps_pd(x); }

// normal_vector's traits on ymm vectors of 8 floats.
struct Avx2 {
  static constexpr int kBlocks = 8;
  using F = __m256;
  using W = __m256i;
  LETHE_NORMAL_OP F splat(float x) { return _mm256_set1_ps(x); }
  LETHE_NORMAL_OP F add(F a, F b) { return _mm256_add_ps(a, b); }
  LETHE_NORMAL_OP F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  LETHE_NORMAL_OP F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  LETHE_NORMAL_OP F div(F a, F b) { return _mm256_div_ps(a, b); }
  LETHE_NORMAL_OP F sqrt(F a) { return _mm256_sqrt_ps(a); }
  LETHE_NORMAL_OP F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  // AVX2 converts signed words only: the high and the low 16 bits convert exactly, the product by
  // 2^16 is exact, and the sum rounds once, to the nearest float to the word.
  LETHE_NORMAL_OP F words_to_float(W w) {
    const F high = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 16));
    const F low = _mm256_cvtepi32_ps(_mm256_and_si256(w, splat32(0xFFFFu)));
    return _mm256_add_ps(_mm256_mul_ps(high, splat(65536.0f)), low);
  }
  LETHE_NORMAL_OP void split_log(F x, F* m_out, F* e_out) {
    const __m256i u = _mm256_castps_si256(x);
    const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(u, 23), splat32(127));
    const F m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(u, splat32(0x007FFFFFu)), splat32(0x3F800000u)));
    const F above = _mm256_cmp_ps(m, splat(1.41421354f), _CMP_GT_OQ);
    *m_out = _mm256_blendv_ps(m, _mm256_mul_ps(m, splat(0.5f)), above);
    // + 1 where the mask is all ones (-1); the conversion is exact.
    *e_out = _mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_castps_si256(above)));
  }
  LETHE_NORMAL_OP void quarter_turns(W w, W* q, F* r_scaled) {
    *q = _mm256_and_si256(_mm256_srli_epi32(_mm256_add_epi32(w, splat32(1u << 29)), 30), splat32(3));
    *r_scaled = _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(w, 2), 2));
  }
  // Odd quarter turns swap sin and cos, 2 and 3 negate sin, 1 and 2 negate cos.
  LETHE_NORMAL_OP void rotate(W q, F sin_a, F cos_a, F* sin_out, F* cos_out) {
    const F q1 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(q, splat32(1)));
    const F q2 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(q, splat32(2)));
    const F q3 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(q, splat32(3)));
    const F swap = _mm256_or_ps(q1, q3), sign = splat(-0.0f);
    *sin_out = _mm256_xor_ps(_mm256_blendv_ps(sin_a, cos_a, swap), _mm256_and_ps(_mm256_or_ps(q2, q3), sign));
    *cos_out = _mm256_xor_ps(_mm256_blendv_ps(cos_a, sin_a, swap), _mm256_and_ps(_mm256_or_ps(q1, q2), sign));
  }
  // Within each 128-bit lane l (blocks 4l .. 4l + 3) first: by[r] holds block 4l + r's four normals
  // in lane l; then the lanes: blocks 0 and 1 are lane 0 of by0 and by1, blocks 4 and 5 their lane 1.
  LETHE_NORMAL_OP void store_by_block(const F* n, float* out) {
    const F ab_lo = _mm256_unpacklo_ps(n[0], n[1]), ab_hi = _mm256_unpackhi_ps(n[0], n[1]);
    const F cd_lo = _mm256_unpacklo_ps(n[2], n[3]), cd_hi = _mm256_unpackhi_ps(n[2], n[3]);
    const F by0 = ps(_mm256_unpacklo_pd(pd(ab_lo), pd(cd_lo))), by1 = ps(_mm256_unpackhi_pd(pd(ab_lo), pd(cd_lo)));
    const F by2 = ps(_mm256_unpacklo_pd(pd(ab_hi), pd(cd_hi))), by3 = ps(_mm256_unpackhi_pd(pd(ab_hi), pd(cd_hi)));
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(by0, by1, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(by2, by3, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(by0, by1, 0x31));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(by2, by3, 0x31));
  }
};

// normal4 of blocks first .. first + 8 * G - 1 into out[0 .. 32 * G).
template <int G>
LETHE_NORMAL_OP void normal8(uint64_t seed, uint64_t stream, uint64_t first, float* out) {
  Words8 w[G];
  random8<G>(seed, stream, first, w);
  normal_vector::store_normals<Avx2, G>(w, out);
}

}  // namespace

LETHE_NORMAL_TARGET int64_t normal_blocks_avx2(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks,
                                               float* out) {
  int64_t k = 0;
  for (; k + 16 <= blocks; k += 16) normal8<2>(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  for (; k + 8 <= blocks; k += 8) normal8<1>(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  return k;
}

}  // namespace lethe::cpu::detail
