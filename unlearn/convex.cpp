#include "unlearn/convex.h"

#include <lbfgs.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/error.h"
#include "engine/ops.h"

namespace lethe::unlearn {

namespace {

Tensor matrix_of(const std::vector<double>& theta, int64_t rows, int64_t cols) {
  Tensor t = Tensor::empty({rows, cols}, DType::f64, Device::cpu());
  std::copy(theta.begin(), theta.end(), t.data<double>());
  return t;
}

std::vector<double> vector_of(const Tensor& t) { return t.to(DType::f64).to_vector<double>(); }

}  // namespace

SoftmaxData softmax_data(const Tensor& images, const Tensor& labels, int64_t classes) {
  LETHE_CHECK(images.defined() && labels.defined() && images.dim() >= 1 && labels.dim() == 1 &&
                  images.size(0) == labels.size(0) && images.size(0) > 0 && is_floating(images.dtype()),
              "convex", "needs images [n, ...] and labels [n] (n > 0), got ", images.defined() ? images.str() : "none",
              " and ", labels.defined() ? labels.str() : "none");
  LETHE_CHECK(classes > 1, "convex", "needs at least 2 classes, got ", classes);
  const int64_t n = images.size(0), p = images.numel() / n;
  const Tensor x = images.to(Device::cpu()).to(DType::f64).contiguous();
  SoftmaxData d;
  d.classes = classes;
  d.features = Tensor::empty({n, p + 1}, DType::f64, Device::cpu());
  const double* src = x.data<double>();
  double* dst = d.features.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    std::copy(src + i * p, src + (i + 1) * p, dst + i * (p + 1));
    dst[i * (p + 1) + p] = 1;
  }
  const Tensor y = labels.to(Device::cpu()).to(DType::i64).contiguous();
  d.labels.assign(y.data<int64_t>(), y.data<int64_t>() + n);
  for (int64_t label : d.labels)
    LETHE_CHECK(label >= 0 && label < classes, "convex", "label ", label, " is outside [0, ", classes, ")");
  return d;
}

SoftmaxObjective::SoftmaxObjective(const SoftmaxData& data, std::vector<double> coefficients, double l2)
    : data_(data), coefficients_(std::move(coefficients)), l2_(l2) {
  LETHE_CHECK(static_cast<int64_t>(coefficients_.size()) == data_.samples(), "convex", coefficients_.size(),
              " coefficients for ", data_.samples(), " samples");
  LETHE_CHECK(std::isfinite(l2_) && l2_ >= 0, "convex", "the L2 coefficient must be finite and ≥ 0, got ", l2_);
}

Tensor SoftmaxObjective::logits(const std::vector<double>& theta) const {
  LETHE_CHECK(static_cast<int64_t>(theta.size()) == dim(), "convex", "θ has ", theta.size(), " values, the model ",
              dim());
  return matmul(data_.features, matrix_of(theta, data_.classes, data_.features.size(1)).t()).contiguous();
}

Tensor SoftmaxObjective::probabilities(const std::vector<double>& theta) const {
  Tensor z = logits(theta);
  double* row = z.data<double>();
  const int64_t k = data_.classes;
  for (int64_t i = 0; i < data_.samples(); ++i, row += k) {
    const double top = *std::max_element(row, row + k);
    double total = 0;
    for (int64_t c = 0; c < k; ++c) total += (row[c] = std::exp(row[c] - top));
    for (int64_t c = 0; c < k; ++c) row[c] /= total;
  }
  return z;
}

double SoftmaxObjective::value(const std::vector<double>& theta, std::vector<double>* gradient) const {
  const Tensor z_all = logits(theta);
  const int64_t k = data_.classes;
  // CE_i = log Σ_j exp(z_j) − z_y, from the logits (not log p: exact for small p too); its
  // gradient in the logits is c_i·(p_i − e_y).
  Tensor residual = Tensor::zeros({data_.samples(), k}, DType::f64, Device::cpu());
  const double* z = z_all.data<double>();
  double* r = residual.data<double>();
  double f = 0;
  for (int64_t i = 0; i < data_.samples(); ++i, z += k, r += k) {
    const double c = coefficients_[static_cast<size_t>(i)];
    if (c == 0) continue;
    const int64_t y = data_.labels[static_cast<size_t>(i)];
    const double top = *std::max_element(z, z + k);
    double total = 0;
    for (int64_t j = 0; j < k; ++j) total += std::exp(z[j] - top);
    f += c * (std::log(total) - (z[y] - top));
    for (int64_t j = 0; j < k; ++j) r[j] = c * (std::exp(z[j] - top) / total - (j == y ? 1.0 : 0.0));
  }
  double squares = 0;
  for (double t : theta) squares += t * t;
  f += 0.5 * l2_ * squares;
  if (gradient != nullptr) {
    *gradient = vector_of(matmul(residual.t(), data_.features));
    for (size_t j = 0; j < theta.size(); ++j) (*gradient)[j] += l2_ * theta[j];
  }
  return f;
}

