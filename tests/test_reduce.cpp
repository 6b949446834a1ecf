#include <cmath>
#include <limits>

#include "engine/parallel.h"
#include "harness.h"

using namespace lethe;

namespace {

// Naive float64 reduction of a [2,3,4] tensor over a set of dims (keepdim layout, row-major).
std::vector<double> reference(const std::vector<double>& x, const Shape& shape, const std::vector<int>& dims,
                              double init, double (*combine)(double, double)) {
  Shape kept = shape;
  for (int d : dims) kept[d] = 1;
  std::vector<double> out(kept.numel(), init);
  const Shape st = contiguous_strides(kept);
  for (int64_t i = 0; i < shape.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (int d = shape.size() - 1; d >= 0; --d) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      off += (kept[d] == 1 ? 0 : idx) * st[d];
    }
    out[off] = combine(out[off], x[i]);
  }
  return out;
}

double add2(double a, double b) { return a + b; }
double max2(double a, double b) { return std::max(a, b); }
double min2(double a, double b) { return std::min(a, b); }

const std::vector<std::vector<int>> kDimSets = {{}, {0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {-1}};

std::vector<int> resolved(const std::vector<int>& dims, int rank) {
  if (dims.empty()) return {0, 1, 2};
  std::vector<int> out;
  for (int d : dims) out.push_back(d < 0 ? d + rank : d);
  return out;
}

}  // namespace

TEST_CASE("sum, mean, max, min: forward against float64 reference over every dim set") {
  const Shape shape{2, 3, 4};
  const Tensor x = test::distinct_tensor(shape, 5, 0.1);
  const std::vector<double> v = x.to_vector<double>();
  for (const auto& dims : kDimSets) {
    const auto rd = resolved(dims, 3);
    INFO("dims size ", dims.size());
    const std::vector<double> s = reference(v, shape, rd, 0, add2);
    test::expect_close(sum(x, dims, true), s, 1e-14, 1e-14);
    int64_t n = 1;
    for (int d : rd) n *= shape[d];
    std::vector<double> m = s;
    for (double& e : m) e /= static_cast<double>(n);
    test::expect_close(mean(x, dims, true), m, 1e-14, 1e-14);
    test::expect_close(max(x, dims, true), reference(v, shape, rd, -INFINITY, max2), 0, 0);
    test::expect_close(min(x, dims, true), reference(v, shape, rd, INFINITY, min2), 0, 0);
    CHECK(sum(x, dims).dim() == 3 - static_cast<int>(rd.size()));
  }
}

TEST_CASE("var: unbiased and biased against float64 reference") {
  const Tensor x = test::random_tensor({5, 6}, 7);
  const std::vector<double> v = x.to_vector<double>();
  for (int64_t correction : {0, 1}) {
    std::vector<double> expected;
    for (int c = 0; c < 6; ++c) {
      double m = 0, ss = 0;
      for (int r = 0; r < 5; ++r) m += v[r * 6 + c] / 5;
      for (int r = 0; r < 5; ++r) ss += (v[r * 6 + c] - m) * (v[r * 6 + c] - m);
      expected.push_back(ss / static_cast<double>(5 - correction));
    }
    test::expect_close(var(x, {0}, correction), expected, 1e-13, 1e-15);
  }
}

TEST_CASE("argmax: first maximum, per dim and flattened") {
  const Tensor x = Tensor::from_vector<float>({1, 5, 5, 2, 9, 9, 0, 3}, {2, 4});
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 1});
  CHECK(argmax(x, 1, true).shape() == Shape{2, 1});
  CHECK(argmax(x).item() == 4);
  const Tensor n = Tensor::from_vector<float>({1, std::numeric_limits<float>::quiet_NaN(), 3}, {3});
  CHECK(argmax(n).item() == 1);  // NaN counts as the maximum, as in PyTorch
}

TEST_CASE("reductions: long rows are chunked yet exact and thread-count independent") {
  // 1e6 values whose exact sum is known: the float64 accumulator makes the float32 sum exact.
  const int64_t n = 1000000;
  const Tensor ones = Tensor::ones({n});
  CHECK(sum(ones).item() == static_cast<double>(n));
  const Tensor x = test::random_tensor({n}, 9, -1, 1, DType::f32);
  const double s2 = sum(x).item();
  const int before = num_threads();
  set_num_threads(1);
  const double s1 = sum(x).item();
  set_num_threads(before);
  CHECK(s1 == s2);
}

TEST_CASE("reductions: gradient check") {
  Tensor x = test::distinct_tensor({3, 4, 5}, 3, 0.05).set_requires_grad();
  for (const auto& dims : kDimSets) {
    INFO("dims size ", dims.size());
    test::gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], dims); }, {x});
    test::gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], dims, true); }, {x});
    test::gradcheck([&](const std::vector<Tensor>& in) { return max(in[0], dims); }, {x});
    test::gradcheck([&](const std::vector<Tensor>& in) { return min(in[0], dims); }, {x});
  }
  test::gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], {0, 2}); }, {x});
}

TEST_CASE("sum_to inverts broadcasting") {
  Tensor x = test::random_tensor({2, 3, 4}, 4).set_requires_grad();
  CHECK(sum_to(x, {3, 1}).shape() == Shape{3, 1});
  CHECK(sum_to(x, {4}).shape() == Shape{4});
  test::expect_close(sum_to(x, {}), {sum(x).item()}, 1e-14, 1e-14);
  test::gradcheck([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1}); }, {x});
  CHECK_THROWS_WITH_AS(sum_to(x, {5}), doctest::Contains("sum_to: [2,3,4] cannot be summed to [5]"), Error);
}

TEST_CASE("reductions: CPU/CUDA parity") {
  Tensor x = test::distinct_tensor({6, 7, 8}, 8, 0.01).set_requires_grad();
  for (const auto& dims : kDimSets) {
    test::check_parity([&](const std::vector<Tensor>& in) { return sum(in[0], dims); }, {x});
    test::check_parity([&](const std::vector<Tensor>& in) { return max(in[0], dims); }, {x});
    test::check_parity([&](const std::vector<Tensor>& in) { return min(in[0], dims, true); }, {x});
  }
  test::check_parity([](const std::vector<Tensor>& in) { return var(in[0], {1}); }, {x});
  test::check_parity([](const std::vector<Tensor>& in) { return argmax(in[0], 1).to(DType::f32); }, {x.detach()});
  Tensor big = test::random_tensor({300000}, 9, -1, 1);
  test::check_parity([](const std::vector<Tensor>& in) { return sum(in[0]); }, {big}, 1e-5, 1e-4);
}

TEST_CASE("reduction errors") {
  const Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("sum: dim 2 out of range for a 2-d tensor"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {1, 1}), doctest::Contains("sum: a dim is repeated"), Error);
  CHECK_THROWS_WITH_AS(max(Tensor::zeros({2, 0}), {1}), doctest::Contains("max: reduction over an empty dim"), Error);
  CHECK_THROWS_WITH_AS(var(Tensor::zeros({1, 3}), {0}), doctest::Contains("var: 1 elements leave no degrees of freedom"), Error);
}
