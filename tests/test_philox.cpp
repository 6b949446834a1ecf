#include "kernels/common/philox.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/normal_blocks.h"

using namespace lethe::philox;

namespace {

constexpr int kSamples = 1'000'000;

struct Moments {
    double mean, var;
};

// Sample mean and (population) variance of f(0..n-1).
template <class F>
Moments moments(int n, F f) {
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) {
        const double x = f(i);
        sum += x;
        sum2 += x * x;
    }
    const double mean = sum / n;
    return {mean, sum2 / n - mean * mean};
}

}  // namespace

TEST_CASE("philox: Random123 known-answer vectors") {
    // From Random123's kat_vectors ("philox4x32 10 <ctr x4> <key x2> <out x4>").
    struct Kat {
        Block ctr;
        uint32_t k0, k1;
        Block out;
    };
    const Kat kats[] = {
        {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
        {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
         {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
        {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
         {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
    };
    for (const Kat& k : kats) {
        const Block got = philox4x32_10(k.ctr, k.k0, k.k1);
        for (int i = 0; i < 4; ++i) CHECK(got.v[i] == k.out.v[i]);
    }
}

TEST_CASE("philox: addressing by (seed, stream, index)") {
    const uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    // Low indices, and indices whose block number needs the counter's high word.
    for (uint64_t base : {uint64_t{0}, uint64_t{0x3'0000'0000} - 2048}) {
        for (uint64_t index = base; index < base + 4096; ++index) {
            const uint64_t block = index / 4;
            const Block ctr{{uint32_t(block), uint32_t(block >> 32), uint32_t(stream),
                             uint32_t(stream >> 32)}};
            const Block b = philox4x32_10(ctr, uint32_t(seed), uint32_t(seed >> 32));
            REQUIRE(random_u32(seed, stream, index) == b.v[index % 4]);
            REQUIRE(uniform(seed, stream, index) == uniform_float(b.v[index % 4]));
            float n[4];
            normal4(seed, stream, block, n);
            REQUIRE(std::bit_cast<uint32_t>(normal(seed, stream, index)) ==
                    std::bit_cast<uint32_t>(n[index % 4]));
        }
    }

    // Changing any half of seed or stream gives an unrelated sequence
    // (a chance match is 1 in 2^32 per index).
    const uint64_t seeds[] = {seed, seed ^ 1, seed ^ (uint64_t{1} << 32)};
    const uint64_t streams[] = {stream, stream ^ 1, stream ^ (uint64_t{1} << 32)};
    for (uint64_t s : seeds) {
        for (uint64_t t : streams) {
            if (s == seed && t == stream) continue;
            int same = 0;
            for (uint64_t i = 0; i < 4096; ++i)
                same += random_u32(s, t, i) == random_u32(seed, stream, i);
            CHECK(same < 4);
        }
    }
}

TEST_CASE("philox: uniform distribution") {
    CHECK(uniform_float(0) == 0.0f);
    CHECK(uniform_float(0xffffffffu) < 1.0f);
    CHECK(uniform_double(0, 0) == 0.0);
    CHECK(uniform_double(0xffffffffu, 0xffffffffu) < 1.0);

    bool in_range = true;
    const Moments m = moments(kSamples, [&](int i) {
        const float u = uniform(11, 3, uint64_t(i));
        in_range = in_range && u >= 0.0f && u < 1.0f;
        return double(u);
    });
    CHECK(in_range);
    // U(0,1): var = 1/12, Var((U-1/2)^2) = 1/80 - 1/144 = 1/180. Allow 5 SE.
    CHECK(std::fabs(m.mean - 0.5) < 5 * std::sqrt(1.0 / 12 / kSamples));
    CHECK(std::fabs(m.var - 1.0 / 12) < 5 * std::sqrt(1.0 / 180 / kSamples));
}

TEST_CASE("philox: the float log and sincos are within 2 ulp and 1.2e-7 of long double") {
    // Measured over every float in [2^-33, 1] once: log_unit within 1.68 ulp; over every 7th word,
    // sincos_turn within 1.02e-7.
    std::mt19937_64 rng(1);
    const auto ulp = [](long double x) {
        int e;
        std::frexp(static_cast<double>(x), &e);
        return std::ldexp(1.0L, e - 24);
    };
    const auto check_log = [&](float x) {
        const long double want = std::log(static_cast<long double>(x));
        if (want == 0) REQUIRE(detail::log_unit(x) == 0.0f);
        else REQUIRE(std::fabs(detail::log_unit(x) - want) <= 2 * ulp(want));
    };
    const auto check_sincos = [&](uint32_t w) {
        float s, c;
        detail::sincos_turn(w, &s, &c);
        const long double turn = 2 * std::numbers::pi_v<long double> * w * 0x1p-32L;
        REQUIRE(std::fabs(s - std::sin(turn)) <= 1.2e-7L);
        REQUIRE(std::fabs(c - std::cos(turn)) <= 1.2e-7L);
    };
    for (int i = 0; i < 300'000; ++i) {
        const uint32_t w = static_cast<uint32_t>(rng());
        // Box-Muller's inputs, and any float of [2^-33, 1) (random bits under a random exponent).
        check_log(detail::radius_uniform(w));
        check_log(std::ldexp(1.0f + static_cast<float>(w >> 9) * 0x1p-23f, -1 - static_cast<int>(rng() % 33)));
        check_sincos(w);
    }
    // The ends, the mantissa's split at sqrt(2) and the quadrant edges.
    for (const float x : {0x1p-33f, 1.0f, 0.99999994f, 0.70710677f, 0.70710683f, 0.5f})
        check_log(x);
    for (const uint32_t q : {0u, 1u << 30, 2u << 30, 3u << 30})
        for (const uint32_t w : {q, q + (1u << 29), q + (1u << 29) - 1, q - 1, q + 1}) check_sincos(w);
    float s, c;
    detail::sincos_turn(0, &s, &c);
    CHECK((s == 0.0f && c == 1.0f));
}

TEST_CASE("philox: Box-Muller's normals are within 4e-7 of long double's from the same words") {
    // Measured over 2^27 word pairs (the smallest 2^20 first words among them, the tail): 2.9e-7.
    std::mt19937_64 rng(3);
    for (int i = 0; i < 400'000; ++i) {
        const uint32_t bits1 = i < 4096 ? static_cast<uint32_t>(i) : static_cast<uint32_t>(rng());
        const uint32_t bits2 = static_cast<uint32_t>(rng());
        float z[2];
        detail::box_muller(bits1, bits2, z);
        const long double radius = std::sqrt(-2 * std::log(static_cast<long double>(detail::radius_uniform(bits1))));
        const long double turn = 2 * std::numbers::pi_v<long double> * bits2 * 0x1p-32L;
        const long double want[2] = {radius * std::cos(turn), radius * std::sin(turn)};
        for (int k = 0; k < 2; ++k) REQUIRE(std::fabs(z[k] - want[k]) <= 4e-7L * std::max(1.0L, std::fabs(want[k])));
    }
}

TEST_CASE("philox: normal distribution") {
    // Extremes of Box-Muller: the smallest u1, 2^-33, gives the largest radius; u1 = 1 gives 0.
    float z[2];
    detail::box_muller(0, 0, z);
    CHECK(z[0] == doctest::Approx(std::sqrt(66 * std::numbers::ln2)).epsilon(3e-7));
    CHECK(z[1] == 0.0f);
    detail::box_muller(0xffffffffu, 0x12345678u, z);
    CHECK((z[0] == 0.0f && z[1] == 0.0f));

    bool finite = true;
    double m4 = 0, within1 = 0, pair_product = 0;
    const Moments m = moments(kSamples, [&](int i) {
        const double x = normal(5, 9, uint64_t(i));
        finite = finite && std::isfinite(x);
        m4 += x * x * x * x;
        within1 += std::fabs(x) < 1.0;
        if (i % 2 == 1) pair_product += x * normal(5, 9, uint64_t(i - 1));
        return x;
    });
    m4 /= kSamples;
    within1 /= kSamples;
    pair_product /= kSamples / 2;
    CHECK(finite);
    // N(0,1): Var(Z) = 1, Var(Z^2) = 2, Var(Z^4) = 105 - 9 = 96,
    // Var(Z0*Z1) = 1 for a Box-Muller pair. Allow 5 SE each.
    const double n = kSamples;
    CHECK(std::fabs(m.mean) < 5 * std::sqrt(1 / n));
    CHECK(std::fabs(m.var - 1) < 5 * std::sqrt(2 / n));
    CHECK(std::fabs(m4 - 3) < 5 * std::sqrt(96 / n));
    CHECK(std::fabs(pair_product) < 5 * std::sqrt(1 / (n / 2)));
    const double p1 = std::erf(1 / std::numbers::sqrt2);  // P(|Z| < 1) = 0.6827
    CHECK(std::fabs(within1 - p1) < 5 * std::sqrt(p1 * (1 - p1) / n));
}

TEST_CASE("philox: golden normals (seed 42, stream 7)") {
    // Pins the bit-exact stream: any change to the generator or the normal
    // math shows up here. CUDA parity with these values is tested elsewhere.
    const uint32_t golden[8] = {
        0x3f8856deu,  //  1.06515098
        0xbf51494eu,  // -0.817524791
        0xbf289034u,  // -0.658450365
        0x3f9101bfu,  //  1.13286579
        0xbea841a1u,  // -0.328625709
        0x3ea7c2c7u,  //  0.327657908
        0x3efc8bdbu,  //  0.493254513
        0x3f743a50u,  //  0.954014778
    };
    for (uint64_t i = 0; i < 8; ++i)
        CHECK(std::bit_cast<uint32_t>(normal(42, 7, i)) == golden[i]);
}

TEST_CASE("philox: the CPU's blocks of normals are normal4's, bit for bit, on every path") {
    // cpu::normal_blocks (the IEU step's noise, randn's) takes the best vector path this CPU has
    // (AVX-512: 64 blocks a step, then 16; AVX2: 16, then 8; the rest scalar); each must give normal4's bits, which
    // the CUDA kernels give too. Every path this CPU has is checked; the ones it lacks say so.
    using lethe::cpu::NormalPath;
    MESSAGE("cpu::normal_blocks takes the " << std::string(lethe::cpu::normal_path_name(lethe::cpu::normal_path())) << " path");
    for (const NormalPath path : lethe::cpu::kNormalPaths) {
        const std::string name = lethe::cpu::normal_path_name(path);
        if (!lethe::cpu::cpu_has(path)) {
            MESSAGE("skipped: the " << name << " path (this CPU lacks its features)");
            CHECK_THROWS_WITH_AS(lethe::cpu::normal_blocks(path, 0, 0, 0, 16, nullptr),
                                 doctest::Contains("lacks"), lethe::Error);
            continue;
        }
        INFO("path " << name);
        std::mt19937_64 rng(7);
        // Counters where the block's low word wraps inside a step, high words, seeds and
        // streams with both halves set, and the smallest and largest words (u1 = 2^-32 and 1, the
        // quadrant edges).
        const uint64_t firsts[] = {0, 1, 5, 0xFFFFFFF4ull, 0xFFFFFFFFull, 0x123456789ull, ~uint64_t{0} - 40};
        const int64_t counts[] = {0, 1, 7, 8, 9, 15, 16, 17, 23, 33, 63, 64, 65, 79, 88, 1000};
        int64_t compared = 0;
        for (int trial = 0; trial < 20; ++trial) {
            const uint64_t seed = trial == 0 ? 0 : rng(), stream = trial == 0 ? 0 : rng();
            for (const uint64_t first : firsts) {
                for (const int64_t blocks : counts) {
                    std::vector<float> got(static_cast<size_t>(4 * blocks) + 1, 7.0f), want(got.size(), 7.0f);
                    lethe::cpu::normal_blocks(path, seed, stream, first, blocks, got.data());
                    for (int64_t k = 0; k < blocks; ++k)
                        normal4(seed, stream, first + static_cast<uint64_t>(k), &want[4 * k]);
                    REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);  // nothing past the end
                    compared += 4 * blocks;
                }
            }
        }
        // Many counters of one stream: every word value region is reached.
        std::vector<float> got(4 << 18), want(got.size());
        lethe::cpu::normal_blocks(path, 3, 11, 12345, 1 << 18, got.data());
        for (int64_t k = 0; k < (1 << 18); ++k) normal4(3, 11, 12345 + static_cast<uint64_t>(k), &want[4 * k]);
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
        compared += static_cast<int64_t>(got.size());
        CHECK(compared > 1'000'000);
    }
}
