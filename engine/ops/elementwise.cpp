// Elementwise ops: unary ops share one generic backward (the op's df in the math header);
// binary ops broadcast and compose their gradients from other ops.
#include "engine/autograd.h"
#include "engine/layout.h"
#include "engine/ops.h"
#include "kernels/elementwise.h"

namespace lethe {

namespace {

Tensor unary_op(const char* name, UnaryOp op, const Tensor& x_in, UnaryParams p = {}) {
  LETHE_CHECK(x_in.defined(), name, "undefined input");
  LETHE_CHECK(is_floating(x_in.dtype()), name, "needs a floating tensor, got ", x_in.str());
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), unary, op, x, y, p);
  autograd::record(name, y, {&x_in}, [op, p, sx = autograd::Saved(x), sy = autograd::Saved(y)](
                                         const Tensor& g_in, autograd::Needs) {
    const Tensor xv = sx.get(), yv = sy.get(), g = g_in.contiguous();
    Tensor gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
    LETHE_DISPATCH(xv.device(), unary_backward, op, xv, yv, g, gx, p);
    return std::vector<Tensor>{gx};
  });
  return y;
}

Tensor binary_forward(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  LETHE_CHECK(a.defined() && b.defined(), name, "undefined input");
  LETHE_CHECK(a.dtype() == b.dtype(), name, "dtypes differ: ", a.str(), " and ", b.str());
  LETHE_CHECK(a.device() == b.device(), name, "devices differ: ", a.str(), " and ", b.str());
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    // Same-shape contiguous operands are read as one flat run of elements.
    const Tensor fa = a.detach().view({shape.numel()}), fb = b.detach().view({shape.numel()});
    LETHE_DISPATCH(a.device(), binary, op, fa, layout_of(fa), fb, layout_of(fb), out);
    return out;
  }
  LETHE_DISPATCH(a.device(), binary, op, a, broadcast_layout(a, shape), b, broadcast_layout(b, shape), out);
  return out;
}

// A binary op whose gradients (before summing out broadcast dims) are ga(g) and gb(g).
template <class Rule>
Tensor binary_op(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, Rule rule) {
  Tensor out = binary_forward(name, op, a, b);
  if (autograd::needs_grad({&a, &b})) {
    LETHE_CHECK(is_floating(a.dtype()), name, "gradients need floating tensors, got ", a.str());
    autograd::record(name, out, {&a, &b},
                     [rule, sa = autograd::Saved(a), sb = autograd::Saved(b)](const Tensor& g, autograd::Needs needs) {
                       const Tensor av = sa.get(), bv = sb.get();
                       auto [ga, gb] = rule(g, av, bv, needs);
                       return std::vector<Tensor>{needs[0] ? sum_to(ga, av.shape()) : Tensor(),
                                                  needs[1] ? sum_to(gb, bv.shape()) : Tensor()};
                     });
  }
  return out;
}

using Grads = std::pair<Tensor, Tensor>;

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_op("add", BinaryOp::add, a, b,
                   [](const Tensor& g, const Tensor&, const Tensor&, autograd::Needs) { return Grads{g, g}; });
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary_op("sub", BinaryOp::sub, a, b, [](const Tensor& g, const Tensor&, const Tensor&, autograd::Needs n) {
    return Grads{g, n[1] ? neg(g) : Tensor()};
  });
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_op("mul", BinaryOp::mul, a, b, [](const Tensor& g, const Tensor& x, const Tensor& y, autograd::Needs n) {
    return Grads{n[0] ? mul(g, y) : Tensor(), n[1] ? mul(g, x) : Tensor()};
  });
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary_op("div", BinaryOp::div, a, b, [](const Tensor& g, const Tensor& x, const Tensor& y, autograd::Needs n) {
    return Grads{n[0] ? div(g, y) : Tensor(), n[1] ? neg(div(mul(g, x), mul(y, y))) : Tensor()};
  });
}
// Ties send the whole gradient to a, as the forward picks a.
Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary_op("maximum", BinaryOp::maximum, a, b, [](const Tensor& g, const Tensor& x, const Tensor& y, autograd::Needs) {
    const Tensor b_wins = gt(y, x);
    return Grads{mul(g, rsub(1, b_wins)), mul(g, b_wins)};
  });
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary_op("minimum", BinaryOp::minimum, a, b, [](const Tensor& g, const Tensor& x, const Tensor& y, autograd::Needs) {
    const Tensor b_wins = lt(y, x);
    return Grads{mul(g, rsub(1, b_wins)), mul(g, b_wins)};
  });
}

Tensor eq(const Tensor& a, const Tensor& b) { return binary_forward("eq", BinaryOp::eq, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_forward("lt", BinaryOp::lt, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_forward("gt", BinaryOp::gt, a, b); }

Tensor add(const Tensor& a, double s) { return unary_op("add", UnaryOp::add_scalar, a, {s}); }
Tensor sub(const Tensor& a, double s) { return unary_op("sub", UnaryOp::add_scalar, a, {-s}); }
Tensor rsub(double s, const Tensor& a) { return unary_op("rsub", UnaryOp::rsub_scalar, a, {s}); }
Tensor mul(const Tensor& a, double s) { return unary_op("mul", UnaryOp::mul_scalar, a, {s}); }
Tensor div(const Tensor& a, double s) { return unary_op("div", UnaryOp::div_scalar, a, {s}); }
Tensor rdiv(double s, const Tensor& a) { return unary_op("rdiv", UnaryOp::rdiv_scalar, a, {s}); }

Tensor neg(const Tensor& x) { return unary_op("neg", UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::sqrt, x); }
Tensor abs(const Tensor& x) { return unary_op("abs", UnaryOp::abs, x); }
Tensor sign(const Tensor& x) { return unary_op("sign", UnaryOp::sign, x); }
Tensor pow(const Tensor& x, double e) { return unary_op("pow", UnaryOp::pow, x, {e}); }
Tensor clamp(const Tensor& x, double lo, double hi) {
  LETHE_CHECK(lo <= hi, "clamp", "lower bound ", lo, " above upper bound ", hi);
  return unary_op("clamp", UnaryOp::clamp, x, {lo, hi});
}
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::relu, x); }
Tensor leaky_relu(const Tensor& x, double slope) { return unary_op("leaky_relu", UnaryOp::leaky_relu, x, {slope}); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::tanh, x); }
Tensor silu(const Tensor& x) { return unary_op("silu", UnaryOp::silu, x); }

// d/dx = sigmoid(x) − t, d/dt = −x.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  const char* name = "binary_cross_entropy_with_logits";
  LETHE_CHECK(logits.defined() && targets.defined(), name, "undefined input");
  LETHE_CHECK(logits.shape() == targets.shape(), name, "shapes differ: logits ", logits.str(), ", targets ",
              targets.str());
  LETHE_CHECK(is_floating(logits.dtype()), name, "needs floating tensors, got ", logits.str());
  const Tensor loss = binary_op(name, BinaryOp::bce_with_logits, logits, targets,
                                [](const Tensor& g, const Tensor& x, const Tensor& t, autograd::Needs n) {
                                  return Grads{n[0] ? mul(g, sub(sigmoid(x), t)) : Tensor(), n[1] ? mul(g, neg(x)) : Tensor()};
                                });
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
  }
  LETHE_FAIL(name, "unknown reduction");
}

}  // namespace lethe
