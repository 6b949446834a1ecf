#pragma once
// The IEU (Influence Eliminating Unlearning) parameter update as one fused pass over a
// ParamArena (the op lethe::ieu_update of engine/ops.h; IeuUpdate keeps its state): descend the
// retain gradient, ascend the forget gradient while the forget loss is below a cap ("bounded
// ascent"), decay the weights and add Gaussian noise:
//   θ ← (1 − η·λ)·θ − η·(g_r − α_eff·g_f) + σ·ξ,   α_eff = (forget_loss < cap) ? α : 0
// (with momentum μ the bracket becomes v ← μ·v + (g_r − α_eff·g_f)). The per-element math is
// kernels/common/ieu.h; ξ of arena element i at step t is philox::normal(seed,
// kIeuNoiseStream + t, i), the same on every device and thread count. As in nn/optim.h, η, α,
// λ, σ and the step count live in a float64 scalars tensor on the arena's device, and the gate
// reads the forget loss there, so step() never syncs and a CUDA-graph-captured step stays right.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/arena.h"
#include "engine/tensor.h"
#include "kernels/common/ieu.h"

namespace lethe::unlearn {

struct IeuOptions {
  double momentum = 0;                // μ ≥ 0; 0: no momentum buffer
  double forget_loss_cap = INFINITY;  // the bounded-ascent gate's cap; +inf: no gate
  uint64_t seed = 0;                  // Philox key of the noise
};

// The two gradients of a two-pass IEU step: `retain_backward` runs with gradient buffer 0 of
// `arena` bound (g_r), `forget_backward` with buffer 1 (g_f), both buffers zeroed first and
// buffer 0 bound again after. Returns what `forget_backward` returns (its forget loss).
Tensor retain_and_forget_gradients(ParamArena& arena, const std::function<void()>& retain_backward,
                                   const std::function<Tensor()>& forget_backward);

class IeuUpdate {
 public:
  // The arena must outlive the update; its parameters are updated in place.
  IeuUpdate(const ParamArena& arena, const IeuOptions& options);
  IeuUpdate(const IeuUpdate&) = delete;
  IeuUpdate& operator=(const IeuUpdate&) = delete;

  // η, α, λ and σ of the next steps: one-element fills of the scalars tensor, no sync. All
  // finite; η, λ, σ ≥ 0. Required before the first step (load_state counts as a call).
  void set(double lr, double alpha, double weight_decay, double sigma);
  // One fused pass: reads gradient buffers `retain_buffer` and `forget_buffer` (-1: no forget
  // gradient) of the arena and updates the parameters (and the momentum buffer) in place.
  // `forget_loss`: the forget batch's mean cross-entropy, one float32 or float64 element ([] or
  // [1]) on the arena's device, read there by the gate; undefined: no gate (α_eff = α).
  void step(int retain_buffer, int forget_buffer, const Tensor& forget_loss = {});
  // Steps taken so far, counted on the host alongside the device counter (a replay of a
  // CUDA-graph-captured step advances only the device counter, in state()'s "scalars").
  int64_t steps() const { return steps_; }

  // "momentum_buffer" ([arena.size()], only with momentum) and "scalars" (float64
  // [ieu::kScalars]): the live tensors, not copies.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Checks that `state` has exactly state()'s names, shapes and dtypes (any device) and sane
  // scalars, then copies it in; on any mismatch throws lethe::Error and changes nothing.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

 private:
  const ParamArena& arena_;
  IeuConfig config_;
  Tensor momentum_;  // [arena.size()], zeroed; undefined without momentum
  Tensor scalars_;   // float64 [ieu::kScalars] on the arena's device
  bool set_ = false;
  int64_t steps_ = 0;
};

}  // namespace lethe::unlearn
