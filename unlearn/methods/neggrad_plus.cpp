// NegGrad+ (Kurmanji et al., 2023): one retain and one forget batch per step,
// loss = β·CE(retain) − (1 − β)·CE(forget).
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_neggrad_plus(MethodRun& run) {
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  const double beta = run.options.neggrad_beta;
  sgd_steps(run, run.options.lr, run.options.ascent_clip, [&](int64_t step) {
    const data::Batch r = retain.next(), f = forget.next();
    return sub(mul(run.loss(r, draw_stream(step, 0)), beta), mul(run.loss(f, draw_stream(step, 1)), 1 - beta));
  });
  return nullptr;
}

}  // namespace lethe::unlearn
