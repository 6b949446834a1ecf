#pragma once
// Launchers of the fused optimizer steps and of gradient clipping. Each step is one pass over a
// flat parameter arena (engine/arena.h): a one-thread advance of the scalars, then the update.
// All tensors contiguous, one floating dtype (scalars: float64), one device; nothing syncs.
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/optim.h"

#define LETHE_OPTIM_LAUNCHERS                                                                  \
  /* params, grad, momentum [n]: momentum undefined when config.momentum == 0; scalars       \
     float64 [optim::kSgdScalars], advanced first */                                           \
  void sgd_step(const Tensor& params, const Tensor& grad, const Tensor& momentum,              \
                const Tensor& scalars, const SgdConfig& config);                               \
  /* params, grad, exp_avg, exp_avg_sq [n]; scalars float64 [optim::kAdamWScalars] */          \
  void adamw_step(const Tensor& params, const Tensor& grad, const Tensor& exp_avg,             \
                  const Tensor& exp_avg_sq, const Tensor& scalars, const AdamWConfig& config); \
  /* norm (float64 []) = ‖grad‖₂; grad *= min(1, max_norm / (norm + 1e-6)) in place */         \
  void clip_by_global_norm(const Tensor& grad, double max_norm, const Tensor& norm);

LETHE_DECLARE_LAUNCHERS(LETHE_OPTIM_LAUNCHERS)
