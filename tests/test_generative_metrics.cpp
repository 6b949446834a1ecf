// The generator metrics (unlearn/generative_metrics.h, issue 17): the Fréchet distance against the
// closed form for Gaussians, fitting a Gaussian against loops, the Wilson interval against
// reference values, and the evaluator's judgement (features, predictions) of a constructed model.
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "harness.h"
#include "unlearn/generative_metrics.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

Tensor matrix(const std::vector<double>& v, int64_t n) { return Tensor::from_vector(v, {n, n}); }

// Q·diag(d)·Qᵀ with Q a rotation by `angle` in the (0, 1) plane (the identity elsewhere).
Tensor rotated_diagonal(const std::vector<double>& d, double angle) {
  const auto n = static_cast<int64_t>(d.size());
  std::vector<double> q(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) q[static_cast<size_t>(i * n + i)] = 1;
  q[0] = q[static_cast<size_t>(n + 1)] = std::cos(angle);
  q[1] = -std::sin(angle);
  q[static_cast<size_t>(n)] = std::sin(angle);
  const Tensor Q = matrix(q, n);
  return matmul(matmul(Q, matrix([&] {
                          std::vector<double> m(static_cast<size_t>(n * n), 0.0);
                          for (int64_t i = 0; i < n; ++i) m[static_cast<size_t>(i * n + i)] = d[static_cast<size_t>(i)];
                          return m;
                        }(), n)),
                Q.transpose(0, 1));
}

}  // namespace

TEST_CASE("frechet_distance: the closed form for Gaussians") {
  const Tensor mu_a = Tensor::from_vector(std::vector<double>{0.5, -1, 2}, {3});
  const Tensor mu_b = Tensor::from_vector(std::vector<double>{0, 1, 2.5}, {3});
  const std::vector<double> a{1, 4, 0.25}, b{9, 1, 0.25};
  // Covariances with the same eigenvectors: |μa − μb|² + Σ (√a_i − √b_i)².
  double expected = 0.25 + 4 + 0.25;
  for (size_t i = 0; i < a.size(); ++i) expected += std::pow(std::sqrt(a[i]) - std::sqrt(b[i]), 2);
  for (double angle : {0.0, 0.7}) {
    const Gaussian ga{mu_a, rotated_diagonal(a, angle)}, gb{mu_b, rotated_diagonal(b, angle)};
    CHECK(frechet_distance(ga, gb) == doctest::Approx(expected).epsilon(1e-12));
  }
  // Covariances that do not commute: symmetric, zero against itself, and W2² ≥ |μa − μb|².
  const Gaussian ga{mu_a, rotated_diagonal(a, 0.3)}, gb{mu_b, rotated_diagonal(b, 1.1)};
  CHECK(frechet_distance(ga, gb) == doctest::Approx(frechet_distance(gb, ga)).epsilon(1e-12));
  CHECK(std::abs(frechet_distance(ga, ga)) < 1e-12);
  CHECK(frechet_distance(ga, gb) > 4.5);
  // A singular covariance (a dead feature) is fine: the square roots clamp rounding at 0.
  const Gaussian gs{mu_a, rotated_diagonal({0, 4, 1}, 0.2)};
  CHECK(std::isfinite(frechet_distance(gs, gb)));
  CHECK(std::abs(frechet_distance(gs, gs)) < 1e-7);
  CHECK_THROWS_WITH_AS(frechet_distance(ga, Gaussian{Tensor::zeros({2}, DType::f64), Tensor::zeros({2, 2}, DType::f64)}),
                       doctest::Contains("differ in dimension"), Error);
}

