#pragma once
// Errors are exceptions that name the op and say what is wrong; user errors never abort.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace lethe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream s;
  (s << ... << std::forward<Args>(args));
  return s.str();
}

// The length of the UTF-8 sequence at the start of `s` when it is one that is safe to print as it
// is (well-formed, not a C1 control or a bidirectional override/isolate), else 0.
inline size_t printable_utf8(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = b(0);
  const size_t n = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  if (n == 0 || s.size() < n) return 0;
  uint32_t cp = lead & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i) & 0x3f);
  }
  const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;  // overlong, too large, surrogate
  if (cp <= 0x9f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) return 0;
  return n;
}
}  // namespace detail

// Untrusted text (a name, a value, a token read from a file) for an error message: between `quote`
// characters, with that quote, backslashes, control characters, bytes that are not UTF-8 and
// bidirectional controls escaped (\n, \t, \xNN), and cut to about `max` characters with the
// length of the whole: "abc…" (100000 bytes). A message that quotes untrusted input quotes it
// through this, so a corrupt or hostile file cannot make a message huge or rewrite a terminal.
inline std::string excerpt(std::string_view untrusted, size_t max = 80, char quote = '"') {
  std::string out(1, quote);
  size_t i = 0;
  while (i < untrusted.size()) {
    const unsigned char c = static_cast<unsigned char>(untrusted[i]);
    size_t used = 1;
    std::string piece;
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      piece = {'\\', static_cast<char>(c)};
    } else if (c == '\n') {
      piece = "\\n";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c >= 0x20 && c < 0x7f) {
      piece = std::string(1, static_cast<char>(c));
    } else if (const size_t n = c >= 0x80 ? detail::printable_utf8(untrusted.substr(i)) : 0; n > 0) {
      piece = std::string(untrusted.substr(i, n));
      used = n;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      piece = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    }
    if (out.size() - 1 + piece.size() > max) break;
    out += piece;
    i += used;
  }
  out += quote;
  if (i < untrusted.size()) out += "\u2026 (" + std::to_string(untrusted.size()) + " bytes)";
  return out;
}

}  // namespace lethe

// LETHE_CHECK(cond, "op", parts...) throws lethe::Error("op: parts...") when cond is false.
#define LETHE_CHECK(cond, op, ...)                                              \
  do {                                                                          \
    if (!(cond)) throw ::lethe::Error(::lethe::detail::concat(op, ": ", __VA_ARGS__)); \
  } while (0)

#define LETHE_FAIL(op, ...) throw ::lethe::Error(::lethe::detail::concat(op, ": ", __VA_ARGS__))
