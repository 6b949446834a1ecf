// Philox4x32-10 counter-based RNG (Salmon et al., SC'11, "Parallel random
// numbers: as easy as 1, 2, 3"), header-only, callable from host and device.
//
// Addressing contract (engine-wide): a random number is addressed by
// (seed, stream, index), all uint64 -- never by thread index, so every launch
// shape and the CPU reference produce the same number for the same index.
//   key     = {seed lo32, seed hi32}
//   block   = index / 4
//   counter = {block lo32, block hi32, stream lo32, stream hi32}
//   value   = philox4x32_10(counter, key).v[index % 4]
// Kernels usually generate a whole block (4 values) at a time: random4,
// uniform4, normal4 with block = index / 4.
//
// normal() is bit-identical on CPU and GPU: it uses only correctly rounded
// IEEE double operations (+ - * / sqrt, and fma written out explicitly, so
// results do not depend on -ffp-contract / --fmad), with hand-written log and
// sincos instead of libm/CUDA transcendentals, which differ between platforms.
// Never compile with fast-math.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/common/hd.h"

namespace lethe::philox {

struct Block {
    uint32_t v[4];
};

namespace detail {

// High 32 bits of the 64-bit product a*b.
LETHE_HD uint32_t mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);  // one instruction; nvcc emits a 64-bit multiply otherwise
#else
    return uint32_t((uint64_t{a} * b) >> 32);
#endif
}

}  // namespace detail

// Exactly Random123's philox4x32 with 10 rounds.
LETHE_HD Block philox4x32_10(Block ctr, uint32_t key0, uint32_t key1) {
    constexpr uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    for (int round = 0; round < 10; ++round) {
        ctr = Block{{detail::mulhi(m1, ctr.v[2]) ^ ctr.v[1] ^ key0, m1 * ctr.v[2],
                     detail::mulhi(m0, ctr.v[0]) ^ ctr.v[3] ^ key1, m0 * ctr.v[0]}};
        key0 += 0x9E3779B9u;  // Weyl key schedule (unsigned wrap-around)
        key1 += 0xBB67AE85u;
    }
    return ctr;
}

// The 4 raw words of counter block `block` of (seed, stream).
LETHE_HD Block random4(uint64_t seed, uint64_t stream, uint64_t block) {
    const Block ctr{{uint32_t(block), uint32_t(block >> 32), uint32_t(stream),
                     uint32_t(stream >> 32)}};
    return philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
}

LETHE_HD uint32_t random_u32(uint64_t seed, uint64_t stream, uint64_t index) {
    return random4(seed, stream, index / 4).v[index % 4];
}

// [0,1) from the top 24 bits: exactly representable, so 1.0f is never hit.
LETHE_HD float uniform_float(uint32_t bits) { return float(bits >> 8) * 0x1p-24f; }

// [0,1) with 53 random bits (32 from hi, 21 from the top of lo).
LETHE_HD double uniform_double(uint32_t hi, uint32_t lo) {
    return double((uint64_t{hi} << 21) | (lo >> 11)) * 0x1p-53;
}

LETHE_HD void uniform4(uint64_t seed, uint64_t stream, uint64_t block, float out[4]) {
    const Block b = random4(seed, stream, block);
    for (int i = 0; i < 4; ++i) out[i] = uniform_float(b.v[i]);
}

LETHE_HD float uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    float out[4];
    uniform4(seed, stream, index / 4, out);
    return out[index % 4];
}

namespace detail {

// Explicit correctly rounded primitives: identical on host and device.
LETHE_HD double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
    return __fma_rn(a, b, c);
#else
    return std::fma(a, b, c);
#endif
}

LETHE_HD double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
    return __dsqrt_rn(x);
#else
    return std::sqrt(x);
#endif
}

LETHE_HD uint64_t to_bits(double x) {
#if defined(__CUDA_ARCH__)
    return uint64_t(__double_as_longlong(x));
#else
    uint64_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
#endif
}

LETHE_HD double from_bits(uint64_t u) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double((long long)u);
#else
    double x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

