// Softmax and the losses beyond the op registry's table (tests/op_cases_softmax.cpp has their
// forward, gradient and parity checks): stability for large logits, cross_entropy against
// log_softmax + nll_loss, thread-count independence, and the errors.
#include <cmath>

#include "kernels/cpu/parallel.h"
#include "harness.h"

using namespace lethe;

namespace {

const std::vector<int64_t> kLabels{3, 0, 4, 4, 1, 2};  // N = 6, C = 5

Tensor labels_tensor(DType dtype = DType::i64) { return Tensor::from_vector(kLabels, {6}).to(dtype); }

}  // namespace

TEST_CASE("softmax, log_softmax: stable for large logits") {
  const Tensor x = Tensor::from_vector(std::vector<float>{1000, 1001, 1002, -1000, -1001, -1002}, {2, 3});
  const std::vector<double> p{0.09003057317038046, 0.24472847105479764, 0.6652409557748219};
  test::expect_close(softmax(x, 1), {p[0], p[1], p[2], p[2], p[1], p[0]}, 1e-6, 0);
  test::expect_close(log_softmax(x, 1), {std::log(p[0]), std::log(p[1]), std::log(p[2]), std::log(p[2]),
                                         std::log(p[1]), std::log(p[0])},
                     1e-6, 0);
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

TEST_CASE("nll_loss: errors") {
  const Tensor lp = test::random_tensor({6, 5}, 20, -4, 0);
  CHECK_THROWS_WITH_AS(nll_loss(lp, Tensor::full({6}, 5, DType::i64)),
                       doctest::Contains("nll_loss: label 5 at row 0 is outside [0, 5)"), Error);
}

TEST_CASE("mse_loss: errors") {
  CHECK_THROWS_WITH_AS(mse_loss(test::random_tensor({3, 4}, 30), test::random_tensor({4, 3}, 36)),
                       doctest::Contains("mse_loss: shapes differ: float64[3,4] on cpu and float64[4,3] on cpu"), Error);
}

TEST_CASE("one_hot: errors") {
  const Tensor labels = Tensor::from_vector(std::vector<int32_t>{2, 0, 3, 2}, {4});
  CHECK_THROWS_WITH_AS(one_hot(labels, 3), doctest::Contains("one_hot: label 3 at position 2 is outside [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(one_hot(Tensor::zeros({3}), 3), doctest::Contains("one_hot: labels must be int32 or int64, got float32[3] on cpu"), Error);
  CHECK_THROWS_WITH_AS(one_hot(labels, 0), doctest::Contains("num_classes must be positive"), Error);
}
