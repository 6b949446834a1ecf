// SalUn (Fan et al., ICLR 2024; code github.com/OPTML-Group/Unlearn-Saliency, Classification/):
// random-label unlearning restricted to the weights that matter most for the forget set. The
// saliency mask keeps the `saliency` fraction of weights with the largest |∂CE(forget set)/∂θ| (the
// gradient of the mean loss over the whole forget set, the model in eval mode; the code's
// generate_mask.py sums the batch gradients of −CE over the forget loader); then RL steps with the
// gradient masked. Two mask semantics:
//  - strict (default): masked-out weights stay at the original's values, so neither weight decay
//    nor momentum moves them (restored after every step). This is the public code since PR #33
//    ("Fix weight decay", for issue #32): Classification/unlearn/RL.py masks the gradient, and after
//    every optimizer.step() restores the masked-out coordinates to θ0 and zeroes their momentum
//    buffer (_restore_masked_params). lethe does not zero that buffer: the masked-out coordinates'
//    momentum only ever moves those coordinates, which the restore undoes, so the weights are the same.
//  - loose: only the gradient is masked, as RL.py did before PR #33 (the code as released with the
//    paper), so coupled weight decay and momentum still move every weight.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

namespace {

// 1 where the forget-set gradient magnitude is among the largest `fraction`, else 0, in the
// arena's layout; and how many weights it keeps.
std::pair<Tensor, int64_t> saliency_mask(MethodRun& run, double fraction) {
  nn::Model& model = run.model;
  ParamArena& arena = model.arena();
  const bool was_training = model.net().is_training();
  model.eval();
  arena.zero_grad(0);
  data::DataLoader loader = data::evaluation_loader(run.forget(), 1000, run.normalization, model.device());
  CrossEntropyOptions sum;
  sum.reduction = Reduction::sum;
  const double n = static_cast<double>(loader.size());
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const data::Batch batch = loader.batch(0, b);
    const Tensor total = run.generator() ? lethe::sum(run.sample_losses(batch, static_cast<uint64_t>(b)))
                                         : cross_entropy(model.forward(batch.images), batch.labels, sum);
    mul(total, 1 / n).backward();
  }
  model.train(was_training);
  std::vector<float> magnitude = abs(arena.grad(0)).to(DType::f32).to_vector<float>();
  arena.zero_grad(0);
  // The threshold over the real parameters (the arena's alignment padding has no gradient).
  std::vector<float> real;
  for (size_t i = 0; i < arena.params().size(); ++i) {
    const int64_t off = arena.offset(i), len = arena.params()[i].numel();
    real.insert(real.end(), magnitude.begin() + off, magnitude.begin() + off + len);
  }
  const auto keep = std::max<int64_t>(1, static_cast<int64_t>(fraction * static_cast<double>(real.size())));
  std::nth_element(real.begin(), real.begin() + (keep - 1), real.end(), std::greater<float>());
  const float threshold = real[static_cast<size_t>(keep - 1)];
  int64_t kept = 0;
  for (float& m : magnitude) {
    m = m >= threshold && m > 0 ? 1.0f : 0.0f;
    kept += m != 0;
  }
  return {Tensor::from_vector(magnitude, {arena.size()}, model.device()).to(arena.data().dtype()), kept};
}

}  // namespace

nlohmann::json run_salun(MethodRun& run) {
  const auto [mask_, kept] = saliency_mask(run, run.options.saliency);
  const Tensor& mask = mask_;  // the lambdas below capture it (clang 14 cannot capture a structured binding)
  const bool strict = run.options.mask == "strict";
  const Tensor unmask = rsub(1.0, mask);
  ParamArena& arena = run.model.arena();
  Tensor before;
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  sgd_steps(
      run, run.options.lr, 0, [&](int64_t step) { return random_label_loss(run, retain, forget, step); },
      [&](int64_t) {
        NoGradGuard no_grad;
        Tensor g = arena.grad(0);
        g.copy_(mul(g, mask));
        if (strict) before = arena.data().clone();
      },
      [&](int64_t) {
        if (!strict) return;
        NoGradGuard no_grad;
        // mask·θ_new + (1 − mask)·θ_old: exact for a 0/1 mask.
        Tensor theta = arena.data();
        theta.copy_(add(mul(theta, mask), mul(before, unmask)));
      });
  return {{"mask", run.options.mask}, {"saliency", run.options.saliency}, {"weights_updated", kept}};
}

}  // namespace lethe::unlearn
