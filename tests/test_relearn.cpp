// The relearning loop on a tiny synthetic task: the replayed brackets give exactly what evaluating
// after every step gives, the batched pass gives bitwise what relearning each model alone gives,
// and the options, targets, data and RCD records mean what they say.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "harness.h"
#include "nn/data/fashion_mnist.h"
#include "unlearn/relearn.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

constexpr int64_t kSize = 8, kClasses = 4;

struct Setup {
  std::shared_ptr<const data::Dataset> train = test::band_task(160, kSize, kClasses);
  Split split = make_split(parse_scenario("random:0.25"), *train, kClasses, 0);
  nn::ModelSpec spec;
  std::vector<NamedTensors> starts;
  explicit Setup(const std::string& model) : spec{model, 1, kSize, kClasses} {
    for (uint64_t seed : {1, 2, 3}) starts.push_back(nn::Model(spec, seed, Device::cpu()).net().state_dict());
  }
  RelearnData data(const RelearnOptions& o) const { return relearn_data(train, split, o); }
};

RelearnOptions small_options(int64_t eval_every) {
  RelearnOptions o;
  o.lr = 0.01;
  o.batch = 16;
  o.steps = 60;
  o.eval_every = eval_every;
  o.eval_batch = 32;
  o.resolve(parse_scenario("random:0.25"));
  return o;
}

// Targets the fresh models meet at different steps well within the cap.
RelearnTargets targets() { return {0.75, 0.9}; }

std::vector<RelearnResult> run(const Setup& s, const RelearnOptions& o, RelearnMode mode,
                               const std::vector<NamedTensors>& starts, const std::vector<size_t>& extended = {}) {
  return relearn(s.spec, starts, s.data(o), data::fashion_mnist_normalization(), o, targets(), Device::cpu(), mode, {},
                 {}, extended);
}

void check_same_state(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to(DType::f64).to_vector<double>() == b[i].second.to(DType::f64).to_vector<double>());
  }
}

bool same_point(const RelearnPoint& a, const RelearnPoint& b) {
  return a.step == b.step && a.forget_accuracy == b.forget_accuracy && a.forget_loss == b.forget_loss &&
         a.distance == b.distance;
}

void check_same_result(const RelearnResult& a, const RelearnResult& b, bool same_curve) {
  CHECK(a.accuracy_steps == b.accuracy_steps);
  CHECK(a.loss_steps == b.loss_steps);
  CHECK(a.steps == b.steps);
  CHECK(a.cap == b.cap);
  CHECK(a.diverged == b.diverged);
  check_same_state(a.final_state, b.final_state);
  if (!same_curve) return;
  REQUIRE(a.curve.size() == b.curve.size());
  for (size_t i = 0; i < a.curve.size(); ++i) CHECK(same_point(a.curve[i], b.curve[i]));
  CHECK(a.loss_auc == b.loss_auc);
}

}  // namespace

TEST_CASE("relearn: a replayed bracket reports exactly what evaluating after every step reports") {
  const Setup s("mlp");
  const std::vector<RelearnResult> every = run(s, small_options(1), RelearnMode::sequential, s.starts);
  const std::vector<RelearnResult> bracketed = run(s, small_options(7), RelearnMode::sequential, s.starts);
  REQUIRE(every.size() == 3);
  for (size_t m = 0; m < every.size(); ++m) {
    CAPTURE(m);
    REQUIRE(every[m].loss_steps > 0);  // the targets are met, after some steps, and not at a multiple of 7
    REQUIRE(every[m].accuracy_steps > 0);
    check_same_result(every[m], bracketed[m], false);
    // Every point of the bracketed curve is the per-step curve's point of that step, bit for bit.
    for (const RelearnPoint& p : bracketed[m].curve) {
      REQUIRE(p.step < static_cast<int64_t>(every[m].curve.size()));
      CHECK(same_point(p, every[m].curve[static_cast<size_t>(p.step)]));
    }
    CHECK(bracketed[m].curve.size() < every[m].curve.size());
  }
  // The models stop on their own: not all at one step.
  CHECK((every[0].steps != every[1].steps || every[1].steps != every[2].steps));
  bool off_grid = false;
  for (const RelearnResult& r : every) off_grid = off_grid || r.loss_steps % 7 != 0 || r.accuracy_steps % 7 != 0;
  CHECK(off_grid);  // so the replay did real work
}

