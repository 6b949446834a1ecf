// FT: fine-tune on the retain set only, and let catastrophic forgetting erase the forget set.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_finetune(MethodRun& run) {
  BatchStream retain = run.retain_stream();
  sgd_steps(run, run.options.lr, 0, [&](int64_t step) { return run.loss(retain.next(), draw_stream(step, 0)); });
  return nullptr;
}

}  // namespace lethe::unlearn
