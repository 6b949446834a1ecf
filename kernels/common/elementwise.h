#pragma once
// Per-element math of the unary and binary ops, shared by the CPU loops and the CUDA kernels.
// Each unary op has f (the value) and df (dy/dx times the incoming gradient g, given x and y).
// Adding a unary op: a struct here, one line in LETHE_UNARY_OPS, and its function in engine/ops.
#include <cmath>
#include <type_traits>

#include "kernels/common/exp.h"
#include "kernels/common/hd.h"

namespace lethe {

// Scalars an op may take (exponent, bounds, slope, the scalar operand).
struct UnaryParams {
  double a = 0, b = 0;
};

namespace ew {

// Float arguments must reach the float overloads (expf, not exp) on both sides.
using std::exp;
using std::log;
using std::log1p;
using std::pow;
using std::sqrt;
using std::tanh;

template <class T>
LETHE_HD T sgn(T x) { return static_cast<T>((T(0) < x) - (x < T(0))); }

struct Neg {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return -x; }
  template <class T> LETHE_HD static T df(T, T, T g, UnaryParams) { return -g; }
};
struct Exp {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return exp(x); }
  template <class T> LETHE_HD static T df(T, T y, T g, UnaryParams) { return g * y; }
};
struct Log {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return log(x); }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams) { return g / x; }
};
struct Sqrt {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return sqrt(x); }
  template <class T> LETHE_HD static T df(T, T y, T g, UnaryParams) { return g / (T(2) * y); }
};
struct Abs {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return x < T(0) ? -x : x; }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams) { return g * sgn(x); }
};
struct Sign {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return sgn(x); }
  template <class T> LETHE_HD static T df(T, T, T, UnaryParams) { return T(0); }
};
struct Relu {  // the kink at 0 gets gradient 0, as in PyTorch
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return x > T(0) ? x : T(0); }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams) { return x > T(0) ? g : T(0); }
};
struct LeakyRelu {  // a = negative slope
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return x > T(0) ? x : T(p.a) * x; }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams p) { return x > T(0) ? g : T(p.a) * g; }
};
struct Sigmoid {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return T(1) / (T(1) + exp(-x)); }
  template <class T> LETHE_HD static T df(T, T y, T g, UnaryParams) { return g * y * (T(1) - y); }
};
struct Tanh {
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return tanh(x); }
  template <class T> LETHE_HD static T df(T, T y, T g, UnaryParams) { return g * (T(1) - y * y); }
};
// silu's e^x: in float math::exp_float, whose CPU loops vectorise and whose bits the GPU repeats
// (ddpm-s spends a fifth of its step in silu otherwise). The other ops keep exp: the recorded
// results of the models that use them were computed with it.
template <class T>
LETHE_HD T silu_exp(T x) {
  if constexpr (std::is_same_v<T, float>) return math::exp_float(x);
  else return exp(x);
}

struct Silu {  // x·sigmoid(x); d/dx = s·(1 + x·(1 − s)) with s = sigmoid(x)
  template <class T> LETHE_HD static T f(T x, UnaryParams) { return x / (T(1) + silu_exp(-x)); }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams) {
    const T s = T(1) / (T(1) + silu_exp(-x));
    return g * s * (T(1) + x * (T(1) - s));
  }
};
struct Pow {  // a = exponent
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return pow(x, T(p.a)); }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams p) {
    return p.a == 0 ? T(0) : g * T(p.a) * pow(x, T(p.a - 1));
  }
};
struct Clamp {  // [a, b]; the gradient passes where a <= x <= b
  template <class T> LETHE_HD static T f(T x, UnaryParams p) {
    return x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x);
  }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams p) {
    return (x >= T(p.a) && x <= T(p.b)) ? g : T(0);
  }
};
struct AddScalar {
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return x + T(p.a); }
  template <class T> LETHE_HD static T df(T, T, T g, UnaryParams) { return g; }
};
struct MulScalar {
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return x * T(p.a); }
  template <class T> LETHE_HD static T df(T, T, T g, UnaryParams p) { return g * T(p.a); }
};
struct DivScalar {
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return x / T(p.a); }
  template <class T> LETHE_HD static T df(T, T, T g, UnaryParams p) { return g / T(p.a); }
};
struct RsubScalar {  // a - x
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return T(p.a) - x; }
  template <class T> LETHE_HD static T df(T, T, T g, UnaryParams) { return -g; }
};
struct RdivScalar {  // a / x
  template <class T> LETHE_HD static T f(T x, UnaryParams p) { return T(p.a) / x; }
  template <class T> LETHE_HD static T df(T x, T, T g, UnaryParams p) { return -g * T(p.a) / (x * x); }
};

// Binary ops: the value only; their gradients are composed from other ops in engine/ops.
struct Add { template <class T> LETHE_HD static T f(T a, T b) { return a + b; } };
struct Sub { template <class T> LETHE_HD static T f(T a, T b) { return a - b; } };
struct Mul { template <class T> LETHE_HD static T f(T a, T b) { return a * b; } };
struct Div { template <class T> LETHE_HD static T f(T a, T b) { return a / b; } };
struct Maximum { template <class T> LETHE_HD static T f(T a, T b) { return a >= b ? a : b; } };
struct Minimum { template <class T> LETHE_HD static T f(T a, T b) { return a <= b ? a : b; } };
struct Eq { template <class T> LETHE_HD static T f(T a, T b) { return a == b ? T(1) : T(0); } };
struct Lt { template <class T> LETHE_HD static T f(T a, T b) { return a < b ? T(1) : T(0); } };
struct Gt { template <class T> LETHE_HD static T f(T a, T b) { return a > b ? T(1) : T(0); } };
// Binary cross-entropy of logit a against target b, in the form that neither overflows nor loses
// the small losses of large |a|: max(a, 0) − a·b + log1p(exp(−|a|)).
struct BceWithLogits {
  template <class T> LETHE_HD static T f(T a, T b) {
    const T magnitude = a > T(0) ? a : -a;  // (compared with > so unsigned types compile cleanly)
    return (a > T(0) ? a : T(0)) - a * b + log1p(exp(-magnitude));
  }
};

}  // namespace ew

// X-macro lists: the launchers switch over these to instantiate one loop per op.
#define LETHE_UNARY_OPS(X)                                                                      \
  X(neg, Neg) X(exp, Exp) X(log, Log) X(sqrt, Sqrt) X(abs, Abs) X(sign, Sign) X(relu, Relu)    \
  X(leaky_relu, LeakyRelu) X(sigmoid, Sigmoid) X(tanh, Tanh) X(silu, Silu) X(pow, Pow)         \
  X(clamp, Clamp)                                                                              \
  X(add_scalar, AddScalar) X(mul_scalar, MulScalar) X(div_scalar, DivScalar)                   \
  X(rsub_scalar, RsubScalar) X(rdiv_scalar, RdivScalar)
#define LETHE_BINARY_OPS(X) \
  X(add, Add) X(sub, Sub) X(mul, Mul) X(div, Div) X(maximum, Maximum) X(minimum, Minimum) X(eq, Eq) X(lt, Lt) X(gt, Gt) \
  X(bce_with_logits, BceWithLogits)

#define LETHE_ENUM_ENTRY(name, type) name,
enum class UnaryOp { LETHE_UNARY_OPS(LETHE_ENUM_ENTRY) };
enum class BinaryOp { LETHE_BINARY_OPS(LETHE_ENUM_ENTRY) };
#undef LETHE_ENUM_ENTRY

}  // namespace lethe
