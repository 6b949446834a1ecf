// The trajectory log: exact norms and distances on hand-computable weights, the recording rules
// (every, force, append), clear errors, every method's observation hook, and byte-identical logs
// of identical runs.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "harness.h"
#include "nn/data/fashion_mnist.h"
#include "temp_dir.h"
#include "unlearn/method.h"
#include "unlearn/metrics.h"
#include "unlearn/trajectory.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t count(const std::string& text, const std::string& what) {
  int64_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// ‖w‖ = 5, ‖b‖ = 12, together 13.
NamedTensors weights() {
  return {{"w", Tensor::from_vector(std::vector<float>{3, 4}, {2})},
          {"b", Tensor::from_vector(std::vector<float>{0, 0, 12}, {3, 1})}};
}

// A tiny separable task (tests/harness.h) and an untrained MLP "original".
constexpr int64_t kSize = 8, kClasses = 4;

std::shared_ptr<const data::Dataset> task(int64_t n = 160) { return test::band_task(n, kSize, kClasses); }

nn::Checkpoint original_checkpoint() {
  nn::Checkpoint c;
  c.info.model = {"mlp", 1, kSize, kClasses};
  c.info.seed = 3;
  nn::Recipe r;
  r.epochs = 1;
  r.batch = 32;
  c.info.recipe = r;
  c.model_state = nn::Model(c.info.model, c.info.seed, Device::cpu()).net().state_dict();
  return c;
}

// Runs `name` for a few steps with `observe`; returns the unlearned model's parameters.
NamedTensors run_method(const std::string& name, const MethodRun::Observe& observe, int64_t steps = 4) {
  const auto train = task();
  const Split split = make_split(parse_scenario("random:0.25"), *train, kClasses, 0);
  const nn::Checkpoint original = original_checkpoint();
  const Method& method = find_method(name);
  nn::Model m = nn::load_model(original, Device::cpu(), method.grad_buffers);
  MethodOptions options;
  options.steps = steps;
  options.batch = 16;
  options.resolve(split.scenario);
  MethodRun run{m, original, train, split, data::fashion_mnist_normalization(), options, {}, observe};
  method.run(run);
  return snapshot(m.net().named_parameters());
}

}  // namespace

TEST_CASE("trajectory: norms and distances are exact on hand-computable weights") {
  test::TempDir dir;
  TrajectoryReferences refs;
  refs.start = {{"w", Tensor::zeros({2})}, {"b", Tensor::zeros({3, 1})}};
  // float64 references: ‖w − o_w‖ = 3, ‖b − o_b‖ = 4, together 5.
  refs.original = {{"w", Tensor::from_vector(std::vector<double>{3, 1}, {2})},
                   {"b", Tensor::from_vector(std::vector<double>{0, 0, 8}, {3, 1})}};
  TrajectoryLog log(dir.file("t.csv"), refs);
  log.record("ft", "unlearn", 0, weights());
  CHECK(read(dir.file("t.csv")) ==
        "run,phase,step,layer,numel,norm,dist_start,dist_original,dist_retrained\n"
        "ft,unlearn,0,w,2,5,5,3,\n"
        "ft,unlearn,0,b,3,12,12,4,\n"
        "ft,unlearn,0,model,5,13,13,5,\n");
  // Free-text labels are quoted as CSV wants.
  log.record("a,\"b\"", "relearn", 1, weights());
  CHECK(read(dir.file("t.csv")).find("\"a,\"\"b\"\"\",relearn,1,w,2,5,5,3,\n") != std::string::npos);
}

TEST_CASE("trajectory: every, force and append without a second header") {
  test::TempDir dir;
  const std::string path = dir.file("t.csv");
  {
    TrajectoryLog log(path, {}, 2);
    for (int64_t step = 0; step <= 4; ++step) log.record("ft", "unlearn", step, weights(), step == 3);
  }
  std::string text = read(path);
  CHECK(count(text, ",model,") == 4);  // steps 0, 2, 4 and the forced 3
  CHECK(count(text, "ft,unlearn,1,") == 0);
  CHECK(count(text, "ft,unlearn,3,model,5,13,,,\n") == 1);
  {
    TrajectoryLog log(path, {}, 1, true);
    log.record("ft", "relearn", 0, weights());
  }
  text = read(path);
  CHECK(count(text, "run,phase") == 1);
  CHECK(text.rfind("ft,relearn,0,model,5,13,,,\n") == text.size() - std::string("ft,relearn,0,model,5,13,,,\n").size());
  // Logs sharing one file (one per model of a batched run) interleave whole records.
  {
    TrajectoryLog a(dir.file("shared.csv"), {}), b(dir.file("shared.csv"), {}, 1, true);
    a.record("a", "relearn", 0, weights());
    b.record("b", "relearn", 0, weights());
    a.record("a", "relearn", 1, weights());
  }
  const std::string shared = read(dir.file("shared.csv"));
  CHECK(count(shared, "\n") == 1 + 3 * 3);
  CHECK(shared.find("a,relearn,0,model") < shared.find("b,relearn,0,w"));
  CHECK(shared.find("b,relearn,0,model") < shared.find("a,relearn,1,w"));
  // A fresh file opened for appending gets its header; without append the file starts over.
  TrajectoryLog(dir.file("new.csv"), {}, 1, true).record("x", "unlearn", 0, weights());
  CHECK(read(dir.file("new.csv")).rfind("run,phase,step,", 0) == 0);
  TrajectoryLog(path, {}).record("x", "unlearn", 0, weights());
  CHECK(count(read(path), "\n") == 4);
}

