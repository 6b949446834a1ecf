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
// normal() is bit-identical on CPU and GPU: Box-Muller in float, with only
// correctly rounded IEEE operations (+ - * / sqrt, and fma written out
// explicitly, so results do not depend on -ffp-contract / --fmad) and
// hand-written log and sincos instead of libm/CUDA transcendentals, which
// differ between platforms. Float rather than double: the CPU's vector paths
// (kernels/cpu/normal_blocks.h) draw 16 a 512-bit vector, and an IEU step
// draws a normal per parameter, which costs more than its memory traffic.
// Never compile with fast-math.
#pragma once

#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/common/ieee.h"

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

using ieee::fma_rn;

// Box-Muller's radius input from a word: (w + 1/2) * 2^-32 rounded, in [2^-33, 1]: never 0, so
// the log stays finite, and fine-grained near 0, where the tail of the normal comes from.
LETHE_HD float radius_uniform(uint32_t w) { return ieee::word_to_float(w) * 0x1p-32f + 0x1p-33f; }

// Natural log of a float in [2^-33, 1] (what radius_uniform gives): within 2 ulp.
LETHE_HD float log_unit(float x) {
    // x = m * 2^e with m in [sqrt(1/2), sqrt(2)], so |s| below is <= 0.1716.
    const uint32_t u = ieee::float_bits(x);
    float m = ieee::bits_float((u & 0x007FFFFFu) | 0x3F800000u);
    int32_t e = int32_t(u >> 23) - 127;
    if (m > 1.41421354f) {
        m *= 0.5f;  // exact
        e += 1;
    }
    // log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m-1)/(m+1); m - 1 is exact
    // (Sterbenz). s^2 <= 0.0295: terms through s^9 leave ~2e-9 relative, a thirtieth of an ulp.
    const float s = ieee::div_rn(m - 1.0f, m + 1.0f);
    const float s2 = s * s;
    float p = 1.0f / 9;
    p = fma_rn(p, s2, 1.0f / 7);
    p = fma_rn(p, s2, 1.0f / 5);
    p = fma_rn(p, s2, 1.0f / 3);
    const float log_m = 2.0f * fma_rn(s * s2, p, s);
    return fma_rn(float(e), 0.693147182f, log_m);
}

// sin and cos of 2*pi*w/2^32: within 1.2e-7 of the exact values (1.02e-7 at worst over every 7th word).
LETHE_HD void sincos_turn(uint32_t w, float* sin_out, float* cos_out) {
    // The angle in quarter turns, 4w/2^32 = q + r: q the nearest integer (mod 4, as only q mod 4
    // matters), r in [-1/2, 1/2) from the low 30 bits as a signed fraction. Integer steps, exact.
    const uint32_t q = ((w + (1u << 29)) >> 30) & 3u;
    const int32_t r_scaled = int32_t(w << 2) >> 2;  // r * 2^30
    const float a = float(r_scaled) * (1.57079637f * 0x1p-30f);  // r * pi/2: |a| <= pi/4
    const float a2 = a * a;
    // Taylor series; with |a| <= pi/4 the first omitted terms are below 3e-9.
    float ps = 1.0f / 362880;
    ps = fma_rn(ps, a2, -1.0f / 5040);
    ps = fma_rn(ps, a2, 1.0f / 120);
    ps = fma_rn(ps, a2, -1.0f / 6);
    const float sin_a = fma_rn(a * a2, ps, a);
    float pc = -1.0f / 3628800;
    pc = fma_rn(pc, a2, 1.0f / 40320);
    pc = fma_rn(pc, a2, -1.0f / 720);
    pc = fma_rn(pc, a2, 1.0f / 24);
    pc = fma_rn(pc, a2, -1.0f / 2);
    const float cos_a = fma_rn(a2, pc, 1.0f);
    // Rotate by q quarter turns.
    switch (q) {
        case 0: *sin_out = sin_a;  *cos_out = cos_a;  break;
        case 1: *sin_out = cos_a;  *cos_out = -sin_a; break;
        case 2: *sin_out = -sin_a; *cos_out = -cos_a; break;
        default: *sin_out = -cos_a; *cos_out = sin_a; break;
    }
}

// Box-Muller: two words -> two independent N(0,1), in float arithmetic (as cuRAND's normals are).
// |z| <= sqrt(-2 ln 2^-33) ~= 6.76.
LETHE_HD void box_muller(uint32_t bits1, uint32_t bits2, float out[2]) {
    const float radius = ieee::sqrt_rn(-2.0f * log_unit(radius_uniform(bits1)));
    float s, c;
    sincos_turn(bits2, &s, &c);
    out[0] = radius * c;
    out[1] = radius * s;
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
