// Elementwise ops beyond the op registry's table (tests/op_cases_elementwise.cpp has their
// forward, gradient and parity checks): what the comparisons return, the errors, and the float
// e^x silu computes with against float64 over its whole range.
#include <cmath>
#include <cstring>
#include <limits>

#include "harness.h"
#include "kernels/common/elementwise.h"
#include "kernels/common/exp.h"

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

namespace {

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The spacing of floats around |v| (the subnormals' spacing below the normal range).
double float_ulp(double v) {
  const float f = static_cast<float>(std::fabs(v));
  return std::max<double>(std::nextafter(f, std::numeric_limits<float>::infinity()) - f,
                          std::numeric_limits<float>::denorm_min());
}

}  // namespace

TEST_CASE("math::exp_float: within 1 ulp of e^x everywhere, and its limits") {
  // Every 4,099th float from -104 to 88.72 (about 546,000 of them, both signs), whose results run
  // from 0 through the subnormals to the largest float.
  double worst = 0;
  float worst_at = 0;
  int64_t checked = 0;
  for (const uint32_t sign : {0u, 0x80000000u})
    for (uint32_t bits = 0; bits < 0x7f800000u; bits += 4099) {
      const float x = float_from_bits(sign | bits);
      if (x < -104.0f || x > 88.72f) continue;
      const double exact = std::exp(static_cast<double>(x));
      const double error = std::fabs(static_cast<double>(math::exp_float(x)) - exact) / float_ulp(exact);
      if (error > worst) worst = error, worst_at = x;
      ++checked;
    }
  INFO("worst error ", worst, " ulp at x = ", worst_at, " over ", checked, " arguments");
  CHECK(checked > 400000);
  CHECK(worst < 1.0);
  CHECK(math::exp_float(0.0f) == 1.0f);
  CHECK(math::exp_float(1.0f) == static_cast<float>(std::exp(1.0)));
  CHECK(math::exp_float(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(math::exp_float(-110.0f) == 0.0f);
  CHECK(std::isinf(math::exp_float(88.73f)));
  CHECK(std::isinf(math::exp_float(std::numeric_limits<float>::infinity())));
  CHECK(std::isfinite(math::exp_float(88.72f)));
  CHECK(std::isnan(math::exp_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("silu: the CPU's vectorised loops give the scalar math's bits") {
  // Loops the compiler vectorises and the scalar function must agree bit for bit: that is what lets
  // the GPU, which runs the scalar function per thread, give the CPU's values.
  const Tensor x = test::random_tensor({4099}, 80, -30, 30, DType::f32);
  const Tensor g = test::random_tensor({4099}, 81, -1, 1, DType::f32);
  const std::vector<float> xs = x.to_vector<float>(), gs = g.to_vector<float>();
  Tensor xg = x.clone().set_requires_grad();
  const Tensor y = silu(xg);
  sum(mul(y, g)).backward();
  const std::vector<float> ys = y.to_vector<float>(), dxs = xg.grad().to_vector<float>();
  int64_t differ = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const float v = ew::Silu::f(xs[i], UnaryParams{}), d = ew::Silu::df(xs[i], ys[i], gs[i], UnaryParams{});
    differ += (std::memcmp(&ys[i], &v, sizeof v) != 0) + (std::memcmp(&dxs[i], &d, sizeof d) != 0);
  }
  CHECK(differ == 0);
}
