#pragma once
// Fused optimizers over a ParamArena: each step is one pass over the whole flat arena (the ops
// sgd_step and adamw_step of engine/ops.h: on CUDA a one-thread kernel that advances the step
// counter, then one update kernel; on the CPU one OpenMP loop), with the per-element math of
// kernels/common/optim.h; the optimizer keeps the state. Semantics are those of
// torch.optim.SGD and torch.optim.AdamW. The learning rate and the step count live in a float64
// scalars tensor on the arena's device that the kernels read, so step() never syncs and a
// CUDA-graph-captured step stays correct when they change.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/arena.h"
#include "engine/tensor.h"

namespace lethe::nn {

struct SgdOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;                // needs momentum > 0 and dampening == 0, as in PyTorch
  bool decoupled_weight_decay = false;  // θ ← θ(1 − lr·λ) before the update, instead of g += λθ
};
struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string name() const = 0;  // "sgd", "adamw"
  // One fused pass: reads the parameters and gradient buffer `grad_buffer` of the arena, updates
  // the parameters and the state in place.
  virtual void step(int grad_buffer = 0) = 0;

  // Writes the device-resident learning rate (a one-element fill, no sync); the next step uses it.
  void set_lr(double lr);
  double lr() const { return lr_; }
  // Steps taken so far, counted on the host alongside the device counter (a replay of a
  // CUDA-graph-captured step advances only the device counter, in state()'s "scalars").
  int64_t steps() const { return steps_; }

  // Every state tensor, named: the flat [arena.size()] buffers and "scalars" (float64: lr, step
  // count, and values derived from them). These are the live tensors, not copies.
  virtual std::vector<std::pair<std::string, Tensor>> state() const;
  // Checks that `state` has exactly state()'s names, shapes and dtypes (any device) and a sane
  // lr and step count, then copies it in; on any mismatch throws lethe::Error and changes nothing.
  virtual void load_state(const std::vector<std::pair<std::string, Tensor>>& state);

 protected:
  // `buffers`: names of the flat state buffers, allocated zeroed like the arena.
  Optimizer(const ParamArena& arena, double lr, int scalar_count, const std::vector<std::string>& buffers);
  const Tensor& buffer(size_t i) const { return buffers_.at(i).second; }
  // The gradient buffer a step reads; call before launching, so a bad index changes nothing.
  const Tensor& grad(int k) const { return arena_.grad(k); }
  void count_step() { ++steps_; }

  const ParamArena& arena_;  // must outlive the optimizer
  Tensor scalars_;           // float64 [scalar_count] on the arena's device

 private:
  std::vector<std::pair<std::string, Tensor>> buffers_;
  double lr_ = 0;
  int64_t steps_ = 0;
};

// For load_state of optimizer-like state: the tensors of `given` in the order of `expected`,
// after checking that it has exactly expected's names, dtypes and shapes (any device); throws
// lethe::Error under `op` naming what is missing, extra or mismatched.
std::vector<Tensor> match_state(const std::string& op, const std::vector<std::pair<std::string, Tensor>>& expected,
                                const std::vector<std::pair<std::string, Tensor>>& given);
// A saved step count must be a non-negative integer below 2^53.
void check_step_count(const std::string& op, double steps);

std::unique_ptr<Optimizer> make_sgd(const ParamArena& arena, const SgdOptions& options);
std::unique_ptr<Optimizer> make_adamw(const ParamArena& arena, const AdamWOptions& options);

// PyTorch's clip_grad_norm_ over gradient buffer `grad_buffer` of the whole arena: the global L2
// norm (float64 accumulation over fixed chunks, so independent of the thread count; no host sync
// on CUDA), then the gradients scaled in place by min(1, max_norm / (norm + 1e-6)). Returns the
// norm before clipping as a float64 one-element tensor (shape []) on the arena's device.
Tensor clip_grad_norm(const ParamArena& arena, int grad_buffer, double max_norm);

}  // namespace lethe::nn
