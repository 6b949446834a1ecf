#pragma once
// Correctly rounded float operations and bit casts that give the same result on the host and the
// device whatever the compilers' options say (nvcc's -prec-div, -prec-sqrt and --fmad, GCC's
// -ffp-contract): the building blocks of the shared math that promises bit-identical CPU and GPU
// results (kernels/common/exp.h, kernels/common/philox.h).
#include <cstdint>
#include <cstring>

#include "kernels/common/hd.h"

namespace lethe::ieee {

LETHE_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

LETHE_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

LETHE_HD float sqrt_rn(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return __builtin_sqrtf(x);
#endif
}

// The nearest float to an unsigned 32-bit word.
LETHE_HD float word_to_float(uint32_t w) {
#if defined(__CUDA_ARCH__)
  return __uint2float_rn(w);
#else
  return static_cast<float>(w);
#endif
}

LETHE_HD uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

LETHE_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

}  // namespace lethe::ieee
