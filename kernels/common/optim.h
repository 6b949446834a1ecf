#pragma once
// Per-element math of the fused optimizers and of gradient clipping, shared by the CPU loop and
// the CUDA kernels. Semantics follow torch.optim.SGD and torch.optim.AdamW step for step.
//
// An optimizer keeps a small float64 "scalars" tensor on its device: the learning rate and the
// step count (its state), and values derived from them at the start of every step. The kernels
// read them from there, so a CUDA-graph-captured step stays correct when they change.
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace lethe {

// Hyperparameters fixed for an optimizer's life (passed to the kernels by value).
struct SgdConfig {
  double momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, decoupled_weight_decay = false;
};
struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

namespace optim {

using std::pow;
using std::sqrt;

// Slots of the scalars tensor. SGD uses the first two, AdamW all four.
inline constexpr int kLr = 0;
inline constexpr int kStep = 1;        // steps taken, counting the one in progress
inline constexpr int kStepSize = 2;    // AdamW: lr / (1 − β1^t)
inline constexpr int kBias2Sqrt = 3;   // AdamW: √(1 − β2^t)
inline constexpr int kSgdScalars = 2;
inline constexpr int kAdamWScalars = 4;

// The start of a step (one thread on CUDA, the host on the CPU): count it, derive what the
// update reads. PyTorch computes the bias corrections in float64 on the host the same way.
LETHE_HD void sgd_advance(double* s) { s[kStep] += 1; }
LETHE_HD void adamw_advance(double* s, AdamWConfig c) {
  s[kStep] += 1;
  s[kStepSize] = s[kLr] / (1 - pow(c.beta1, s[kStep]));
  s[kBias2Sqrt] = sqrt(1 - pow(c.beta2, s[kStep]));
}

// What one SGD step's update reads, in the parameter type; built once per launch (per thread on
// CUDA) from the scalars, so the per-element loop does no double arithmetic.
template <class T>
struct SgdStep {
  T lr, decay_factor, weight_decay, momentum, keep;  // keep = 1 − dampening
  bool first, use_momentum, nesterov, decoupled, coupled;
};
template <class T>
LETHE_HD SgdStep<T> sgd_step_values(const double* s, SgdConfig c) {
  const double lr = s[kLr];
  const bool decay = c.weight_decay != 0;
  return {.lr = T(lr),
          .decay_factor = T(1 - lr * c.weight_decay),
          .weight_decay = T(c.weight_decay),
          .momentum = T(c.momentum),
          .keep = T(1 - c.dampening),
          .first = s[kStep] == 1,
          .use_momentum = c.momentum != 0,
          .nesterov = c.nesterov,
          .decoupled = decay && c.decoupled_weight_decay,
          .coupled = decay && !c.decoupled_weight_decay};
}

// torch.optim.SGD on one element: g' = g + λθ (coupled decay) or θ ← θ(1 − lr·λ) (decoupled);
// v = g' on the first step (PyTorch's momentum buffer starts as None), else v = μv + (1 − d)g';
// the direction is g' + μv (Nesterov) or v; θ ← θ − lr·direction. `v` is untouched without
// momentum. Zero θ, g and v stay zero, so the arena's padding does.
template <class T>
LETHE_HD void sgd_update(T& theta, T g, T& v, const SgdStep<T>& s) {
  if (s.decoupled) theta = theta * s.decay_factor;
  if (s.coupled) g = g + s.weight_decay * theta;
  if (s.use_momentum) {
    v = s.first ? g : s.momentum * v + s.keep * g;
    g = s.nesterov ? g + s.momentum * v : v;
  }
  theta = theta - s.lr * g;
}

template <class T>
struct AdamWStep {
  T decay_factor, one_minus_beta1, beta2, one_minus_beta2, step_size, bias2_sqrt, eps;
  bool low_weight;  // one_minus_beta1 < 0.5: which of lerp's two formulas applies, for a whole pass
};
template <class T>
LETHE_HD AdamWStep<T> adamw_step_values(const double* s, AdamWConfig c) {
  return {.decay_factor = T(1 - s[kLr] * c.weight_decay),
          .one_minus_beta1 = T(1 - c.beta1),
          .beta2 = T(c.beta2),
          .one_minus_beta2 = T(1 - c.beta2),
          .step_size = T(s[kStepSize]),
          .bias2_sqrt = T(s[kBias2Sqrt]),
          .eps = T(c.eps),
          .low_weight = T(1 - c.beta1) < T(0.5)};
}

// torch.lerp's formula (exact at both ends); `low` is w < 0.5, given where w is one value for a
// whole pass so that a CPU loop can fix the choice at compile time and vectorise.
template <class T>
LETHE_HD T lerp(T a, T b, T w, bool low) {
  return low ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// torch.optim.AdamW on one element: θ ← θ(1 − lr·λ); m ← lerp(m, g, 1 − β1);
// v ← β2·v + (1 − β2)·g²; θ ← θ − step_size · m / (√v / √(1 − β2^t) + ε).
template <class T>
LETHE_HD void adamw_update(T& theta, T g, T& m, T& v, const AdamWStep<T>& s) {
  theta = theta * s.decay_factor;
  m = lerp(m, g, s.one_minus_beta1, s.low_weight);
  v = v * s.beta2 + s.one_minus_beta2 * g * g;
  const T denom = sqrt(v) / s.bias2_sqrt + s.eps;
  theta = theta - s.step_size * (m / denom);
}

// Gradient clipping by global norm: squares summed in float64 over fixed chunks of
// kReduceChunk elements (kernels/common/reduce.h), chunks combined in order.
template <class T>
LETHE_HD double add_square(double acc, T x) {
  const double d = static_cast<double>(x);
  return acc + d * d;
}
// PyTorch's clip_grad_norm_: min(1, max_norm / (norm + 1e-6)); NaN stays NaN (and so poisons the
// gradients, as in PyTorch, where the training loop then reports divergence).
LETHE_HD double clip_coefficient(double norm, double max_norm) {
  const double c = max_norm / (norm + 1e-6);
  return c > 1 ? 1.0 : c;
}

}  // namespace optim
}  // namespace lethe