// Natural log of a positive, normal, finite double (Box-Muller feeds
// [2^-32, 1]); relative error ~1e-16.
LETHE_HD double log_pos(double x) {
    // x = m * 2^e with m in [sqrt(1/2), sqrt(2)], so |s| below is <= 0.1716.
    const uint64_t u = to_bits(x);
    int e = int(u >> 52) - 1023;
    double m = from_bits((u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
    if (m > 1.4142135623730951) {
        m *= 0.5;  // exact
        ++e;
    }
    // log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1);
    // m - 1 is exact (Sterbenz). s^2 <= 0.0295: terms through s^19 leave an
    // error ~2e-17 relative.
    const double s = (m - 1.0) / (m + 1.0);
    const double s2 = s * s;
    double p = 1.0 / 19;
    p = fma_rn(p, s2, 1.0 / 17);
    p = fma_rn(p, s2, 1.0 / 15);
    p = fma_rn(p, s2, 1.0 / 13);
    p = fma_rn(p, s2, 1.0 / 11);
    p = fma_rn(p, s2, 1.0 / 9);
    p = fma_rn(p, s2, 1.0 / 7);
    p = fma_rn(p, s2, 1.0 / 5);
    p = fma_rn(p, s2, 1.0 / 3);
    const double log_m = 2.0 * fma_rn(s * s2, p, s);
    constexpr double ln2 = 0.6931471805599453;
    return fma_rn(double(e), ln2, log_m);
}

// sin and cos of 2*pi*u for u in [0,1); absolute error ~1e-16.
LETHE_HD void sincos_2pi(double u, double* sin_out, double* cos_out) {
    // 2*pi*u = (pi/2) * t, t = 4u. Split t = q + r with integer quadrant q and
    // r in [-1/2, 1/2]; both steps are exact, so no precision is lost.
    const double t = 4.0 * u;
    const int64_t q = int64_t(t + 0.5);
    const double r = t - double(q);
    constexpr double half_pi = 1.5707963267948966;
    const double a = r * half_pi;  // |a| <= pi/4
    const double a2 = a * a;
    // Taylor series; with |a| <= pi/4 the first omitted terms are < 1e-16.
    double ps = -1.0 / 1307674368000;  // -1/15!
    ps = fma_rn(ps, a2, 1.0 / 6227020800);
    ps = fma_rn(ps, a2, -1.0 / 39916800);
    ps = fma_rn(ps, a2, 1.0 / 362880);
    ps = fma_rn(ps, a2, -1.0 / 5040);
    ps = fma_rn(ps, a2, 1.0 / 120);
    ps = fma_rn(ps, a2, -1.0 / 6);
    const double sin_a = fma_rn(a * a2, ps, a);
    double pc = 1.0 / 20922789888000;  // 1/16!
    pc = fma_rn(pc, a2, -1.0 / 87178291200);
    pc = fma_rn(pc, a2, 1.0 / 479001600);
    pc = fma_rn(pc, a2, -1.0 / 3628800);
    pc = fma_rn(pc, a2, 1.0 / 40320);
    pc = fma_rn(pc, a2, -1.0 / 720);
    pc = fma_rn(pc, a2, 1.0 / 24);
    pc = fma_rn(pc, a2, -1.0 / 2);
    const double cos_a = fma_rn(a2, pc, 1.0);
    // Rotate by q quarter turns.
    switch (q & 3) {
        case 0: *sin_out = sin_a;  *cos_out = cos_a;  break;
        case 1: *sin_out = cos_a;  *cos_out = -sin_a; break;
        case 2: *sin_out = -sin_a; *cos_out = -cos_a; break;
        default: *sin_out = -cos_a; *cos_out = sin_a; break;
    }
}

// Box-Muller: two words -> two independent N(0,1), rounded to float.
// u1 in (0,1] keeps the log finite; |z| <= sqrt(-2 ln 2^-32) ~= 6.66.
LETHE_HD void box_muller(uint32_t bits1, uint32_t bits2, float out[2]) {
    const double u1 = (double(bits1) + 1.0) * 0x1p-32;
    const double u2 = double(bits2) * 0x1p-32;
    const double radius = sqrt_rn(-2.0 * log_pos(u1));
    double s, c;
    sincos_2pi(u2, &s, &c);
    out[0] = float(radius * c);
    out[1] = float(radius * s);
}

}  // namespace detail

// The 4 standard normals of counter block `block`: lanes (0,1) and (2,3)
// each feed one Box-Muller pair.
LETHE_HD void normal4(uint64_t seed, uint64_t stream, uint64_t block, float out[4]) {
    const Block b = random4(seed, stream, block);
    detail::box_muller(b.v[0], b.v[1], out);
    detail::box_muller(b.v[2], b.v[3], out + 2);
}

LETHE_HD float normal(uint64_t seed, uint64_t stream, uint64_t index) {
    float out[4];
    normal4(seed, stream, index / 4, out);
    return out[index % 4];
}

}  // namespace lethe::philox
