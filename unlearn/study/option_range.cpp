#include "unlearn/study/option_range.h"

#include <CLI/CLI.hpp>

#include <fmt/core.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>

namespace lethe::study {

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

// Each range is a validator whose description is the range, so --help shows it too.
CLI::Validator range_check(const nn::OptionRange& r) {
  using Kind = nn::OptionRange::Kind;
  std::string range;
  std::function<std::string(std::string&)> check;
  switch (r.kind) {
    case Kind::integer:
      range = fmt::format("an integer in [{}, {}]", r.lo, r.hi);
      check = [r, range](std::string& text) -> std::string {
        int64_t v = 0;
        // Digits that overflow int64 fail to parse: out of range too.
        if (!parse_whole(text, v) || v < r.lo || v > r.hi) return "must be " + range + "; got " + shown(text);
        return {};
      };
      break;
    case Kind::seed:
      range = fmt::format("an integer in [0, {}]", std::numeric_limits<uint64_t>::max());
      check = [range](std::string& text) -> std::string {
        uint64_t v = 0;
        if (!parse_whole(text, v)) return "must be " + range + "; got " + shown(text);
        return {};
      };
      break;
    case Kind::real:
      range = fmt::format("a number in {}{}, {}{}", r.lo_open ? "(" : "[", real_text(r.real_lo), real_text(r.real_hi),
                          r.hi_open ? ")" : "]");
      check = [r, range](std::string& text) -> std::string {
        double v = 0;
        if (!parse_whole(text, v) || std::isnan(v)) return "must be " + range + "; got " + shown(text);
        const bool above_lo = r.lo_open ? v > r.real_lo : v >= r.real_lo;
        const bool below_hi = r.hi_open ? v < r.real_hi : v <= r.real_hi;
        if (!above_lo || !below_hi) return "must be " + range + "; got " + shown(text);
        return {};
      };
      break;
    case Kind::any:
      throw std::logic_error("range_check of an option without a range");
  }
  return CLI::Validator(check, range, kRangeValidator);
}

}  // namespace lethe::study
