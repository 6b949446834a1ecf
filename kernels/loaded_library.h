#pragma once
// The libraries lethe loads with dlopen on first use instead of linking them (OpenBLAS:
// kernels/cpu/blas.cpp; cuBLAS: kernels/cuda/cublas_library.cu): one of their functions, or an
// error naming it and the library.
#include <dlfcn.h>

#include "engine/error.h"

namespace lethe {

template <class Fn>
void resolve_symbol(const char* op, void* handle, const char* library, const char* name, Fn& fn) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    const char* why = dlerror();
    LETHE_FAIL(op, "symbol ", name, " not found in ", library, ": ", why != nullptr ? why : "unknown error");
  }
  fn = reinterpret_cast<Fn>(symbol);
}

}  // namespace lethe
