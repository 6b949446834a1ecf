// SCRUB (Kurmanji et al., NeurIPS 2023): the student (the model being unlearned) is distilled
// from the teacher (the frozen original) with a max–min game: max steps push the student's
// predictions on forget batches away from the teacher's (ascend the KL), min steps pull them
// back on retain batches (descend γ·CE + α·KL). The first 2·m steps alternate max and min, m =
// min(scrub_max_steps, steps/2); the rest are min steps. KL is Hinton's distillation loss at temperature T,
// T²·KL(softmax(t/T) ‖ softmax(s/T)) averaged over the batch.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
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

nlohmann::json run_scrub(MethodRun& run) {
  const MethodOptions& o = run.options;
  nn::Model teacher = nn::load_model(run.original, run.model.device());
  teacher.eval();
  auto teacher_logits = [&](const Tensor& images) {
    NoGradGuard no_grad;
    return teacher.forward(images);
  };
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  const int64_t max_phase = 2 * std::min(o.scrub_max_steps, o.steps / 2);
  int64_t max_steps = 0;
  sgd_steps(run, o.lr, o.ascent_clip, [&](int64_t step) {
    if (step < max_phase && step % 2 == 0) {
      ++max_steps;
      const data::Batch f = forget.next();
      return neg(distillation_kl(run.model.forward(f.images), teacher_logits(f.images), o.scrub_temperature));
    }
    const data::Batch r = retain.next();
    const Tensor logits = run.model.forward(r.images);
    return add(mul(cross_entropy(logits, r.labels), o.scrub_gamma),
               mul(distillation_kl(logits, teacher_logits(r.images), o.scrub_temperature), o.scrub_alpha));
  });
  return {{"max_steps", max_steps}, {"min_steps", o.steps - max_steps}};
}

}  // namespace lethe::unlearn