// (The stacked model's own tests check its passes and steps at 1 and 2 threads; this checks the
// loop: stops, compaction of the stack, replays, at the default thread count.)
TEST_CASE("relearn: the batched pass gives bitwise what relearning each model alone gives") {
  for (const std::string model : {"mlp", "cnn-s"}) {
    for (const std::string optimizer : {"sgd", "adam"}) {
      CAPTURE(model);
      CAPTURE(optimizer);
      const Setup s(model);
      RelearnOptions o = small_options(5);
      o.optimizer = optimizer;
      if (o.optimizer == "adam") o.lr = 3e-4;
      if (o.optimizer == "sgd") o.momentum = 0.5;
      const std::vector<RelearnResult> batched = run(s, o, RelearnMode::batched, s.starts);
      const std::vector<RelearnResult> sequential = run(s, o, RelearnMode::sequential, s.starts);
      REQUIRE(batched.size() == s.starts.size());
      for (size_t m = 0; m < s.starts.size(); ++m) {
        CAPTURE(m);
        check_same_result(batched[m], sequential[m], true);
      }
      // Brackets of 7 end off the stops' steps: the stack replays whole snapshots and shrinks
      // between brackets, and still lands bitwise on the one-by-one results.
      o.eval_every = 7;
      const std::vector<RelearnResult> batched7 = run(s, o, RelearnMode::batched, s.starts);
      for (size_t m = 0; m < s.starts.size(); ++m) {
        CAPTURE(m);
        check_same_result(batched7[m], sequential[m], false);
      }
      o.eval_every = 5;
      // The models of a run do not touch each other: the last to stop (after the stack lost the
      // others), relearned alone, gives the same.
      size_t first = 0, last = 0;
      for (size_t m = 1; m < s.starts.size(); ++m) {
        if (batched[m].steps < batched[first].steps) first = m;
        if (batched[m].steps > batched[last].steps) last = m;
      }
      CHECK(batched[first].steps < batched[last].steps);
      check_same_result(batched[last], run(s, o, RelearnMode::sequential, {s.starts[last]})[0], true);

      // The cap extension: with a cap before the last model's stop, that model as the gold standard
      // relearns past it (the stack shrinks to it there), bitwise alike batched and one by one, to
      // the very stop of the uncapped run; the others stop at the cap.
      RelearnOptions e = o;
      REQUIRE(batched[last].steps > 3);
      e.steps = batched[last].steps - 3;
      e.cap_limit = o.steps;
      for (const int64_t every : {5, 7}) {
        CAPTURE(every);
        e.eval_every = every;
        const std::vector<RelearnResult> eb = run(s, e, RelearnMode::batched, s.starts, {last});
        const std::vector<RelearnResult> es = run(s, e, RelearnMode::sequential, s.starts, {last});
        for (size_t m = 0; m < s.starts.size(); ++m) {
          CAPTURE(m);
          check_same_result(eb[m], es[m], true);
          CHECK(eb[m].cap == (m == last ? o.steps : e.steps));
          CHECK(eb[m].steps == (m == last ? batched[m].steps : std::min(batched[m].steps, e.steps)));
        }
        CHECK(eb[last].extended);
        // Its steps past the cap are those of a run without the cap (the grid of brackets differs).
        check_same_result(eb[last], batched[last], false);
      }
    }
  }
}

TEST_CASE("relearn: a bracket is replayed on the shapes the run stepped") {
  // One by one: only the crossed models. A stack: all of it, in order (its size is in every shape).
  CHECK(replay_positions(true, {1, 3}, 5) == std::vector<size_t>{1, 3});
  CHECK(replay_positions(false, {1, 3}, 5) == std::vector<size_t>{0, 1, 2, 3, 4});
  CHECK(replay_positions(false, {0}, 1) == std::vector<size_t>{0});
}

TEST_CASE("relearn: on CUDA, batched relearning replays brackets and shrinks the stack without a mismatch") {
  if (!test::cuda_or_skip("batched relearning with replays")) return;
  for (const std::string model : {"mlp", "cnn-s"}) {
    CAPTURE(model);
    const Setup s(model);
    RelearnOptions o = small_options(7);  // brackets of 7: the crossings fall inside them and are replayed
    o.stop = "all";
    // With momentum and 150 steps every model meets both targets (cnn-s at plain SGD's 60 steps
    // does not). One by one with the same brackets: only the stack's float order differs.
    o.momentum = 0.5;
    o.steps = 150;
    const std::vector<RelearnResult> batched = relearn(s.spec, s.starts, s.data(o), data::fashion_mnist_normalization(),
                                                       o, targets(), Device::cuda(), RelearnMode::batched);
    const std::vector<RelearnResult> alone = relearn(s.spec, s.starts, s.data(o), data::fashion_mnist_normalization(),
                                                     o, targets(), Device::cuda(), RelearnMode::sequential);
    REQUIRE(batched.size() == alone.size());
    bool off_grid = false;
    for (size_t m = 0; m < alone.size(); ++m) {
      CAPTURE(m);
      REQUIRE(alone[m].loss_steps > 0);
      REQUIRE(alone[m].accuracy_steps > 0);
      off_grid = off_grid || alone[m].loss_steps % 7 != 0 || alone[m].accuracy_steps % 7 != 0;
      // A stack sums in other orders than one model alone (float32, not bitwise): a crossing may
      // move by a step or two, no more.
      CHECK(std::abs(batched[m].loss_steps - alone[m].loss_steps) <= 2);
      CHECK(std::abs(batched[m].accuracy_steps - alone[m].accuracy_steps) <= 2);
      CHECK_FALSE(batched[m].diverged);
    }
    CHECK(off_grid);  // so brackets were replayed
  }
}

