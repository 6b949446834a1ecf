#pragma once
// The convex study (`lethe dynamics`, README "Convex dynamics"): IEU run on the `linear` model
// (multinomial logistic regression, strongly convex with its L2 term), measured against what the
// linear theory of unlearn/convex.h computes for it:
//  1. exact reference points in float64: the original optimum θ*_o (all training samples), the
//     retrained optimum θ*_r (retain samples) and IEU's own fixed point θ_fp (the minimiser of
//     G = CE_retain − α·CE_forget + (λ/2)‖θ‖², which full-batch IEU without noise converges to);
//  2. the Hessian spectra: of the retain objective at θ*_r (μ, L), and of G at θ_fp (the
//     contraction factor max|1 − η·h| and the noise spread). A run that would not contract is
//     refused before it starts;
//  3. IEU from θ*_o through lethe's own model, autograd and fused IEU update (the model's dtype):
//     full batch without noise, full batch with noise (same start, same steps), and minibatch
//     with noise; per step the distances to θ_fp and θ*_r, the spread of the noisy run around
//     the noiseless one, and the linearised recursion e ← (I − η·∇²G(θ_fp))·e from the same start;
//  4. the fitted exponential rate against the contraction factor, the spread against its
//     prediction, and the relearning steps (RCD on the forget loss) of points along the noisy run
//     against their distance to θ*_r.
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/dataset.h"
#include "nn/models.h"
#include "unlearn/relearn_options.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

struct DynamicsOptions {
  double l2 = 1e-2;          // ρ: the L2 term of the original and retrained objectives
  double tolerance = 1e-8;   // ‖∇‖₂ every reference point is solved to
  double lr = 0.05;          // η of IEU (< 2/L: about 0.08 on Fashion-MNIST's pixels)
  double alpha = 0.05;       // ascent weight α
  double decay = kUnset;     // λ (unset: ρ, so that with α = 0 IEU's fixed point is θ*_r)
  double sigma = 1e-3;       // noise σ per step
  double cap = INFINITY;     // the bounded-ascent gate's cap on the forget loss (∞: no gate)
  int64_t steps = 400;
  int64_t batch = 128;       // the minibatch run's retain and forget batches (0: no minibatch run)
  int64_t snapshots = 4;     // points of the noisy run relearned for RCD, evenly spaced after step 0
  uint64_t seed = 0;         // the noise and the minibatch order
  double fit_from = 0.5;     // the rate is fitted over steps ≥ fit_from·steps

  // Fills λ and checks every field (lethe::Error naming it).
  void resolve();
};

struct DynamicsInputs {
  std::shared_ptr<const data::Dataset> train;  // the scenario's training set
  const Split& split;
  data::Normalization normalization;
  nn::ModelSpec spec;       // must be `linear` (any floating dtype)
  Device device;
  DynamicsOptions options;  // resolved
  RelearnOptions relearn;   // resolved for the split's scenario
  std::function<void(const std::string& phase)> progress;  // may be empty
};

// Runs the study; returns its record (README, "Convex dynamics", has the schema).
nlohmann::json run_dynamics(const DynamicsInputs& in);

// The least-squares slope of log(y) against x, as the per-step factor exp(slope); NaN with fewer
// than two points.
double fitted_factor(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace lethe::unlearn
