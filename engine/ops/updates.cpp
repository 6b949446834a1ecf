// The fused updates: sgd_step, adamw_step, clip_grad_norm and ieu_update. Each checks every
// operand, so its launcher (kernels/optim.h, kernels/ieu.h) only ever sees what it can run, marks
// what it updates as written, and runs the launcher; none records autograd. And the IEU update
// unfused (engine/ops/updates.h), with the op's checks.
#include "engine/ops/updates.h"

#include <cmath>
#include <vector>

#include "engine/layout.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"
#include "kernels/ieu.h"
#include "kernels/optim.h"

namespace lethe {

namespace {

// A tensor the op updates in place as one run of elements.
void check_updated(const char* op, const char* name, const Tensor& t) {
  LETHE_CHECK(t.defined() && is_floating(t.dtype()) && t.is_contiguous(), op, name,
              " must be a contiguous floating tensor, got ", t.str());
}

// An operand read or written element for element alongside params.
void check_like_params(const char* op, const char* name, const Tensor& t, const Tensor& params) {
  LETHE_CHECK(t.defined() && t.dtype() == params.dtype() && t.shape() == params.shape() &&
                  t.device() == params.device() && t.is_contiguous(),
              op, name, " is ", t.str(), ", expected a contiguous ", dtype_name(params.dtype()),
              params.shape().str(), " on ", params.device().str(), " like params");
}

// The momentum buffer is there exactly when the momentum `mu` is not 0.
void check_momentum(const char* op, const Tensor& momentum, double mu, const Tensor& params) {
  if (mu != 0) check_like_params(op, "momentum", momentum, params);
  LETHE_CHECK(mu != 0 || !momentum.defined(), op, "a momentum buffer was given, but momentum is 0");
}

void check_scalars(const char* op, const Tensor& scalars, int64_t count, const Tensor& params) {
  LETHE_CHECK(scalars.defined() && scalars.dtype() == DType::f64 && scalars.shape() == Shape{count} &&
                  scalars.is_contiguous() && scalars.device() == params.device(),
              op, "scalars is ", scalars.str(), ", expected float64[", count, "] on ", params.device().str());
}

void check_ieu_operands(const char* op, const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                        const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,
                        const IeuConfig& config) {
  LETHE_CHECK(std::isfinite(config.momentum) && config.momentum >= 0, op,
              "momentum must be finite and non-negative, got ", config.momentum);
  LETHE_CHECK(!std::isnan(config.forget_loss_cap), op, "the forget-loss cap is NaN");
  check_updated(op, "params", params);
  check_like_params(op, "grad_retain", grad_retain, params);
  if (grad_forget.defined()) check_like_params(op, "grad_forget", grad_forget, params);
  check_momentum(op, momentum, config.momentum, params);
  check_scalars(op, scalars, ieu::kScalars, params);
  LETHE_CHECK(!forget_loss.defined() || (is_floating(forget_loss.dtype()) && forget_loss.numel() == 1 &&
                                         forget_loss.dim() <= 1 && forget_loss.device() == params.device()),
              op, "forget_loss is ", forget_loss.str(), ", expected one float32 or float64 element ([] or [1]) on ",
              params.device().str());
  params.check_writable(op);
  if (momentum.defined()) momentum.check_writable(op);
}

}  // namespace

void sgd_step(const Tensor& params, const Tensor& grad, const Tensor& momentum, const Tensor& scalars,
              const SgdConfig& config) {
  const char* op = "sgd_step";
  check_updated(op, "params", params);
  check_like_params(op, "grad", grad, params);
  check_momentum(op, momentum, config.momentum, params);
  check_scalars(op, scalars, optim::kSgdScalars, params);
  params.check_writable(op);
  if (momentum.defined()) momentum.check_writable(op);
  LETHE_DISPATCH(params.device(), sgd_step, params, grad, momentum, scalars, config);
}

void adamw_step(const Tensor& params, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const Tensor& scalars, const AdamWConfig& config) {
  const char* op = "adamw_step";
  check_updated(op, "params", params);
  check_like_params(op, "grad", grad, params);
  check_like_params(op, "exp_avg", exp_avg, params);
  check_like_params(op, "exp_avg_sq", exp_avg_sq, params);
  check_scalars(op, scalars, optim::kAdamWScalars, params);
  for (const Tensor* t : {&params, &exp_avg, &exp_avg_sq}) t->check_writable(op);
  LETHE_DISPATCH(params.device(), adamw_step, params, grad, exp_avg, exp_avg_sq, scalars, config);
}

Tensor clip_grad_norm(const Tensor& grad, double max_norm) {
  const char* op = "clip_grad_norm";
  LETHE_CHECK(max_norm > 0, op, "max_norm must be positive, got ", max_norm);
  check_updated(op, "grad", grad);
  grad.check_writable(op);
  Tensor norm = Tensor::empty({}, DType::f64, grad.device());
  LETHE_DISPATCH(grad.device(), clip_by_global_norm, grad, max_norm, norm);
  return norm;
}

void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget, const Tensor& momentum,
                const Tensor& scalars, const Tensor& forget_loss, const IeuConfig& config) {
  check_ieu_operands("ieu_update", params, grad_retain, grad_forget, momentum, scalars, forget_loss, config);
  LETHE_DISPATCH(params.device(), ieu_update, params, grad_retain, grad_forget, momentum, scalars, forget_loss,
                 config);
}

void ieu_update_reference(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget,
                          const Tensor& momentum, const Tensor& scalars, const Tensor& forget_loss,
                          const IeuConfig& config) {
  check_ieu_operands("ieu_update_reference", params, grad_retain, grad_forget, momentum, scalars, forget_loss, config);
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

}  // namespace lethe