TEST_CASE("relearn: on CUDA, the step replayed as a CUDA graph gives bitwise the eager step's results") {
  if (!test::cuda_or_skip("relearning with CUDA graphs")) return;
  for (const std::string model : {"mlp", "cnn-s"}) {
    for (const std::string optimizer : {"sgd", "adam"}) {
      for (const RelearnMode mode : {RelearnMode::batched, RelearnMode::sequential}) {
        CAPTURE(model);
        CAPTURE(optimizer);
        CAPTURE(relearn_mode_name(mode));
        const Setup s(model);
        RelearnOptions o = small_options(5);  // batches of 16, 16 and 8: two captured shapes
        o.optimizer = optimizer;
        if (o.optimizer == "adam") o.lr = 3e-4;
        o.stop = "none";  // every model well past each shape's eager first step, into the replays
        o.steps = 20;
        o.cuda_graph = false;
        const std::vector<RelearnResult> eager = relearn(s.spec, s.starts, s.data(o), data::fashion_mnist_normalization(),
                                                         o, targets(), Device::cuda(), mode);
        o.cuda_graph = true;
        const std::vector<RelearnResult> graphed = relearn(
            s.spec, s.starts, s.data(o), data::fashion_mnist_normalization(), o, targets(), Device::cuda(), mode);
        REQUIRE(graphed.size() == eager.size());
        for (size_t m = 0; m < eager.size(); ++m) {
          CAPTURE(m);
          CHECK(eager[m].steps == 20);
          check_same_result(graphed[m], eager[m], true);
        }
      }
    }
  }
}

TEST_CASE("relearn: the original meets its own targets at step 0, a capped model is censored") {
  const Setup s("mlp");
  RelearnOptions o = small_options(5);
  nn::Model original(s.spec, 1, Device::cpu());
  original.net().load_state_dict(s.starts[0]);
  const RelearnData d = s.data(o);
  const ForgetMetrics m = forget_metrics(original, d.forget, data::fashion_mnist_normalization(), o);
  const RelearnTargets t = relearn_targets(o, m);
  CHECK(t.accuracy == doctest::Approx(m.accuracy - 0.01));
  CHECK(t.loss == m.loss);
  const std::vector<RelearnResult> r =
      relearn(s.spec, {s.starts[0]}, d, data::fashion_mnist_normalization(), o, t, Device::cpu());
  CHECK(r[0].accuracy_steps == 0);
  CHECK(r[0].loss_steps == 0);
  CHECK(r[0].steps == 0);
  CHECK(r[0].curve.size() == 1);
  CHECK(r[0].loss_auc == 0);

  o.stop = "none";
  o.steps = 10;
  const RelearnTargets unreachable{1.01, -1};
  const std::vector<RelearnResult> capped =
      relearn(s.spec, {s.starts[1]}, d, data::fashion_mnist_normalization(), o, unreachable, Device::cpu());
  CHECK(capped[0].accuracy_steps == -1);
  CHECK(capped[0].loss_steps == -1);
  CHECK(capped[0].steps == 10);
  CHECK(capped[0].curve.size() == 3);  // steps 0, 5, 10
  CHECK(capped[0].cap == 10);
  const nlohmann::json j = rcd_json(capped[0], &r[0]);
  CHECK(j["loss_steps"] == 10);
  CHECK(j["loss_censored"] == true);
  CHECK(j["cap"] == 10);
  CHECK(j["extended"] == false);
  CHECK(j["censored_at_limit"].is_null());
  CHECK(j["normalized"]["loss"].is_null());  // the reference relearned in 0 steps: no ratio
  CHECK(j["bound"]["loss"] == "none");
}

