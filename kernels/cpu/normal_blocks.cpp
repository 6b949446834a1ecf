#include "kernels/cpu/normal_blocks.h"

#include <initializer_list>

#include "kernels/common/philox.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LETHE_NORMAL_AVX2 1
#endif

namespace lethe::cpu {

#if LETHE_NORMAL_AVX2
namespace {

// Eight Philox blocks side by side: word w of block j in lane j of v[w] (32-bit lanes).
struct Words8 {
  __m256i v[4];
};

// The high 32 bits of a * m in each 32-bit lane (m broadcast): philox::detail::mulhi.
__m256i mulhi32(__m256i a, __m256i m) {
  const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6: 64-bit products
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b10101010);
}

// philox::random4 of blocks first .. first + 7.
Words8 random8(uint64_t seed, uint64_t stream, uint64_t first) {
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

// double(bits) of four unsigned 32-bit lanes, exactly: signed conversion of bits - 2^31, plus 2^31.
__m256d u32_to_double(__m128i bits) {
  const __m128i shifted = _mm_xor_si128(bits, _mm_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_add_pd(_mm256_cvtepi32_pd(shifted), _mm256_set1_pd(2147483648.0));
}

__m256d fmadd(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }
__m256d splat(double x) { return _mm256_set1_pd(x); }

// philox::detail::log_pos, four lanes.
__m256d log_pos(__m256d x) {
  const __m256i u = _mm256_castpd_si256(x);
  __m256i e = _mm256_sub_epi64(_mm256_srli_epi64(u, 52), _mm256_set1_epi64x(1023));
  __m256d m = _mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(u, _mm256_set1_epi64x(0x000FFFFFFFFFFFFFll)),
                                                  _mm256_set1_epi64x(0x3FF0000000000000ll)));
  const __m256d above = _mm256_cmp_pd(m, splat(1.4142135623730951), _CMP_GT_OQ);
  m = _mm256_blendv_pd(m, _mm256_mul_pd(m, splat(0.5)), above);
  e = _mm256_sub_epi64(e, _mm256_castpd_si256(above));  // + 1 where the mask is all ones (-1)
  // double(e), exactly for |e| < 2^51: e added to the bits of 1.5 * 2^52, then 1.5 * 2^52 taken away.
  const __m256d e_double =
      _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(e, _mm256_set1_epi64x(0x4338000000000000ll))),
                    splat(6755399441055744.0));
  const __m256d s = _mm256_div_pd(_mm256_sub_pd(m, splat(1.0)), _mm256_add_pd(m, splat(1.0)));
  const __m256d s2 = _mm256_mul_pd(s, s);
  __m256d p = splat(1.0 / 19);
  for (const double c : {1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3})
    p = fmadd(p, s2, splat(c));
  const __m256d log_m = _mm256_mul_pd(splat(2.0), fmadd(_mm256_mul_pd(s, s2), p, s));
  return fmadd(e_double, splat(0.6931471805599453), log_m);
}

