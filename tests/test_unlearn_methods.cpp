// The unlearning methods on a tiny synthetic task: each runs, changes the model, is bitwise
// reproducible, and keeps its defining property (SalUn's frozen weights, IEU's gate and its
// single-pass gradient, IEU's ablations, SCRUB's max/min schedule). What RL, NegGrad+, l1-sparse,
// SCRUB and retrain compute, step by step: test_method_behaviour.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/ops.h"
#include "unlearn_fixture.h"

using namespace lethe;
using namespace lethe::unlearn;
using namespace lethe::test;

namespace {

MethodOptions small_options() {
  MethodOptions o;
  o.steps = 6;
  o.batch = 16;
  return o;
}

std::vector<float> original_weights() {
  nn::Model m(original_checkpoint().info.model, 3, Device::cpu());
  return m.arena().data().to_vector<float>();
}

}  // namespace

TEST_CASE("unlearn methods: every method runs, moves the weights, and is bitwise reproducible") {
  const std::vector<float> before = original_weights();
  for (const std::string& name : method_names()) {
    CAPTURE(name);
    const Outcome a = run_method(name, small_options()), b = run_method(name, small_options());
    CHECK(a.weights == b.weights);
    CHECK(a.weights != before);
    for (const float w : a.weights) REQUIRE(std::isfinite(w));
  }
  MethodOptions other = small_options();
  other.seed = 1;
  CHECK(run_method("ieu", other).weights != run_method("ieu", small_options()).weights);
}

TEST_CASE("unlearn methods: options resolve to the scenario's IEU defaults and are checked") {
  MethodOptions r, c;
  r.resolve(parse_scenario("random:0.1"));
  CHECK(r.alpha == 0.5);
  CHECK(r.ieu_decay == 0.05);
  CHECK(r.sigma == 1e-3);
  CHECK(r.cap == doctest::Approx(std::log(10.0)));
  c.resolve(parse_scenario("class:0"));
  CHECK(c.alpha == 0.1);
  CHECK(c.cap == 10);
  MethodOptions given;
  given.alpha = 0.7;
  given.resolve(parse_scenario("class:0"));
  CHECK(given.alpha == 0.7);
  for (auto bad : {+[](MethodOptions& o) { o.steps = 0; }, +[](MethodOptions& o) { o.lr = -1; },
                   +[](MethodOptions& o) { o.mask = "tight"; }, +[](MethodOptions& o) { o.saliency = 0; },
                   +[](MethodOptions& o) { o.alpha_schedule = "step"; }, +[](MethodOptions& o) { o.momentum = 1; },
                   +[](MethodOptions& o) { o.scrub_epochs = 0; }, +[](MethodOptions& o) { o.scrub_msteps = -1; }}) {
    MethodOptions o;
    bad(o);
    CHECK_THROWS_AS(o.resolve(parse_scenario("random:0.1")), Error);
  }
  CHECK_THROWS_AS(find_method("forget-harder"), Error);
}

TEST_CASE("unlearn methods: strict SalUn freezes the masked-out weights, loose lets decay move them") {
  CHECK(MethodOptions{}.mask == "strict");  // as the public code since its PR #33
  const std::vector<float> before = original_weights();
  MethodOptions o = small_options();
  o.saliency = 0.3;
  const Outcome strict = run_method("salun", o);
  o.mask = "loose";
  const Outcome loose = run_method("salun", o);
  int64_t moved_strict = 0, moved_loose = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    moved_strict += strict.weights[i] != before[i];
    moved_loose += loose.weights[i] != before[i];
  }
  const int64_t kept = strict.details["weights_updated"].get<int64_t>();
  CHECK(moved_strict <= kept);
  CHECK(moved_strict > 0);
  CHECK(moved_loose > kept);  // weight decay and momentum reach every weight
}

TEST_CASE("unlearn methods: IEU's bounded ascent closes the gate above the cap") {
  MethodOptions o = small_options();
  o.cap = 1e-6;  // every forget loss is above it
  CHECK(run_method("ieu", o).details["ascent_steps"] == 0);
  o.cap = INFINITY;
  CHECK(run_method("ieu", o).details["ascent_steps"] == o.steps);
  // A closed gate is the same as no forget gradient: α = 0.
  MethodOptions closed = small_options(), zero = small_options();
  closed.cap = 1e-6;
  zero.alpha = 0;
  CHECK(run_method("ieu", closed).weights == run_method("ieu", zero).weights);
}

TEST_CASE("unlearn methods: each IEU ablation is IEU with that option 0, bitwise") {
  const std::vector<float> ieu = run_method("ieu", small_options()).weights;
  struct Ablation {
    const char* name;
    const char* option;
    double MethodOptions::* field;
  };
  for (const Ablation& a : {Ablation{"ieu-no-noise", "sigma", &MethodOptions::sigma},
                            Ablation{"ieu-no-decay", "ieu-decay", &MethodOptions::ieu_decay},
                            Ablation{"ieu-no-ascent", "alpha", &MethodOptions::alpha}}) {
    CAPTURE(a.name);
    MethodOptions zero = small_options();
    zero.*a.field = 0;
    const Outcome ablated = run_method(a.name, small_options()), explicit_zero = run_method("ieu", zero);
    CHECK(ablated.weights == explicit_zero.weights);
    CHECK(ablated.weights != ieu);  // the term switched off does something
    CHECK(ablated.details["switched_off"]["option"] == a.option);
    CHECK(ablated.details["switched_off"]["used"] == 0);
    // A value given for the switched-off option is replaced by 0; the others are taken as given.
    MethodOptions given = small_options(), given_zero = small_options();
    given.*a.field = 0.3;
    given.cap = given_zero.cap = INFINITY;
    given.seed = given_zero.seed = 5;
    given_zero.*a.field = 0;
    const Outcome g = run_method(a.name, given);
    CHECK(g.weights == run_method("ieu", given_zero).weights);
    CHECK(g.details["switched_off"]["given"] == 0.3);
  }
  // Without ascent no step ascends, whatever the gate says; the gate's count is IEU's otherwise.
  MethodOptions open = small_options();
  open.cap = INFINITY;
  CHECK(run_method("ieu-no-ascent", open).details["ascent_steps"] == 0);
  CHECK(run_method("ieu-no-noise", open).details["ascent_steps"] == open.steps);
}