TEST_CASE("relearn: the retrained model relearns past the cap until it meets both targets, or to cap_limit") {
  const Setup s("mlp");
  RelearnOptions o = small_options(1);
  const std::vector<RelearnResult> full = run(s, o, RelearnMode::sequential, s.starts);  // cap 60: all stop on their own
  size_t last = 0;
  for (size_t m = 1; m < full.size(); ++m)
    if (full[m].steps > full[last].steps) last = m;
  REQUIRE(full[last].steps > 4);
  RelearnOptions capped = o;
  capped.steps = full[last].steps / 2;  // the gold standard has not met both targets by then
  capped.cap_limit = o.steps;
  const std::vector<RelearnResult> r = run(s, capped, RelearnMode::sequential, s.starts, {last});
  for (size_t m = 0; m < r.size(); ++m) {
    CAPTURE(m);
    if (m == last) {
      check_same_result(r[m], full[m], true);  // exactly the uncapped run's steps, curve and weights
      CHECK(r[m].extended);
      CHECK(r[m].cap == o.steps);
    } else {
      CHECK(r[m].steps == std::min(full[m].steps, capped.steps));
      CHECK(r[m].cap == capped.steps);
      CHECK_FALSE(r[m].extended);
    }
  }
  const nlohmann::json j = rcd_json(r[last], &r[last]);
  CHECK(j["extended"] == true);
  CHECK(j["cap"] == o.steps);
  CHECK(j["censored_at_limit"] == false);
  CHECK(j["normalized"]["loss"] == 1.0);
  CHECK(j["bound"]["loss"] == "exact");

  // Not met even at cap_limit: censored there.
  capped.cap_limit = capped.steps + 1;
  REQUIRE(capped.cap_limit < full[last].steps);
  const std::vector<RelearnResult> short_limit = run(s, capped, RelearnMode::sequential, {s.starts[last]}, {0});
  CHECK(short_limit[0].steps == capped.cap_limit);
  CHECK(short_limit[0].cap == capped.cap_limit);
  CHECK((short_limit[0].loss_steps < 0 || short_limit[0].accuracy_steps < 0));
  const nlohmann::json c = rcd_json(short_limit[0], &short_limit[0]);
  CHECK(c["censored_at_limit"] == true);
  CHECK(c["cap"] == capped.cap_limit);

  // Under stop none the gold standard runs to the cap like the others, then on until both are met.
  RelearnOptions none = capped;
  none.stop = "none";
  none.cap_limit = o.steps;
  const std::vector<RelearnResult> n = run(s, none, RelearnMode::sequential, s.starts, {last});
  for (size_t m = 0; m < n.size(); ++m) CHECK(n[m].steps == (m == last ? full[last].steps : none.steps));

  RelearnOptions bad;
  bad.steps = 100;
  bad.cap_limit = 50;
  CHECK_THROWS_WITH_AS(bad.resolve(parse_scenario("random:0.1")), doctest::Contains("--cap-limit = 50: must be >= --steps"),
                       Error);
  RelearnOptions dflt;
  dflt.steps = 40;
  dflt.resolve(parse_scenario("random:0.1"));
  CHECK(dflt.cap_limit == 320);
}

namespace {
// A result that met the loss target at `loss` (−1: not within `steps`), the accuracy target at 10.
RelearnResult result(int64_t loss, int64_t steps, double auc, bool extended = false) {
  RelearnResult r;
  r.loss_steps = loss;
  r.accuracy_steps = 10;
  r.loss_auc = auc;
  r.steps = steps;
  r.cap = steps;
  r.extended = extended;
  return r;
}
}  // namespace

TEST_CASE("relearn: RCD records divide by the retrained model's, and say which ratios are bounds") {
  const RelearnResult exact = result(30, 30, 2), censored = result(-1, 300, 9);
  const RelearnResult gold = result(120, 120, 8, true), gold_censored = result(-1, 2400, 16, true);
  // Both measured: exact.
  nlohmann::json j = rcd_json(exact, &gold);
  CHECK(j["normalized"]["loss"].get<double>() == doctest::Approx(0.25));
  CHECK(j["bound"]["loss"] == "exact");
  CHECK(j["normalized"]["loss_auc"].get<double>() == doctest::Approx(0.25));
  CHECK(j["bound"]["loss_auc"] == "exact");
  CHECK(j["normalized"]["accuracy"] == 1.0);
  CHECK(j["accuracy_censored"] == false);
  CHECK(rcd_ratio_text(j, "loss") == "0.25");
  // This model censored at its cap, the gold standard measured: at least.
  j = rcd_json(censored, &gold);
  CHECK(j["loss_steps"] == 300);
  CHECK(j["loss_censored"] == true);
  CHECK(j["normalized"]["loss"].get<double>() == doctest::Approx(2.5));
  CHECK(j["bound"]["loss"] == "at_least");
  CHECK(j["bound"]["loss_auc"] == "at_least");  // the area up to the cap: a lower bound too
  CHECK(rcd_ratio_text(j, "loss") == "≥2.50");
  CHECK(rcd_figure_text(j, "loss") == "≥300");
  // This model measured, the gold standard censored even at cap_limit: at most.
  j = rcd_json(exact, &gold_censored);
  CHECK(j["normalized"]["loss"].get<double>() == doctest::Approx(30.0 / 2400));
  CHECK(j["bound"]["loss"] == "at_most");
  CHECK(rcd_ratio_text(j, "loss") == "≤0.01");
  CHECK(j["bound"]["accuracy"] == "exact");
  // Both censored: no number.
  j = rcd_json(censored, &gold_censored);
  CHECK(j["normalized"]["loss"].is_null());
  CHECK(j["bound"]["loss"] == "none");
  CHECK(rcd_ratio_text(j, "loss") == "n/a");
  // The gold standard's own record.
  j = rcd_json(gold_censored, &gold_censored);
  CHECK(j["cap"] == 2400);
  CHECK(j["extended"] == true);
  CHECK(j["censored_at_limit"] == true);
  CHECK(j["bound"]["loss"] == "none");
  CHECK(j["bound"]["accuracy"] == "exact");
  // 0 steps is exactly 0 whatever the denominator; a denominator of 0, or none at all, gives none.
  CHECK(rcd_json(result(0, 0, 0), &gold_censored)["bound"]["loss"] == "exact");
  CHECK(rcd_json(result(0, 0, 0), &gold_censored)["normalized"]["loss"] == 0.0);
  const RelearnResult instant = result(0, 0, 0);
  j = rcd_json(exact, &instant);
  CHECK(j["normalized"]["loss"].is_null());
  CHECK(j["bound"]["loss"] == "none");
  j = rcd_json(exact, nullptr);
  CHECK(j["normalized"]["loss"].is_null());
  CHECK(j["bound"]["accuracy"] == "none");
}

