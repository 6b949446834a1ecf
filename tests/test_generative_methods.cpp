// The unlearning methods on a generator (issue 17): each runs on a tiny cvae, moves its weights,
// stays finite and is reproducible; generative RL descends L(retain) + L(retain images with the
// forget batch's labels), checked against autograd on the same batches and draws; IEU's gate reads
// the generator's forget loss; SCRUB (a classifier's distillation) is refused; relearning a
// generator (RCD) is measured by its judge, deterministically, with the exact bracket replay.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/generative.h"
#include "unlearn/relearn.h"
#include "unlearn_fixture.h"

using namespace lethe;
using namespace lethe::unlearn;
using namespace lethe::test;

namespace {

MethodCase generator_case() {
  auto train = task();
  Split split = make_split(parse_scenario("class:1"), *train, kClasses, 0);
  nn::Checkpoint original = original_checkpoint("cvae");
  original.info.recipe->optimizer = "adamw";
  original.info.recipe->lr = 1e-3;
  original.info.recipe->weight_decay = 0;
  return {std::move(train), std::move(split), std::move(original)};
}

MethodOptions small_steps(const std::string& method) {
  MethodOptions o;
  o.steps = 3;
  o.batch = 16;
  o.lr = 1e-4;
  o.ga_lr = 1e-4;
  if (method.rfind("ieu", 0) == 0) o.cap = 1e9;
  return o;
}

Outcome run_generator_method(const std::string& name, MethodOptions options, const MethodCase& c,
                             MethodRun::Observe observe = {}) {
  const Method& method = find_method(name);
  nn::Model m = nn::load_model(c.original, Device::cpu(), method.grad_buffers);
  options.resolve(c.split.scenario);
  MethodRun run{m, c.original, c.train, c.split, data::Normalization{}, options, {}, std::move(observe)};
  Outcome out;
  out.details = method.run(run);
  out.weights = m.arena().data().to_vector<float>();
  return out;
}

}  // namespace

TEST_CASE("generator methods: each runs on a cvae, changes it, stays finite and is reproducible") {
  const MethodCase c = generator_case();
  const std::vector<float> before = nn::load_model(c.original, Device::cpu()).arena().data().to_vector<float>();
  for (const char* name : {"retrain", "ft", "ga", "neggrad+", "rl", "l1-sparse", "salun", "ieu"}) {
    CAPTURE(name);
    const Outcome a = run_generator_method(name, small_steps(name), c), b = run_generator_method(name, small_steps(name), c);
    CHECK(a.weights == b.weights);
    CHECK(std::all_of(a.weights.begin(), a.weights.end(), [](float v) { return std::isfinite(v); }));
    CHECK(a.weights != before);
  }
  CHECK_THROWS_WITH_AS(run_generator_method("scrub", small_steps("scrub"), c), doctest::Contains("is a generator"), Error);
}

TEST_CASE("generator RL: a step descends L(retain) + L(retain images with the forget labels)") {
  const MethodCase c = generator_case();
  MethodOptions o = small_steps("rl");
  o.steps = 1;
  o.momentum = 0;
  o.weight_decay = 0;
  o.lr = 1e-3;
  const Outcome after = run_generator_method("rl", o, c);

  // The same batches (the methods' streams) and draws, differentiated here.
  nn::Model m = nn::load_model(c.original, Device::cpu());
  MethodOptions resolved = o;
  resolved.resolve(c.split.scenario);
  MethodRun run{m, c.original, c.train, c.split, data::Normalization{}, resolved, {}};
  const data::Batch r = run.retain_stream().next(), f = run.forget_stream().next();
  const int64_t n = std::min(r.labels.numel(), f.labels.numel());
  CHECK(f.labels.to_vector<int64_t>() == std::vector<int64_t>(static_cast<size_t>(f.labels.numel()), 1));
  nn::Generator& g = *m.generator();
  const uint64_t seed = nn::unlearning_draw_seed(resolved.seed);
  m.arena().zero_grad(0);
  add(mean(g.loss(r.images, r.labels, seed, draw_stream(0, 0))),
      mean(g.loss(r.images.narrow(0, 0, n), f.labels.narrow(0, 0, n), seed, draw_stream(0, 1))))
      .backward();
  const std::vector<double> theta = m.arena().data().to(DType::f64).to_vector<double>(),
                            grad = m.arena().grad(0).to(DType::f64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < theta.size(); ++i)
    worst = std::max(worst, std::abs(after.weights[i] - (theta[i] - o.lr * grad[i])) / (1e-6 + std::abs(theta[i])));
  CHECK(worst < 1e-4);
}

