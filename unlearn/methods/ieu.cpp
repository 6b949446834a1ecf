// IEU (Tran & Woo, "Efficient Unlearning through Maximizing Relearning Convergence Delay"): every
// step takes a retain batch and a forget batch, computes g_r = ∇CE(retain) and g_f = ∇CE(forget)
// into the arena's two gradient buffers, and applies ONE fused update over all parameters
// (unlearn/ieu_update.h):
//     θ ← (1 − η·λ_t)·θ − η·(g_r − α_t·g_f) + σ_t·ξ_t,   ξ_t ~ N(0, I) from Philox (seed, step).
// Bounded ascent: the forget batch is ascended only while its mean cross-entropy is below the cap
// (the update kernel reads the loss on the device and sets α_t to 0 otherwise), so the ascent
// cannot run away; the descent on the retain batch and the decay go on.
// α, λ and σ each follow a schedule over the steps: constant, linear or cosine decay to 0.
// --single-pass computes g_r − α_t·g_f in one forward/backward over the concatenated batch with
// signed per-sample weights (the gate applied as a 0/1 factor on the device); with batch norm that
// would mix the two batches' statistics, so it is refused there.
// The ablations (ieu-no-ascent, ieu-no-decay, ieu-no-noise) are this same run with α, λ or σ set to
// 0: run_ieu_without. The no-ascent one still draws each forget batch and computes g_f (the update
// weighs it by 0), so it costs what IEU costs, sees the same batches, and with batch norm its forget
// forward passes move the running statistics as IEU's do: only the ascent differs.
#include <cmath>
#include <numbers>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "unlearn/ieu_update.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

namespace {

double scheduled(const std::string& kind, double base, int64_t step, int64_t total) {
  const double t = static_cast<double>(step) / static_cast<double>(total);
  if (kind == "linear") return base * (1 - t);
  if (kind == "cosine") return base * 0.5 * (1 + std::cos(std::numbers::pi * t));
  return base;
}

}  // namespace

nlohmann::json run_ieu(MethodRun& run) {
  const MethodOptions& o = run.options;
  nn::Model& model = run.model;
  ParamArena& arena = model.arena();
  LETHE_CHECK(arena.grad_buffers() >= 2, "ieu", "the model needs two gradient buffers (g_r and g_f), it has ",
              arena.grad_buffers());
  LETHE_CHECK(!o.single_pass || model.net().named_buffers().empty(), "ieu", "--single-pass concatenates the retain "
              "and forget batches, which would mix their batch-norm statistics; ", model.spec().name,
              " has batch norm, so use the two-pass update");
  IeuOptions io;
  io.momentum = o.ieu_momentum;
  io.forget_loss_cap = o.cap;
  io.seed = o.seed;
  IeuUpdate update(arena, io);
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  const Tensor cap = Tensor::scalar(o.cap, model.spec().dtype, model.device());  // the losses' dtype, for lt
  Tensor gate_open_steps = Tensor::zeros({}, DType::f64, model.device());  // on the device: no sync per step
  model.train();
  run.observe_step(0, o.steps);
  for (int64_t step = 0; step < o.steps; ++step) {
    const double alpha = scheduled(o.alpha_schedule, o.alpha, step, o.steps);
    update.set(o.lr, alpha, scheduled(o.decay_schedule, o.ieu_decay, step, o.steps),
               scheduled(o.sigma_schedule, o.sigma, step, o.steps));
    const data::Batch r = retain.next(), f = forget.next();
    Tensor forget_loss;
    if (o.single_pass) {
      arena.zero_grad(0);
      const int64_t nr = r.labels.numel(), nf = f.labels.numel();
      const Tensor losses =
          run.sample_losses({concat({r.images, f.images}, 0), concat({r.labels, f.labels}, 0), {}}, draw_stream(step, 0));
      const Tensor retain_loss = mean(losses.narrow(0, 0, nr));
      forget_loss = mean(losses.narrow(0, nr, nf));
      const Tensor open = lt(forget_loss.detach(), cap).to(forget_loss.dtype());
      sub(retain_loss, mul(mul(forget_loss, open), alpha)).backward();
      update.step(0, -1);
      gate_open_steps.add_(open.to(DType::f64));
    } else {
      forget_loss = retain_and_forget_gradients(
          arena, [&] { run.loss(r, draw_stream(step, 0)).backward(); },
          [&] {
            Tensor loss = run.loss(f, draw_stream(step, 1));
            loss.backward();
            return loss;
          });
      update.step(0, 1, forget_loss.detach());
      gate_open_steps.add_(lt(forget_loss.detach(), cap).to(DType::f64));
    }
    run.observe_step(step + 1, o.steps);
    if (step % 25 == 24 || step + 1 == o.steps) {
      const double l = forget_loss.item();
      LETHE_CHECK(std::isfinite(l), "ieu", "the forget loss at step ", step + 1, " is not finite (", l,
                  "): diverged; lower --lr or --alpha, or set a --cap");
    }
    run.report(step + 1, o.steps);
  }
  const auto open_steps = static_cast<int64_t>(gate_open_steps.item());
  // With α = 0 no step ascends, whatever the gate said.
  return {{"update", o.single_pass ? "single pass (signed per-sample weights)" : "two passes, fused update"},
          {"ascent_steps", o.alpha == 0 ? 0 : open_steps},
          {"capped_steps", o.alpha == 0 ? 0 : o.steps - open_steps}};
}

nlohmann::json run_ieu_without(MethodRun& run, IeuTerm off) {
  MethodOptions o = run.options;
  double& term = off == IeuTerm::ascent ? o.alpha : off == IeuTerm::decay ? o.ieu_decay : o.sigma;
  const char* name = off == IeuTerm::ascent ? "alpha" : off == IeuTerm::decay ? "ieu-decay" : "sigma";
  const double given = term;
  term = 0;
  MethodRun ablated{run.model, run.original, run.train, run.split, run.normalization, o, run.progress, run.observe};
  nlohmann::json details = run_ieu(ablated);
  // The options recorded with the run show the value given; this says it was replaced by 0.
  details["switched_off"] = {{"option", name}, {"given", given}, {"used", 0}};
  return details;
}

}  // namespace lethe::unlearn
