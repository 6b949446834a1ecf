// lethe-bench-train-step: times training steps of the WORKLOADS.md `cnn-s` built from raw ops
// (conv2d, relu, max_pool2d, linear, cross_entropy; parameters in one ParamArena) at batch 128 on
// random data: zero_grad, forward, loss, backward, SGD (momentum 0.9, coupled weight decay 5e-4,
// as separate elementwise ops, not the fused nn/optim.h step). Prints the median ms/step;
// --profile adds a per-op breakdown (forward ops timed around each call, backward nodes timed by
// wrapping the recorded graph), from separate profiled steps so the timers never touch the
// plain ones. Its PyTorch counterpart is
// bench/torch_train_step.py; run the two alternately on a quiet machine and compare medians.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <unordered_map>

#include "bench/harness.h"
#include "engine/arena.h"
#include "engine/autograd.h"
#include "kernels/cpu/blas.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"

using namespace lethe;

namespace {

using Clock = std::chrono::steady_clock;
using bench::median, bench::ms_since;

// Milliseconds per named phase: summed within a step, one value per step kept for the medians.
class Profile {
 public:
  void add(const std::string& name, double ms) {
    if (!series_.contains(name)) order_.push_back(name);
    series_[name];  // seen
    step_[name] += ms;
  }
  void end_step() {
    for (const auto& [name, ms] : step_) series_[name].push_back(ms);
    step_.clear();
  }
  template <class F>
  auto time(const std::string& name, F&& f) {
    const auto t0 = Clock::now();
    auto result = f();
    add(name, ms_since(t0));
    return result;
  }
  // Names in first-seen order with their median ms/step.
  std::vector<std::pair<std::string, double>> medians() const {
    std::vector<std::pair<std::string, double>> out;
    for (const std::string& name : order_) out.emplace_back(name, median(series_.at(name)));
    return out;
  }

 private:
  std::vector<std::string> order_;
  std::map<std::string, double> step_;
  std::map<std::string, std::vector<double>> series_;
};

// A recorded backward node with a timer around it; the original keeps its saved tensors.
struct TimedNode final : autograd::Node {
  std::shared_ptr<autograd::Node> inner;
  Profile* profile = nullptr;
  std::vector<Tensor> apply(const Tensor& g, autograd::Needs needs) override {
    const auto t0 = Clock::now();
    std::vector<Tensor> grads = inner->apply(g, needs);
    profile->add(name + " bwd", ms_since(t0));
    return grads;
  }
  void release() override { inner->release(); }
};

// Replaces the graph behind `root` by timed copies of its nodes (same edges, same order).
void instrument(const Tensor& root, Profile& profile) {
  std::unordered_map<autograd::Node*, std::shared_ptr<TimedNode>> timed;
  std::vector<std::shared_ptr<autograd::Node>> todo{root.grad_fn()};
  while (!todo.empty()) {
    std::shared_ptr<autograd::Node> node = todo.back();
    todo.pop_back();
    if (timed.contains(node.get())) continue;
    auto t = std::make_shared<TimedNode>();
    t->inner = node;
    t->profile = &profile;
    t->name = node->name;
    t->next = node->next;
    timed[node.get()] = t;
    for (const autograd::Edge& e : node->next)
      if (e.fn) todo.push_back(e.fn);
  }
  for (auto& [node, t] : timed)
    for (autograd::Edge& e : t->next)
      if (e.fn) e.fn = timed.at(e.fn.get());
  root.impl().grad_fn = timed.at(root.grad_fn().get());
}

// U(−1/√fan_in, 1/√fan_in) (PyTorch's default for both weights and biases), as a trainable leaf.
Tensor param(const Shape& shape, int64_t fan_in, uint64_t stream) {
  const double bound = 1 / std::sqrt(static_cast<double>(fan_in));
  Tensor t = sub(mul(Tensor::rand(shape, /*seed=*/0, stream), 2 * bound), bound);
  t.set_requires_grad();
  return t;
}

struct CnnS {
  std::vector<Tensor> p{
      param({16, 1, 5, 5}, 25, 0),     param({16}, 25, 1),     // conv1
      param({32, 16, 5, 5}, 400, 2),   param({32}, 400, 3),    // conv2
      param({128, 1568}, 1568, 4),     param({128}, 1568, 5),  // fc1
      param({10, 128}, 128, 6),        param({10}, 128, 7),    // fc2
  };

