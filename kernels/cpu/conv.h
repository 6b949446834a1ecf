#pragma once
// Which steps of a float32 CPU convolution run as implicit GEMMs on lethe's sgemm
// (kernels/cpu/conv.cpp says what each needs and why), so that tests can tell the path they cover.
#include "kernels/common/conv.h"

namespace lethe::cpu {

struct ImplicitGemmSteps {
  bool forward, weight_grad, input_grad;
};
ImplicitGemmSteps implicit_gemm_steps(const ConvGeometry& g);

}  // namespace lethe::cpu
