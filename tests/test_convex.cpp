// The convex study's exact side (unlearn/convex.h) and the linear theory it compares IEU with:
// gradient, Hessian and Hessian-vector product against finite differences and lethe's autograd,
// the spectrum against a Jacobi eigensolver written here as the float64 reference, the minimiser's
// tolerance, the contraction factor on a quadratic (where it is exact) through lethe's IEU
// update, and the noisy recursion's variance against its closed form.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/arena.h"
#include "engine/ops.h"
#include "harness.h"
#include "nn/models.h"
#include "unlearn/convex.h"
#include "unlearn/dynamics.h"
#include "unlearn/ieu_update.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

// n = 7 samples of p = 4 features, K = 3 classes: 15 parameters. The coefficients are IEU's
// (1/4 on four retain samples, −α/3 on three forget samples, α = 0.3).
struct Tiny {
  Tensor images = test::random_tensor({7, 1, 2, 2}, 11, -1, 1, DType::f64);
  Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 1, 0, 2, 2}, {7});
  SoftmaxData data = softmax_data(images, labels, 3);
  std::vector<double> coefficients = {0.25, 0.25, 0.25, 0.25, -0.1, -0.1, -0.1};
  SoftmaxObjective f{data, coefficients, 0.2};
  std::vector<double> theta = test::random_tensor({15}, 12, -0.5, 0.5, DType::f64).to_vector<double>();
};

std::vector<double> gradient_of(const SoftmaxObjective& f, const std::vector<double>& theta) {
  std::vector<double> g;
  f.value(theta, &g);
  return g;
}

// Eigenvalues of a small symmetric matrix by cyclic Jacobi rotations, ascending: the reference.
std::vector<double> jacobi_eigenvalues(std::vector<double> a, int n) {
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        if (a[p * n + q] == 0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
    }
  }
  std::vector<double> w(n);
  for (int i = 0; i < n; ++i) w[i] = a[i * n + i];
  std::sort(w.begin(), w.end());
  return w;
}

}  // namespace

TEST_CASE("convex: the gradient and Hessian against central differences, the Hessian-vector product against H·v") {
  Tiny t;
  const int d = 15;
  const double h = 1e-5;
  const std::vector<double> g = gradient_of(t.f, t.theta);
  const std::vector<double> hessian = t.f.hessian(t.theta).to_vector<double>();
  for (int j = 0; j < d; ++j) {
    std::vector<double> plus = t.theta, minus = t.theta;
    plus[j] += h;
    minus[j] -= h;
    CHECK(g[j] == doctest::Approx((t.f.value(plus) - t.f.value(minus)) / (2 * h)).epsilon(1e-7));
    const std::vector<double> gp = gradient_of(t.f, plus), gm = gradient_of(t.f, minus);
    for (int i = 0; i < d; ++i) {
      CHECK(hessian[i * d + j] == doctest::Approx((gp[i] - gm[i]) / (2 * h)).epsilon(1e-6).scale(1));
      CHECK(hessian[i * d + j] == hessian[j * d + i]);  // mirrored exactly
    }
  }
  const std::vector<double> v = test::random_tensor({d}, 13, -1, 1, DType::f64).to_vector<double>();
  const std::vector<double> hv = t.f.hessian_vector(t.theta, v);
  for (int i = 0; i < d; ++i) {
    double expected = 0;
    for (int j = 0; j < d; ++j) expected += hessian[i * d + j] * v[j];
    CHECK(hv[i] == doctest::Approx(expected).epsilon(1e-12).scale(1));
  }
}

TEST_CASE("convex: the Hessian's spectrum (LAPACK) against a dense float64 Jacobi eigensolver") {
  Tiny t;
  const std::vector<double> hessian = t.f.hessian(t.theta).to_vector<double>();
  const std::vector<double> expected = jacobi_eigenvalues(hessian, 15);
  const Spectrum s = spectrum(t.f.hessian(t.theta));
  REQUIRE(s.eigenvalues.size() == 15);
  for (size_t i = 0; i < 15; ++i) CHECK(s.eigenvalues[i] == doctest::Approx(expected[i]).epsilon(1e-12).scale(1));
  // The negative (forget) coefficients make this Hessian indefinite; with only positive ones the
  // smallest eigenvalue is the L2 term's exactly: adding one vector to every class's weights
  // leaves softmax unchanged, so cross-entropy has no curvature there.
  const SoftmaxObjective retain(t.data, {0.25, 0.25, 0.25, 0.25, 0, 0, 0}, 0.2);
  CHECK(spectrum(retain.hessian(t.theta)).min() == doctest::Approx(0.2).epsilon(1e-12));
}