// philox::detail::sincos_2pi, four lanes.
void sincos_2pi(__m256d u, __m256d* sin_out, __m256d* cos_out) {
  const __m256d t = _mm256_mul_pd(splat(4.0), u);
  const __m256d q = _mm256_round_pd(_mm256_add_pd(t, splat(0.5)), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256d a = _mm256_mul_pd(_mm256_sub_pd(t, q), splat(1.5707963267948966));
  const __m256d a2 = _mm256_mul_pd(a, a);
  __m256d ps = splat(-1.0 / 1307674368000);
  for (const double c : {1.0 / 6227020800, -1.0 / 39916800, 1.0 / 362880, -1.0 / 5040, 1.0 / 120, -1.0 / 6})
    ps = fmadd(ps, a2, splat(c));
  const __m256d sin_a = fmadd(_mm256_mul_pd(a, a2), ps, a);
  __m256d pc = splat(1.0 / 20922789888000);
  for (const double c : {-1.0 / 87178291200, 1.0 / 479001600, -1.0 / 3628800, 1.0 / 40320, -1.0 / 720, 1.0 / 24,
                         -1.0 / 2})
    pc = fmadd(pc, a2, splat(c));
  const __m256d cos_a = fmadd(a2, pc, splat(1.0));
  // The quarter turns q & 3: odd ones swap sin and cos, 2 and 3 negate sin, 1 and 2 negate cos.
  const __m256i quadrant = _mm256_cvtepi32_epi64(_mm_and_si128(_mm256_cvttpd_epi32(q), _mm_set1_epi32(3)));
  auto lanes_equal = [&](int64_t k) {
    return _mm256_castsi256_pd(_mm256_cmpeq_epi64(quadrant, _mm256_set1_epi64x(k)));
  };
  const __m256d q1 = lanes_equal(1), q2 = lanes_equal(2), q3 = lanes_equal(3);
  const __m256d swap = _mm256_or_pd(q1, q3);
  const __m256d sign = splat(-0.0);
  const __m256d s = _mm256_blendv_pd(sin_a, cos_a, swap), c = _mm256_blendv_pd(cos_a, sin_a, swap);
  *sin_out = _mm256_xor_pd(s, _mm256_and_pd(_mm256_or_pd(q2, q3), sign));
  *cos_out = _mm256_xor_pd(c, _mm256_and_pd(_mm256_or_pd(q1, q2), sign));
}

// philox::detail::box_muller on four pairs of words: out_cos = float(radius * cos), out_sin the same with sin.
void box_muller(__m128i bits1, __m128i bits2, __m128* out_cos, __m128* out_sin) {
  const __m256d two_to_minus_32 = splat(0x1p-32);
  const __m256d u1 = _mm256_mul_pd(_mm256_add_pd(u32_to_double(bits1), splat(1.0)), two_to_minus_32);
  const __m256d u2 = _mm256_mul_pd(u32_to_double(bits2), two_to_minus_32);
  const __m256d radius = _mm256_sqrt_pd(_mm256_mul_pd(splat(-2.0), log_pos(u1)));
  __m256d s, c;
  sincos_2pi(u2, &s, &c);
  *out_cos = _mm256_cvtpd_ps(_mm256_mul_pd(radius, c));
  *out_sin = _mm256_cvtpd_ps(_mm256_mul_pd(radius, s));
}

// normal4 of blocks first .. first + 7 into out[0 .. 32).
void normal8(uint64_t seed, uint64_t stream, uint64_t first, float* out) {
  const Words8 w = random8(seed, stream, first);
  for (int half = 0; half < 2; ++half) {  // blocks 4 * half .. 4 * half + 3
    auto words = [&](int k) {
      return half == 0 ? _mm256_castsi256_si128(w.v[k]) : _mm256_extracti128_si256(w.v[k], 1);
    };
    __m128 a_cos, a_sin, b_cos, b_sin;
    box_muller(words(0), words(1), &a_cos, &a_sin);  // each block's words 0 and 1: its normals 0 and 1
    box_muller(words(2), words(3), &b_cos, &b_sin);  // words 2 and 3: normals 2 and 3
    _MM_TRANSPOSE4_PS(a_cos, a_sin, b_cos, b_sin);  // now one block's four normals each
    float* o = out + 16 * half;
    _mm_storeu_ps(o, a_cos);
    _mm_storeu_ps(o + 4, a_sin);
    _mm_storeu_ps(o + 8, b_cos);
    _mm_storeu_ps(o + 12, b_sin);
  }
}

}  // namespace
#endif

void normal_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out) {
  int64_t k = 0;
#if LETHE_NORMAL_AVX2
  for (; k + 8 <= blocks; k += 8) normal8(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
#endif
  for (; k < blocks; ++k) philox::normal4(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
}

const char* normal_blocks_path() {
#if LETHE_NORMAL_AVX2
  return "avx2";
#else
  return "scalar";
#endif
}

}  // namespace lethe::cpu