std::vector<double> SoftmaxObjective::hessian_vector(const std::vector<double>& theta,
                                                     const std::vector<double>& v) const {
  LETHE_CHECK(v.size() == theta.size(), "convex", "v has ", v.size(), " values, θ ", theta.size());
  const Tensor prob = probabilities(theta);
  const int64_t k = data_.classes;
  // The logits' Hessian of CE_i is diag(p) − p·pᵀ; applied to u = V·x̃_i: p ⊙ (u − pᵀu).
  Tensor u = matmul(data_.features, matrix_of(v, k, data_.features.size(1)).t()).contiguous();
  const double* p = prob.data<double>();
  double* w = u.data<double>();
  for (int64_t i = 0; i < data_.samples(); ++i) {
    const double c = coefficients_[static_cast<size_t>(i)];
    double mean = 0;
    for (int64_t j = 0; j < k; ++j) mean += p[i * k + j] * w[i * k + j];
    for (int64_t j = 0; j < k; ++j) w[i * k + j] = c * p[i * k + j] * (w[i * k + j] - mean);
  }
  std::vector<double> hv = vector_of(matmul(u.t(), data_.features));
  for (size_t j = 0; j < v.size(); ++j) hv[j] += l2_ * v[j];
  return hv;
}

Tensor SoftmaxObjective::hessian(const std::vector<double>& theta) const {
  const Tensor prob = probabilities(theta);
  const int64_t k = data_.classes, q = data_.features.size(1), n = data_.samples(), d = dim();
  Tensor h = Tensor::zeros({d, d}, DType::f64, Device::cpu());
  Tensor scaled = Tensor::empty({n, q}, DType::f64, Device::cpu());
  const double* p = prob.data<double>();
  const double* x = data_.features.data<double>();
  double* hd = h.data<double>();
  // Block (a, b) over the features: Σ_i c_i·(p_ia·δ_ab − p_ia·p_ib)·x̃_i·x̃_iᵀ = X̃ᵀ·diag(w)·X̃.
  for (int64_t a = 0; a < k; ++a) {
    for (int64_t b = a; b < k; ++b) {
      double* s = scaled.data<double>();
      for (int64_t i = 0; i < n; ++i) {
        const double w = coefficients_[static_cast<size_t>(i)] * p[i * k + a] * ((a == b ? 1.0 : 0.0) - p[i * k + b]);
        for (int64_t j = 0; j < q; ++j) s[i * q + j] = w * x[i * q + j];
      }
      const Tensor block = matmul(data_.features.t(), scaled).contiguous();
      const double* m = block.data<double>();
      for (int64_t r = 0; r < q; ++r) {
        for (int64_t c = 0; c < q; ++c) {
          // The block is symmetric up to rounding; its upper half is mirrored so that H is exactly.
          const double value = r <= c ? m[r * q + c] : m[c * q + r];
          hd[(a * q + r) * d + b * q + c] = value;
          hd[(b * q + c) * d + a * q + r] = value;
        }
      }
    }
  }
  for (int64_t j = 0; j < d; ++j) hd[j * d + j] += l2_;
  return h;
}