TEST_CASE("convex: the objective is lethe's mean cross-entropy of the linear model, value and gradient") {
  Tiny t;
  nn::ModelSpec spec{"linear", 1, 2, 3};
  spec.dtype = DType::f64;
  nn::Model model(spec, 3, Device::cpu());
  const SoftmaxObjective mean_ce(t.data, std::vector<double>(7, 1.0 / 7), 0);
  const std::vector<double> theta = theta_of(model.net().state_dict());
  model.arena().zero_grad(0);
  const Tensor loss = cross_entropy(model.forward(t.images), t.labels);
  loss.backward();
  std::vector<double> expected;
  CHECK(mean_ce.value(theta, &expected) == doctest::Approx(loss.item()).epsilon(1e-14));
  NamedTensors grads;
  for (const auto& [name, p] : model.net().state_dict()) grads.emplace_back(name, p.grad());
  const std::vector<double> autograd = theta_of(grads);
  for (size_t j = 0; j < expected.size(); ++j) CHECK(autograd[j] == doctest::Approx(expected[j]).epsilon(1e-13).scale(1));
  // state_of is theta_of's inverse.
  CHECK(theta_of(state_of(theta, 3, DType::f64)) == theta);
}

TEST_CASE("convex: the minimiser reaches its tolerance, and refuses a tolerance that is not > 0") {
  Tiny t;
  const SoftmaxObjective retain(t.data, {0.25, 0.25, 0.25, 0.25, 0, 0, 0}, 0.05);
  const Minimum m = minimize(retain, std::vector<double>(15, 0.0), 1e-12);
  CHECK(m.gradient_norm <= 1e-12);
  double norm = 0;
  for (double g : gradient_of(retain, m.theta)) norm += g * g;
  CHECK(std::sqrt(norm) == doctest::Approx(m.gradient_norm));
  CHECK_THROWS_WITH_AS(minimize(retain, std::vector<double>(15, 0.0), 0), doctest::Contains("tolerance must be > 0"),
                       Error);
  CHECK_THROWS_WITH_AS(minimize(retain, std::vector<double>(15, 0.0), -1e-6), doctest::Contains("tolerance must be > 0"),
                       Error);
}

TEST_CASE("dynamics: on a quadratic the contraction factor is exact, through lethe's IEU update") {
  // G(θ) = ½θᵀ(A − αB)θ + (λ/2)‖θ‖² with diagonal A (retain) and B (forget): IEU's step
  // θ ← (1 − ηλ)θ − η(Aθ − αBθ) multiplies coordinate i by exactly 1 − η(a_i − αb_i + λ).
  const std::vector<double> a = {0.5, 1, 2, 4}, b = {1, 0.5, 0.25, 2};
  const double lr = 0.3, alpha = 0.2, decay = 0.1;
  Tensor param = Tensor::from_vector<double>({1, -1, 0.5, 2}, {4});
  param.set_requires_grad(true);
  ParamArena arena({param}, 2);
  IeuUpdate update(arena, {});
  update.set(lr, alpha, decay, 0);
  std::vector<double> h(4);
  for (int i = 0; i < 4; ++i) h[i] = a[i] - alpha * b[i] + decay;
  const LinearRecursion r{h, lr, 0};
  double expected = 0;
  for (double x : h) expected = std::max(expected, std::abs(1 - lr * x));
  CHECK(r.contraction() == expected);
  auto norm_now = [&] {
    double s = 0;
    for (double x : arena.data().to_vector<double>()) s += x * x;
    return std::sqrt(s);
  };
  double before = norm_now(), ratio = 0;
  for (int step = 0; step < 300; ++step) {
    const std::vector<double> theta = arena.data().to_vector<double>();
    std::vector<double> gr(theta.size(), 0.0), gf(theta.size(), 0.0);
    for (int i = 0; i < 4; ++i) {
      gr[i] = a[i] * theta[i];
      gf[i] = b[i] * theta[i];
    }
    std::copy(gr.begin(), gr.end(), arena.grad(0).data<double>());
    std::copy(gf.begin(), gf.end(), arena.grad(1).data<double>());
    update.step(0, 1);
    const double after = norm_now();
    ratio = after / before;
    before = after;
  }
  // After 300 steps only the slowest direction is left: its factor per step, to rounding.
  CHECK(ratio == doctest::Approx(r.contraction()).epsilon(1e-12));
}

