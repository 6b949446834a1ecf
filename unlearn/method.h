#pragma once
// Unlearning methods: each takes the original model and a split, and changes the model so that
// it forgets the forget set. One small file per method in unlearn/methods/; this header is what
// they share: their hyper-parameters (unlearn/method_options.h), what a run sees, the batch
// streams, and the registry by name.
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
#include "unlearn/method_options.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

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

// The stream of a generator's random draws (nn/generative.h) for the k-th batch loss of a step.
inline uint64_t draw_stream(int64_t step, int k) { return static_cast<uint64_t>(step) * 4 + static_cast<uint64_t>(k); }

// What a method run sees. `model` starts as a copy of the original and is changed in place. The
// model is a classifier or a class-conditional generator (cvae, ddpm-s): methods take its losses
// through loss() and sample_losses(), which are the cross-entropy for a classifier and the
// generator's per-image loss (negative ELBO, denoising error) for a generator.
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

  // The mean loss of a batch, and the per-sample losses [N]; a generator's draws come from Philox
  // (a seed derived from options.seed, `draw`: draw_stream(step, k)).
  Tensor loss(const data::Batch& b, uint64_t draw) const;
  Tensor sample_losses(const data::Batch& b, uint64_t draw) const;
  bool generator() const { return model.generator() != nullptr; }

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

// RL's loss on the next batches: CE(retain) + CE(forget relabelled by random_other_labels). For a
// generator (SalUn's generative form) the forget classes' labels are paired with other classes'
// images instead: L(retain) + L(retain images labelled with the forget batch's labels).
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