TEST_CASE("generator IEU: the gate reads the generator's forget loss") {
  const MethodCase c = generator_case();
  MethodOptions o = small_steps("ieu");
  o.cap = 1e9;  // above any negative ELBO here: every step ascends
  CHECK(run_generator_method("ieu", o, c).details["ascent_steps"] == 3);
  o.cap = 1;  // far below an untrained 8×8 cvae's negative ELBO (about 64·ln 2): no step ascends
  const Outcome capped = run_generator_method("ieu", o, c);
  CHECK(capped.details["ascent_steps"] == 0);
  CHECK(capped.details["capped_steps"] == 3);
}

TEST_CASE("generator RCD: relearning a cvae is measured by its judge, deterministic, and the bracket replay exact") {
  const MethodCase c = generator_case();
  nn::Model original = nn::load_model(c.original, Device::cpu());
  // The unlearned stand-in: the original after a few steps of gradient ascent on the forget set.
  MethodOptions ga = small_steps("ga");
  ga.ga_lr = 1e-2;
  nn::Model unlearned = nn::load_model(c.original, Device::cpu());
  {
    MethodOptions resolved = ga;
    resolved.resolve(c.split.scenario);
    MethodRun run{unlearned, c.original, c.train, c.split, data::Normalization{}, resolved, {}};
    find_method("ga").run(run);
  }
  nn::ModelSpec judge_spec{"mlp", 1, kSize, kClasses};
  nn::Model evaluator(judge_spec, 5, Device::cpu());
  GeneratorJudge judge{&evaluator, data::fashion_mnist_normalization(), std::vector<int64_t>(40, 1), 9};

  RelearnOptions o;
  o.steps = 12;
  o.batch = 16;
  o.lr = 1e-3;
  o.retain_mix = 0;
  o.stop = "none";
  o.resolve(c.split.scenario);
  const RelearnData data = relearn_data(c.train, c.split, o);
  const ForgetMetrics reference = forget_metrics(original, data.forget, data::Normalization{}, o, {}, &judge);
  CHECK((reference.accuracy >= 0 && reference.accuracy <= 1));
  CHECK(std::isfinite(reference.loss));
  RelearnTargets targets = relearn_targets(o, reference);
  const std::vector<NamedTensors> starts{original.net().state_dict(), unlearned.net().state_dict()};
  auto run = [&](int64_t every) {
    RelearnOptions with = o;
    with.eval_every = every;
    return relearn(original.spec(), starts, data, data::Normalization{}, with, targets, Device::cpu(),
                   RelearnMode::automatic, {}, {}, {}, &judge);
  };
  const std::vector<RelearnResult> every_step = run(1), every_fourth = run(4), again = run(4);
  REQUIRE(every_step.size() == 2);
  for (size_t m = 0; m < 2; ++m) {
    CAPTURE(m);
    CHECK(every_step[m].curve.size() == 13);  // steps 0..12
    for (const RelearnPoint& p : every_step[m].curve) {
      CHECK((p.forget_accuracy >= 0 && p.forget_accuracy <= 1));
      CHECK(std::isfinite(p.forget_loss));
    }
    // Evaluating every 4th step and replaying the bracket finds the first crossing evaluating
    // every step finds, and the points it shares with it are the same numbers.
    CHECK(every_fourth[m].loss_steps == every_step[m].loss_steps);
    CHECK(every_fourth[m].accuracy_steps == every_step[m].accuracy_steps);
    CHECK(every_fourth[m].curve.back().forget_loss == every_step[m].curve.back().forget_loss);
    CHECK(again[m].curve.size() == every_fourth[m].curve.size());
    CHECK(again[m].curve.back().forget_loss == every_fourth[m].curve.back().forget_loss);
  }
  // The ascended model's loss crossing lies inside a bracket of 4 (step 3 here), so the replay ran.
  CHECK(every_step[1].loss_steps > 0);
  CHECK(every_step[1].loss_steps % 4 != 0);
  // The original meets its own loss target at step 0; the ascended model starts above it.
  CHECK(every_step[0].loss_steps == 0);
  CHECK(every_step[1].curve.front().forget_loss > targets.loss);
  CHECK_THROWS_WITH_AS(relearn(original.spec(), starts, data, data::Normalization{}, o, targets, Device::cpu()),
                       doctest::Contains("needs a judge"), Error);
}
