#include "unlearn/method_options.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "nn/option_json.h"

namespace lethe::unlearn {

namespace {

using nn::integer_in, nn::real_in, nn::unit_open, nn::fraction, nn::positive_up_to, nn::seed_range, nn::kMaxCount;
using M = MethodOptions;
using nn::Initial;

const std::vector<std::string> kSchedules = {"constant", "linear", "cosine"};

}  // namespace

const nn::OptionTable<MethodOptions>& method_options() {
  static const nn::OptionTable<M> table = {
      {"steps", &M::steps, "unlearning steps (each one retain and/or forget batch)", integer_in(1, kMaxCount)},
      {"batch", &M::batch, "batch size (of each of the retain and forget batches)", integer_in(1, 1 << 20)},
      {"lr", &M::lr, "learning rate η", real_in(0, 100)},
      {"momentum", &M::momentum, "SGD momentum (all but ieu and retrain)", unit_open()},
      {"weight-decay", &M::weight_decay, "SGD weight decay, coupled (all but ieu and retrain)", real_in(0, 100)},
      {"seed", &M::seed, "seed of batch orders, random labels and the IEU noise", seed_range()},
      {"ga-lr", &M::ga_lr, "ga: learning rate", real_in(0, 100)},
      {"ascent-clip", &M::ascent_clip,
       "ga, neggrad+, scrub (its max steps): clip the gradient to this global L2 norm (0: off)", real_in(0, 1e9)},
      {"neggrad-beta", &M::neggrad_beta, "neggrad+: β of β·CE(retain) − (1 − β)·CE(forget)", fraction()},
      {"l1", &M::l1, "l1-sparse: γ of γ·‖θ‖₁, decayed linearly to 0", real_in(0, 100)},
      {"saliency", &M::saliency, "salun: fraction of weights updated (largest forget-gradient magnitude)",
       positive_up_to(1)},
      {"mask", &M::mask,
       "salun: strict (masked weights held at the original: no update, decay or momentum; as the public code since "
       "its PR #33) or loose (gradient masked only, as the code was before it)",
       {}, {"strict", "loose"}},
      {"scrub-epochs", &M::scrub_epochs, "scrub: epochs the steps are cut into (the code's sgda_epochs)",
       integer_in(1, 1000000)},
      {"scrub-msteps", &M::scrub_msteps,
       "scrub: epochs that begin with max steps on forget batches, their share of the epoch "
       "n_forget/(n_forget + n_retain) (the code's msteps)",
       integer_in(0, 1000000)},
      {"scrub-alpha", &M::scrub_alpha, "scrub: weight of the KL to the teacher on retain batches", real_in(0, 1e6)},
      {"scrub-gamma", &M::scrub_gamma, "scrub: weight of the cross-entropy on retain batches", real_in(0, 1e6)},
      {"scrub-temperature", &M::scrub_temperature, "scrub: distillation temperature", positive_up_to(1000)},
      {"alpha", &M::alpha, "ieu: forget-ascent weight α (default: 0.5 random, 0.1 otherwise; ieu-no-ascent: 0)",
       real_in(0, 1000), {}, Initial::placeholder},
      {"ieu-decay", &M::ieu_decay,
       "ieu: decoupled weight decay λ (default: 0.05 random, 0.02 otherwise; ieu-no-decay: 0)", real_in(0, 100), {},
       Initial::placeholder},
      {"sigma", &M::sigma, "ieu: noise standard deviation σ (default: 1e-3 random, 3e-4 otherwise; ieu-no-noise: 0)",
       real_in(0, 10), {}, Initial::placeholder},
      {"cap", &M::cap,
       "ieu: ascend the forget batch only while its mean CE is below this (default: ln 10 random, 10 otherwise; "
       "inf: always)",
       positive_up_to(std::numeric_limits<double>::infinity()), {}, Initial::placeholder},
      {"alpha-schedule", &M::alpha_schedule, "ieu: schedule of α: constant, linear or cosine (decay to 0)", {},
       kSchedules},
      {"decay-schedule", &M::decay_schedule, "ieu: schedule of λ: constant, linear or cosine (decay to 0)", {},
       kSchedules},
      {"sigma-schedule", &M::sigma_schedule, "ieu: schedule of σ: constant, linear or cosine (decay to 0)", {},
       kSchedules},
      {"ieu-momentum", &M::ieu_momentum,
       "ieu: heavy-ball momentum of the fused update (0: the plain update IEU is defined with; the SGD baselines use "
       "--momentum)",
       unit_open()},
      {"single-pass", &M::single_pass,
       "ieu: g_r − α·g_f from one backward over both batches with signed per-sample weights (no batch norm)",
       Initial::flag},
  };
  return table;
}

void MethodOptions::resolve(const Scenario& scenario) {
  const bool random = scenario.kind == ScenarioKind::random;
  auto fill = [](double& field, double value) {
    if (std::isnan(field)) field = value;
  };
  fill(alpha, random ? 0.5 : 0.1);
  fill(ieu_decay, random ? 0.05 : 0.02);
  fill(sigma, random ? 1e-3 : 3e-4);
  fill(cap, random ? std::log(10.0) : 10.0);
  auto check = [this](auto field, bool ok, const char* want) {
    LETHE_CHECK(ok, "unlearn", "--", nn::option_name(method_options(), field), " = ", this->*field, ": ", want);
  };
  auto rate = [&](double M::*field) {
    check(field, std::isfinite(this->*field) && this->*field >= 0, "must be finite and >= 0");
  };
  check(&M::steps, steps > 0, "must be positive");
  check(&M::batch, batch > 0, "must be positive");
  rate(&M::lr);
  rate(&M::ga_lr);
  rate(&M::ascent_clip);
  check(&M::momentum, momentum >= 0 && momentum < 1, "must be in [0, 1)");
  rate(&M::weight_decay);
  check(&M::neggrad_beta, neggrad_beta >= 0 && neggrad_beta <= 1, "must be in [0, 1]");
  rate(&M::l1);
  check(&M::saliency, saliency > 0 && saliency <= 1, "must be in (0, 1]");
  check(&M::mask, mask == "strict" || mask == "loose", "must be strict or loose");
  check(&M::scrub_epochs, scrub_epochs >= 1, "must be at least 1");
  check(&M::scrub_msteps, scrub_msteps >= 0, "must be non-negative");
  rate(&M::scrub_alpha);
  rate(&M::scrub_gamma);
  check(&M::scrub_temperature, scrub_temperature > 0, "must be positive");
  rate(&M::alpha);
  rate(&M::ieu_decay);
  rate(&M::sigma);
  check(&M::cap, cap > 0, "must be positive (inf: no cap)");
  for (auto field : {&M::alpha_schedule, &M::decay_schedule, &M::sigma_schedule})
    check(field, std::count(kSchedules.begin(), kSchedules.end(), this->*field) > 0, "must be constant, linear or cosine");
  check(&M::ieu_momentum, ieu_momentum >= 0 && ieu_momentum < 1, "must be in [0, 1)");
}

void to_json(nlohmann::json& j, const MethodOptions& o) { j = nn::options_json(o, method_options(), nn::JsonKeys::snake); }

}  // namespace lethe::unlearn