  // Logits [N,10]; each op timed into `prof` when it is given.
  Tensor forward(const Tensor& x, Profile* prof) const {
    auto op = [prof](const char* name, auto&& f) { return prof ? prof->time(name, f) : f(); };
    Conv2dOptions same;
    same.pad_h = same.pad_w = 2;
    const Pool2dOptions pool2;
    Tensor h = op("conv1", [&] { return conv2d(x, p[0], p[1], same); });
    h = op("relu1", [&] { return relu(h); });
    h = op("pool1", [&] { return max_pool2d(h, pool2); });
    h = op("conv2", [&] { return conv2d(h, p[2], p[3], same); });
    h = op("relu2", [&] { return relu(h); });
    h = op("pool2", [&] { return max_pool2d(h, pool2); });
    h = op("flatten", [&] { return h.flatten(1); });
    h = op("fc1", [&] { return linear(h, p[4], p[5]); });
    h = op("relu3", [&] { return relu(h); });
    return op("fc2", [&] { return linear(h, p[6], p[7]); });
  }
};

// SGD as separate ops over the whole arena: v = μ·v + (g + λ·θ); θ −= lr·v.
void sgd_step(const ParamArena& arena, Tensor& velocity, double lr, double momentum, double decay) {
  NoGradGuard no_grad;
  Tensor theta = arena.data();
  velocity.copy_(add(mul(velocity, momentum), add(arena.grad(0), mul(theta, decay))));
  theta.add_(velocity, -lr);
}

int run(int argc, char** argv) {
  CLI::App app{"lethe-bench-train-step: ms per cnn-s training step (forward, backward, SGD) on the CPU"};
  int threads = 2, batch = 128, steps = 50, warmup = 10;
  bool profile = false;
  app.add_option("--threads", threads, "CPU threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_flag("--profile", profile, "also time each op (in as many separate steps)");
  CLI11_PARSE(app, argc, argv);

  set_num_threads(threads);
  CnnS model;
  ParamArena arena(model.p);
  Tensor velocity = Tensor::zeros({arena.size()});
  const Tensor x = Tensor::randn({batch, 1, 28, 28}, /*seed=*/1);
  const Tensor labels = mul(Tensor::rand({batch}, /*seed=*/2), 10).to(DType::i64);

  double last_loss = 0;
  auto step = [&](Profile* prof) {
    auto phase = [prof](const char* name, auto&& f) {
      const auto t0 = Clock::now();
      f();
      if (prof) prof->add(name, ms_since(t0));
    };
    Tensor loss;
    phase("zero_grad", [&] { arena.zero_grad(0); });
    phase("forward", [&] {
      const Tensor logits = model.forward(x, prof);
      loss = prof ? prof->time("cross_entropy", [&] { return cross_entropy(logits, labels); })
                  : cross_entropy(logits, labels);
    });
    if (prof) instrument(loss, *prof);
    phase("backward", [&] { loss.backward(); });
    phase("sgd", [&] { sgd_step(arena, velocity, 0.05, 0.9, 5e-4); });
    last_loss = loss.item();
  };

  for (int i = 0; i < warmup; ++i) step(nullptr);
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    step(nullptr);
    times.push_back(ms_since(t0));
  }
  fmt::print("lethe: cnn-s train step, batch {}, {} threads, sgemm {}: median {:.3f} ms/step, min {:.3f} ms "
             "({} steps; last loss {:.9g})\n",
             batch, threads, blas::sgemm_name(), median(times), *std::min_element(times.begin(), times.end()),
             steps, last_loss);

  if (profile) {
    Profile prof;
    for (int i = 0; i < steps; ++i) {
      step(&prof);
      prof.end_step();
    }
    fmt::print("per-op median ms/step over {} profiled steps (forward ops, then backward nodes in run order; "
               "zero_grad/forward/backward/sgd are the phase totals):\n", steps);
    for (const auto& [name, ms] : prof.medians()) fmt::print("  {:<18} {:8.3f}\n", name, ms);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lethe::bench::run_main("lethe-bench-train-step", run, argc, argv);
}