TEST_CASE("dynamics: the noisy recursion's variance against its closed form, through lethe's IEU noise") {
  // 1-D: θ ← aθ + σξ with a = 1 − η(h + λ), from 0: E θ_t² = σ²(1 − a^{2t})/(1 − a²). N
  // independent coordinates of one arena, each such a recursion, estimate it.
  const int64_t n = 200000;
  const double lr = 0.5, h = 0.3, decay = 0.1, sigma = 0.01;
  const double a = 1 - lr * (h + decay);
  Tensor param = Tensor::zeros({n}, DType::f64);
  param.set_requires_grad(true);
  ParamArena arena({param}, 1);
  IeuOptions options;
  options.seed = 5;
  IeuUpdate update(arena, options);
  update.set(lr, 0, decay, sigma);
  const LinearRecursion r{{h + decay}, lr, sigma};
  for (int64_t t : {1, 3, 10, 60}) {
    const double closed = sigma * sigma * (1 - std::pow(a, 2 * t)) / (1 - a * a);
    CHECK(r.spread(t) == doctest::Approx(closed).epsilon(1e-12));
  }
  CHECK(r.stationary_spread() == doctest::Approx(sigma * sigma / (1 - a * a)).epsilon(1e-14));
  for (int64_t t = 1; t <= 60; ++t) {
    const std::vector<double> theta = arena.data().to_vector<double>();
    double* g = arena.grad(0).data<double>();
    for (int64_t i = 0; i < n; ++i) g[i] = h * theta[static_cast<size_t>(i)];
    update.step(0, -1);
    if (t == 3 || t == 60) {
      double mean_square = 0;
      for (double x : arena.data().narrow(0, 0, n).to_vector<double>()) mean_square += x * x;
      mean_square /= static_cast<double>(n);
      // The estimate's relative standard error is √(2/N) ≈ 0.32%: 2% is over six of them.
      CHECK(mean_square == doctest::Approx(r.spread(t)).epsilon(0.02));
    }
  }
}

TEST_CASE("dynamics: a recursion that would diverge is refused from its factor, saying why") {
  CHECK_THROWS_WITH_AS(check_contracts({{0.1, 10}, 0.25, 0}, "IEU"), doctest::Contains("η < 2/L = 0.2"), Error);
  CHECK_THROWS_WITH_AS(check_contracts({{-0.1, 1}, 0.25, 0}, "IEU"), doctest::Contains("not strongly convex"), Error);
  CHECK_NOTHROW(check_contracts({{0.1, 1}, 0.25, 0}, "IEU"));
  DynamicsOptions o;
  o.tolerance = 0;
  CHECK_THROWS_WITH_AS(o.resolve(), doctest::Contains("--tolerance must be > 0"), Error);
  DynamicsOptions unbounded;
  unbounded.decay = 0;
  CHECK_THROWS_WITH_AS(unbounded.resolve(), doctest::Contains("unbounded below"), Error);
}

TEST_CASE("dynamics: the fitted factor of a geometric sequence is its ratio") {
  std::vector<double> x, y;
  for (int t = 10; t < 30; ++t) {
    x.push_back(t);
    y.push_back(3 * std::pow(0.97, t));
  }
  CHECK(fitted_factor(x, y) == doctest::Approx(0.97).epsilon(1e-12));
  CHECK(std::isnan(fitted_factor({1}, {2})));
}
