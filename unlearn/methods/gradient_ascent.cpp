// GA: gradient ascent on the forget set: maximise its cross-entropy. It has its own, small
// learning rate (--ga-lr): ascent on an unbounded loss diverges at the descent methods' rate.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_gradient_ascent(MethodRun& run) {
  BatchStream forget = run.forget_stream();
  sgd_steps(run, run.options.ga_lr, [&](int64_t) {
    const data::Batch b = forget.next();
    return neg(cross_entropy(run.model.forward(b.images), b.labels));
  });
  return nullptr;
}

}  // namespace lethe::unlearn
