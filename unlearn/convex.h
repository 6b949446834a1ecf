#pragma once
// The exact side of the convex study (`lethe dynamics`, README "Convex dynamics"): multinomial
// logistic regression — the `linear` model — in float64, where every quantity that governs IEU's
// dynamics can be computed rather than measured:
//  - an objective Σ_i c_i·CE(Θ·x̃_i, y_i) + (l2/2)·‖Θ‖² with per-sample coefficients c_i, which
//    covers the original (c = 1/N), the retrained (1/n_r on retain, 0 on forget) and IEU's own
//    (1/n_r on retain, −α/n_f on forget, l2 = its decay λ) objective;
//  - its minimiser to a stated gradient-norm tolerance (L-BFGS, libLBFGS);
//  - its dense Hessian and the Hessian's spectrum (LAPACK's dsyevd, through the eigvalsh op);
//  - the linearised IEU recursion near a fixed point: contraction factor and noise spread.
// Θ is [K, p+1]: fc.weight [K, p] with fc.bias as its last column, row-major, flattened.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "nn/module.h"

namespace lethe::unlearn {

// The samples of a convex problem: features x̃ = [x, 1] (the images as the model sees them,
// normalised and flattened, with a 1 for the bias) and labels.
struct SoftmaxData {
  Tensor features;              // float64 [n, p+1] on the CPU, last column 1
  std::vector<int64_t> labels;  // [n], each in [0, classes)
  int64_t classes = 0;
  int64_t samples() const { return static_cast<int64_t>(labels.size()); }
  int64_t dim() const { return classes * features.size(1); }  // K·(p+1) parameters
};
// `images` [n, ...] (any floating dtype), labels int64 [n].
SoftmaxData softmax_data(const Tensor& images, const Tensor& labels, int64_t classes);

class SoftmaxObjective {
 public:
  // `coefficients` [n]: c_i per sample (0 leaves a sample out); l2 ≥ 0.
  SoftmaxObjective(const SoftmaxData& data, std::vector<double> coefficients, double l2);

  int64_t dim() const { return data_.dim(); }
  double l2() const { return l2_; }
  // The value at θ; its gradient into `gradient` ([dim]) when not null.
  double value(const std::vector<double>& theta, std::vector<double>* gradient = nullptr) const;
  // ∇²f(θ)·v.
  std::vector<double> hessian_vector(const std::vector<double>& theta, const std::vector<double>& v) const;
  // ∇²f(θ), dense float64 [dim, dim] on the CPU. Costs K(K+1)/2 products X̃ᵀ·diag(w)·X̃.
  Tensor hessian(const std::vector<double>& theta) const;

 private:
  // Θ·x̃_i for every sample, [n, K]; and their softmax.
  Tensor logits(const std::vector<double>& theta) const;
  Tensor probabilities(const std::vector<double>& theta) const;

  const SoftmaxData& data_;
  std::vector<double> coefficients_;
  double l2_;
};

struct Minimum {
  std::vector<double> theta;
  double value = 0, gradient_norm = 0;
  int64_t iterations = 0, evaluations = 0;
  int64_t newton_steps = 0;  // after L-BFGS (see minimize)
};
// The minimiser of `f` from `start`, to ‖∇f‖₂ ≤ tolerance: L-BFGS, then Newton steps with the
// Hessian where L-BFGS stalled (its line search needs changes of f that float64 resolves). Throws lethe::Error when
// the tolerance is not > 0, or when L-BFGS stops short of it (saying where and why).
Minimum minimize(const SoftmaxObjective& f, std::vector<double> start, double tolerance,
                 int64_t max_iterations = 20000);

// The extreme eigenvalues and the whole spectrum of a Hessian.
struct Spectrum {
  std::vector<double> eigenvalues;  // ascending
  double min() const { return eigenvalues.front(); }
  double max() const { return eigenvalues.back(); }
};
Spectrum spectrum(const Tensor& hessian);

// IEU without momentum near a fixed point θ_fp of its full-batch map, linearised:
//   e ← (I − η·H)·e + σ·ξ,   H = ∇²G(θ_fp) (λ included), ξ ~ N(0, I),
// with the eigenvalues h_i of H. Per eigendirection the factor is a_i = 1 − η·h_i.
struct LinearRecursion {
  std::vector<double> eigenvalues;
  double lr = 0, sigma = 0;

  // max_i |a_i|: the per-step factor of ‖e‖ in the slowest direction; ≥ 1: no contraction.
  double contraction() const;
  // E‖δ_t‖² for δ_{t+1} = (I − ηH)·δ_t + σξ from δ_0 = 0: σ²·Σ_i (1 − a_i^{2t}) / (1 − a_i²)
  // (t·σ² per direction with a_i² = 1). The spread of a noisy run around the noiseless run that
  // started at the same point, at any t, in the linear approximation.
  double spread(int64_t t) const;
  // Its limit t → ∞: σ²·Σ_i 1 / (1 − a_i²). Needs contraction() < 1.
  double stationary_spread() const;
};
// Throws lethe::Error, before anything runs, when the recursion would not contract (a factor ≥ 1:
// the learning rate too large for the largest eigenvalue, or an eigenvalue ≤ 0), naming both.
void check_contracts(const LinearRecursion& r, const std::string& what);

// Θ [K, p+1] flattened from a linear model's fc.weight and fc.bias (any dtype), and back (in the
// state's dtype and names).
std::vector<double> theta_of(const NamedTensors& state);
NamedTensors state_of(const std::vector<double>& theta, int64_t classes, DType dtype);

double norm(const std::vector<double>& v);  // ‖v‖₂
double distance(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace lethe::unlearn