TEST_CASE("relearn: a diverged model's unmet targets are no delay") {
  RelearnResult diverged = result(-1, 17, 5.5);
  diverged.diverged = true;
  const RelearnResult gold = result(120, 120, 8, true);
  const nlohmann::json j = rcd_json(diverged, &gold);
  CHECK(j["diverged"] == true);
  CHECK(j["loss_steps"].is_null());  // not met before the divergence: no step, not the cap
  CHECK(j["loss_censored"] == false);
  CHECK(j["loss_auc"].is_null());
  CHECK(j["accuracy_steps"] == 10);  // met before it diverged: a measured step
  CHECK(j["steps_run"] == 17);
  CHECK(j["normalized"]["loss"].is_null());
  CHECK(j["bound"]["loss"] == "none");
  CHECK(j["bound"]["loss_auc"] == "none");
  CHECK(j["normalized"]["accuracy"].get<double>() == doctest::Approx(1));
  CHECK(rcd_figure_text(j, "loss") == "diverged");
  CHECK(rcd_figure_text(j, "loss_auc") == "diverged");
  CHECK(rcd_figure_text(j, "accuracy") == "10");
  CHECK(rcd_ratio_text(j, "loss") == "n/a");
}

TEST_CASE("relearn: the loss AUC is the area of the forget loss above its target, up to the crossing") {
  RelearnResult r;
  r.curve = {{0, 0, 3, 0}, {5, 0, 2, 0}, {10, 0, 1, 0}, {15, 0, 0.5, 0}};
  r.loss_steps = 10;
  // Target 1: excess 2, 1, 0 at steps 0, 5, 10: trapezoids 7.5 + 2.5; the point at 15 is past the crossing.
  CHECK(loss_auc(r, 1) == doctest::Approx(10));
  r.loss_steps = -1;  // never met: the whole curve counts, the excess clipped at 0
  CHECK(loss_auc(r, 1) == doctest::Approx(10));
  CHECK(loss_auc(r, 0.5) == doctest::Approx(10 + 5 + 1.25));
  CHECK(std::isnan(loss_auc(r, kUnset)));
}

