#pragma once
// Unlearning methods: each takes the original model and a split, and changes the model so that
// it forgets the forget set. One small file per method in unlearn/methods/; this header is what
// they share: their hyper-parameters (one flat set, so every one is a CLI flag and a TOML key
// with the same name), what a run sees, the batch streams, and the registry by name.
//
// The budget is counted in optimizer steps of one retain and/or one forget batch, so methods
// compare at equal cost (shared/WORKLOADS.md: 300 steps of batch 128, lr 0.01).
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nn/checkpoint.h"
#include "nn/data/loader.h"
#include "nn/models.h"
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
  // batches, the rest min passes only; the epochs share the step budget (scrub_schedule below).
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
void to_json(nlohmann::json& j, const MethodOptions& o);

// An endless stream of shuffled batches of one subset: epoch after epoch.
class BatchStream {
 public:
  BatchStream(data::Subset subset, int64_t batch, uint64_t seed, const data::Normalization& normalization,
              Device device);
  data::Batch next();

 private:
  data::DataLoader loader_;
  int64_t epoch_ = 0, index_ = 0;
};

// What a method run sees. `model` starts as a copy of the original and is changed in place.
struct MethodRun {
  nn::Model& model;
  const nn::Checkpoint& original;  // its metadata says how it was trained (retrain reuses it)
  std::shared_ptr<const data::Dataset> train;  // the scenario's training set
  const Split& split;
  data::Normalization normalization;
  const MethodOptions& options;
  std::function<void(int64_t step, int64_t total)> progress;  // may be empty
  // Sees the weights being changed (may be empty): step 0 before the first update, then step k
  // after the k-th optimizer/update step, of `total`. For a trajectory log (unlearn/trajectory.h).
  using Observe = std::function<void(int64_t step, int64_t total, const NamedTensors& params)>;
  Observe observe = {};

  data::Subset retain() const { return {train, split.retain}; }
  data::Subset forget() const { return {train, split.forget}; }
  BatchStream retain_stream() const;  // seed options.seed
  BatchStream forget_stream() const;  // seed options.seed + 1
  void report(int64_t step, int64_t total) const {
    if (progress) progress(step, total);
  }
  // `observe` on `trained`'s parameters: the run's model, or the one a method trains instead.
  void observe_step(int64_t step, int64_t total, const nn::Model& trained) const {
    if (observe) observe(step, total, trained.net().named_parameters());
  }
  void observe_step(int64_t step, int64_t total) const { observe_step(step, total, model); }
};

struct Method {
  std::string name;
  std::string summary;
  int grad_buffers;  // gradient buffers the model needs
  // Runs the method; returns what it wants recorded besides the options (may be null).
  std::function<nlohmann::json(MethodRun&)> run;
};
const std::vector<Method>& methods();
const Method& find_method(const std::string& name);  // throws with the known names
std::vector<std::string> method_names();

// Shared by the SGD-based methods: `steps` steps of torch.optim.SGD (rate `lr`, options.momentum
// and weight decay) on the loss `loss_at(step)` builds, the gradient clipped to global norm
// `clip` first (0: not clipped); `after_backward(step)` may edit the gradients before the step
// and `after_step(step)` the weights after it (both may be empty). Throws lethe::Error when a
// loss is not finite.
void sgd_steps(MethodRun& run, double lr, double clip, const std::function<Tensor(int64_t)>& loss_at,
               const std::function<void(int64_t)>& after_backward = {},
               const std::function<void(int64_t)>& after_step = {});

// RL's loss on the next batches: CE(retain) + CE(forget relabelled by random_other_labels).
Tensor random_label_loss(MethodRun& run, BatchStream& retain, BatchStream& forget, int64_t step);

// Labels other than the true ones, uniform over the other classes, keyed by (seed, step, sample).
Tensor random_other_labels(const data::Batch& batch, int64_t classes, uint64_t seed, int64_t step);

// The methods, one per file in unlearn/methods/.
nlohmann::json run_retrain(MethodRun& run);
nlohmann::json run_finetune(MethodRun& run);
nlohmann::json run_gradient_ascent(MethodRun& run);
nlohmann::json run_neggrad_plus(MethodRun& run);
nlohmann::json run_random_labels(MethodRun& run);
nlohmann::json run_l1_sparse(MethodRun& run);
nlohmann::json run_salun(MethodRun& run);
nlohmann::json run_scrub(MethodRun& run);
nlohmann::json run_ieu(MethodRun& run);

// IEU's ablations: IEU with one term of its update switched off (its option set to 0 whatever was
// given), every other option as given; the same code as run_ieu, so each is bitwise IEU with that
// option 0. ascent: α = 0 (retain descent, decay and noise only); decay: λ = 0; noise: σ = 0.
enum class IeuTerm { ascent, decay, noise };
nlohmann::json run_ieu_without(MethodRun& run, IeuTerm off);

// SCRUB's step schedule: true for a max step (a forget batch, ascending the KL), false for a min
// step (a retain batch). The `steps` are cut into `epochs` epochs, epoch e covering steps
// [⌊e·steps/epochs⌋, ⌊(e+1)·steps/epochs⌋); each of the first `msteps` epochs of L steps begins with
// F = round(L·n_forget/(n_forget + n_retain)) max steps (half up), clamped to [1, L − 1] (an epoch of
// one step or none has no max step), the rest are min steps.
std::vector<bool> scrub_schedule(int64_t steps, int64_t epochs, int64_t msteps, int64_t n_forget, int64_t n_retain);

}  // namespace lethe::unlearn
