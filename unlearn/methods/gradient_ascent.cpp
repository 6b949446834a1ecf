// GA: gradient ascent on the forget set: maximise its cross-entropy (a generator's: its loss). It has its own, small
// learning rate (--ga-lr) and clips its gradient (--ascent-clip): ascent on an unbounded loss
// otherwise drives the logits to overflow.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_gradient_ascent(MethodRun& run) {
  BatchStream forget = run.forget_stream();
  sgd_steps(run, run.options.ga_lr, run.options.ascent_clip,
            [&](int64_t step) { return neg(run.loss(forget.next(), draw_stream(step, 0))); });
  return nullptr;
}

}  // namespace lethe::unlearn