TEST_CASE("fit_gaussian: mean and covariance (N − 1) against loops") {
  const Tensor x = Tensor::randn({50, 4}, 3, 0, DType::f64);
  const Gaussian g = fit_gaussian(x);
  const std::vector<double> v = x.to_vector<double>(), mu = g.mean.to_vector<double>(), cov = g.covariance.to_vector<double>();
  for (int j = 0; j < 4; ++j) {
    double m = 0;
    for (int i = 0; i < 50; ++i) m += v[static_cast<size_t>(i * 4 + j)] / 50;
    CHECK(mu[static_cast<size_t>(j)] == doctest::Approx(m).epsilon(1e-13));
  }
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 4; ++k) {
      double c = 0;
      for (int i = 0; i < 50; ++i)
        c += (v[static_cast<size_t>(i * 4 + j)] - mu[static_cast<size_t>(j)]) * (v[static_cast<size_t>(i * 4 + k)] - mu[static_cast<size_t>(k)]);
      CHECK(cov[static_cast<size_t>(j * 4 + k)] == doctest::Approx(c / 49).epsilon(1e-12));
    }
  CHECK_THROWS_WITH_AS(fit_gaussian(Tensor::zeros({1, 3}, DType::f64)), doctest::Contains("N ≥ 2"), Error);
}

TEST_CASE("wilson_interval: reference values, and ±2 points at 2,500 samples") {
  // Wilson's score interval, 95%, computed independently (Python's statistics.NormalDist).
  const struct {
    int64_t hits, count;
    double lo, hi;
  } cases[] = {{0, 10, 0.0, 0.2775327999}, {5, 10, 0.2365930905, 0.7634069095},
               {2400, 2500, 0.9515863150, 0.9670021971}, {1250, 2500, 0.4804154011, 0.5195845989}};
  for (const auto& c : cases) {
    const stats::Proportion p = stats::wilson_interval(c.hits, c.count);
    CHECK(p.value == doctest::Approx(static_cast<double>(c.hits) / static_cast<double>(c.count)));
    CHECK(p.lo == doctest::Approx(c.lo).epsilon(1e-9));
    CHECK(p.hi == doctest::Approx(c.hi).epsilon(1e-9));
    if (c.count == 2500) CHECK(p.hi - p.lo <= 0.04);
  }
  CHECK_THROWS_WITH_AS(stats::wilson_interval(3, 2), doctest::Contains("hits ≤ count"), Error);
}

TEST_CASE("judge: a constructed evaluator's features and predictions") {
  // `linear` on 2×2 images is flatten → fc: the features are the pixels, normalised; the fc rows
  // (−1, −1, −1, −1) and (1, 1, 1, 1) with bias 0 call an image class 1 when its normalised pixels
  // sum above 0, i.e. when its mean pixel is above the normalisation's mean.
  nn::ModelSpec spec{"linear", 1, 2, 2, 1, DType::f64};
  nn::Model evaluator(spec, 0, Device::cpu());
  {
    NoGradGuard no_grad;
    for (auto& [name, t] : evaluator.net().named_parameters())
      t.copy_(name == "fc.weight" ? Tensor::from_vector(std::vector<double>{-1, -1, -1, -1, 1, 1, 1, 1}, {2, 4})
                                  : Tensor::zeros({2}, DType::f64));
  }
  const data::Normalization norm{{0.5}, {0.25}};
  const std::vector<double> brightness{0.1, 0.9, 0.45, 0.55, 0.8};
  std::vector<double> pixels;
  for (double b : brightness)
    for (int p = 0; p < 4; ++p) pixels.push_back(b);
  const Judgement j = judge(evaluator, Tensor::from_vector(pixels, {5, 1, 2, 2}), norm, 2);
  CHECK(j.predicted == std::vector<int64_t>{0, 1, 0, 1, 1});
  REQUIRE(j.features.shape() == Shape{5, 4});
  const std::vector<double> f = j.features.to_vector<double>();
  for (size_t i = 0; i < brightness.size(); ++i) CHECK(f[i * 4] == doctest::Approx((brightness[i] - 0.5) / 0.25));
  const stats::Proportion share = stats::wilson_interval(
      static_cast<int64_t>(std::count(j.predicted.begin(), j.predicted.end(), 1)), static_cast<int64_t>(j.predicted.size()));
  CHECK(share.value == doctest::Approx(0.6));
}
