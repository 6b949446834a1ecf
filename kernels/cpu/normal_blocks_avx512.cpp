// The AVX-512 path of cpu::normal_blocks (kernels/cpu/normal_blocks.h): 16 Philox blocks a step in
// the 16 lanes of a zmm vector, their Box-Muller pairs as four chains of 8 doubles a zmm vector
// (kernels/cpu/normal_vector.h). Needs AVX512F only (compiled for it by target attributes, taken
// only where the CPU has it).

// GCC 12.2's AVX-512 intrinsics start some results from an "undefined" vector that
// -W(maybe-)uninitialized flags where they are inlined (GCC bug 105593, fixed in 12.3): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/normal_blocks.h"

#define LETHE_NORMAL_TARGET __attribute__((target("avx512f")))
#include "kernels/cpu/normal_vector.h"

namespace lethe::cpu::detail {

namespace {

LETHE_NORMAL_OP __m512i splat32(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
LETHE_NORMAL_OP __m512i splat64(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }

// Sixteen Philox blocks side by side: word w of block j in 32-bit lane j of v[w].
struct Words16 {
  __m512i v[4];
};

// a * m per 32-bit lane (m broadcast) as its high and low 32 bits: philox::detail::mulhi and the
// wrapping product, from the 64-bit products of the even and of the odd lanes.
LETHE_NORMAL_OP void mul_wide(__m512i a, __m512i m, __m512i* hi, __m512i* lo) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  constexpr __mmask16 odd_lanes = 0xAAAA;
  *hi = _mm512_mask_blend_epi32(odd_lanes, _mm512_srli_epi64(even, 32), odd);
  *lo = _mm512_mask_blend_epi32(odd_lanes, even, _mm512_slli_epi64(odd, 32));
}

// The low and the high 32-bit words of eight 64-bit lanes each, as one vector of sixteen.
LETHE_NORMAL_OP __m512i low_words(__m512i a, __m512i b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)), _mm512_cvtepi64_epi32(b), 1);
}

// philox::random4 of blocks first .. first + 15.
LETHE_NORMAL_OP Words16 random16(uint64_t seed, uint64_t stream, uint64_t first) {
  const __m512i blocks_lo = _mm512_add_epi64(splat64(first), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  const __m512i blocks_hi = _mm512_add_epi64(blocks_lo, splat64(8));  // wraps as uint64 does
  __m512i c0 = low_words(blocks_lo, blocks_hi);
  __m512i c1 = low_words(_mm512_srli_epi64(blocks_lo, 32), _mm512_srli_epi64(blocks_hi, 32));
  __m512i c2 = splat32(static_cast<uint32_t>(stream)), c3 = splat32(static_cast<uint32_t>(stream >> 32));
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  const __m512i m0 = splat32(0xD2511F53u), m1 = splat32(0xCD9E8D57u);
  constexpr int kXor3 = 0x96;  // ternary logic: a ^ b ^ c
  for (int round = 0; round < 10; ++round) {
    __m512i hi0, lo0, hi1, lo1;
    mul_wide(c2, m1, &hi1, &lo1);
    mul_wide(c0, m0, &hi0, &lo0);
    c0 = _mm512_ternarylogic_epi32(hi1, c1, splat32(key0), kXor3);
    c1 = lo1;
    c2 = _mm512_ternarylogic_epi32(hi0, c3, splat32(key1), kXor3);
    c3 = lo0;
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// normal_vector's traits on zmm vectors of 8 doubles, fed by 8 words of a ymm vector.
struct Avx512 {
  using D = __m512d;
  using W = __m256i;
  using F = __m256;
  LETHE_NORMAL_OP D splat(double x) { return _mm512_set1_pd(x); }
  LETHE_NORMAL_OP D add(D a, D b) { return _mm512_add_pd(a, b); }
  LETHE_NORMAL_OP D sub(D a, D b) { return _mm512_sub_pd(a, b); }
  LETHE_NORMAL_OP D mul(D a, D b) { return _mm512_mul_pd(a, b); }
  LETHE_NORMAL_OP D div(D a, D b) { return _mm512_div_pd(a, b); }
  LETHE_NORMAL_OP D sqrt(D a) { return _mm512_sqrt_pd(a); }
  LETHE_NORMAL_OP D fmadd(D a, D b, D c) { return _mm512_fmadd_pd(a, b, c); }
  LETHE_NORMAL_OP D round_toward_zero(D a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  LETHE_NORMAL_OP F to_float(D a) { return _mm512_cvtpd_ps(a); }
  LETHE_NORMAL_OP D words_to_double(W bits) { return _mm512_cvtepu32_pd(bits); }  // exact
  LETHE_NORMAL_OP void split_log(D x, D* m_out, D* e_out) {
    const __m512i u = _mm512_castpd_si512(x);
    __m512i e = _mm512_sub_epi64(_mm512_srli_epi64(u, 52), splat64(1023));
    const D m = _mm512_castsi512_pd(
        _mm512_or_si512(_mm512_and_si512(u, splat64(0x000FFFFFFFFFFFFFull)), splat64(0x3FF0000000000000ull)));
    const __mmask8 above = _mm512_cmp_pd_mask(m, splat(1.4142135623730951), _CMP_GT_OQ);
    *m_out = _mm512_mask_mul_pd(m, above, m, splat(0.5));
    e = _mm512_mask_add_epi64(e, above, e, splat64(1));
    // double(e), exactly for |e| < 2^51: e added to the bits of 1.5 * 2^52, then 1.5 * 2^52 taken away.
    *e_out = _mm512_sub_pd(_mm512_castsi512_pd(_mm512_add_epi64(e, splat64(0x4338000000000000ull))),
                           splat(6755399441055744.0));
  }
  // The quarter turns q & 3, with q in 0 .. 4 (u < 1): odd ones swap sin and cos, 2 and 3 negate
  // sin, 1 and 2 negate cos (a negation flips the sign bit, as the scalar path's does).
  LETHE_NORMAL_OP void rotate(D q, D sin_a, D cos_a, D* sin_out, D* cos_out) {
    const __mmask8 q1 = _mm512_cmp_pd_mask(q, splat(1.0), _CMP_EQ_OQ);
    const __mmask8 q2 = _mm512_cmp_pd_mask(q, splat(2.0), _CMP_EQ_OQ);
    const __mmask8 q3 = _mm512_cmp_pd_mask(q, splat(3.0), _CMP_EQ_OQ);
    const __mmask8 swap = q1 | q3;
    *sin_out = negate(_mm512_mask_blend_pd(swap, sin_a, cos_a), q2 | q3);
    *cos_out = negate(_mm512_mask_blend_pd(swap, cos_a, sin_a), q1 | q2);
  }
  LETHE_NORMAL_OP D negate(D x, __mmask8 lanes) {
    const __m512i bits = _mm512_castpd_si512(x);
    return _mm512_castsi512_pd(_mm512_mask_xor_epi64(bits, lanes, bits, splat64(0x8000000000000000ull)));
  }
};

LETHE_NORMAL_OP __m256i lower_half(__m512i v) { return _mm512_castsi512_si256(v); }
LETHE_NORMAL_OP __m256i upper_half(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }
LETHE_NORMAL_OP __m512d pd(__m512 x) { return _mm512_castps_pd(x); }
LETHE_NORMAL_OP __m512 join(__m256 lower, __m256 upper) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lower)), _mm256_castps_pd(upper), 1));
}

