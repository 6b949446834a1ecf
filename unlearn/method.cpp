#include "unlearn/method.h"

#include "nn/generative.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/ops.h"
#include "kernels/common/philox.h"
#include "nn/optim.h"

namespace lethe::unlearn {

namespace {

// Philox stream base of random labels: + step (splits and the MIA use 2^33 + 0..2).
constexpr uint64_t kRandomLabelStream = uint64_t{4} << 32;

}  // namespace

BatchStream::BatchStream(data::Subset subset, int64_t batch, uint64_t seed, const data::Normalization& normalization,
                         Device device)
    : loader_([&] {
        data::LoaderOptions o;
        o.batch_size = batch;
        o.seed = seed;
        o.normalization = normalization;
        o.device = device;
        return data::DataLoader(std::move(subset), o);
      }()) {}

data::Batch BatchStream::next() {
  if (index_ == loader_.batches_per_epoch()) {
    index_ = 0;
    ++epoch_;
  }
  return loader_.batch(epoch_, index_++);
}

Tensor MethodRun::loss(const data::Batch& b, uint64_t draw) const {
  if (nn::Generator* g = model.generator()) return mean(g->loss(b.images, b.labels, nn::unlearning_draw_seed(options.seed), draw));
  return cross_entropy(model.forward(b.images), b.labels);
}

Tensor MethodRun::sample_losses(const data::Batch& b, uint64_t draw) const {
  if (nn::Generator* g = model.generator()) return g->loss(b.images, b.labels, nn::unlearning_draw_seed(options.seed), draw);
  CrossEntropyOptions none;
  none.reduction = Reduction::none;
  return cross_entropy(model.forward(b.images), b.labels, none);
}

BatchStream MethodRun::retain_stream() const {
  return BatchStream(retain(), options.batch, options.seed, normalization, model.device());
}
BatchStream MethodRun::forget_stream() const {
  return BatchStream(forget(), options.batch, options.seed + 1, normalization, model.device());
}

void sgd_steps(MethodRun& run, double lr, double clip, const std::function<Tensor(int64_t)>& loss_at,
               const std::function<void(int64_t)>& after_backward, const std::function<void(int64_t)>& after_step) {
  nn::SgdOptions o;
  o.lr = lr;
  o.momentum = run.options.momentum;
  o.weight_decay = run.options.weight_decay;
  ParamArena& arena = run.model.arena();
  const std::unique_ptr<nn::Optimizer> sgd = nn::make_sgd(arena, o);
  run.model.train();
  run.observe_step(0, run.options.steps);
  for (int64_t step = 0; step < run.options.steps; ++step) {
    arena.zero_grad(0);
    const Tensor loss = loss_at(step);
    loss.backward();
    if (clip > 0) nn::clip_grad_norm(arena, 0, clip);
    if (after_backward) after_backward(step);
    sgd->step(0);
    if (after_step) after_step(step);
    run.observe_step(step + 1, run.options.steps);
    // Reading the loss syncs; every 25 steps is enough to stop a diverging run early.
    if (step % 25 == 24 || step + 1 == run.options.steps) {
      const double l = loss.item();
      LETHE_CHECK(std::isfinite(l), "unlearn", "the loss at step ", step + 1, " is not finite (", l,
                  "): the method diverged; try a smaller learning rate");
    }
    run.report(step + 1, run.options.steps);
  }
}

Tensor random_other_labels(const data::Batch& batch, int64_t classes, uint64_t seed, int64_t step) {
  const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
  std::vector<int64_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const uint32_t r = philox::random_u32(seed, kRandomLabelStream + static_cast<uint64_t>(step),
                                          static_cast<uint64_t>(batch.indices[i]));
    out[i] = other_label(labels[i], r, classes);
  }
  return Tensor::from_vector(out, {static_cast<int64_t>(out.size())}, batch.labels.device());
}

const std::vector<Method>& methods() {
  static const std::vector<Method> all = {
      {"retrain", "train from scratch on the retain set with the original's recipe and seed (the gold standard)", 1,
       run_retrain},
      {"ft", "fine-tune on the retain set (catastrophic forgetting)", 1, run_finetune},
      {"ga", "gradient ascent on the forget set", 1, run_gradient_ascent},
      {"neggrad+", "descend on retain batches and ascend on forget batches: β·CE(r) − (1 − β)·CE(f)", 1,
       run_neggrad_plus},
      {"rl", "random labels: train on the forget set relabelled at random, with retain batches", 1, run_random_labels},
      {"l1-sparse", "fine-tune on the retain set with an l1 penalty decayed to 0", 1, run_l1_sparse},
      {"salun", "random labels on the weights most salient for the forget set only", 1, run_salun},
      {"scrub", "max-min distillation from the original: away from it on forget, towards it on retain", 1, run_scrub},
      {"ieu", "IEU: ascend forget, descend retain, decoupled decay and Gaussian noise in one fused update", 2, run_ieu},
      {"ieu-no-noise", "IEU ablation: σ = 0 (no noise), every other term and flag as ieu", 2,
       [](MethodRun& run) { return run_ieu_without(run, IeuTerm::noise); }},
      {"ieu-no-decay", "IEU ablation: λ = 0 (no weight decay), every other term and flag as ieu", 2,
       [](MethodRun& run) { return run_ieu_without(run, IeuTerm::decay); }},
      {"ieu-no-ascent", "IEU ablation: α = 0 (no forget ascent: retain descent, decay and noise only), the "
       "control for whether IEU's delay comes from the forget set", 2,
       [](MethodRun& run) { return run_ieu_without(run, IeuTerm::ascent); }},
  };
  return all;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const Method& m : methods()) names.push_back(m.name);
  return names;
}

const Method& find_method(const std::string& name) {
  for (const Method& m : methods())
    if (m.name == name) return m;
  std::string known;
  for (const Method& m : methods()) known += (known.empty() ? "" : ", ") + m.name;
  LETHE_FAIL("unlearn", "unknown method ", excerpt(name, 80, '\''), " (known: ", known, ")");
}

}  // namespace lethe::unlearn
