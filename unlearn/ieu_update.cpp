#include "unlearn/ieu_update.h"

#include <algorithm>
#include <cmath>

#include "engine/layout.h"
#include "kernels/elementwise.h"
#include "kernels/ieu.h"
#include "nn/optim.h"

namespace lethe::unlearn {

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;

bool non_negative(double x) { return std::isfinite(x) && x >= 0; }

void check_hyperparameters(const std::string& op, double lr, double alpha, double weight_decay, double sigma) {
  LETHE_CHECK(non_negative(lr), op, "learning rate must be finite and non-negative, got ", lr);
  LETHE_CHECK(std::isfinite(alpha), op, "alpha must be finite, got ", alpha);
  LETHE_CHECK(non_negative(weight_decay), op, "weight decay must be finite and non-negative, got ", weight_decay);
  LETHE_CHECK(non_negative(sigma), op, "sigma must be finite and non-negative, got ", sigma);
}

void check_config(const char* op, const IeuConfig& c) {
  LETHE_CHECK(non_negative(c.momentum), op, "momentum must be finite and non-negative, got ", c.momentum);
  LETHE_CHECK(!std::isnan(c.forget_loss_cap), op, "the forget-loss cap is NaN");
}

void check_operands(const char* op, const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                    const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss, const IeuConfig& c) {
  check_config(op, c);
  LETHE_CHECK(params.defined() && is_floating(params.dtype()) && params.is_contiguous(), op,
              "params must be a contiguous floating tensor, got ", params.str());
  const Device device = params.device();
  const auto check_like_params = [&](const char* name, const Tensor& t) {
    LETHE_CHECK(t.defined() && t.dtype() == params.dtype() && t.shape() == params.shape() && t.device() == device &&
                    t.is_contiguous(),
                op, name, " is ", t.str(), ", expected a contiguous ", dtype_name(params.dtype()),
                params.shape().str(), " on ", device.str(), " like params");
  };
  check_like_params("grad_retain", grad_retain);
  if (grad_forget.defined()) check_like_params("grad_forget", grad_forget);
  if (c.momentum != 0) check_like_params("momentum", momentum);
  LETHE_CHECK(c.momentum != 0 || !momentum.defined(), op, "a momentum buffer was given, but momentum is 0");
  LETHE_CHECK(scalars.defined() && scalars.dtype() == DType::f64 && scalars.shape() == Shape{ieu::kScalars} &&
                  scalars.is_contiguous() && scalars.device() == device,
              op, "scalars is ", scalars.str(), ", expected float64[", ieu::kScalars, "] on ", device.str());
  LETHE_CHECK(!forget_loss.defined() || (is_floating(forget_loss.dtype()) && forget_loss.numel() == 1 &&
                                         forget_loss.dim() <= 1 && forget_loss.device() == device),
              op, "forget_loss is ", forget_loss.str(), ", expected one float32 or float64 element ([] or [1]) on ",
              device.str());
  params.check_writable(op);
  if (momentum.defined()) momentum.check_writable(op);
}

}  // namespace

void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget, const Tensor& momentum,
                const Tensor& scalars, const Tensor& forget_loss, const IeuConfig& config) {
  check_operands("ieu_update", params, grad_retain, grad_forget, momentum, scalars, forget_loss, config);
  LETHE_DISPATCH(params.device(), ieu_update, params, grad_retain, grad_forget, momentum, scalars, forget_loss,
                 config);
}

void ieu_update_reference(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                          const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,
                          const IeuConfig& config) {
  check_operands("ieu_update_reference", params, grad_retain, grad_forget, momentum, scalars, forget_loss, config);
  std::vector<double> s = scalars.to_vector<double>();
  if (forget_loss.defined()) {
    const double loss = forget_loss.item();  // a float32 loss widens exactly, as in the kernels
    ieu::advance(s.data(), &loss, config.forget_loss_cap);
  } else {
    ieu::advance(s.data(), static_cast<const double*>(nullptr), config.forget_loss_cap);
  }
  Tensor(scalars).copy_(Tensor::from_vector(s, {ieu::kScalars}));

  // Flat views, so every binary operand is read as one run of elements.
  const Device device = params.device();
  const Shape flat{params.numel()};
  const auto unary = [&](UnaryOp op, const Tensor& x, const Tensor& y, double a) {
    LETHE_DISPATCH(device, unary, op, x.view(flat), y.view(flat), UnaryParams{a, 0});
  };
  const auto binary = [&](BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    const Tensor fa = a.view(flat), fb = b.view(flat);
    LETHE_DISPATCH(device, binary, op, fa, layout_of(fa), fb, layout_of(fb), out.view(flat));
  };
  const double lr = s[ieu::kLr], sigma = s[ieu::kSigma];
  const Tensor tmp = Tensor::empty(params.shape(), params.dtype(), device);
  Tensor g = grad_retain;
  if (grad_forget.defined()) {
    unary(UnaryOp::mul_scalar, grad_forget, tmp, s[ieu::kAlphaEffective]);  // α_eff·g_f
    binary(BinaryOp::sub, grad_retain, tmp, tmp);                            // g = g_r − α_eff·g_f
    g = tmp;
  }
  if (momentum.defined()) {
    unary(UnaryOp::mul_scalar, momentum, momentum, config.momentum);  // μ·v
    binary(BinaryOp::add, momentum, g, momentum);                     // v = μ·v + g
    g = momentum;
  }
  unary(UnaryOp::mul_scalar, params, params, 1 - lr * s[ieu::kWeightDecay]);  // θ·(1 − η·λ)
  unary(UnaryOp::mul_scalar, g, tmp, lr);                                      // η·g
  binary(BinaryOp::sub, params, tmp, params);                                  // θ·(1 − η·λ) − η·g
  if (sigma != 0) {
    const uint64_t stream = kIeuNoiseStream + static_cast<uint64_t>(s[ieu::kStep]);
    const Tensor noise = Tensor::randn(params.shape(), config.seed, stream, params.dtype(), device);
    unary(UnaryOp::mul_scalar, noise, noise, sigma);  // σ·ξ
    binary(BinaryOp::add, params, noise, params);     // + σ·ξ
  }
}

IeuUpdate::IeuUpdate(const ParamArena& arena, const IeuOptions& o)
    : arena_(arena), config_{o.momentum, o.forget_loss_cap, o.seed} {
  LETHE_CHECK(arena.size() > 0, "ieu", "the arena holds no parameter elements");
  check_config("ieu", config_);
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
