#include <cmath>
#include <string>

#include "engine/parallel.h"
#include "harness.h"

using namespace lethe;

namespace {

// Naive float64 (log_)softmax of a contiguous tensor along `dim`.
std::vector<double> softmax_reference(const std::vector<double>& x, const Shape& shape, int dim, bool log_out) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= shape[d];
  for (int d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t n = shape[dim];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * n + j) * inner + i; };
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, x[at(j)]);
      for (int64_t j = 0; j < n; ++j) s += std::exp(x[at(j)] - m);
      for (int64_t j = 0; j < n; ++j) y[at(j)] = log_out ? x[at(j)] - m - std::log(s) : std::exp(x[at(j)] - m) / s;
    }
  return y;
}

// Per-sample cross entropy −(1−ε)·log p_y − ε/C·Σ log p_c, times the sample weight.
std::vector<double> cross_entropy_reference(const std::vector<double>& x, const std::vector<int64_t>& labels,
                                            int64_t C, const std::vector<double>& weight, double eps) {
  const int64_t N = static_cast<int64_t>(labels.size());
  const std::vector<double> lp = softmax_reference(x, Shape{N, C}, 1, true);
  std::vector<double> loss(N);
  for (int64_t i = 0; i < N; ++i) {
    double all = 0;
    for (int64_t c = 0; c < C; ++c) all += lp[i * C + c];
    loss[i] = -(1 - eps) * lp[i * C + labels[i]] - eps / static_cast<double>(C) * all;
    if (!weight.empty()) loss[i] *= weight[i];
  }
  return loss;
}

std::vector<double> reduce_reference(const std::vector<double>& v, Reduction r) {
  if (r == Reduction::none) return v;
  double s = 0;
  for (double e : v) s += e;
  return {r == Reduction::sum ? s : s / static_cast<double>(v.size())};
}

std::string name(Reduction r) { return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean"; }

const std::vector<int64_t> kLabels{3, 0, 4, 4, 1, 2};  // N = 6, C = 5

Tensor labels_tensor(DType dtype = DType::i64) { return Tensor::from_vector(kLabels, {6}).to(dtype); }

// Weights of both signs (IEU ascends on the forget set with negative weights).
Tensor signed_weights() { return Tensor::from_vector(std::vector<double>{1.0, -0.5, 2.0, 0.0, -1.5, 0.75}, {6}); }

}  // namespace

TEST_CASE("softmax, log_softmax: forward against float64 reference on every dim") {
  const Shape shape{3, 4, 5};
  const Tensor x = test::random_tensor(shape, 1, -3, 3);
  for (int dim : {0, 1, 2, -1}) {
    INFO("dim ", dim);
    const int d = dim < 0 ? dim + 3 : dim;
    test::expect_close(softmax(x, dim), softmax_reference(x.to_vector<double>(), shape, d, false), 1e-13, 1e-15);
    test::expect_close(log_softmax(x, dim), softmax_reference(x.to_vector<double>(), shape, d, true), 1e-13, 1e-13);
  }
  const Tensor xf = x.to(DType::f32);
  test::expect_close(softmax(xf, 1), softmax_reference(xf.to(DType::f64).to_vector<double>(), shape, 1, false), 1e-6, 1e-7);
}

TEST_CASE("softmax, log_softmax: stable for large logits") {
  const Tensor x = Tensor::from_vector(std::vector<float>{1000, 1001, 1002, -1000, -1001, -1002}, {2, 3});
  const std::vector<double> p{0.09003057317038046, 0.24472847105479764, 0.6652409557748219};
  test::expect_close(softmax(x, 1), {p[0], p[1], p[2], p[2], p[1], p[0]}, 1e-6, 0);
  test::expect_close(log_softmax(x, 1), {std::log(p[0]), std::log(p[1]), std::log(p[2]), std::log(p[2]),
                                         std::log(p[1]), std::log(p[0])},
                     1e-6, 0);
}

TEST_CASE("softmax, log_softmax: gradcheck and parity on every dim") {
  for (int dim : {0, 1, 2}) {
    INFO("dim ", dim);
    test::gradcheck([dim](const std::vector<Tensor>& t) { return softmax(t[0], dim); },
                    {test::random_tensor({2, 3, 4}, 2, -2, 2).set_requires_grad()});
    test::gradcheck([dim](const std::vector<Tensor>& t) { return log_softmax(t[0], dim); },
                    {test::random_tensor({2, 3, 4}, 3, -2, 2).set_requires_grad()});
    test::check_parity([dim](const std::vector<Tensor>& t) { return softmax(t[0], dim); },
                       {test::random_tensor({7, 9, 11}, 4, -4, 4).set_requires_grad()});
    test::check_parity([dim](const std::vector<Tensor>& t) { return log_softmax(t[0], dim); },
                       {test::random_tensor({7, 9, 11}, 5, -4, 4).set_requires_grad()});
  }
}

