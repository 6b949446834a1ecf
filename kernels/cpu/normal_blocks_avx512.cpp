// The AVX-512 path of cpu::normal_blocks (kernels/cpu/normal_blocks.h): 64 Philox blocks a step as
// four groups of 16 in the lanes of zmm vectors, their Box-Muller pairs as eight chains of 16
// floats (kernels/cpu/normal_vector.h). Needs AVX512F only (compiled for it by target attributes, taken
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

// The low 32-bit words of eight 64-bit lanes each, as one vector of sixteen.
LETHE_NORMAL_OP __m512i low_words(__m512i a, __m512i b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)), _mm512_cvtepi64_epi32(b), 1);
}

// philox::random4 of blocks first .. first + 16 * K - 1: group g (blocks first + 16 * g ..) in w[g].
// Each word lives in the low half of a 64-bit lane (8 blocks a vector, 2 * K vectors), so one
// _mm512_mul_epu32 gives a whole product: its high word is philox::detail::mulhi, its low word the
// wrapping product. The high halves of the lanes carry leftovers that never reach a low half: the
// words only meet in XORs, lane half by lane half, and in multiplies, which read low halves only.
// A vector's ten rounds are a chain of dependent multiplies; several vectors a round keep the
// multipliers busy.
template <int K>
LETHE_NORMAL_OP void random16(uint64_t seed, uint64_t stream, uint64_t first, Words16* w) {
  constexpr int H = 2 * K;
  __m512i c0[H], c1[H], c2[H], c3[H];
  for (int h = 0; h < H; ++h) {
    c0[h] = _mm512_add_epi64(splat64(first + 8 * static_cast<uint64_t>(h)), _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
    c1[h] = _mm512_srli_epi64(c0[h], 32);
    c2[h] = splat32(static_cast<uint32_t>(stream)), c3[h] = splat32(static_cast<uint32_t>(stream >> 32));
  }
  uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  const __m512i m0 = splat32(0xD2511F53u), m1 = splat32(0xCD9E8D57u);
  constexpr int kXor3 = 0x96;  // ternary logic: a ^ b ^ c
  _Pragma("GCC unroll 10") for (int round = 0; round < 10; ++round) {
    const __m512i k0 = splat32(key0), k1 = splat32(key1);
    _Pragma("GCC unroll 16") for (int h = 0; h < H; ++h) {
      const __m512i product1 = _mm512_mul_epu32(c2[h], m1), product0 = _mm512_mul_epu32(c0[h], m0);
      c0[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(product1, 32), c1[h], k0, kXor3);
      c1[h] = product1;
      c2[h] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(product0, 32), c3[h], k1, kXor3);
      c3[h] = product0;
    }
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  for (int g = 0; g < K; ++g)
    w[g] = {{low_words(c0[2 * g], c0[2 * g + 1]), low_words(c1[2 * g], c1[2 * g + 1]),
             low_words(c2[2 * g], c2[2 * g + 1]), low_words(c3[2 * g], c3[2 * g + 1])}};
}

LETHE_NORMAL_OP __m512d pd(__m512 x) { return _mm512_castps_pd(x); }

// normal_vector's traits on zmm vectors of 16 floats.
struct Avx512 {
  static constexpr int kBlocks = 16;
  using F = __m512;
  using W = __m512i;
  LETHE_NORMAL_OP F splat(float x) { return _mm512_set1_ps(x); }
  LETHE_NORMAL_OP F add(F a, F b) { return _mm512_add_ps(a, b); }
  LETHE_NORMAL_OP F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  LETHE_NORMAL_OP F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  LETHE_NORMAL_OP F div(F a, F b) { return _mm512_div_ps(a, b); }
  LETHE_NORMAL_OP F sqrt(F a) { return _mm512_sqrt_ps(a); }
  LETHE_NORMAL_OP F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  LETHE_NORMAL_OP F words_to_float(W w) { return _mm512_cvtepu32_ps(w); }  // rounds to nearest (MXCSR's default)
  LETHE_NORMAL_OP void split_log(F x, F* m_out, F* e_out) {
    const __m512i u = _mm512_castps_si512(x);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(u, 23), splat32(127));
    const F m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(u, splat32(0x007FFFFFu)), splat32(0x3F800000u)));
    const __mmask16 above = _mm512_cmp_ps_mask(m, splat(1.41421354f), _CMP_GT_OQ);
    *m_out = _mm512_mask_mul_ps(m, above, m, splat(0.5f));
    *e_out = _mm512_cvtepi32_ps(_mm512_mask_add_epi32(e, above, e, splat32(1)));  // exact
  }
  LETHE_NORMAL_OP void quarter_turns(W w, W* q, F* r_scaled) {
    *q = _mm512_and_si512(_mm512_srli_epi32(_mm512_add_epi32(w, splat32(1u << 29)), 30), splat32(3));
    *r_scaled = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(w, 2), 2));
  }
  // Odd quarter turns swap sin and cos, 2 and 3 negate sin, 1 and 2 negate cos (a negation flips
  // the sign bit, as the scalar path's does).
  LETHE_NORMAL_OP void rotate(W q, F sin_a, F cos_a, F* sin_out, F* cos_out) {
    const __mmask16 q1 = _mm512_cmpeq_epi32_mask(q, splat32(1));
    const __mmask16 q2 = _mm512_cmpeq_epi32_mask(q, splat32(2));
    const __mmask16 q3 = _mm512_cmpeq_epi32_mask(q, splat32(3));
    const __mmask16 swap = q1 | q3;
    *sin_out = negate(_mm512_mask_blend_ps(swap, sin_a, cos_a), q2 | q3);
    *cos_out = negate(_mm512_mask_blend_ps(swap, cos_a, sin_a), q1 | q2);
  }
  LETHE_NORMAL_OP F negate(F x, __mmask16 lanes) {
    const __m512i bits = _mm512_castps_si512(x);
    return _mm512_castsi512_ps(_mm512_mask_xor_epi32(bits, lanes, bits, splat32(0x80000000u)));
  }
  LETHE_NORMAL_OP void store_by_block(const F* n, float* out) {
    // Within each 128-bit lane l (blocks 4l .. 4l + 3) first: by[r] holds
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
};

// normal4 of blocks first .. first + 16 * K - 1 into out[0 .. 64 * K).
template <int K>
LETHE_NORMAL_OP void normal16(uint64_t seed, uint64_t stream, uint64_t first, float* out) {
  Words16 w[K];
  random16<K>(seed, stream, first, w);
  normal_vector::store_normals<Avx512, K>(w, out);
}

}  // namespace

LETHE_NORMAL_TARGET int64_t normal_blocks_avx512(uint64_t seed, uint64_t stream, uint64_t first_block,
                                                 int64_t blocks, float* out) {
  int64_t k = 0;
  // 64 blocks a step (measured on one core: 16 a step 0.56-0.59 ns a normal, 32 0.46-0.49, 64
  // 0.40-0.43, 128 0.70-0.77, its state no longer in registers).
  for (; k + 64 <= blocks; k += 64) normal16<4>(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  for (; k + 16 <= blocks; k += 16) normal16<1>(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
  return k;
}

}  // namespace lethe::cpu::detail
