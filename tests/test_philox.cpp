#include "kernels/common/philox.h"

#include <doctest/doctest.h>

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

TEST_CASE("philox: log and sincos helpers match libm") {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int i = 0; i < 200'000; ++i) {
        // Box-Muller inputs (k+1)/2^32, arbitrary doubles down to 2^-40, and 1 - tiny.
        const double xs[] = {(double(uint32_t(rng())) + 1.0) * 0x1p-32,
                             std::ldexp(0.5 + 0.5 * unit(rng), -int(rng() % 40)),
                             1.0 - std::ldexp(double(rng() % 1000), -52)};
        for (double x : xs) {
            const double ref = std::log(x);
            if (ref == 0.0)
                REQUIRE(detail::log_pos(x) == 0.0);
            else
                REQUIRE(std::fabs(detail::log_pos(x) - ref) <= 1e-14 * std::fabs(ref));
        }

        // Long-double reference so the check isn't limited by rounding 2*pi*u.
        for (double u : {unit(rng), double(uint32_t(rng())) * 0x1p-32}) {
            double s, c;
            detail::sincos_2pi(u, &s, &c);
            const long double theta = 2 * std::numbers::pi_v<long double> * u;
            REQUIRE(std::fabs(s - std::sin(theta)) < 1e-15L);
            REQUIRE(std::fabs(c - std::cos(theta)) < 1e-15L);
        }
    }
    CHECK(detail::log_pos(1.0) == 0.0);
    double s, c;
    detail::sincos_2pi(0.0, &s, &c);
    CHECK((s == 0.0 && c == 1.0));
}

TEST_CASE("philox: normal distribution") {
    // Extremes of Box-Muller: smallest u1 gives the largest radius, u1 = 1 gives 0.
    float z[2];
    detail::box_muller(0, 0, z);
    CHECK(z[0] == float(std::sqrt(64 * std::numbers::ln2)));
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
        0x3f8856ddu,  //  1.06515086
        0xbf51494du,  // -0.817524731
        0xbf289034u,  // -0.658450365
        0x3f9101bfu,  //  1.13286579
        0xbea841a0u,  // -0.328625679
        0x3ea7c2c6u,  //  0.327657878
        0x3efc8bdbu,  //  0.493254513
        0x3f743a51u,  //  0.954014838
    };
    for (uint64_t i = 0; i < 8; ++i)
        CHECK(std::bit_cast<uint32_t>(normal(42, 7, i)) == golden[i]);
}

TEST_CASE("philox: the CPU's blocks of normals are normal4's, bit for bit, on every path") {
    // cpu::normal_blocks (the IEU step's noise, randn's) takes the best vector path this CPU has
    // (AVX-512: 16 blocks a step, AVX2: 8, the rest scalar); each must give normal4's bits, which
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
        // Counters where the block's low word wraps inside a step of 8 or 16, high words, seeds and
        // streams with both halves set, and the smallest and largest words (u1 = 2^-32 and 1, the
        // quadrant edges).
        const uint64_t firsts[] = {0, 1, 5, 0xFFFFFFF4ull, 0xFFFFFFFFull, 0x123456789ull, ~uint64_t{0} - 40};
        const int64_t counts[] = {0, 1, 7, 8, 9, 15, 16, 17, 23, 33, 1000};
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