TEST_CASE("cross_entropy: forward against float64 reference for weights, smoothing and reductions") {
  const Tensor x = test::random_tensor({6, 5}, 10, -3, 3);
  const std::vector<double> xv = x.to_vector<double>();
  for (DType label_dtype : {DType::i64, DType::i32}) {
    for (bool weighted : {false, true}) {
      for (double eps : {0.0, 0.1}) {
        for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean}) {
          INFO((std::string(dtype_name(label_dtype)) + (weighted ? " weighted" : "")), " smoothing ", eps, " reduction ", name(r));
          CrossEntropyOptions opt{r, weighted ? signed_weights() : Tensor(), eps};
          const std::vector<double> per = cross_entropy_reference(
              xv, kLabels, 5, weighted ? signed_weights().to_vector<double>() : std::vector<double>{}, eps);
          // mean divides by N = 6 even with weights.
          test::expect_close(cross_entropy(x, labels_tensor(label_dtype), opt), reduce_reference(per, r), 1e-13, 1e-14);
        }
      }
    }
  }
}

TEST_CASE("cross_entropy: gradcheck and parity for every option") {
  for (bool weighted : {false, true}) {
    for (double eps : {0.0, 0.2}) {
      for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean}) {
        INFO(std::string(weighted ? "weighted" : "unweighted"), " smoothing ", eps, " reduction ", name(r));
        auto fn = [=](const std::vector<Tensor>& t) {
          return cross_entropy(t[0], t[1], CrossEntropyOptions{r, weighted ? t[2] : Tensor(), eps});
        };
        test::gradcheck(fn, {test::random_tensor({6, 5}, 11, -2, 2).set_requires_grad(), labels_tensor(), signed_weights()});
        test::check_parity(fn, {test::random_tensor({6, 5}, 12, -2, 2).set_requires_grad(), labels_tensor(DType::i32),
                                signed_weights()});
      }
    }
  }
  // A batch that spans several CUDA blocks.
  std::vector<int64_t> many(700);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>((i * 3) % 10);
  test::check_parity([](const std::vector<Tensor>& t) { return cross_entropy(t[0], t[1]); },
                     {test::random_tensor({700, 10}, 13, -5, 5).set_requires_grad(), Tensor::from_vector(many, {700})});
}

TEST_CASE("cross_entropy: matches log_softmax + nll_loss") {
  const Tensor x = test::random_tensor({6, 5}, 14, -2, 2);
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean})
    test::expect_close(cross_entropy(x, labels_tensor(), {r, Tensor(), 0}), nll_loss(log_softmax(x, 1), labels_tensor(), r), 1e-13, 1e-14);
}

TEST_CASE("cross_entropy: errors name the label and its row") {
  const Tensor x = test::random_tensor({6, 5}, 15);
  const Tensor bad = Tensor::from_vector(std::vector<int64_t>{0, 1, 7, 2, 3, 4}, {6});
  CHECK_THROWS_WITH_AS(cross_entropy(x, bad), doctest::Contains("cross_entropy: label 7 at row 2 is outside [0, 5)"), Error);
  const Tensor negative = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3, 4, -1}, {6});
  CHECK_THROWS_WITH_AS(cross_entropy(x, negative), doctest::Contains("label -1 at row 5 is outside [0, 5)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_tensor(DType::f32)),
                       doctest::Contains("cross_entropy: labels must be int32 or int64 [6] on cpu for scores "
                                         "float64[6,5] on cpu, got float32[6] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, Tensor::zeros({5}, DType::i64)), doctest::Contains("got int64[5] on cpu"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_tensor(), {Reduction::mean, Tensor::ones({5}, DType::f64)}),
                       doctest::Contains("sample_weight must be float64[6] on cpu"), Error);
  Tensor w = Tensor::ones({6}, DType::f64).set_requires_grad();
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_tensor(), {Reduction::mean, w}),
                       doctest::Contains("sample_weight is a constant here"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, labels_tensor(), {Reduction::mean, Tensor(), 1.5}),
                       doctest::Contains("label_smoothing must be in [0, 1]"), Error);
  if (test::cuda_or_skip("cross_entropy label check on CUDA")) {
    CHECK_THROWS_WITH_AS(cross_entropy(x.to(Device::cuda()), bad.to(Device::cuda())),
                         doctest::Contains("cross_entropy: label 7 at row 2 is outside [0, 5)"), Error);
  }
}