namespace {

struct Search {
  const SoftmaxObjective& f;
  int64_t n;
  double tolerance;
  int64_t evaluations = 0, iterations = 0;
};

lbfgsfloatval_t evaluate(void* instance, const lbfgsfloatval_t* x, lbfgsfloatval_t* g, int n_padded,
                         lbfgsfloatval_t) {
  auto& s = *static_cast<Search*>(instance);
  std::vector<double> grad;
  const double value = s.f.value(std::vector<double>(x, x + s.n), &grad);
  std::copy(grad.begin(), grad.end(), g);
  std::fill(g + s.n, g + n_padded, 0.0);  // the padding variables stay at 0
  ++s.evaluations;
  return value;
}

int progress(void* instance, const lbfgsfloatval_t*, const lbfgsfloatval_t*, lbfgsfloatval_t, lbfgsfloatval_t,
             lbfgsfloatval_t gnorm, lbfgsfloatval_t, int, int k, int) {
  auto& s = *static_cast<Search*>(instance);
  s.iterations = k;
  return gnorm <= s.tolerance ? 1 : 0;  // non-zero: stop here
}

std::string lbfgs_status(int code) {
  switch (code) {
    case LBFGSERR_ROUNDING_ERROR: return "rounding errors stopped the line search (the tolerance may be below what float64 resolves)";
    case LBFGSERR_MAXIMUMITERATION: return "the iteration limit was reached";
    case LBFGSERR_MAXIMUMLINESEARCH: return "the line search took too many evaluations";
    case LBFGSERR_MINIMUMSTEP: case LBFGSERR_MAXIMUMSTEP: return "the line search step left its bounds";
    case LBFGSERR_INCREASEGRADIENT: return "the search direction went uphill";
    default: return "libLBFGS status " + std::to_string(code);
  }
}

}  // namespace

Minimum minimize(const SoftmaxObjective& f, std::vector<double> start, double tolerance, int64_t max_iterations) {
  LETHE_CHECK(std::isfinite(tolerance) && tolerance > 0, "minimize", "the gradient-norm tolerance must be > 0, got ",
              tolerance);
  LETHE_CHECK(static_cast<int64_t>(start.size()) == f.dim(), "minimize", "start has ", start.size(), " values, the problem ",
              f.dim());
  Minimum m;
  std::vector<double> grad;
  m.value = f.value(start, &grad);
  m.gradient_norm = norm(grad);
  m.evaluations = 1;
  if (m.gradient_norm <= tolerance) {
    m.theta = std::move(start);
    return m;
  }
  // libLBFGS wants its variables aligned and, built with SSE, a multiple of 16 of them: padded
  // with zeros that have zero gradient.
  const int64_t n = f.dim(), padded = (n + 15) / 16 * 16;
  lbfgsfloatval_t* x = lbfgs_malloc(static_cast<int>(padded));
  LETHE_CHECK(x != nullptr, "minimize", "cannot allocate ", padded, " variables");
  std::copy(start.begin(), start.end(), x);
  std::fill(x + n, x + padded, 0.0);
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.epsilon = 0;  // the progress callback stops at the absolute tolerance instead
  param.max_iterations = static_cast<int>(max_iterations);
  param.m = 20;  // more correction pairs than the default 6: these problems are ill-conditioned
  Search search{f, n, tolerance};
  lbfgsfloatval_t fx = 0;
  const int code = lbfgs(static_cast<int>(padded), x, &fx, evaluate, progress, &search, &param);
  m.iterations = search.iterations;
  m.theta.assign(x, x + n);
  lbfgs_free(x);
  m.value = f.value(m.theta, &grad);
  m.gradient_norm = norm(grad);
  m.evaluations += search.evaluations + 1;
  // L-BFGS's line search compares values of f, and near the optimum f changes by less than its
  // rounding (‖∇f‖² / L ≈ 1e-17 of f ≈ 0.3 at ‖∇f‖ ≈ 3e-8): it stalls there. Newton's method needs
  // no values: steps H⁻¹·∇f with the Hessian at that point, factored once (Cholesky), converge
  // linearly at a tiny rate so close to the optimum.
  if (m.gradient_norm > tolerance && code != LBFGSERR_MAXIMUMITERATION) {
    const Tensor factor = cholesky(f.hessian(m.theta));
    for (int i = 0; i < 8 && m.gradient_norm > tolerance; ++i) {
      const std::vector<double> step = vector_of(cholesky_solve(Tensor::from_vector(grad, {f.dim()}), factor));
      for (size_t j = 0; j < step.size(); ++j) m.theta[j] -= step[j];
      m.value = f.value(m.theta, &grad);
      m.gradient_norm = norm(grad);
      ++m.newton_steps;
      ++m.evaluations;
    }
  }
  LETHE_CHECK(m.gradient_norm <= tolerance, "minimize", "L-BFGS stopped at ‖∇f‖ = ", m.gradient_norm, " > tolerance ",
              tolerance, " after ", m.iterations, " iterations: ", lbfgs_status(code));
  return m;
}

Spectrum spectrum(const Tensor& hessian) { return {vector_of(eigvalsh(hessian))}; }

