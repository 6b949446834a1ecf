#include "option_range.h"

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <string>


namespace lethe::cli {

namespace {

// The text quoted back in a message, cut short: it came from the user or a config file.
std::string shown(const std::string& text) {
  constexpr size_t kMax = 40;
  if (text.size() <= kMax) return "'" + text + "'";
  return "'" + text.substr(0, kMax) + "...' (" + std::to_string(text.size()) + " characters)";
}

template <class T>
bool parse_whole(const std::string& text, T& value) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (begin != end && *begin == '+') ++begin;  // from_chars takes no '+'
  const auto [ptr, err] = std::from_chars(begin, end, value);
  return err == std::errc() && ptr == end && begin != end;
}

std::string real_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

}  // namespace

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  const std::string range = fmt::format("an integer in [{}, {}]", lo, hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t v = 0;
        // Digits that overflow int64 fail to parse: out of range too.
        if (!parse_whole(text, v) || v < lo || v > hi) return "must be " + range + "; got " + shown(text);
        return {};
      },
      range, kRangeValidator);
}

CLI::Validator seed_range() {
  const std::string range = fmt::format("an integer in [0, {}]", std::numeric_limits<uint64_t>::max());
  return CLI::Validator(
      [range](std::string& text) -> std::string {
        uint64_t v = 0;
        if (!parse_whole(text, v)) return "must be " + range + "; got " + shown(text);
        return {};
      },
      range, kRangeValidator);
}

CLI::Validator real_in(RealRange r) {
  const std::string range =
      fmt::format("a number in {}{}, {}{}", r.lo_open ? "(" : "[", real_text(r.lo), real_text(r.hi), r.hi_open ? ")" : "]");
  return CLI::Validator(
      [r, range](std::string& text) -> std::string {
        double v = 0;
        if (!parse_whole(text, v) || std::isnan(v)) return "must be " + range + "; got " + shown(text);
        const bool above_lo = r.lo_open ? v > r.lo : v >= r.lo;
        const bool below_hi = r.hi_open ? v < r.hi : v <= r.hi;
        if (!above_lo || !below_hi) return "must be " + range + "; got " + shown(text);
        return {};
      },
      range, kRangeValidator);
}

}  // namespace lethe::cli
