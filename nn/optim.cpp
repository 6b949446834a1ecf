#include "nn/optim.h"

#include <algorithm>
#include <cmath>

#include "engine/ops.h"

namespace lethe::nn {

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;

std::string names_of(const NamedList& list) {
  std::string s;
  for (const auto& [name, t] : list) s += (s.empty() ? "" : ", ") + name;
  return s.empty() ? "nothing" : s;
}

bool valid_lr(double lr) { return std::isfinite(lr) && lr >= 0; }

}  // namespace

Optimizer::Optimizer(const ParamArena& arena, double lr, int scalar_count, const std::vector<std::string>& buffers)
    : arena_(arena), lr_(lr) {
  LETHE_CHECK(arena.size() > 0, "optimizer", "the arena holds no parameter elements");
  const Tensor& data = arena.data();
  std::vector<double> scalars(scalar_count, 0.0);
  scalars[optim::kLr] = lr;
  scalars_ = Tensor::from_vector(scalars, {scalar_count}, data.device());
  for (const std::string& name : buffers)
    buffers_.emplace_back(name, Tensor::zeros(data.shape(), data.dtype(), data.device()));
}

void Optimizer::set_lr(double lr) {
  LETHE_CHECK(valid_lr(lr), name(), "learning rate must be finite and non-negative, got ", lr);
  scalars_.narrow(0, optim::kLr, 1).fill_(lr);
  lr_ = lr;
}

std::vector<Tensor> match_state(const std::string& op, const NamedList& expected, const NamedList& given) {
  LETHE_CHECK(given.size() == expected.size(), op, "expected the tensors ", names_of(expected), ", got ",
              names_of(given));
  std::vector<Tensor> sources;  // in expected's order
  for (const auto& [name, want] : expected) {
    // (Captured by an init-capture: clang 14 cannot capture a structured binding.)
    const auto it = std::find_if(given.begin(), given.end(), [&n = name](const auto& e) { return e.first == n; });
    LETHE_CHECK(it != given.end(), op, "missing '", name, "' (got ", names_of(given), ")");
    const Tensor& t = it->second;
    LETHE_CHECK(t.defined() && t.dtype() == want.dtype() && t.shape() == want.shape(), op, "'", name, "' is ",
                t.defined() ? t.str() : "undefined", ", expected ", dtype_name(want.dtype()), want.shape().str());
    sources.push_back(t);
  }
  return sources;
}

void check_step_count(const std::string& op, double steps) {
  LETHE_CHECK(steps >= 0 && steps < 0x1p53 && std::floor(steps) == steps, op, "the saved step count is ", steps);
}

NamedList Optimizer::state() const {
  NamedList out = buffers_;
  out.emplace_back("scalars", scalars_);
  return out;
}

void Optimizer::load_state(const NamedList& given) {
  const std::string op = name() + " load_state";
  const NamedList expected = state();
  const std::vector<Tensor> sources = match_state(op, expected, given);
  const std::vector<double> scalars = sources.back().to_vector<double>();
  const double lr = scalars[optim::kLr], steps = scalars[optim::kStep];
  LETHE_CHECK(valid_lr(lr), op, "the saved learning rate is ", lr);
  check_step_count(op, steps);
  for (size_t i = 0; i < expected.size(); ++i) Tensor(expected[i].second).copy_(sources[i]);
  lr_ = lr;
  steps_ = static_cast<int64_t>(steps);
}

namespace {

class Sgd final : public Optimizer {
 public:
  Sgd(const ParamArena& arena, const SgdOptions& o)
      : Optimizer(arena, o.lr, optim::kSgdScalars,
                  o.momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{}),
        config_{o.momentum, o.dampening, o.weight_decay, o.nesterov, o.decoupled_weight_decay} {}

  std::string name() const override { return "sgd"; }

  void step(int grad_buffer) override {
    const Tensor& g = grad(grad_buffer);
    sgd_step(arena_.data(), g, config_.momentum != 0 ? buffer(0) : Tensor(), scalars_, config_);
    count_step();
  }

 private:
  SgdConfig config_;
};

class AdamW final : public Optimizer {
 public:
  AdamW(const ParamArena& arena, const AdamWOptions& o)
      : Optimizer(arena, o.lr, optim::kAdamWScalars, {"exp_avg", "exp_avg_sq"}),
        config_{o.beta1, o.beta2, o.eps, o.weight_decay} {}

  std::string name() const override { return "adamw"; }

  void step(int grad_buffer) override {
    const Tensor& g = grad(grad_buffer);
    adamw_step(arena_.data(), g, buffer(0), buffer(1), scalars_, config_);
    count_step();
  }

 private:
  AdamWConfig config_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const ParamArena& arena, const SgdOptions& o) {
  LETHE_CHECK(valid_lr(o.lr), "sgd", "learning rate must be finite and non-negative, got ", o.lr);
  LETHE_CHECK(std::isfinite(o.momentum) && o.momentum >= 0, "sgd", "momentum must be non-negative, got ", o.momentum);
  LETHE_CHECK(std::isfinite(o.dampening), "sgd", "dampening must be finite, got ", o.dampening);
  LETHE_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "sgd", "weight decay must be non-negative, got ",
              o.weight_decay);
  LETHE_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "sgd",
              "Nesterov momentum needs momentum > 0 and dampening 0, got momentum ", o.momentum, ", dampening ",
              o.dampening);
  return std::make_unique<Sgd>(arena, o);
}

std::unique_ptr<Optimizer> make_adamw(const ParamArena& arena, const AdamWOptions& o) {
  LETHE_CHECK(valid_lr(o.lr), "adamw", "learning rate must be finite and non-negative, got ", o.lr);
  LETHE_CHECK(o.beta1 >= 0 && o.beta1 < 1, "adamw", "beta1 must be in [0, 1), got ", o.beta1);
  LETHE_CHECK(o.beta2 >= 0 && o.beta2 < 1, "adamw", "beta2 must be in [0, 1), got ", o.beta2);
  LETHE_CHECK(std::isfinite(o.eps) && o.eps >= 0, "adamw", "eps must be non-negative, got ", o.eps);
  LETHE_CHECK(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "adamw",
              "weight decay must be non-negative, got ", o.weight_decay);
  return std::make_unique<AdamW>(arena, o);
}

Tensor clip_grad_norm(const ParamArena& arena, int grad_buffer, double max_norm) {
  return lethe::clip_grad_norm(arena.grad(grad_buffer), max_norm);
}

}  // namespace lethe::nn
