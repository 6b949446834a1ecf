// The softmax and loss ops' cases (tests/op_registry.h): softmax and log_softmax on every dim,
// cross_entropy with and without sample weights and label smoothing under each reduction (int64
// and int32 labels), nll_loss, mse_loss, binary_cross_entropy_with_logits, and one_hot into every dtype.
#include <cmath>
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

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

std::vector<int64_t> labels_of(const Tensor& labels) { return labels.to(DType::i64).to_vector<int64_t>(); }

// Per-sample cross entropy −(1−ε)·log p_y − ε/C·Σ log p_c, times the sample weight.
std::vector<double> cross_entropy_reference(const Tensor& x, const std::vector<int64_t>& labels,
                                            const std::vector<double>& weight, double eps) {
  const int64_t N = x.size(0), C = x.size(1);
  const std::vector<double> lp = softmax_reference(x.to_vector<double>(), x.shape(), 1, true);
  std::vector<double> loss(N);
  for (int64_t i = 0; i < N; ++i) {
    double all = 0;
    for (int64_t c = 0; c < C; ++c) all += lp[i * C + c];
    loss[i] = -(1 - eps) * lp[i * C + labels[i]] - eps / static_cast<double>(C) * all;
    if (!weight.empty()) loss[i] *= weight[i];
  }
  return loss;
}

// The per-sample losses reduced; mean divides by their count.
Tensor reduced(const std::vector<double>& v, const Shape& shape, Reduction r) {
  if (r == Reduction::none) return expected(v, shape);
  double s = 0;
  for (double e : v) s += e;
  return expected({r == Reduction::sum ? s : s / static_cast<double>(v.size())}, {});
}

std::string name(Reduction r) { return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean"; }

const std::vector<int64_t> kLabels{3, 0, 4, 4, 1, 2};  // N = 6, C = 5

Input labels(DType dtype) {
  return made("labels [3,0,4,4,1,2] " + std::string(dtype_name(dtype)),
              [dtype] { return Tensor::from_vector(kLabels, {6}).to(dtype); });
}

// Weights of both signs (IEU ascends on the forget set with negative weights).
Input signed_weights() {
  return made("sample weights [1,-0.5,2,0,-1.5,0.75]",
              [] { return Tensor::from_vector(std::vector<double>{1.0, -0.5, 2.0, 0.0, -1.5, 0.75}, {6}); });
}

OpCase softmax_case(bool log_out, int dim) {
  const uint64_t seed_offset = log_out ? 1 : 0;  // the two ops' gradcheck and parity inputs differ
  OpCase c{.name = std::string(log_out ? "log_softmax" : "softmax") + "/dim" + std::to_string(dim),
           .fn = [log_out, dim](const V& t) { return log_out ? log_softmax(t[0], dim) : softmax(t[0], dim); },
           .forward = ForwardCheck{{uniform({3, 4, 5}, 1, -3, 3).grad()},
                                   [log_out, dim](const V& t) {
                                     const int d = dim < 0 ? dim + t[0].dim() : dim;
                                     return expected(softmax_reference(t[0].to_vector<double>(), t[0].shape(), d, log_out), t[0].shape());
                                   },
                                   {{DType::f64, 1e-13, log_out ? 1e-13 : 1e-15}}}};
  if (dim >= 0) {
    c.gradcheck = GradCheck{{uniform({2, 3, 4}, 2 + seed_offset, -2, 2).grad()}};
    c.parity = ParityCheck{{uniform({7, 9, 11}, 4 + seed_offset, -4, 4).grad()}};
  }
  if (!log_out && dim == 1) c.forward->precisions.push_back({DType::f32, 1e-6, 1e-7});
  return c;
}

// Forward with smoothing 0 and 0.1 (int64 and int32 labels), gradcheck and parity with 0 and 0.2.
OpCase cross_entropy_case(bool weighted, double smoothing, Reduction r) {
  std::string variant = name(r) + (weighted ? "-weighted" : "");
  if (smoothing > 0) variant += smoothing == 0.1 ? "-smoothing0.1" : "-smoothing0.2";
  OpCase c{.name = "cross_entropy/" + variant,
           .fn = [=](const V& t) { return cross_entropy(t[0], t[1], CrossEntropyOptions{r, weighted ? t[2] : Tensor(), smoothing}); }};
  if (smoothing != 0.2)
    c.forward = ForwardCheck{{uniform({6, 5}, 10, -3, 3).grad(), labels(DType::i64), signed_weights()},
                             [=](const V& t) {
                               const std::vector<double> per = cross_entropy_reference(
                                   t[0], labels_of(t[1]), weighted ? t[2].to_vector<double>() : std::vector<double>{}, smoothing);
                               return reduced(per, {6}, r);
                             },
                             {{DType::f64, 1e-13, 1e-14, DType::i64}, {DType::f64, 1e-13, 1e-14, DType::i32}}};
  if (smoothing != 0.1) {
    c.gradcheck = GradCheck{{uniform({6, 5}, 11, -2, 2).grad(), labels(DType::i64), signed_weights()}};
    c.parity = ParityCheck{{uniform({6, 5}, 12, -2, 2).grad(), labels(DType::i32), signed_weights()}};
  }
  return c;
}

}  // namespace