TEST_CASE("relearn: options, presets and data") {
  const Scenario random = parse_scenario("random:0.1"), cls = parse_scenario("class:0");
  RelearnOptions o;
  o.resolve(random);
  CHECK(o.optimizer == "sgd");
  CHECK(o.lr == 0.05);
  CHECK(o.eval_every == 5);
  CHECK(o.batch == 128);
  CHECK(o.stop == "all");
  RelearnOptions c;
  c.resolve(cls);
  CHECK(c.lr == 0.01);
  CHECK(c.eval_every == 1);

  RelearnOptions g;
  g.preset = "golatkar";
  g.resolve(random);
  CHECK(g.batch == 500);
  CHECK(g.retain_samples == 1);
  CHECK(g.stop == "loss");
  RelearnOptions a;
  a.preset = "ain";
  a.lr = 2e-4;  // explicit fields win over the preset
  a.resolve(random);
  CHECK(a.optimizer == "adam");
  CHECK(a.lr == 2e-4);
  CHECK(a.accuracy_ratio == 0.95);
  CHECK(a.headline == "accuracy");
  CHECK(relearn_targets(a, {0.8, 0.5}).accuracy == doctest::Approx(0.76));

  for (auto bad : {+[](RelearnOptions& x) { x.preset = "other"; }, +[](RelearnOptions& x) { x.optimizer = "rmsprop"; },
                   +[](RelearnOptions& x) { x.lr = -1; }, +[](RelearnOptions& x) { x.bn = "half"; },
                   +[](RelearnOptions& x) { x.stop = "soon"; }, +[](RelearnOptions& x) { x.accuracy_ratio = 1.5; }}) {
    RelearnOptions x;
    bad(x);
    CHECK_THROWS_AS(x.resolve(random), Error);
  }
  // The relearning data's defaults: random forget only, class-wise (and backdoor) 1:1 with retain samples.
  CHECK(o.retain_mix == 0);
  CHECK(c.retain_mix == 0.5);
  CHECK(o.target_set == "forget");
  CHECK(c.target_set == "forget");
  CHECK(g.retain_mix == 0);  // golatkar: the whole training set instead
  RelearnOptions b;
  b.resolve(parse_scenario("backdoor:0.05"));
  CHECK(b.retain_mix == 0.5);
  RelearnOptions explicit_retain;
  explicit_retain.retain_samples = 0;  // an explicit --retain-samples decides the retain part
  explicit_retain.resolve(cls);
  CHECK(explicit_retain.retain_mix == 0);
  // ain on a class-wise scenario measures the forgotten class on its held-out test images.
  RelearnOptions ac;
  ac.preset = "ain";
  ac.resolve(cls);
  CHECK(ac.target_set == "class-test");
  CHECK(ac.batch == 256);
  CHECK(ac.lr == 1e-3);
  CHECK(a.target_set == "forget");
  auto error_of = [](RelearnOptions x, const Scenario& sc) {
    try {
      x.resolve(sc);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  RelearnOptions m;
  m.retain_mix = 1.5;
  CHECK(error_of(m, cls).find("--retain-mix = 1.5: must be a fraction in [0, 1]") != std::string::npos);
  m.retain_mix = -0.1;
  CHECK(error_of(m, cls).find("--retain-mix") != std::string::npos);
  m.retain_mix = 0.5;
  m.retain_samples = 10;
  CHECK(error_of(m, cls).find("give one") != std::string::npos);
  RelearnOptions t;
  t.target_set = "class-test";
  CHECK(error_of(t, random).find("--target-set = class-test: needs a class-wise scenario") != std::string::npos);
  t.target_set = "test";
  CHECK(error_of(t, cls).find("--target-set = test: must be forget or class-test") != std::string::npos);

  const Setup s("mlp");
  RelearnOptions d = small_options(5);
  CHECK(s.data(d).train.indices == s.split.forget);
  CHECK(s.data(d).forget.indices == s.split.forget);
  d.forget_samples = 0.5;
  const RelearnData half = s.data(d);
  CHECK(half.train.size() == s.split.forget.size() / 2);
  CHECK(half.forget.indices == s.split.forget);  // always measured on all of it
  CHECK(s.data(d).train.indices == half.train.indices);  // seeded
  d.forget_samples = 7;
  d.retain_samples = 5;
  CHECK(s.data(d).train.size() == 12);
  d.forget_samples = 0;
  d.retain_samples = 1;
  CHECK(s.data(d).train.size() == 160);  // the whole training set
}

TEST_CASE("relearn: class-wise relearning data mixes retain samples, class-test measures the class's test images") {
  const auto train = test::band_task(160, kSize, kClasses), test = test::band_task(60, kSize, kClasses);
  const Scenario cls = parse_scenario("class:1");
  const Split split = make_split(cls, *train, kClasses, 0);
  REQUIRE(split.forget.size() == 40);
  auto data_of = [&](double mix, double forget_samples = 0) {
    RelearnOptions o = small_options(1);
    o.retain_mix = mix;
    o.forget_samples = forget_samples;
    return relearn_data(train, split, o, test);
  };
  auto counts = [&](const RelearnData& d) {  // forget and retain samples among the steps' data
    int64_t f = 0, r = 0;
    for (const int64_t i : d.train.indices) (std::binary_search(split.forget.begin(), split.forget.end(), i) ? f : r)++;
    CHECK(f == d.forget_read);
    CHECK(r == d.retain_read);
    return std::pair<int64_t, int64_t>{f, r};
  };
  CHECK(counts(data_of(0)) == std::pair<int64_t, int64_t>{40, 0});
  CHECK(counts(data_of(0.5)) == std::pair<int64_t, int64_t>{40, 40});     // 1:1
  CHECK(counts(data_of(0.25)) == std::pair<int64_t, int64_t>{40, 13});    // round(40 · 0.25 / 0.75)
  CHECK(counts(data_of(0.75)) == std::pair<int64_t, int64_t>{40, 120});   // 40 · 3: all of the retain set
  CHECK(counts(data_of(0.5, 0.5)) == std::pair<int64_t, int64_t>{20, 20});  // of the forget samples the steps read
  CHECK(counts(data_of(1)) == std::pair<int64_t, int64_t>{0, 40});        // the control: retain samples only
  // Seeded, and a smaller share draws a subset of a larger one's retain samples.
  CHECK(data_of(0.5).train.indices == data_of(0.5).train.indices);
  const RelearnData quarter = data_of(0.25), half = data_of(0.5);
  CHECK(std::includes(half.train.indices.begin(), half.train.indices.end(), quarter.train.indices.begin(),
                      quarter.train.indices.end()));
  // The default for class-wise: 1:1.
  RelearnOptions dflt;
  dflt.resolve(cls);
  CHECK(counts(relearn_data(train, split, dflt, test)) == std::pair<int64_t, int64_t>{40, 40});

  // class-test: exactly the test set's images of class 1, and the loop measures the models on them.
  RelearnOptions o = small_options(1);
  o.target_set = "class-test";
  const RelearnData d = relearn_data(train, split, o, test);
  CHECK(d.forget.base == test);
  std::vector<int64_t> class_images;
  for (int64_t i = 1; i < 60; i += kClasses) class_images.push_back(i);
  CHECK(d.forget.indices == class_images);
  CHECK(d.train.size() == 40);  // the steps still read the forget set
  CHECK(relearn_data_json(d, o)["target_set"] == "class-test");
  CHECK(relearn_data_json(d, o)["target_samples"] == 15);
  const nn::ModelSpec spec{"mlp", 1, kSize, kClasses};
  nn::Model model(spec, 5, Device::cpu());
  const ForgetMetrics on_class = forget_metrics(model, d.forget, data::fashion_mnist_normalization(), o);
  const ForgetMetrics on_forget =
      forget_metrics(model, {train, split.forget}, data::fashion_mnist_normalization(), o);
  CHECK(on_class.loss != on_forget.loss);
  o.stop = "none";
  o.steps = 2;
  const std::vector<RelearnResult> r = relearn(spec, {model.net().state_dict()}, d, data::fashion_mnist_normalization(), o,
                                               relearn_targets(o, on_class), Device::cpu());
  CHECK(r[0].curve.front().forget_accuracy == on_class.accuracy);
  CHECK(r[0].curve.front().forget_loss == on_class.loss);
  // Errors: no test set given; not a class-wise split.
  CHECK_THROWS_WITH_AS(relearn_data(train, split, o), doctest::Contains("no test set"), Error);
  const Split random_split = make_split(parse_scenario("random:0.25"), *train, kClasses, 0);
  CHECK_THROWS_WITH_AS(relearn_data(train, random_split, o, test), doctest::Contains("needs a class-wise scenario"), Error);
}

TEST_CASE("relearn: an observer sees every step of every model up to its stop, and changes no result") {
  const Setup s("cnn-s");
  const RelearnOptions o = small_options(5);
  // Observing evaluates every step: the same as eval_every 1. (On this 40-sample forget set the
  // accuracy moves in steps of 2.5 points and one cnn-s meets its target for a step or two inside a
  // 5-step bracket, then falls back: the one case bracketing does not see, README "Relearning".)
  const std::vector<RelearnResult> plain = run(s, small_options(1), RelearnMode::batched, s.starts);
  std::vector<std::vector<int64_t>> seen(s.starts.size());
  const std::vector<RelearnResult> observed =
      relearn(s.spec, s.starts, s.data(o), data::fashion_mnist_normalization(), o, targets(), Device::cpu(),
              RelearnMode::batched, {}, [&](size_t model, int64_t step, const NamedTensors& params) {
                CHECK(params.size() == 8);  // cnn-s's parameter tensors, no buffers
                seen.at(model).push_back(step);
              });
  for (size_t m = 0; m < s.starts.size(); ++m) {
    CAPTURE(m);
    check_same_result(plain[m], observed[m], false);
    REQUIRE(static_cast<int64_t>(seen[m].size()) == observed[m].steps + 1);
    for (size_t i = 0; i < seen[m].size(); ++i) CHECK(seen[m][i] == static_cast<int64_t>(i));
  }
}

TEST_CASE("relearn: a label outside the model's classes is an error before the first step") {
  // The steps skip the per-batch label check (under a CUDA graph it cannot run): relearn() checks
  // the whole data set once instead.
  const Setup s("mlp");
  auto bad = std::make_shared<data::Dataset>(*s.train);
  bad->labels = bad->labels.clone();
  bad->labels.narrow(0, s.split.forget.front(), 1).fill_(kClasses);
  RelearnOptions o = small_options(1);
  const RelearnData d = relearn_data(bad, s.split, o);
  CHECK_THROWS_WITH_AS(relearn(s.spec, s.starts, d, data::fashion_mnist_normalization(), o, targets(), Device::cpu()),
                       doctest::Contains("has label 4, outside [0, 4) of the model"), Error);
}

TEST_CASE("relearn: the calibration-matched RCD sees through a model that is only under-confident") {
  // A trained model, and the same model with its last layer halved: every logit exactly halved
  // (a power of two), so the same predictions, a higher forget loss, and — at the temperature
  // fitted on held-out data — the same calibrated forget loss. The plain loss RCD counts steps for
  // the halved model; the calibrated one does not.
  const Setup s("mlp");
  RelearnOptions o = small_options(1);
  o.stop = "none";
  o.steps = 40;
  const NamedTensors trained = run(s, o, RelearnMode::sequential, {s.starts[0]})[0].final_state;
  NamedTensors halved;
  for (const auto& [name, t] : trained) halved.emplace_back(name, name.rfind("fc3.", 0) == 0 ? t * 0.5 : t.clone());

  o = small_options(1);
  o.calibration_samples = 64;
  // Held-out data the model gets partly wrong (every third label moved on by one), so the fitted
  // temperature is an interior optimum, not the search's bound.
  auto noisy = std::make_shared<data::Dataset>(*test::band_task(96, kSize, kClasses));
  noisy->labels = noisy->labels.clone();
  int64_t* l = noisy->labels.data<int64_t>();
  for (int64_t i = 0; i < noisy->labels.numel(); i += 3) l[i] = (l[i] + 1) % kClasses;
  const std::shared_ptr<const data::Dataset> test = noisy;
  const RelearnData d = relearn_data(s.train, s.split, o, test);
  REQUIRE(d.heldout.size() == 64);
  nn::Model original(s.spec, 0, Device::cpu());
  original.net().load_state_dict(trained);
  const ForgetMetrics m = forget_metrics(original, d.forget, data::fashion_mnist_normalization(), o, d.heldout);
  REQUIRE(std::isfinite(m.calibrated_loss));
  const RelearnTargets t = relearn_targets(o, m);
  CHECK(t.calibrated_loss == m.calibrated_loss);

  const std::vector<RelearnResult> r =
      relearn(s.spec, {trained, halved}, d, data::fashion_mnist_normalization(), o, t, Device::cpu());
  CHECK(r[0].loss_steps == 0);
  CHECK(r[0].calibrated_loss_steps == 0);
  const RelearnPoint& start = r[1].curve.front();
  CHECK(start.forget_accuracy == r[0].curve.front().forget_accuracy);  // the same predictions
  CHECK(start.forget_loss > t.loss + 0.05);                             // less confident
  CHECK(start.temperature == doctest::Approx(r[0].curve.front().temperature * 0.5).epsilon(1e-6));
  CHECK(start.calibrated_loss == doctest::Approx(t.calibrated_loss).epsilon(1e-9));
  CHECK(r[1].loss_steps > 0);
  CHECK(r[1].calibrated_loss_steps >= 0);
  CHECK(r[1].calibrated_loss_steps <= 1);  // met at once, or one step later for a rounding hair
  CHECK(r[1].calibrated_loss_steps < r[1].loss_steps);
  // The record carries it, with its ratio; the curve the held-out loss and membership gap.
  const nlohmann::json j = rcd_json(r[1], &r[0]);
  CHECK(j.at("calibrated_loss_steps") == r[1].calibrated_loss_steps);
  CHECK(curve_json(r[1]).front().at("membership_gap").get<double>() ==
        doctest::Approx(start.heldout_loss - start.forget_loss));

  // Batched gives bitwise the one-by-one results, calibrated figures included.
  const std::vector<RelearnResult> b =
      relearn(s.spec, {trained, halved}, d, data::fashion_mnist_normalization(), o, t, Device::cpu(), RelearnMode::batched);
  for (size_t k = 0; k < 2; ++k) {
    CHECK(b[k].calibrated_loss_steps == r[k].calibrated_loss_steps);
    CHECK(b[k].curve.back().calibrated_loss == r[k].curve.back().calibrated_loss);
  }

  RelearnOptions bad = small_options(1);
  bad.calibration_samples = -1;
  CHECK_THROWS_WITH_AS(bad.resolve(parse_scenario("random:0.25")), doctest::Contains("--calibration-samples = -1"), Error);
  RelearnOptions none = small_options(1);
  none.calibration_samples = 8;
  CHECK_THROWS_WITH_AS(relearn_data(s.train, s.split, none), doctest::Contains("no test set"), Error);
}
