// The elementwise ops' cases (tests/op_registry.h): the unary ops and scalar arithmetic, the binary
// ops under every kind of broadcast, sign and the comparisons.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

struct Unary {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double lo, hi;  // input range (keeps log/sqrt/pow in their domain, away from kinks)
  // The CPU and the GPU compute the same bits (README "Determinism"): parity without tolerance.
  bool bitwise_parity = false;
};

std::vector<Unary> unary_ops() {
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
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x / (1 + std::exp(-x)); }, -4, 4, true},
      {"add/scalar", [](const Tensor& x) { return x + 1.5; }, [](double x) { return x + 1.5; }, -2, 2},
      {"sub/scalar", [](const Tensor& x) { return x - 1.5; }, [](double x) { return x - 1.5; }, -2, 2},
      {"rsub", [](const Tensor& x) { return 1.5 - x; }, [](double x) { return 1.5 - x; }, -2, 2},
      {"mul/scalar", [](const Tensor& x) { return x * -3.0; }, [](double x) { return x * -3; }, -2, 2},
      {"div/scalar", [](const Tensor& x) { return x / 4.0; }, [](double x) { return x / 4; }, -2, 2},
      {"rdiv", [](const Tensor& x) { return 2.0 / x; }, [](double x) { return 2 / x; }, 0.5, 2},
  };
}

// f applied to every element of the one input.
Reference elementwise_reference(std::function<double(double)> f) {
  return [f](const V& in) {
    std::vector<double> y;
    for (double v : in[0].to_vector<double>()) y.push_back(f(v));
    return expected(y, in[0].shape());
  };
}

// Inputs for kinked ops are kept away from the kink by more than the finite-difference step.
Input away_from_kinks(Input in) {
  in.what += ", moved off the kinks 0, -0.5 and 0.7";
  in.make = [make = in.make] {
    const Tensor x = make();
    std::vector<double> v = x.to_vector<double>();
    for (double& e : v)
      for (double k : {0.0, -0.5, 0.7})
        if (std::abs(e - k) < 1e-3) e = k + 1e-2;
    return Tensor::from_vector(v, x.shape());
  };
  return in;
}

OpCase unary_case(const Unary& u) {
  return {.name = u.name,
          .fn = [op = u.op](const V& in) { return op(in[0]); },
          .forward = ForwardCheck{{uniform({3, 5, 7}, 11, u.lo, u.hi).grad()}, elementwise_reference(u.ref),
                                  {{DType::f64, 1e-12, 1e-14}, {DType::f32, 2e-6, 1e-6}}},
          .gradcheck = GradCheck{{away_from_kinks(uniform({4, 6}, 12, u.lo, u.hi)).grad()}},
          .parity = u.bitwise_parity ? ParityCheck{{uniform({33, 65}, 13, u.lo, u.hi).grad()}, 0, 0}
                                     : ParityCheck{{uniform({33, 65}, 13, u.lo, u.hi).grad()}}};
}

struct Binary {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};

// Reference broadcasting: the element of an operand of `shape` at a linear index of `out`.
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

Reference broadcast_reference(std::function<double(double, double)> f) {
  return [f](const V& in) {
    const Shape out = broadcast_shapes(in[0].shape(), in[1].shape(), "reference");
    const std::vector<double> a = in[0].to_vector<double>(), b = in[1].to_vector<double>();
    std::vector<double> y;
    for (int64_t i = 0; i < out.numel(); ++i) y.push_back(f(at(a, in[0].shape(), out, i), at(b, in[1].shape(), out, i)));
    return expected(y, out);
  };
}

// "4x5", or "scalar" for a 0-d shape.
std::string label(const Shape& s) {
  std::string out;
  for (int d = 0; d < s.size(); ++d) {
    if (d > 0) out += 'x';
    out += std::to_string(s[d]);
  }
  return out.empty() ? "scalar" : out;
}

OpCase binary_case(const Binary& b, const Shape& sa, const Shape& sb) {
  return {.name = std::string(b.name) + "/" + label(sa) + "-by-" + label(sb),
          .fn = [op = b.op](const V& in) { return op(in[0], in[1]); },
          .forward = ForwardCheck{{uniform(sa, 21, 0.5, 2).grad(), uniform(sb, 22, 0.5, 2).grad()},
                                  broadcast_reference(b.ref), {{DType::f64, 1e-15, 0}}},
          // a > b: maximum and minimum see no ties.
          .gradcheck = GradCheck{{uniform(sa, 31, 0.5, 2).grad(), uniform(sb, 32, -2, -0.5).grad()}},
          .parity = ParityCheck{{uniform(sa, 41, 0.5, 2).grad(), uniform(sb, 42, 0.5, 2).grad()}}};
}

// Whole numbers 0, 1, 2 as float64: operands with many ties for the comparisons.
Input small_integers(const Shape& shape, uint64_t seed) {
  return made("integers 0..2 " + shape.str() + " seed " + std::to_string(seed), [=] {
    std::vector<double> v = random_tensor(shape, seed, 0, 3).to_vector<double>();
    for (double& e : v) e = std::floor(e);
    return Tensor::from_vector(v, shape);
  });
}

OpCase comparison_case(const Binary& b) {
  return {.name = b.name,
          .fn = [op = b.op](const V& in) { return op(in[0], in[1]); },
          .forward = ForwardCheck{{small_integers({4, 5}, 51), small_integers({1, 5}, 52)}, broadcast_reference(b.ref),
                                  {{DType::f64, 0, 0}, {DType::f32, 0, 0}}},
          .parity = ParityCheck{{small_integers({33, 65}, 53), small_integers({33, 65}, 54)}, 0, 0}};
}

}  // namespace

LETHE_OP_CASES(elementwise) {
  std::vector<OpCase> cases;
  for (const Unary& u : unary_ops()) cases.push_back(unary_case(u));
  cases.push_back({.name = "sign",
                   .fn = [](const V& in) { return sign(in[0]); },
                   .forward = ForwardCheck{{made("[-2, 0, 3]", [] { return Tensor::from_vector<double>({-2, 0, 3}, {3}); })},
                                           elementwise_reference([](double x) { return double((x > 0) - (x < 0)); }),
                                           {{DType::f64, 0, 0}, {DType::f32, 0, 0}}},
                   .parity = ParityCheck{{uniform({33, 65}, 13).grad()}}});

  const std::vector<Binary> binary{
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
  };
  // Same shape, row, column and row, leading dims missing, scalar, and both sides broadcast.
  const std::vector<std::pair<Shape, Shape>> shapes{{{4, 5}, {4, 5}}, {{4, 5}, {1, 5}}, {{4, 1}, {1, 5}},
                                                    {{2, 4, 5}, {5}}, {{4, 5}, {}},     {{3, 1, 5}, {2, 1}}};
  for (const Binary& b : binary)
    for (const auto& [sa, sb] : shapes) cases.push_back(binary_case(b, sa, sb));

  for (const Binary& b : std::vector<Binary>{
           {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, [](double a, double b) { return double(a == b); }},
           {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, [](double a, double b) { return double(a < b); }},
           {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, [](double a, double b) { return double(a > b); }}})
    cases.push_back(comparison_case(b));
  return cases;
}
