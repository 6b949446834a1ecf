// Elementwise ops beyond the op registry's table (tests/op_cases_elementwise.cpp has their
// forward, gradient and parity checks): what the comparisons return, and the errors.
#include "harness.h"

using namespace lethe;

TEST_CASE("comparisons give 0/1 in the operands' dtype and no gradient") {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3}), b = Tensor::from_vector<float>({2, 2, 2}, {3});
  CHECK(eq(a, b).to_vector<float>() == std::vector<float>{0, 1, 0});
  CHECK(lt(a, b).to_vector<float>() == std::vector<float>{1, 0, 0});
  CHECK(gt(a, b).to_vector<float>() == std::vector<float>{0, 0, 1});
  Tensor x = a.clone().set_requires_grad();
  CHECK_FALSE(gt(x, b).requires_grad());
  const Tensor i = Tensor::from_vector<int64_t>({3, 1}, {2});
  CHECK(eq(i, Tensor::from_vector<int64_t>({3, 2}, {2})).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
}

TEST_CASE("elementwise errors name the op, the shapes, dtypes and devices") {
  const Tensor a = Tensor::zeros({4, 5}), b = Tensor::zeros({3, 5});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [4,5] and [3,5] do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(mul(a, Tensor::zeros({4, 5}, DType::f64)),
                       doctest::Contains("mul: dtypes differ: float32[4,5] on cpu and float64[4,5] on cpu"), Error);
  CHECK_THROWS_WITH_AS(exp(Tensor::zeros({2}, DType::i64)), doctest::Contains("exp: needs a floating tensor"), Error);
  CHECK_THROWS_WITH_AS(clamp(a, 1, 0), doctest::Contains("clamp: lower bound 1 above upper bound 0"), Error);
}
