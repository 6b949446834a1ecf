// SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023), as the public code
// github.com/meghdadk/SCRUB runs it: the student (the model being unlearned) is distilled from the
// teacher (the frozen original). The code's epoch loop (large_scale_unlearning.ipynb,
// small_scale_unlearning.ipynb; the loss in thirdparty/repdistiller/helper/loops.py, train_distill):
//     for epoch in 1..sgda_epochs:
//         if epoch <= msteps: one pass over the forget set, each batch a step on −KL       ("max")
//         one pass over the retain set, each batch a step on γ·CE + α·KL + β·other-KD      ("min")
// with KL Hinton's distillation loss at temperature T, T²·KL(softmax(t/T) ‖ softmax(s/T)) averaged
// over the batch (helper/KD.py, DistillKL), and β·other-KD = 0 in the configurations ('kd' distill,
// beta 0), so lethe has no β.
//
// lethe's budget is `steps` batches, not epochs, and one pass over the retain set is more than the
// whole budget (W1: 54,000 retain samples = 422 batches of 128 > 300 steps). So the budget is cut
// into `scrub_epochs` equal epochs, and each epoch keeps the published structure and proportions: the
// first `scrub_msteps` epochs begin with a block of max steps and end with a block of min steps, the
// max block taking the share of the epoch that one pass over the forget set takes of one pass over
// both sets at equal batch sizes, n_f/(n_f + n_r) (W1 random:0.1: 6,000/60,000, so 10 max steps of
// a 100-step epoch); the later epochs are min steps only. Each lethe epoch is thus a scaled-down
// code epoch: the same order (max then min), the same forget:retain sample ratio, msteps of epochs
// with a max pass. The code's forget batches are twice its retain batches (512/256 large-scale,
// 64/32 small-scale); lethe's are both --batch, so its max block has twice the steps of half the
// size: the same samples. scrub_schedule (method.h) has the exact rule.
//
// --ascent-clip clips the gradient of the max steps only (the min steps descend, unclipped as in
// the code). The code does not clip (its clip argument is unused: the clip line in train_distill is
// commented out) and runs at lr 5e-4; lethe's shared lr is 0.01, twenty times larger, and the clip
// bounds the ascent there (unclipped, cnn-s on Fashion-MNIST random:0.1 reached a NaN loss by step
// 125, after the second max block); --ascent-clip 0 turns it off.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "nn/optim.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

namespace {

Tensor distillation_kl(const Tensor& student, const Tensor& teacher, double t) {
  const Tensor log_s = log_softmax(div(student, t), 1);
  const Tensor log_t = log_softmax(div(teacher, t), 1);
  const double n = static_cast<double>(student.size(0));
  return mul(sum(mul(exp(log_t), sub(log_t, log_s))), t * t / n);
}

}  // namespace

std::vector<bool> scrub_schedule(int64_t steps, int64_t epochs, int64_t msteps, int64_t n_forget, int64_t n_retain) {
  LETHE_CHECK(steps >= 0 && epochs >= 1 && msteps >= 0 && n_forget >= 0 && n_retain >= 0 && n_forget + n_retain > 0,
              "scrub", "bad schedule: ", steps, " steps, ", epochs, " epochs, ", msteps, " msteps, ", n_forget,
              " forget and ", n_retain, " retain samples");
  std::vector<bool> is_max(static_cast<size_t>(steps), false);
  const int64_t n = n_forget + n_retain;
  for (int64_t e = 0; e < std::min(epochs, msteps); ++e) {
    const int64_t begin = e * steps / epochs, end = (e + 1) * steps / epochs, length = end - begin;
    if (length < 2) continue;                                          // no room for both passes
    const int64_t share = (2 * length * n_forget + n) / (2 * n);       // round(length·n_f/n), half up
    const int64_t forget_steps = std::clamp<int64_t>(share, 1, length - 1);
    std::fill(is_max.begin() + begin, is_max.begin() + begin + forget_steps, true);
  }
  return is_max;
}

nlohmann::json run_scrub(MethodRun& run) {
  LETHE_CHECK(!run.generator(), "scrub", "SCRUB distils a classifier's logits; ", run.model.spec().name,
              " is a generator (its methods: retrain, ft, ga, neggrad+, rl, l1-sparse, salun, ieu)");
  const MethodOptions& o = run.options;
  nn::Model teacher = nn::load_model(run.original, run.model.device());
  teacher.eval();
  auto teacher_logits = [&](const Tensor& images) {
    NoGradGuard no_grad;
    return teacher.forward(images);
  };
  const std::vector<bool> is_max =
      scrub_schedule(o.steps, o.scrub_epochs, o.scrub_msteps, static_cast<int64_t>(run.split.forget.size()),
                     static_cast<int64_t>(run.split.retain.size()));
  const auto max_steps = static_cast<int64_t>(std::count(is_max.begin(), is_max.end(), true));
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  sgd_steps(
      run, o.lr, 0,
      [&](int64_t step) {
        if (is_max[static_cast<size_t>(step)]) {
          const data::Batch f = forget.next();
          return neg(distillation_kl(run.model.forward(f.images), teacher_logits(f.images), o.scrub_temperature));
        }
        const data::Batch r = retain.next();
        const Tensor logits = run.model.forward(r.images);
        return add(mul(cross_entropy(logits, r.labels), o.scrub_gamma),
                   mul(distillation_kl(logits, teacher_logits(r.images), o.scrub_temperature), o.scrub_alpha));
      },
      [&](int64_t step) {
        if (o.ascent_clip > 0 && is_max[static_cast<size_t>(step)])
          nn::clip_grad_norm(run.model.arena(), 0, o.ascent_clip);
      });
  return {{"epochs", o.scrub_epochs},
          {"msteps", o.scrub_msteps},
          {"max_steps", max_steps},
          {"min_steps", o.steps - max_steps}};
}

}  // namespace lethe::unlearn
