#pragma once
// Launcher of the fused IEU update (kernels/common/ieu.h): one pass over a flat parameter arena
// (engine/arena.h), after a one-thread advance of the scalars (step count, bounded-ascent gate).
// Operands are checked by the caller (unlearn/ieu_update.h); nothing syncs.
#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/ieu.h"

#define LETHE_IEU_LAUNCHERS                                                                        \
  /* params, grad_retain, grad_forget, momentum: contiguous, [n], one floating dtype, one device;  \
     grad_forget undefined: no forget gradient; momentum undefined iff config.momentum == 0;       \
     scalars float64 [ieu::kScalars], advanced first; forget_loss one float32 or float64 element,  \
     or undefined (no gate), read on the device */                                                 \
  void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,      \
                  const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,        \
                  const IeuConfig& config);

LETHE_DECLARE_LAUNCHERS(LETHE_IEU_LAUNCHERS)
