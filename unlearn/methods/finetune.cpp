// FT: fine-tune on the retain set only, and let catastrophic forgetting erase the forget set.
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_finetune(MethodRun& run) {
  BatchStream retain = run.retain_stream();
  sgd_steps(run, run.options.lr, 0, [&](int64_t) {
    const data::Batch b = retain.next();
    return cross_entropy(run.model.forward(b.images), b.labels);
  });
  return nullptr;
}

}  // namespace lethe::unlearn
