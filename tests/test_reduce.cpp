// Reductions beyond the op registry's table (tests/op_cases_reduce.cpp has their forward,
// gradient and parity checks): argmax's ties and NaN, long rows summed exactly whatever the
// thread count, every row summed in its own order bit for bit, sum_to's shapes, and the errors.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/common/reduce.h"
#include "kernels/cpu/parallel.h"
#include "harness.h"

using namespace lethe;

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

TEST_CASE("reductions: each row's sum is its own chunked float64 sum in index order, bit for bit") {
  // The CPU steps eight rows at a time; each row must still see its elements as if alone: chunks of
  // kReduceChunk summed in order, then the chunks' sums in order. Rows contiguous (inner 1) and
  // interleaved (inner > 1), counts that are and are not multiples of eight, rows of two chunks.
  struct Case {
    Shape shape;
    int dim;
  };
  for (const Case& c : {Case{{13, 300}, 1}, Case{{300, 13}, 0}, Case{{16, 77}, 1}, Case{{3, kReduceChunk + 9, 5}, 1}}) {
    // float64 values of magnitudes 2^-40 to 2^40: their sums round, so the order shows in the bits
    // (float32 inputs, summed in float64 and rounded to float32, would hide it).
    std::vector<double> v = test::random_tensor(c.shape, 90, -1, 1).to_vector<double>();
    const std::vector<double> ev = test::random_tensor(c.shape, 91, -40, 40).to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(v[i], static_cast<int>(ev[i]));
    const Tensor x = Tensor::from_vector(v, c.shape);
    const std::vector<double> got = sum(x, {c.dim}).to_vector<double>();
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < c.dim; ++d) outer *= c.shape[d];
    for (int d = c.dim + 1; d < static_cast<int>(c.shape.size()); ++d) inner *= c.shape[d];
    const int64_t k = c.shape[c.dim];
    int64_t differ = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        double total = 0;
        for (int64_t start = 0; start < k; start += kReduceChunk) {
          double chunk = 0;
          for (int64_t i = start; i < std::min(k, start + kReduceChunk); ++i)
            chunk += v[(o * k + i) * inner + in];
          total = start == 0 ? chunk : total + chunk;
        }
        differ += std::memcmp(&total, &got[o * inner + in], sizeof total) != 0;
      }
    INFO("shape ", x.str(), ", dim ", c.dim);
    CHECK(differ == 0);
  }
}

TEST_CASE("sum_to inverts broadcasting") {
  const Tensor x = test::random_tensor({2, 3, 4}, 4);
  CHECK(sum_to(x, {3, 1}).shape() == Shape{3, 1});
  CHECK(sum_to(x, {4}).shape() == Shape{4});
  test::expect_close(sum_to(x, {}), {sum(x).item()}, 1e-14, 1e-14);
  CHECK_THROWS_WITH_AS(sum_to(x, {5}), doctest::Contains("sum_to: [2,3,4] cannot be summed to [5]"), Error);
}

TEST_CASE("a sum over no elements is 0, as PyTorch's") {
  // An empty batch reaches sum() through the losses and the bias gradients (it divided by zero).
  CHECK(sum(Tensor::zeros({0})).item() == 0.0);
  const Tensor rows = sum(Tensor::zeros({3, 0}), {1});
  CHECK(rows.shape() == Shape{3});
  CHECK(rows.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(sum(Tensor::zeros({0, 4}), {0}).to_vector<float>() == std::vector<float>{0, 0, 0, 0});
}

TEST_CASE("reduction errors") {
  const Tensor x = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(sum(x, {2}), doctest::Contains("sum: dim 2 out of range for a 2-d tensor"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {1, 1}), doctest::Contains("sum: a dim is repeated"), Error);
  CHECK_THROWS_WITH_AS(max(Tensor::zeros({2, 0}), {1}), doctest::Contains("max: reduction over an empty dim"), Error);
  CHECK_THROWS_WITH_AS(var(Tensor::zeros({1, 3}), {0}), doctest::Contains("var: 1 elements leave no degrees of freedom"), Error);
}
