#pragma once
// with_static_flags: runs a loop body with its run-time switches as compile-time constants.
#include <type_traits>

namespace lethe::cpu {

// Calls body(std::integral_constant<unsigned, flags>): one instantiation per combination of the
// switches in bits 0..kBit. GCC does not if-convert floating-point code that may trap (the build
// keeps -ftrapping-math), so a loop vectorises only once its switches are compile-time constants.
template <int kBit, unsigned kFlags = 0, class F>
void with_static_flags(unsigned flags, const F& body) {
  if constexpr (kBit < 0) body(std::integral_constant<unsigned, kFlags>{});
  else if (flags >> kBit & 1u) with_static_flags<kBit - 1, kFlags | (1u << kBit)>(flags, body);
  else with_static_flags<kBit - 1, kFlags>(flags, body);
}

}  // namespace lethe::cpu
