#include <cmath>
#include <functional>
#include <string>

#include "harness.h"

using namespace lethe;
using lethe::test::Fn;

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;  // input range (keeps log/sqrt/pow in their domain, away from kinks)
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.2, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.2, 3},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, -2, 2},
      {"pow", [](const Tensor& x) { return pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }, 0.2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(0.7, std::max(-0.5, x)); }, -2, 2},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, -2, 2},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1); },
       [](double x) { return x > 0 ? x : 0.1 * x; }, -2, 2},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, -3, 3},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -3, 3},
      {"add scalar", [](const Tensor& x) { return x + 1.5; }, [](double x) { return x + 1.5; }, -2, 2},
      {"sub scalar", [](const Tensor& x) { return x - 1.5; }, [](double x) { return x - 1.5; }, -2, 2},
      {"rsub scalar", [](const Tensor& x) { return 1.5 - x; }, [](double x) { return 1.5 - x; }, -2, 2},
      {"mul scalar", [](const Tensor& x) { return x * -3.0; }, [](double x) { return x * -3; }, -2, 2},
      {"div scalar", [](const Tensor& x) { return x / 4.0; }, [](double x) { return x / 4; }, -2, 2},
      {"rdiv scalar", [](const Tensor& x) { return 2.0 / x; }, [](double x) { return 2 / x; }, 0.5, 2},
  };
}

// Inputs for kinked ops are kept away from the kink by more than the finite-difference step.
Tensor away_from_kinks(const Tensor& x) {
  std::vector<double> v = x.to_vector<double>();
  for (double& e : v)
    for (double k : {0.0, -0.5, 0.7})
      if (std::abs(e - k) < 1e-3) e = k + 1e-2;
  return Tensor::from_vector(v, x.shape());
}

}  // namespace

TEST_CASE("unary ops: forward against float64 reference") {
  for (const UnaryCase& c : unary_cases()) {
    INFO(c.name);
    const Tensor x = test::random_tensor({3, 5, 7}, 11, c.lo, c.hi);
    std::vector<double> expected;
    for (double v : x.to_vector<double>()) expected.push_back(c.ref(v));
    test::expect_close(c.op(x), expected, 1e-12, 1e-14);
    test::expect_close(c.op(x.to(DType::f32)), expected, 2e-6, 1e-6);
  }
  CHECK(sign(Tensor::from_vector<double>({-2, 0, 3}, {3})).to_vector<double>() == std::vector<double>{-1, 0, 1});
}

TEST_CASE("unary ops: gradient check") {
  for (const UnaryCase& c : unary_cases()) {
    INFO(c.name);
    Tensor x = away_from_kinks(test::random_tensor({4, 6}, 12, c.lo, c.hi)).set_requires_grad();
    test::gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x});
  }
}

TEST_CASE("unary ops: CPU/CUDA parity") {
  for (const UnaryCase& c : unary_cases()) {
    INFO(c.name);
    Tensor x = test::random_tensor({33, 65}, 13, c.lo, c.hi).set_requires_grad();
    test::check_parity([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x});
  }
}

namespace {
struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};
std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
  };
}
// Broadcast pairs: same shape, row, column, scalar, leading dims missing.
const std::vector<std::pair<Shape, Shape>> kBroadcastShapes = {
    {{4, 5}, {4, 5}}, {{4, 5}, {1, 5}}, {{4, 1}, {1, 5}}, {{2, 4, 5}, {5}}, {{4, 5}, {}}, {{3, 1, 5}, {2, 1}}};

// Reference broadcasting: offsets of an output index into an operand of `shape`.
double at(const std::vector<double>& v, const Shape& shape, const Shape& out, int64_t linear) {
  int64_t off = 0, stride = 1;
  for (int d = out.size() - 1, s = shape.size() - 1; d >= 0; --d, --s) {
    const int64_t i = linear % out[d];
    linear /= out[d];
    if (s >= 0) {
      off += (shape[s] == 1 ? 0 : i) * stride;
      stride *= shape[s];
    }
  }
  return v[off];
}
}  // namespace

TEST_CASE("binary ops: forward with broadcasting against float64 reference") {
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : kBroadcastShapes) {
      INFO(c.name, " ", sa.str(), " ", sb.str());
      const Tensor a = test::random_tensor(sa, 21, 0.5, 2), b = test::random_tensor(sb, 22, 0.5, 2);
      const Shape out = broadcast_shapes(sa, sb, "test");
      const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
      std::vector<double> expected;
      for (int64_t i = 0; i < out.numel(); ++i) expected.push_back(c.ref(at(va, sa, out, i), at(vb, sb, out, i)));
      const Tensor y = c.op(a, b);
      CHECK(y.shape() == out);
      test::expect_close(y, expected, 1e-15, 0);
    }
  }
}

TEST_CASE("binary ops: gradient check with broadcasting") {
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : kBroadcastShapes) {
      INFO(c.name, " ", sa.str(), " ", sb.str());
      Tensor a = test::random_tensor(sa, 31, 0.5, 2).set_requires_grad();
      Tensor b = test::random_tensor(sb, 32, -2, -0.5).set_requires_grad();  // a > b: no ties
      test::gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b});
    }
  }
}

TEST_CASE("binary ops: CPU/CUDA parity") {
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : kBroadcastShapes) {
      INFO(c.name, " ", sa.str(), " ", sb.str());
      Tensor a = test::random_tensor(sa, 41, 0.5, 2).set_requires_grad();
      Tensor b = test::random_tensor(sb, 42, 0.5, 2).set_requires_grad();
      test::check_parity([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b});
    }
  }
}

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
