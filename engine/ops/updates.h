#pragma once
// The IEU update op (lethe::ieu_update, engine/ops.h) unfused, next to the op so that it runs the
// op's checks: the fused kernel's test oracle (tests/test_ieu.cpp) and the "separate ops" row of
// the W3 benchmark (bench/ieu.cpp). Not part of the op API.
#include "engine/tensor.h"
#include "kernels/common/ieu.h"

namespace lethe {

// ieu_update as one whole-tensor elementwise launcher call per operation (α·g_f, g_r − that, μ·v,
// + g, θ·(1 − η·λ), η·g, −, a Tensor::randn noise tensor, σ·ξ, +), in place like the op, with the
// scalars advanced on the host (this syncs). The op's checks, under the name
// "ieu_update_reference". On the CPU its result is bitwise the fused one's.
void ieu_update_reference(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                          const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,
                          const IeuConfig& config);

}  // namespace lethe