// normal4 of blocks first .. first + 15 into out[0 .. 64).
LETHE_NORMAL_OP void normal16(uint64_t seed, uint64_t stream, uint64_t first, float* out) {
  const Words16 w = random16(seed, stream, first);
  // Chain 2 * pair + part: blocks 8 * part .. 8 * part + 7, their words 2 * pair and 2 * pair + 1,
  // which give their normals 2 * pair (cos) and 2 * pair + 1 (sin).
  __m256i bits1[4], bits2[4];
  for (int pair = 0; pair < 2; ++pair) {
    bits1[2 * pair] = lower_half(w.v[2 * pair]), bits1[2 * pair + 1] = upper_half(w.v[2 * pair]);
    bits2[2 * pair] = lower_half(w.v[2 * pair + 1]), bits2[2 * pair + 1] = upper_half(w.v[2 * pair + 1]);
  }
  __m256 n_cos[4], n_sin[4];
  normal_vector::box_muller<Avx512, 4>(bits1, bits2, n_cos, n_sin);
  // Normal i of block j in lane j of n[i].
  __m512 n[4];
  for (int pair = 0; pair < 2; ++pair) {
    n[2 * pair] = join(n_cos[2 * pair], n_cos[2 * pair + 1]);
    n[2 * pair + 1] = join(n_sin[2 * pair], n_sin[2 * pair + 1]);
  }
  // Transpose to block order. Within each 128-bit lane l (blocks 4l .. 4l + 3) first: by[r] holds
  // block 4l + r's four normals in lane l.
  const __m512 ab_lo = _mm512_unpacklo_ps(n[0], n[1]), ab_hi = _mm512_unpackhi_ps(n[0], n[1]);
  const __m512 cd_lo = _mm512_unpacklo_ps(n[2], n[3]), cd_hi = _mm512_unpackhi_ps(n[2], n[3]);
  __m512 by[4];
  by[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(ab_lo), pd(cd_lo)));
  by[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(ab_lo), pd(cd_lo)));
  by[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(ab_hi), pd(cd_hi)));
  by[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(ab_hi), pd(cd_hi)));
  // Then the 4 × 4 lanes: output vector l is lane l of by[0], by[1], by[2], by[3].
  const __m512 lanes01_of_01 = _mm512_shuffle_f32x4(by[0], by[1], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 lanes01_of_23 = _mm512_shuffle_f32x4(by[2], by[3], _MM_SHUFFLE(1, 0, 1, 0));
  const __m512 lanes23_of_01 = _mm512_shuffle_f32x4(by[0], by[1], _MM_SHUFFLE(3, 2, 3, 2));
  const __m512 lanes23_of_23 = _mm512_shuffle_f32x4(by[2], by[3], _MM_SHUFFLE(3, 2, 3, 2));
  _mm512_storeu_ps(out, _mm512_shuffle_f32x4(lanes01_of_01, lanes01_of_23, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(lanes01_of_01, lanes01_of_23, _MM_SHUFFLE(3, 1, 3, 1)));
  _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(lanes23_of_01, lanes23_of_23, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(lanes23_of_01, lanes23_of_23, _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace

LETHE_NORMAL_TARGET int64_t normal_blocks_avx512(uint64_t seed, uint64_t stream, uint64_t first_block,
                                                 int64_t blocks, float* out) {
  int64_t k = 0;
  for (; k + 16 <= blocks; k += 16) normal16(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  return k;
}

}  // namespace lethe::cpu::detail