TEST_CASE("trajectory: mismatches and unwritable files are clear errors") {
  test::TempDir dir;
  TrajectoryReferences refs;
  refs.retrained = weights();
  TrajectoryLog log(dir.file("t.csv"), refs);
  NamedTensors renamed = weights();
  renamed[1].first = "bias";
  CHECK_THROWS_WITH_AS(log.record("ft", "unlearn", 0, renamed),
                       doctest::Contains("trajectory: parameter 1 is bias[3,1] in the model but b[3,1] in the "
                                         "retrained reference"),
                       Error);
  NamedTensors reshaped = weights();
  reshaped[0].second = Tensor::zeros({1, 2});
  CHECK_THROWS_WITH_AS(log.record("ft", "unlearn", 0, reshaped), doctest::Contains("parameter 0 is w[1,2]"), Error);
  CHECK_THROWS_WITH_AS(log.record("ft", "unlearn", 0, {weights()[0]}),
                       doctest::Contains("the retrained reference has 2 parameter tensors, the model 1"), Error);
  CHECK_THROWS_WITH_AS(log.record("ft", "unlearn", 0, {{"w", Tensor::zeros({2}, DType::i64)}, weights()[1]}),
                       doctest::Contains("only float32 and float64"), Error);
  // A record skipped by `every` is not checked: it costs nothing.
  TrajectoryLog sparse(dir.file("s.csv"), refs, 10);
  CHECK_NOTHROW(sparse.record("ft", "unlearn", 3, renamed));

  std::ofstream(dir.file("file")) << "not a folder";
  CHECK_THROWS_WITH_AS(TrajectoryLog(dir.file("file") + "/t.csv", {}), doctest::Contains("cannot open for writing"),
                       Error);
  std::ofstream(dir.file("other.csv")) << "a,b\n1,2\n";
  CHECK_THROWS_WITH_AS(TrajectoryLog(dir.file("other.csv"), {}, 1, true),
                       doctest::Contains("cannot append: its first line is not the trajectory header"), Error);
  CHECK_THROWS_WITH_AS(TrajectoryLog(dir.file("t.csv"), {}, 0), doctest::Contains("must be at least 1"), Error);
}

TEST_CASE("trajectory: every method observes step 0 and each of its steps") {
  for (const std::string& name : method_names()) {
    CAPTURE(name);
    std::vector<int64_t> steps;
    int64_t last_total = -1;
    run_method(name, [&](int64_t step, int64_t total, const NamedTensors& params) {
      steps.push_back(step);
      last_total = total;
      REQUIRE(params.size() == 6);  // the MLP's three weights and biases
    });
    REQUIRE(!steps.empty());
    CHECK(steps.back() == last_total);
    for (size_t i = 0; i < steps.size(); ++i) CHECK(steps[i] == static_cast<int64_t>(i));
  }
}

TEST_CASE("trajectory: the same unlearning run twice logs byte-identical CSVs") {
  test::TempDir dir;
  const nn::Checkpoint original = original_checkpoint();
  auto logged = [&](const std::string& file) {
    TrajectoryReferences refs;
    refs.original = checkpoint_parameters(original);
    refs.start = refs.original;
    TrajectoryLog log(dir.file(file), refs);
    const NamedTensors end = run_method("ft", [&](int64_t step, int64_t total, const NamedTensors& params) {
      log.record("ft", "unlearn", step, params, step == total);
    });
    return end;
  };
  const NamedTensors end = logged("a.csv");
  logged("b.csv");
  const std::string a = read(dir.file("a.csv"));
  CHECK(a == read(dir.file("b.csv")));
  CHECK(count(a, "\n") == 1 + 5 * 7);  // header, steps 0..4 × (6 tensors + model)
  CHECK(count(a, "ft,unlearn,0,model,") == 1);
  CHECK(a.find("ft,unlearn,0,fc1.weight,") != std::string::npos);
  // The last model row's distance to the original is the report's, bit for bit.
  nn::Model unlearned = nn::load_model(original, Device::cpu());
  unlearned.net().load_state_dict(end);  // the MLP has no buffers
  const double l2 = weight_distances(unlearned.net(), nn::load_model(original, Device::cpu()).net()).back().l2;
  std::stringstream last(a.substr(a.rfind("ft,unlearn,4,model,")));
  std::vector<std::string> fields;
  for (std::string f; std::getline(last, f, ',');) fields.push_back(f);
  REQUIRE(fields.size() == 9);  // the retrained column is blank, and the line ends after its comma
  CHECK(std::stod(fields[6]) == l2);  // dist_start: the run started at the original
  CHECK(std::stod(fields[7]) == l2);
}
