#pragma once
// Picks the CPU or CUDA launcher of a kernel by device. Launchers have the same name and
// signature in lethe::cpu and lethe::cuda and return void.
#include "engine/device.h"
#include "engine/error.h"

namespace lethe::detail {
[[noreturn]] inline void no_cuda(const char* op) {
  LETHE_FAIL(op, "this build of lethe has no CUDA backend (configure with -DLETHE_CUDA=ON)");
}
}  // namespace lethe::detail

#if defined(LETHE_WITH_CUDA)
#define LETHE_DISPATCH(device, fn, ...) \
  ((device).is_cuda() ? ::lethe::cuda::fn(__VA_ARGS__) : ::lethe::cpu::fn(__VA_ARGS__))
#else
#define LETHE_DISPATCH(device, fn, ...) \
  ((device).is_cuda() ? ::lethe::detail::no_cuda(#fn) : ::lethe::cpu::fn(__VA_ARGS__))
#endif

// Declares a group of launchers once for both backends.
#define LETHE_DECLARE_LAUNCHERS(LIST) \
  namespace lethe::cpu {              \
  LIST                                \
  }                                   \
  namespace lethe::cuda {             \
  LIST                                \
  }