TEST_CASE("unlearn methods: SCRUB's schedule, max steps then min steps per epoch, max in the first msteps epochs") {
  auto pattern = [](const std::vector<bool>& max) {
    std::string s;
    for (const bool m : max) s += m ? 'M' : 'm';
    return s;
  };
  // 10 steps in 3 epochs: steps [0, 3), [3, 6), [6, 10). A quarter of the samples forget:
  // round(3/4) = 1 max step in epochs 0 and 1; epoch 2 (≥ msteps) is min steps only.
  CHECK(pattern(scrub_schedule(10, 3, 2, 1, 3)) == "Mmm" "Mmm" "mmmm");
  // Half forget: round(3/2) = 2 (half up), at most L − 1 = 2, so every epoch keeps a min step.
  CHECK(pattern(scrub_schedule(10, 3, 2, 5, 5)) == "MMm" "MMm" "mmmm");
  CHECK(pattern(scrub_schedule(10, 3, 3, 9, 1)) == "MMm" "MMm" "MMMm");  // round(3·0.9) = 3, clamped to 2
  // A tiny forget set still gets one max step per max epoch (the code's pass has at least one batch).
  CHECK(pattern(scrub_schedule(6, 2, 2, 1, 1000)) == "Mmm" "Mmm");
  CHECK(pattern(scrub_schedule(6, 3, 0, 1, 1)) == "mmmmmm");            // msteps 0: distillation only
  CHECK(pattern(scrub_schedule(4, 3, 3, 1, 1)) == "m" "m" "Mm");  // epochs of 1, 1, 2 steps: no room in 1
  // W1, random:0.1: 6,000 forget and 54,000 retain samples, 300 steps, the defaults (3 epochs, 2 with
  // a max pass): 10 max then 90 min steps, twice, then 100 min steps.
  const MethodOptions d;
  const std::vector<bool> w1 = scrub_schedule(300, d.scrub_epochs, d.scrub_msteps, 6000, 54000);
  CHECK(pattern(w1) == std::string(10, 'M') + std::string(90, 'm') + std::string(10, 'M') + std::string(190, 'm'));
  // It runs on the small task (40 forget, 120 retain: epochs of 2 steps, round(2/4) = 1 max step each).
  const Outcome scrub = run_method("scrub", small_options());
  CHECK(scrub.details["max_steps"] == 2);
  CHECK(scrub.details["min_steps"] == 4);
  MethodOptions none = small_options();
  none.scrub_msteps = 0;
  CHECK(run_method("scrub", none).details["max_steps"] == 0);
  CHECK(run_method("scrub", none).weights != scrub.weights);
}

TEST_CASE("unlearn methods: IEU's single pass matches the two-pass gradient") {
  for (const char* model : {"mlp", "cnn-s"}) {
    CAPTURE(model);
    MethodOptions o = small_options();
    o.steps = 3;
    o.sigma = 0;
    const Outcome two = run_method("ieu", o, model);
    o.single_pass = true;
    const Outcome one = run_method("ieu", o, model);
    double worst = 0;
    for (size_t i = 0; i < two.weights.size(); ++i) worst = std::max(worst, std::abs(double(two.weights[i]) - one.weights[i]));
    CHECK(worst < 1e-5);
    CHECK(one.details["ascent_steps"] == two.details["ascent_steps"]);
  }
  MethodOptions o = small_options();
  o.single_pass = true;
  CHECK_THROWS_AS(run_method("ieu", o, "resnet18c"), Error);  // batch norm
}

TEST_CASE("unlearn methods: GA raises the forget loss, FT lowers the retain loss") {
  const auto train = task();
  const Split split = make_split(parse_scenario("random:0.25"), *train, kClasses, 0);
  const nn::Checkpoint original = original_checkpoint();
  auto loss_on = [&](const std::vector<float>& weights, const std::vector<int64_t>& indices) {
    nn::Model m = nn::load_model(original, Device::cpu());
    Tensor(m.arena().data()).copy_(Tensor::from_vector(weights, {static_cast<int64_t>(weights.size())}));
    data::DataLoader l = data::evaluation_loader({train, indices}, 1000, data::fashion_mnist_normalization());
    return nn::evaluate(m, l).mean_loss;
  };
  MethodOptions o = small_options();
  o.ga_lr = 0.05;
  CHECK(loss_on(run_method("ga", o).weights, split.forget) > loss_on(original_weights(), split.forget));
  CHECK(loss_on(run_method("ft", small_options()).weights, split.retain) < loss_on(original_weights(), split.retain));
}
