// l1-sparse (Jia et al., 2023, "Model sparsity can simplify machine unlearning"): fine-tune on the
// retain set with γ_t·Σ|θ| added to the loss, γ_t decaying linearly from γ to 0 over the steps.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_l1_sparse(MethodRun& run) {
  BatchStream retain = run.retain_stream();
  const std::vector<Tensor> params = run.model.net().parameters();
  const double steps = static_cast<double>(run.options.steps);
  sgd_steps(run, run.options.lr, 0, [&](int64_t step) {
    Tensor loss = run.loss(retain.next(), draw_stream(step, 0));
    const double gamma = run.options.l1 * (1 - static_cast<double>(step) / steps);
    if (gamma == 0) return loss;
    Tensor l1;
    for (const Tensor& p : params) l1 = l1.defined() ? add(l1, sum(abs(p))) : sum(abs(p));
    return add(loss, mul(l1, gamma));
  });
  return nullptr;
}

}  // namespace lethe::unlearn