TEST_CASE("cross_entropy: results do not depend on the thread count") {
  const Tensor x = test::random_tensor({4096, 10}, 16, -3, 3, DType::f32);
  std::vector<int64_t> y(4096);
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>((i * 7) % 10);
  const Tensor labels = Tensor::from_vector(y, {4096});
  const int threads = num_threads();
  set_num_threads(1);
  const double one = cross_entropy(x, labels).item();
  set_num_threads(2);
  const double two = cross_entropy(x, labels).item();
  set_num_threads(threads);
  CHECK(one == two);
}

TEST_CASE("nll_loss: forward, gradcheck, parity and errors") {
  const Tensor lp = test::random_tensor({6, 5}, 20, -4, 0);
  const std::vector<double> v = lp.to_vector<double>();
  std::vector<double> per;
  for (size_t i = 0; i < kLabels.size(); ++i) per.push_back(-v[i * 5 + kLabels[i]]);
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean}) {
    INFO("reduction ", name(r));
    test::expect_close(nll_loss(lp, labels_tensor(DType::i32), r), reduce_reference(per, r), 1e-15, 1e-15);
    auto fn = [r](const std::vector<Tensor>& t) { return nll_loss(t[0], t[1], r); };
    test::gradcheck(fn, {test::random_tensor({6, 5}, 21).set_requires_grad(), labels_tensor()});
    test::check_parity(fn, {test::random_tensor({6, 5}, 22).set_requires_grad(), labels_tensor()});
  }
  CHECK_THROWS_WITH_AS(nll_loss(lp, Tensor::full({6}, 5, DType::i64)),
                       doctest::Contains("nll_loss: label 5 at row 0 is outside [0, 5)"), Error);
}

TEST_CASE("mse_loss: forward, gradcheck, parity and errors") {
  const Tensor a = test::random_tensor({3, 4}, 30), b = test::random_tensor({3, 4}, 31);
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> per;
  for (size_t i = 0; i < av.size(); ++i) per.push_back((av[i] - bv[i]) * (av[i] - bv[i]));
  for (Reduction r : {Reduction::none, Reduction::sum, Reduction::mean}) {
    INFO("reduction ", name(r));
    std::vector<double> expected = reduce_reference(per, r);
    test::expect_close(mse_loss(a, b, r), expected, 1e-14, 1e-15);
    auto fn = [r](const std::vector<Tensor>& t) { return mse_loss(t[0], t[1], r); };
    test::gradcheck(fn, {test::random_tensor({3, 4}, 32).set_requires_grad(), test::random_tensor({3, 4}, 33).set_requires_grad()});
    test::check_parity(fn, {test::random_tensor({3, 4}, 34).set_requires_grad(), test::random_tensor({3, 4}, 35).set_requires_grad()});
  }
  CHECK_THROWS_WITH_AS(mse_loss(a, test::random_tensor({4, 3}, 36)),
                       doctest::Contains("mse_loss: shapes differ: float64[3,4] on cpu and float64[4,3] on cpu"), Error);
}

TEST_CASE("one_hot: values, dtypes and errors") {
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 0, 3, 2}, {4});
  std::vector<double> expected(16, 0);
  for (int i = 0; i < 4; ++i) expected[i * 4 + std::vector<int>{2, 0, 3, 2}[i]] = 1;
  for (DType dtype : {DType::f32, DType::f64, DType::i64, DType::u8}) {
    const Tensor h = one_hot(labels, 4, dtype);
    CHECK(h.dtype() == dtype);
    CHECK(h.shape() == Shape{4, 4});
    test::expect_close(h, expected, 0, 0);
  }
  CHECK(one_hot(labels.reshape({2, 2}), 5).shape() == Shape{2, 2, 5});
  test::check_parity([](const std::vector<Tensor>& t) { return one_hot(t[0], 7); },
                     {Tensor::from_vector(std::vector<int64_t>{6, 0, 3, 3, 1}, {5})});
  CHECK_THROWS_WITH_AS(one_hot(labels, 3), doctest::Contains("one_hot: label 3 at position 2 is outside [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(one_hot(Tensor::zeros({3}), 3), doctest::Contains("one_hot: labels must be int32 or int64, got float32[3] on cpu"), Error);
  CHECK_THROWS_WITH_AS(one_hot(labels, 0), doctest::Contains("num_classes must be positive"), Error);
}
