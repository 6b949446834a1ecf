#pragma once
// The unlearning methods' hyper-parameters: one flat set (every one a flag of `lethe unlearn` and a
// key of its TOML tables, with the same name), each declared once in method_options().
//
// The budget is counted in optimizer steps of one retain and/or one forget batch, so methods
// compare at equal cost (shared/WORKLOADS.md: 300 steps of batch 128, lr 0.01).
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nn/option_table.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

struct MethodOptions {
  int64_t steps = 300;
  int64_t batch = 128;
  double lr = 0.01;
  double momentum = 0.9;       // SGD of every method but IEU and retrain
  double weight_decay = 5e-4;  // coupled, as torch.optim.SGD
  uint64_t seed = 0;           // batch order, random labels, IEU noise

  double ga_lr = 1e-4;          // GA: its own rate (ascent diverges at the others' 0.01)
  double ascent_clip = 1;       // GA, NegGrad+, SCRUB (the methods that ascend a loss): clip the
                                // gradient to this global L2 norm (0: off); unclipped ascent drives
                                // the logits to overflow within a few hundred steps
  double neggrad_beta = 0.999;  // NegGrad+: β·CE(retain) − (1 − β)·CE(forget)
  double l1 = 5e-4;             // l1-sparse: γ of γ·‖θ‖₁, decayed linearly to 0 over the steps
  double saliency = 0.5;        // SalUn: fraction of weights with the largest forget-gradient magnitude
  std::string mask = "strict";  // SalUn: strict (masked weights held at the original: no update, decay or
                                // momentum; the public code since its PR #33) or loose (the gradient masked
                                // only, as the code was before it)
  // SCRUB, as the public code's CIFAR-10 configuration (large_scale_unlearning.ipynb): `scrub_epochs`
  // epochs, the first `scrub_msteps` of them a max pass on forget batches then a min pass on retain
  // batches, the rest min passes only; the epochs share the step budget (scrub_schedule, unlearn/method.h).
  int64_t scrub_epochs = 3;       // SCRUB: epochs the step budget is cut into (sgda_epochs)
  int64_t scrub_msteps = 2;       // SCRUB: epochs that begin with a max pass (msteps)
  double scrub_alpha = 0.001;     // SCRUB: weight of the KL to the teacher on retain batches (alpha)
  double scrub_gamma = 0.99;      // SCRUB: weight of the cross-entropy on retain batches (gamma)
  double scrub_temperature = 4;   // SCRUB: distillation temperature (kd_T)

  // IEU. NaN: the scenario's default (WORKLOADS.md W1): random — α 0.5, λ 0.05, σ 1e-3,
  // cap ln 10; class-wise and the poisoning scenarios — α 0.1, λ 0.02, σ 3e-4, cap 10.
  double alpha = kUnset, ieu_decay = kUnset, sigma = kUnset, cap = kUnset;
  std::string alpha_schedule = "constant", decay_schedule = "constant", sigma_schedule = "constant";  // constant | linear | cosine
  double ieu_momentum = 0;  // heavy-ball momentum of the IEU update (0: plain, as the update is defined)
  bool single_pass = false;  // g_r − α·g_f from one backward over the concatenated batch (no batch norm)

  // Fills the scenario-dependent defaults; checks every field (throws lethe::Error naming it).
  void resolve(const Scenario& scenario);
};
const nn::OptionTable<MethodOptions>& method_options();
// Output JSON (the `options` of `lethe unlearn --json`): keys in snake case (nn::JsonKeys::snake).
void to_json(nlohmann::json& j, const MethodOptions& o);

}  // namespace lethe::unlearn
