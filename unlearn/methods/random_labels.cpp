// RL (Golatkar et al., 2020; as in Fan et al.'s SalUn code): train on forget batches relabelled
// uniformly at random among the wrong classes, together with retain batches so the rest stays. A
// generator learns to answer the forget classes' labels with other classes' images instead.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

Tensor random_label_loss(MethodRun& run, BatchStream& retain, BatchStream& forget, int64_t step) {
  const data::Batch r = retain.next(), f = forget.next();
  if (run.generator()) {
    const int64_t n = std::min(r.labels.numel(), f.labels.numel());
    const data::Batch relabelled{r.images.narrow(0, 0, n), f.labels.narrow(0, 0, n), {}};
    return add(run.loss(r, draw_stream(step, 0)), run.loss(relabelled, draw_stream(step, 1)));
  }
  const Tensor wrong = random_other_labels(f, run.model.spec().classes, run.options.seed, step);
  return add(cross_entropy(run.model.forward(r.images), r.labels), cross_entropy(run.model.forward(f.images), wrong));
}

nlohmann::json run_random_labels(MethodRun& run) {
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  sgd_steps(run, run.options.lr, 0, [&](int64_t step) { return random_label_loss(run, retain, forget, step); });
  return nullptr;
}

}  // namespace lethe::unlearn