LETHE_OP_CASES(softmax) {
  std::vector<OpCase> cases;
  for (bool log_out : {false, true})
    for (int dim : {0, 1, 2, -1}) cases.push_back(softmax_case(log_out, dim));

  const std::vector<Reduction> reductions{Reduction::none, Reduction::sum, Reduction::mean};
  for (bool weighted : {false, true})
    for (double smoothing : {0.0, 0.1, 0.2})
      for (Reduction r : reductions) cases.push_back(cross_entropy_case(weighted, smoothing, r));
  // A batch that spans several CUDA blocks.
  cases.push_back({.name = "cross_entropy/700-rows",
                   .fn = [](const V& t) { return cross_entropy(t[0], t[1]); },
                   .parity = ParityCheck{{uniform({700, 10}, 13, -5, 5).grad(), made("labels (3i mod 10) [700]", [] {
                                            std::vector<int64_t> many(700);
                                            for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int64_t>((i * 3) % 10);
                                            return Tensor::from_vector(many, {700});
                                          })}}});

  for (Reduction r : reductions) {
    cases.push_back({.name = "nll_loss/" + name(r),
                     .fn = [r](const V& t) { return nll_loss(t[0], t[1], r); },
                     .forward = ForwardCheck{{uniform({6, 5}, 20, -4, 0).grad(), labels(DType::i32)},
                                             [r](const V& t) {
                                               const std::vector<double> lp = t[0].to_vector<double>();
                                               const std::vector<int64_t> y = labels_of(t[1]);
                                               std::vector<double> per;
                                               for (size_t i = 0; i < y.size(); ++i) per.push_back(-lp[i * 5 + y[i]]);
                                               return reduced(per, {6}, r);
                                             },
                                             {{DType::f64, 1e-15, 1e-15}}},
                     .gradcheck = GradCheck{{uniform({6, 5}, 21).grad(), labels(DType::i64)}},
                     .parity = ParityCheck{{uniform({6, 5}, 22).grad(), labels(DType::i64)}}});
    cases.push_back({.name = "mse_loss/" + name(r),
                     .fn = [r](const V& t) { return mse_loss(t[0], t[1], r); },
                     .forward = ForwardCheck{{uniform({3, 4}, 30).grad(), uniform({3, 4}, 31).grad()},
                                             [r](const V& t) {
                                               const std::vector<double> a = t[0].to_vector<double>(), b = t[1].to_vector<double>();
                                               std::vector<double> per;
                                               for (size_t i = 0; i < a.size(); ++i) per.push_back((a[i] - b[i]) * (a[i] - b[i]));
                                               return reduced(per, t[0].shape(), r);
                                             },
                                             {{DType::f64, 1e-14, 1e-15}}},
                     .gradcheck = GradCheck{{uniform({3, 4}, 32).grad(), uniform({3, 4}, 33).grad()}},
                     .parity = ParityCheck{{uniform({3, 4}, 34).grad(), uniform({3, 4}, 35).grad()}}});
    // Logits wide enough that exp(−|x|) underflows in float32 at the ends (|x| up to 120), where the
    // naive log(1 + exp(−|x|)) would lose the loss's small tail.
    cases.push_back({.name = "binary_cross_entropy_with_logits/" + name(r),
                     .fn = [r](const V& t) { return binary_cross_entropy_with_logits(t[0], t[1], r); },
                     .forward = ForwardCheck{{uniform({4, 5}, 40, -120, 120).grad(), uniform({4, 5}, 41, 0, 1).grad()},
                                             [r](const V& t) {
                                               const std::vector<double> x = t[0].to_vector<double>(), y = t[1].to_vector<double>();
                                               std::vector<double> per;
                                               for (size_t i = 0; i < x.size(); ++i)  // −[y log σ(x) + (1−y) log(1−σ(x))]
                                                 per.push_back(-(y[i] * -std::log1p(std::exp(-x[i])) +
                                                                 (1 - y[i]) * -std::log1p(std::exp(x[i]))));
                                               return reduced(per, t[0].shape(), r);
                                             },
                                             {{DType::f64, 1e-13, 1e-14}, {DType::f32, 2e-6, 1e-5}}},
                     .gradcheck = GradCheck{{uniform({3, 4}, 42, -4, 4).grad(), uniform({3, 4}, 43, 0, 1).grad()}},
                     .parity = ParityCheck{{uniform({7, 9}, 44, -30, 30).grad(), uniform({7, 9}, 45, 0, 1).grad()}}});
  }

  // 1 at each label's column, in the dtype asked for (float32 by default).
  const auto one_hot_reference = [](int64_t classes, DType dtype) {
    return [classes, dtype](const V& t) {
      const std::vector<int64_t> y = labels_of(t[0]);
      std::vector<double> h(y.size() * classes, 0.0);
      for (size_t i = 0; i < y.size(); ++i) h[i * classes + y[i]] = 1;
      Shape shape = t[0].shape();
      shape.push_back(classes);
      return expected(h, shape, dtype);
    };
  };
  const auto labels_2032 = [](const Shape& shape) {
    return made("labels [2,0,3,2] int32 " + shape.str(),
                [shape] { return Tensor::from_vector(std::vector<int32_t>{2, 0, 3, 2}, shape); });
  };
  for (DType dtype : {DType::f32, DType::f64, DType::i64, DType::u8})
    cases.push_back({.name = "one_hot/" + std::string(dtype_name(dtype)),
                     .fn = [dtype](const V& t) { return one_hot(t[0], 4, dtype); },
                     .forward = ForwardCheck{{labels_2032({4})}, one_hot_reference(4, dtype), {{DType::f64, 0, 0}}}});
  cases.push_back({.name = "one_hot/2d-labels",
                   .fn = [](const V& t) { return one_hot(t[0], 5); },
                   .forward = ForwardCheck{{labels_2032({2, 2})}, one_hot_reference(5, DType::f32), {{DType::f64, 0, 0}}}});
  const Input five_labels = made("labels [6,0,3,3,1] int64",
                                 [] { return Tensor::from_vector(std::vector<int64_t>{6, 0, 3, 3, 1}, {5}); });
  cases.push_back({.name = "one_hot/7-classes",
                   .fn = [](const V& t) { return one_hot(t[0], 7); },
                   .forward = ForwardCheck{{five_labels}, one_hot_reference(7, DType::f32), {{DType::f64, 0, 0}}},
                   .parity = ParityCheck{{five_labels}}});
  return cases;
}
