// Box-Muller on vectors of floats, for the vector paths of cpu::normal_blocks
// (kernels/cpu/normal_blocks_<isa>.cpp). Written once over a traits type V that each path defines
// for its vectors (the arithmetic, and the few steps whose instructions differ: the unsigned word
// conversion, the exponent split of log, the quarter turns of an angle and the rotation by them);
// each path's file defines LETHE_NORMAL_TARGET (its target attribute) and includes this header, as
// kernels/cpu/sgemm_kernel.h is shared.
//
// Every function is philox::detail's scalar function (kernels/common/philox.h), the same
// correctly rounded operations in the same order, lane by lane, so the bits are the same. Each
// works on N independent chains at once, every chain's operation before the next operation: the
// latencies (division, square root, the polynomials) of one chain overlap the others'.
//
// V provides: F (a vector of floats), W (as many 32-bit words); splat, add, sub, mul, div, sqrt,
// fmadd; words_to_float (round to nearest, unsigned); split_log (x = m * 2^e with m in
// [sqrt(1/2), sqrt(2)]: m, and e as a float); quarter_turns (a word's angle 4w/2^32 as the nearest
// integer q mod 4 and the remainder times 2^30 as a float); rotate (sin and cos of a + q quarter
// turns from those of a); kBlocks (the lanes of a vector) and store_by_block (the transpose to block
// order, see store_normals).
#pragma once

#include <initializer_list>

#ifndef LETHE_NORMAL_TARGET
#error "define LETHE_NORMAL_TARGET before including kernels/cpu/normal_vector.h"
#endif

#define LETHE_NORMAL_OP LETHE_NORMAL_TARGET __attribute__((always_inline)) static inline
#define LETHE_EACH_CHAIN _Pragma("GCC unroll 8") for (int j = 0; j < N; ++j)

namespace lethe::cpu::normal_vector {

// philox::detail::log_unit of x[j].
template <class V, int N>
LETHE_NORMAL_OP void log_unit(const typename V::F* x, typename V::F* out) {
  using F = typename V::F;
  F m[N], e[N], s[N], s2[N], p[N];
  LETHE_EACH_CHAIN V::split_log(x[j], &m[j], &e[j]);
  LETHE_EACH_CHAIN s[j] = V::div(V::sub(m[j], V::splat(1.0f)), V::add(m[j], V::splat(1.0f)));
  LETHE_EACH_CHAIN s2[j] = V::mul(s[j], s[j]);
  LETHE_EACH_CHAIN p[j] = V::splat(1.0f / 9);
  for (const float c : {1.0f / 7, 1.0f / 5, 1.0f / 3}) LETHE_EACH_CHAIN p[j] = V::fmadd(p[j], s2[j], V::splat(c));
  LETHE_EACH_CHAIN {
    const F log_m = V::mul(V::splat(2.0f), V::fmadd(V::mul(s[j], s2[j]), p[j], s[j]));
    out[j] = V::fmadd(e[j], V::splat(0.693147182f), log_m);
  }
}

// philox::detail::sincos_turn of w[j].
template <class V, int N>
LETHE_NORMAL_OP void sincos_turn(const typename V::W* w, typename V::F* sin_out, typename V::F* cos_out) {
  using F = typename V::F;
  typename V::W q[N];
  F a[N], a2[N], ps[N], pc[N];
  LETHE_EACH_CHAIN {
    F r_scaled;
    V::quarter_turns(w[j], &q[j], &r_scaled);
    a[j] = V::mul(r_scaled, V::splat(1.57079637f * 0x1p-30f));
    a2[j] = V::mul(a[j], a[j]);
    ps[j] = V::splat(1.0f / 362880);
    pc[j] = V::splat(-1.0f / 3628800);
  }
  for (const float c : {-1.0f / 5040, 1.0f / 120, -1.0f / 6}) LETHE_EACH_CHAIN ps[j] = V::fmadd(ps[j], a2[j], V::splat(c));
  for (const float c : {1.0f / 40320, -1.0f / 720, 1.0f / 24, -1.0f / 2})
    LETHE_EACH_CHAIN pc[j] = V::fmadd(pc[j], a2[j], V::splat(c));
  LETHE_EACH_CHAIN {
    const F sin_a = V::fmadd(V::mul(a[j], a2[j]), ps[j], a[j]);
    const F cos_a = V::fmadd(a2[j], pc[j], V::splat(1.0f));
    V::rotate(q[j], sin_a, cos_a, &sin_out[j], &cos_out[j]);
  }
}

// philox::detail::box_muller of the words bits1[j], bits2[j]: out_cos[j] = radius * cos, out_sin[j]
// the same with sin.
template <class V, int N>
LETHE_NORMAL_OP void box_muller(const typename V::W* bits1, const typename V::W* bits2, typename V::F* out_cos,
                                typename V::F* out_sin) {
  using F = typename V::F;
  F u1[N], log_u1[N], s[N], c[N];
  // philox::detail::radius_uniform: the product by 2^-32 is exact, the sum rounds once.
  LETHE_EACH_CHAIN u1[j] = V::add(V::mul(V::words_to_float(bits1[j]), V::splat(0x1p-32f)), V::splat(0x1p-33f));
  log_unit<V, N>(u1, log_u1);
  sincos_turn<V, N>(bits2, s, c);
  LETHE_EACH_CHAIN {
    const F radius = V::sqrt(V::mul(V::splat(-2.0f), log_u1[j]));
    out_cos[j] = V::mul(radius, c[j]);
    out_sin[j] = V::mul(radius, s[j]);
  }
}

// normal4 of G groups of V::kBlocks blocks, w[g].v[i] holding word i of group g's blocks lane by
// lane, into out[0 .. 4 * V::kBlocks * G) in block order (V::store_by_block: normal i of block j,
// in lane j of n[i], to out[4j + i]). Chain 2 * g + pair: the words 2 * pair and 2 * pair + 1 of
// group g's blocks, which give their normals 2 * pair (cos) and 2 * pair + 1 (sin).
template <class V, int G, class Words>
LETHE_NORMAL_OP void store_normals(const Words* w, float* out) {
  typename V::W bits1[2 * G], bits2[2 * G];
  for (int g = 0; g < G; ++g)
    for (int pair = 0; pair < 2; ++pair) bits1[2 * g + pair] = w[g].v[2 * pair], bits2[2 * g + pair] = w[g].v[2 * pair + 1];
  typename V::F n_cos[2 * G], n_sin[2 * G];
  box_muller<V, 2 * G>(bits1, bits2, n_cos, n_sin);
  for (int g = 0; g < G; ++g) {
    const typename V::F n[4] = {n_cos[2 * g], n_sin[2 * g], n_cos[2 * g + 1], n_sin[2 * g + 1]};
    V::store_by_block(n, out + 4 * V::kBlocks * g);
  }
}

}  // namespace lethe::cpu::normal_vector

#undef LETHE_EACH_CHAIN
