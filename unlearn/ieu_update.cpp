#include "unlearn/ieu_update.h"

#include <cmath>

#include "engine/ops.h"
#include "nn/optim.h"

namespace lethe::unlearn {

Tensor retain_and_forget_gradients(ParamArena& arena, const std::function<void()>& retain_backward,
                                   const std::function<Tensor()>& forget_backward) {
  arena.zero_grad(0);
  arena.zero_grad(1);
  retain_backward();
  arena.bind_grads(1);
  Tensor forget_loss = forget_backward();
  arena.bind_grads(0);
  return forget_loss;
}

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;

bool non_negative(double x) { return std::isfinite(x) && x >= 0; }

void check_hyperparameters(const std::string& op, double lr, double alpha, double weight_decay, double sigma) {
  LETHE_CHECK(non_negative(lr), op, "learning rate must be finite and non-negative, got ", lr);
  LETHE_CHECK(std::isfinite(alpha), op, "alpha must be finite, got ", alpha);
  LETHE_CHECK(non_negative(weight_decay), op, "weight decay must be finite and non-negative, got ", weight_decay);
  LETHE_CHECK(non_negative(sigma), op, "sigma must be finite and non-negative, got ", sigma);
}

}  // namespace

IeuUpdate::IeuUpdate(const ParamArena& arena, const IeuOptions& o)
    : arena_(arena), config_{o.momentum, o.forget_loss_cap, o.seed} {
  LETHE_CHECK(arena.size() > 0, "ieu", "the arena holds no parameter elements");
  LETHE_CHECK(non_negative(o.momentum), "ieu", "momentum must be finite and non-negative, got ", o.momentum);
  LETHE_CHECK(!std::isnan(o.forget_loss_cap), "ieu", "the forget-loss cap is NaN");
  const Tensor& data = arena.data();
  if (o.momentum != 0) momentum_ = Tensor::zeros(data.shape(), data.dtype(), data.device());
  scalars_ = Tensor::zeros({ieu::kScalars}, DType::f64, data.device());
}

void IeuUpdate::set(double lr, double alpha, double weight_decay, double sigma) {
  check_hyperparameters("ieu", lr, alpha, weight_decay, sigma);
  scalars_.narrow(0, ieu::kLr, 1).fill_(lr);
  scalars_.narrow(0, ieu::kAlpha, 1).fill_(alpha);
  scalars_.narrow(0, ieu::kWeightDecay, 1).fill_(weight_decay);
  scalars_.narrow(0, ieu::kSigma, 1).fill_(sigma);
  set_ = true;
}

void IeuUpdate::step(int retain_buffer, int forget_buffer, const Tensor& forget_loss) {
  LETHE_CHECK(set_, "ieu", "set() the learning rate, alpha, weight decay and sigma before the first step");
  const Tensor& g_r = arena_.grad(retain_buffer);
  const Tensor g_f = forget_buffer == -1 ? Tensor() : arena_.grad(forget_buffer);
  ieu_update(arena_.data(), g_r, g_f, momentum_, scalars_, forget_loss, config_);
  ++steps_;
}

NamedList IeuUpdate::state() const {
  NamedList out;
  if (momentum_.defined()) out.emplace_back("momentum_buffer", momentum_);
  out.emplace_back("scalars", scalars_);
  return out;
}

void IeuUpdate::load_state(const NamedList& given) {
  const std::string op = "ieu load_state";
  const NamedList expected = state();
  const std::vector<Tensor> sources = nn::match_state(op, expected, given);
  const std::vector<double> s = sources.back().to_vector<double>();
  check_hyperparameters(op, s[ieu::kLr], s[ieu::kAlpha], s[ieu::kWeightDecay], s[ieu::kSigma]);
  LETHE_CHECK(std::isfinite(s[ieu::kAlphaEffective]), op, "the saved effective alpha is ", s[ieu::kAlphaEffective]);
  const double steps = s[ieu::kStep];
  nn::check_step_count(op, steps);
  for (size_t i = 0; i < expected.size(); ++i) Tensor(expected[i].second).copy_(sources[i]);
  set_ = true;
  steps_ = static_cast<int64_t>(steps);
}

}  // namespace lethe::unlearn
