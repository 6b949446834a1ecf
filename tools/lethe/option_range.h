#pragma once
// Range checks for numeric options, done on the option's text before CLI11 converts it. Converting
// first is what lets bad numbers through: "-1" for an unsigned seed wraps to 2^64−1, 4294967297
// for an int becomes 1, "nan" fails every comparison a later check makes, and 1e30 overflows the
// cast to a count. Every numeric option of every subcommand carries one of these validators (a
// test walks them all), so the message always states the allowed range.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>

namespace lethe::cli {

// The name every range validator has; the test of all options looks for it.
inline constexpr const char* kRangeValidator = "RANGE";

// Counts, sizes and step numbers: no option needs more, and a tensor index of this times a batch
// still fits in int64.
inline constexpr int64_t kMaxCount = int64_t{1} << 31;

// A decimal integer in [lo, hi] (no hex, octal or exponent: "010" is ten, "1e3" is refused).
CLI::Validator integer_in(int64_t lo, int64_t hi);
// A seed: a decimal integer in [0, 2^64−1].
CLI::Validator seed_range();

// A real number in the interval; NaN never, and ±inf only when that bound is itself infinite.
struct RealRange {
  double lo, hi;
  bool lo_open = false, hi_open = false;
};
CLI::Validator real_in(RealRange range);
inline CLI::Validator real_in(double lo, double hi) { return real_in(RealRange{lo, hi}); }
// A fraction in [0, 1].
inline CLI::Validator fraction() { return real_in(0, 1); }
// A momentum or a β: [0, 1).
inline CLI::Validator unit_open() { return real_in({0, 1, false, true}); }
// A positive real up to `hi`: (0, hi].
inline CLI::Validator positive_up_to(double hi) { return real_in({0, hi, true, false}); }

}  // namespace lethe::cli
