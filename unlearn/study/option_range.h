#pragma once
// Range checks for numeric options, done on the option's text before CLI11 converts it. Converting
// first is what lets bad numbers through: "-1" for an unsigned seed wraps to 2^64−1, 4294967297
// for an int becomes 1, "nan" fails every comparison a later check makes, and 1e30 overflows the
// cast to a count. Every numeric option of every subcommand carries one of these validators (a
// test walks them all), so the message always states the allowed range.
#include "unlearn/study/cli_fwd.h"

#include "nn/option_table.h"

namespace lethe::study {

// The name every range validator has; the test of all options looks for it.
inline constexpr const char* kRangeValidator = "RANGE";

// The ranges are declared with the options (nn/option_table.h).
using nn::fraction, nn::integer_in, nn::kMaxCount, nn::positive_up_to, nn::real_in, nn::seed_range, nn::unit_open;

// The check of `range` on an option's text, named kRangeValidator; its message states the range.
CLI::Validator range_check(const nn::OptionRange& range);

}  // namespace lethe::study
