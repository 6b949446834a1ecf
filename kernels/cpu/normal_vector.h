// Box-Muller on vectors of doubles, for the vector paths of cpu::normal_blocks
// (kernels/cpu/normal_blocks_<isa>.cpp). Written once over a traits type V that each path defines
// for its vectors (the arithmetic, and the few steps whose instructions differ: the exponent split
// of log, the quarter-turn rotation of sincos); each path's file defines LETHE_NORMAL_TARGET (its
// target attribute) and includes this header, as kernels/cpu/sgemm_kernel.h is shared.
//
// Every function is philox::detail's scalar function (kernels/common/philox.h), the same
// correctly rounded operations in the same order, lane by lane, so the bits are the same. Each
// works on N independent chains at once, every chain's operation before the next operation: the
// long latencies (division, square root, the polynomials) of one chain overlap the others'. One
// chain after another left the core waiting on them (measured: the AVX2 path 23% slower).
//
// V provides: D (a vector of doubles), W (the words feeding one D), F (the floats of one D);
// splat, add, sub, mul, div, sqrt, fmadd; words_to_double (exact, unsigned); split_log (x =
// m * 2^e with m in [sqrt(1/2), sqrt(2)]: m, and e as a double); round_toward_zero; rotate (sin
// and cos of a + q quarter turns from those of a); to_float (round to nearest).
#pragma once

#include <initializer_list>

#ifndef LETHE_NORMAL_TARGET
#error "define LETHE_NORMAL_TARGET before including kernels/cpu/normal_vector.h"
#endif

#define LETHE_NORMAL_OP LETHE_NORMAL_TARGET __attribute__((always_inline)) static inline
#define LETHE_EACH_CHAIN _Pragma("GCC unroll 8") for (int j = 0; j < N; ++j)

namespace lethe::cpu::normal_vector {

// philox::detail::log_pos of x[j].
template <class V, int N>
LETHE_NORMAL_OP void log_pos(const typename V::D* x, typename V::D* out) {
  using D = typename V::D;
  D m[N], e[N], s[N], s2[N], p[N];
  LETHE_EACH_CHAIN V::split_log(x[j], &m[j], &e[j]);
  LETHE_EACH_CHAIN s[j] = V::div(V::sub(m[j], V::splat(1.0)), V::add(m[j], V::splat(1.0)));
  LETHE_EACH_CHAIN s2[j] = V::mul(s[j], s[j]);
  LETHE_EACH_CHAIN p[j] = V::splat(1.0 / 19);
  for (const double c : {1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3})
    LETHE_EACH_CHAIN p[j] = V::fmadd(p[j], s2[j], V::splat(c));
  LETHE_EACH_CHAIN {
    const D log_m = V::mul(V::splat(2.0), V::fmadd(V::mul(s[j], s2[j]), p[j], s[j]));
    out[j] = V::fmadd(e[j], V::splat(0.6931471805599453), log_m);
  }
}

// philox::detail::sincos_2pi of u[j].
template <class V, int N>
LETHE_NORMAL_OP void sincos_2pi(const typename V::D* u, typename V::D* sin_out, typename V::D* cos_out) {
  using D = typename V::D;
  D q[N], a[N], a2[N], ps[N], pc[N];
  LETHE_EACH_CHAIN {
    const D t = V::mul(V::splat(4.0), u[j]);
    q[j] = V::round_toward_zero(V::add(t, V::splat(0.5)));
    a[j] = V::mul(V::sub(t, q[j]), V::splat(1.5707963267948966));
    a2[j] = V::mul(a[j], a[j]);
    ps[j] = V::splat(-1.0 / 1307674368000);
    pc[j] = V::splat(1.0 / 20922789888000);
  }
  for (const double c : {1.0 / 6227020800, -1.0 / 39916800, 1.0 / 362880, -1.0 / 5040, 1.0 / 120, -1.0 / 6})
    LETHE_EACH_CHAIN ps[j] = V::fmadd(ps[j], a2[j], V::splat(c));
  for (const double c : {-1.0 / 87178291200, 1.0 / 479001600, -1.0 / 3628800, 1.0 / 40320, -1.0 / 720, 1.0 / 24,
                         -1.0 / 2})
    LETHE_EACH_CHAIN pc[j] = V::fmadd(pc[j], a2[j], V::splat(c));
  LETHE_EACH_CHAIN {
    const D sin_a = V::fmadd(V::mul(a[j], a2[j]), ps[j], a[j]);
    const D cos_a = V::fmadd(a2[j], pc[j], V::splat(1.0));
    V::rotate(q[j], sin_a, cos_a, &sin_out[j], &cos_out[j]);
  }
}

// philox::detail::box_muller of the words bits1[j], bits2[j]: out_cos[j] = float(radius * cos),
// out_sin[j] the same with sin.
template <class V, int N>
LETHE_NORMAL_OP void box_muller(const typename V::W* bits1, const typename V::W* bits2, typename V::F* out_cos,
                                typename V::F* out_sin) {
  using D = typename V::D;
  const D two_to_minus_32 = V::splat(0x1p-32);
  D u1[N], u2[N], log_u1[N], s[N], c[N];
  LETHE_EACH_CHAIN {
    u1[j] = V::mul(V::add(V::words_to_double(bits1[j]), V::splat(1.0)), two_to_minus_32);
    u2[j] = V::mul(V::words_to_double(bits2[j]), two_to_minus_32);
  }
  log_pos<V, N>(u1, log_u1);
  sincos_2pi<V, N>(u2, s, c);
  LETHE_EACH_CHAIN {
    const D radius = V::sqrt(V::mul(V::splat(-2.0), log_u1[j]));
    out_cos[j] = V::to_float(V::mul(radius, c[j]));
    out_sin[j] = V::to_float(V::mul(radius, s[j]));
  }
}

}  // namespace lethe::cpu::normal_vector

#undef LETHE_EACH_CHAIN
