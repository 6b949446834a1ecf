// RL (Golatkar et al., 2020; as in Fan et al.'s SalUn code): train on forget batches relabelled
// uniformly at random among the wrong classes, together with retain batches so the rest stays.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

Tensor random_label_loss(MethodRun& run, BatchStream& retain, BatchStream& forget, int64_t step) {
  const data::Batch r = retain.next(), f = forget.next();
  const Tensor wrong = random_other_labels(f, run.model.spec().classes, run.options.seed, step);
  return add(cross_entropy(run.model.forward(r.images), r.labels), cross_entropy(run.model.forward(f.images), wrong));
}

nlohmann::json run_random_labels(MethodRun& run) {
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  sgd_steps(run, run.options.lr, 0, [&](int64_t step) { return random_label_loss(run, retain, forget, step); });
  return nullptr;
}

}  // namespace lethe::unlearn
