#pragma once
// Per-element math of the fused IEU (Influence Eliminating Unlearning) parameter update, shared
// by the CPU loop and the CUDA kernel:
//   θ ← (1 − η·λ)·θ − η·(g_r − α_eff·g_f) + σ·ξ,   ξ ~ N(0, 1)
// and with momentum μ > 0:  v ← μ·v + (g_r − α_eff·g_f);  θ ← (1 − η·λ)·θ − η·v + σ·ξ.
// g_r is the retain-set gradient (descended), g_f the forget-set gradient (ascended, weight α).
//
// Like the optimizers (kernels/common/optim.h), the update keeps a float64 "scalars" tensor on
// its device: η, α, λ, σ and the step count, and the effective α derived at the start of every
// step by a one-thread advance. The kernels read them there, so nothing syncs and a
// CUDA-graph-captured step stays correct when they change.
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace lethe {

// Hyperparameters fixed for an update's life (passed to the kernels by value).
struct IeuConfig {
  double momentum = 0;
  double forget_loss_cap = INFINITY;  // +inf: no gate
  uint64_t seed = 0;                  // Philox key of the noise
};

// Philox stream base of the noise: ξ of arena element i at step t (1-based) is
// philox::normal(seed, kIeuNoiseStream + t, i). Far from the other users of a seed: parameter
// init (small streams), the data loader (1000 + epoch and 2^32 + epoch).
inline constexpr uint64_t kIeuNoiseStream = uint64_t{3} << 32;

namespace ieu {

// Slots of the scalars tensor.
inline constexpr int kLr = 0;              // η
inline constexpr int kStep = 1;            // steps taken, counting the one in progress
inline constexpr int kAlpha = 2;           // α, the forget gradient's weight
inline constexpr int kWeightDecay = 3;     // λ
inline constexpr int kSigma = 4;           // σ, the noise's standard deviation
inline constexpr int kAlphaEffective = 5;  // α_eff: α, or 0 while the gate is closed
inline constexpr int kScalars = 6;

// The start of a step (one thread on CUDA, the host on the CPU): count it, and open or close the
// "bounded ascent" gate: the forget batch is ascended only while its mean cross-entropy
// `forget_loss` (null: no gate) is below the cap. A NaN loss closes the gate; cap +inf opens it.
template <class L>
LETHE_HD void advance(double* s, const L* forget_loss, double cap) {
  s[kStep] += 1;
  const bool open = forget_loss == nullptr || cap == INFINITY || static_cast<double>(*forget_loss) < cap;
  s[kAlphaEffective] = open ? s[kAlpha] : 0.0;
}

// What one step's update reads, in the parameter type; built once per launch (per thread on
// CUDA) from the scalars, rounded as the elementwise ops round a double scalar (T(value)), so
// the separate-ops reference computes the same numbers.
template <class T>
struct Step {
  T lr, decay_factor, alpha, momentum, sigma;  // decay_factor = 1 − η·λ, rounded once
  uint64_t seed, stream;                       // the noise's Philox key and stream
  bool use_forget, use_momentum, use_noise;
};
template <class T>
LETHE_HD Step<T> step_values(const double* s, IeuConfig c, bool has_forget) {
  const double lr = s[kLr];
  return {.lr = T(lr),
          .decay_factor = T(1 - lr * s[kWeightDecay]),
          .alpha = T(s[kAlphaEffective]),
          .momentum = T(c.momentum),
          .sigma = T(s[kSigma]),
          .seed = c.seed,
          .stream = kIeuNoiseStream + static_cast<uint64_t>(s[kStep]),
          .use_forget = has_forget,
          .use_momentum = c.momentum != 0,
          .use_noise = s[kSigma] != 0};  // σ == 0: no noise term at all
}

// One element, in exactly this order: g = g_r − α·g_f (g = g_r without a forget gradient, which
// is then not read); v = μ·v + g and g = v (with momentum; `v` untouched otherwise);
// θ = (θ·d − η·g) + σ·ξ (the noise term only when σ ≠ 0).
template <class T>
LETHE_HD void update(T& theta, T g_r, T g_f, T& v, T xi, const Step<T>& s) {
  T g = s.use_forget ? g_r - s.alpha * g_f : g_r;
  if (s.use_momentum) {
    v = s.momentum * v + g;
    g = v;
  }
  theta = theta * s.decay_factor - s.lr * g;
  if (s.use_noise) theta = theta + s.sigma * xi;
}

}  // namespace ieu
}  // namespace lethe
