#include "unlearn/relearn_options.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "nn/option_json.h"

namespace lethe::unlearn {

namespace {

using nn::integer_in, nn::real_in, nn::unit_open, nn::fraction, nn::positive_up_to, nn::seed_range, nn::kMaxCount;
using R = RelearnOptions;
using nn::Initial;

void fill(double& field, double value) {
  if (std::isnan(field)) field = value;
}
void fill(std::string& field, const char* value) {
  if (field.empty()) field = value;
}
void fill(int64_t& field, int64_t value) {
  if (field == 0) field = value;
}

}  // namespace

const nn::OptionTable<RelearnOptions>& relearn_options() {
  static const nn::OptionTable<R> table = {
      {"preset", &R::preset,
       "a literature protocol: golatkar (fine-tune time: the whole training set in chunks of 500, until the forget "
       "loss <= the original's) or ain (Adam at 1e-3 in batches of 256 until 95% of the original's accuracy, "
       "class-wise on the forgotten classes' test images); flags given explicitly win",
       {}, {"golatkar", "ain"}, Initial::placeholder},
      {"optimizer", &R::optimizer, "sgd (default) or adam", {}, {"sgd", "adam"}, Initial::placeholder},
      {"lr", &R::lr, "learning rate (default: sgd 0.05 for random forgetting, 0.01 otherwise; adam 1e-3)",
       positive_up_to(100), {}, Initial::placeholder},
      {"momentum", &R::momentum, "SGD momentum", unit_open()},
      {"weight-decay", &R::weight_decay, "weight decay (SGD coupled, Adam decoupled)", real_in(0, 100)},
      {"batch", &R::batch, "batch size (default 128; golatkar 500)", integer_in(1, 1 << 20), {},
       Initial::placeholder},
      {"steps", &R::steps, "step cap: a target not met by then is reported as the cap, censored",
       integer_in(1, kMaxCount)},
      {"cap-limit", &R::cap_limit,
       "the retrained model's cap: it relearns past --steps until it meets both targets or reaches this, so the "
       "ratios' denominator is measured (default 8 x --steps; >= --steps)",
       integer_in(1, kMaxCount), {}, Initial::placeholder},
      {"eval-every", &R::eval_every,
       "evaluate the forget set every K steps; a crossing is replayed step by step (default: 5 for random "
       "forgetting, 1 otherwise)",
       integer_in(1, kMaxCount), {}, Initial::placeholder},
      {"eval-batch", &R::eval_batch, "batch size of the forward-only evaluations", integer_in(1, 1 << 20)},
      {"seed", &R::seed, "seed of the batch order and of sampled subsets", seed_range()},
      {"bn", &R::bn, "batch norm during the steps: train (batch statistics) or frozen (running ones)", {},
       {"train", "frozen"}},
      {"cuda-graph", &R::cuda_graph,
       "on CUDA, capture the step once as a CUDA graph and replay it (the same results; false: launch its kernels "
       "one by one)"},
      {"forget-samples", &R::forget_samples,
       "relearn on part of the forget set: a fraction < 1 or a count, seeded (0: all of it); always measured on all "
       "of it",
       real_in(0, kMaxCount)},
      {"retain-samples", &R::retain_samples,
       "add retain samples: a fraction <= 1 or a count > 1, seeded (default 0; golatkar 1, the whole training set)",
       real_in(0, kMaxCount), {}, Initial::placeholder},
      {"retain-mix", &R::retain_mix,
       "the share of retain samples in the relearning data, in [0, 1]: F forget samples get round(F m / (1 - m)) "
       "seeded retain samples (1: retain samples only, F of them); default 0.5 for class-wise and backdoor "
       "scenarios, 0 otherwise or with --retain-samples",
       fraction(), {}, Initial::placeholder},
      {"target-set", &R::target_set,
       "what the targets and RCD are measured on: forget (the forget set, default) or class-test (the test images "
       "of the forgotten classes; class-wise only; ain's default there)",
       {}, {"forget", "class-test"}, Initial::placeholder},
      {"calibration-samples", &R::calibration_samples,
       "the calibration-matched RCD: the first N test images (class-wise: of the remaining classes) are a held-out "
       "set on which each model's temperature is fitted at every evaluation; its forget loss at that temperature "
       "must fall to the original's (0: off)",
       integer_in(0, kMaxCount)},
      {"accuracy-drop", &R::accuracy_drop, "accuracy target = the original's forget accuracy minus this", fraction()},
      {"accuracy-ratio", &R::accuracy_ratio, "accuracy target = this times the original's (ain: 0.95)", fraction(),
       {}, Initial::placeholder},
      {"accuracy-target", &R::accuracy_target, "an explicit forget-accuracy target (fraction)", fraction(), {},
       Initial::placeholder},
      {"loss-target", &R::loss_target, "an explicit forget-loss target (nats; default: the original's)",
       positive_up_to(1e6), {}, Initial::placeholder},
      {"stop", &R::stop,
       "stop a model when: all (both targets met, default), loss, accuracy, or none (run to the cap; ain: "
       "accuracy)",
       {}, {"all", "loss", "accuracy", "none"}, Initial::placeholder},
      {"headline", &R::headline, "the RCD summaries lead with: loss (default) or accuracy (ain)", {},
       {"loss", "accuracy"}, Initial::placeholder},
  };
  return table;
}

void RelearnOptions::resolve(const Scenario& scenario) {
  auto name = [](auto field) { return nn::option_name(relearn_options(), field); };
  auto check = [&](auto field, bool ok, const char* want) {
    LETHE_CHECK(ok, "relearn", "--", name(field), " = ", this->*field, ": ", want);
  };
  check(&R::preset, preset.empty() || preset == "golatkar" || preset == "ain", "must be golatkar or ain");
  const bool class_wise = scenario.kind == ScenarioKind::class_wise;
  if (preset == "golatkar") {  // Golatkar et al.: fine-tune on the whole training set in chunks of 500
    fill(batch, 500);
    if (std::isnan(retain_mix)) fill(retain_samples, 1);
    fill(stop, "loss");
    fill(headline, "loss");
  } else if (preset == "ain") {
    // Chundawat et al.'s anamnesis index as their public code computes it (README, "Relearning"):
    // Adam at 1e-3 in batches of 256, until the accuracy is within 5% of the original's on the
    // held-out images of the forgotten class.
    fill(optimizer, "adam");
    fill(batch, 256);
    fill(accuracy_ratio, 0.95);
    fill(stop, "accuracy");
    fill(headline, "accuracy");
    fill(target_set, class_wise ? "class-test" : "forget");
  }
  fill(optimizer, "sgd");
  fill(lr, optimizer == "adam" ? 1e-3 : scenario.kind == ScenarioKind::random ? 0.05 : 0.01);
  fill(batch, 128);
  fill(eval_every, scenario.kind == ScenarioKind::random ? 5 : 1);
  // A forget set of one class (class-wise) or one label (backdoor) is mixed 1:1 with retain samples.
  fill(retain_mix, !std::isnan(retain_samples) || (!class_wise && scenario.kind != ScenarioKind::backdoor) ? 0 : 0.5);
  fill(retain_samples, 0);
  fill(stop, "all");
  fill(headline, "loss");
  fill(target_set, "forget");
  check(&R::optimizer, optimizer == "sgd" || optimizer == "adam", "must be sgd or adam");
  check(&R::lr, std::isfinite(lr) && lr > 0, "must be positive");
  check(&R::momentum, momentum >= 0 && momentum < 1, "must be in [0, 1)");
  check(&R::weight_decay, std::isfinite(weight_decay) && weight_decay >= 0, "must be >= 0");
  check(&R::batch, batch > 0, "must be positive");
  check(&R::steps, steps > 0, "must be positive");
  fill(cap_limit, 8 * steps);
  LETHE_CHECK(cap_limit >= steps, "relearn", "--", name(&R::cap_limit), " = ", cap_limit, ": must be >= --",
              name(&R::steps), " (", steps, ")");
  check(&R::eval_every, eval_every > 0, "must be positive");
  check(&R::eval_batch, eval_batch > 0, "must be positive");
  check(&R::calibration_samples, calibration_samples >= 0,
        "must be >= 0 (0: no calibration-matched RCD; N: the first N test images are the held-out set)");
  check(&R::bn, bn == "train" || bn == "frozen", "must be train or frozen");
  check(&R::forget_samples, std::isfinite(forget_samples) && forget_samples >= 0,
        "must be 0 (all), a fraction < 1 or a count");
  check(&R::retain_samples, std::isfinite(retain_samples) && retain_samples >= 0,
        "must be 0 (none), a fraction <= 1 or a count");
  check(&R::retain_mix, std::isfinite(retain_mix) && retain_mix >= 0 && retain_mix <= 1,
        "must be a fraction in [0, 1] (the share of retain samples in the relearning data)");
  LETHE_CHECK(retain_mix == 0 || retain_samples == 0, "relearn", "--", name(&R::retain_mix), " = ", retain_mix,
              " and --", name(&R::retain_samples), " = ", retain_samples,
              ": both set the retain part of the relearning data; give one");
  check(&R::target_set, target_set == "forget" || target_set == "class-test", "must be forget or class-test");
  check(&R::target_set, target_set != "class-test" || class_wise,
        "needs a class-wise scenario (it is the test images of the forgotten classes)");
  check(&R::accuracy_drop, std::isfinite(accuracy_drop) && accuracy_drop >= 0 && accuracy_drop < 1,
        "must be in [0, 1)");
  check(&R::accuracy_ratio, std::isnan(accuracy_ratio) || (accuracy_ratio > 0 && accuracy_ratio <= 1),
        "must be in (0, 1]");
  check(&R::accuracy_target, std::isnan(accuracy_target) || (accuracy_target >= 0 && accuracy_target <= 1),
        "must be a fraction in [0, 1]");
  check(&R::loss_target, std::isnan(loss_target) || (std::isfinite(loss_target) && loss_target >= 0),
        "must be >= 0 nats");
  check(&R::stop, stop == "all" || stop == "loss" || stop == "accuracy" || stop == "none",
        "must be all, loss, accuracy or none");
  check(&R::headline, headline == "loss" || headline == "accuracy", "must be loss or accuracy");
}

void to_json(nlohmann::json& j, const RelearnOptions& o) { j = nn::options_json(o, relearn_options(), nn::JsonKeys::snake); }

}  // namespace lethe::unlearn