double LinearRecursion::contraction() const {
  double q = 0;
  for (double h : eigenvalues) q = std::max(q, std::abs(1 - lr * h));
  return q;
}

double LinearRecursion::spread(int64_t t) const {
  double total = 0;
  for (double h : eigenvalues) {
    const double a = 1 - lr * h;
    const double one_minus_a2 = lr * h * (2 - lr * h);  // 1 − a², without cancellation
    if (one_minus_a2 == 0) {
      total += static_cast<double>(t);
    } else if (a == 0) {
      total += t > 0 ? 1.0 : 0.0;
    } else {
      // 1 − a^{2t} = −expm1(2t·log|a|), accurate when |a| is close to 1.
      const double log_a = a > 0 ? std::log1p(-lr * h) : std::log(-a);
      total += -std::expm1(2 * static_cast<double>(t) * log_a) / one_minus_a2;
    }
  }
  return sigma * sigma * total;
}

double LinearRecursion::stationary_spread() const {
  LETHE_CHECK(contraction() < 1, "dynamics", "no stationary spread: the recursion does not contract (factor ",
              contraction(), ")");
  double total = 0;
  for (double h : eigenvalues) total += 1 / (lr * h * (2 - lr * h));
  return sigma * sigma * total;
}

void check_contracts(const LinearRecursion& r, const std::string& what) {
  LETHE_CHECK(!r.eigenvalues.empty(), "dynamics", what, ": no eigenvalues");
  const double lo = *std::min_element(r.eigenvalues.begin(), r.eigenvalues.end());
  const double hi = *std::max_element(r.eigenvalues.begin(), r.eigenvalues.end());
  const double q = r.contraction();
  if (q < 1) return;
  std::string why;
  if (lo <= 0)
    why = "the smallest eigenvalue is ≤ 0: the objective is not strongly convex there (raise the decay, lower α)";
  else
    why = "the learning rate is too large for the largest eigenvalue L (the decay λ is part of it: lower η or λ): it "
          "needs η < 2/L = " + std::to_string(2 / hi);
  LETHE_FAIL("dynamics", what, " would diverge: the Hessian's eigenvalues span [", lo, ", ", hi, "], and with η = ", r.lr,
             " the per-step factor max|1 − η·h| is ", q, " ≥ 1; ", why);
}

std::vector<double> theta_of(const NamedTensors& state) {
  Tensor weight, bias;
  for (const auto& [name, t] : state) {
    if (name == "fc.weight") weight = t;
    if (name == "fc.bias") bias = t;
  }
  LETHE_CHECK(weight.defined() && bias.defined() && weight.dim() == 2 && bias.dim() == 1 &&
                  bias.size(0) == weight.size(0),
              "convex", "needs a linear model's fc.weight [K, p] and fc.bias [K]");
  const std::vector<double> w = vector_of(weight), b = vector_of(bias);
  const int64_t k = weight.size(0), p = weight.size(1);
  std::vector<double> theta(static_cast<size_t>(k * (p + 1)));
  for (int64_t r = 0; r < k; ++r) {
    std::copy(w.begin() + r * p, w.begin() + (r + 1) * p, theta.begin() + r * (p + 1));
    theta[static_cast<size_t>(r * (p + 1) + p)] = b[static_cast<size_t>(r)];
  }
  return theta;
}

NamedTensors state_of(const std::vector<double>& theta, int64_t classes, DType dtype) {
  const auto q = static_cast<int64_t>(theta.size()) / classes, p = q - 1;
  LETHE_CHECK(classes > 0 && q * classes == static_cast<int64_t>(theta.size()) && p > 0, "convex",
              "θ of ", theta.size(), " values is not [", classes, ", p+1]");
  Tensor weight = Tensor::empty({classes, p}, DType::f64, Device::cpu()), bias = Tensor::empty({classes}, DType::f64, Device::cpu());
  for (int64_t r = 0; r < classes; ++r) {
    std::copy(theta.begin() + r * q, theta.begin() + r * q + p, weight.data<double>() + r * p);
    bias.data<double>()[r] = theta[static_cast<size_t>(r * q + p)];
  }
  return {{"fc.weight", weight.to(dtype)}, {"fc.bias", bias.to(dtype)}};
}

double norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

double distance(const std::vector<double>& a, const std::vector<double>& b) {
  LETHE_CHECK(a.size() == b.size(), "convex", "distance between ", a.size(), " and ", b.size(), " values");
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

}  // namespace lethe::unlearn
