#pragma once
// Errors are exceptions that name the op and say what is wrong; user errors never abort.
#include <sstream>
#include <stdexcept>
#include <string>
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
}  // namespace detail

}  // namespace lethe

// LETHE_CHECK(cond, "op", parts...) throws lethe::Error("op: parts...") when cond is false.
#define LETHE_CHECK(cond, op, ...)                                              \
  do {                                                                          \
    if (!(cond)) throw ::lethe::Error(::lethe::detail::concat(op, ": ", __VA_ARGS__)); \
  } while (0)

#define LETHE_FAIL(op, ...) throw ::lethe::Error(::lethe::detail::concat(op, ": ", __VA_ARGS__))
