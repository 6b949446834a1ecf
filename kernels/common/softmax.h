#pragma once
// Per-row math of softmax, log_softmax, cross_entropy and one_hot, shared by the CPU loops and the
// CUDA kernels. A row is `n` values `stride` apart; everything is computed in float64 (max
// subtracted before exp) and rounded once on the way out.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/common/hd.h"

namespace lethe {

// A tensor viewed as [outer, size, inner] around the softmax dim: no transpose for any dim.
struct RowShape {
  int64_t outer = 1, size = 1, inner = 1;
  LETHE_HD int64_t rows() const { return outer * inner; }
  // Offset of row r's first element; its elements are `inner` apart.
  LETHE_HD int64_t base(int64_t r) const { return (r / inner) * size * inner + r % inner; }
};

namespace sm {

using std::exp;
using std::log;

LETHE_HD double nan() { return std::numeric_limits<double>::quiet_NaN(); }

template <class T>
LETHE_HD double logsumexp(const T* x, int64_t n, int64_t stride) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    const double v = static_cast<double>(x[j * stride]);
    m = v > m ? v : m;  // a NaN is skipped here and still poisons the sum below
  }
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += exp(static_cast<double>(x[j * stride]) - m);
  return m + log(s);
}

// y = softmax(x) or log_softmax(x) along the row.
template <class T>
LETHE_HD void forward(const T* x, T* y, int64_t n, int64_t stride, bool log_out) {
  const double lse = logsumexp(x, n, stride);
  for (int64_t j = 0; j < n; ++j) {
    const double v = static_cast<double>(x[j * stride]) - lse;
    y[j * stride] = static_cast<T>(log_out ? v : exp(v));
  }
}

// From the output y: softmax gx = y·(g − Σ g·y); log_softmax gx = g − exp(y)·Σ g.
template <class T>
LETHE_HD void backward(const T* y, const T* g, T* gx, int64_t n, int64_t stride, bool log_out) {
  double acc = 0;
  for (int64_t j = 0; j < n; ++j)
    acc += static_cast<double>(g[j * stride]) * (log_out ? 1.0 : static_cast<double>(y[j * stride]));
  for (int64_t j = 0; j < n; ++j) {
    const double yj = static_cast<double>(y[j * stride]), gj = static_cast<double>(g[j * stride]);
    gx[j * stride] = static_cast<T>(log_out ? gj - exp(yj) * acc : yj * (gj - acc));
  }
}

// Cross entropy of one row of C logits against `label` with label smoothing ε:
// −(1−ε)·log p_label − ε/C·Σ_c log p_c = lse − (1−ε)·x_label − ε/C·Σ_c x_c.
// Labels are range-checked by the op; an out-of-range one still never reads out of bounds and
// gives NaN.
template <class T, class I>
LETHE_HD double cross_entropy(const T* x, int64_t C, I label, double smoothing) {
  if (label < 0 || label >= C) return nan();
  double loss = logsumexp(x, C, 1) - (1 - smoothing) * static_cast<double>(x[label]);
  if (smoothing != 0) {
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += static_cast<double>(x[c]);
    loss -= smoothing * sum / static_cast<double>(C);
  }
  return loss;
}

// d loss / d x_c times `scale`: (softmax_c − target_c)·scale, where the target distribution is
// (1−ε) on the label plus ε/C everywhere.
template <class T, class I>
LETHE_HD void cross_entropy_grad(const T* x, int64_t C, I label, double smoothing, double scale, T* gx) {
  const bool valid = label >= 0 && label < C;
  const double lse = logsumexp(x, C, 1);
  for (int64_t c = 0; c < C; ++c) {
    const double target = (c == label ? 1 - smoothing : 0) + smoothing / static_cast<double>(C);
    gx[c] = static_cast<T>(valid ? scale * (exp(static_cast<double>(x[c]) - lse) - target) : nan());
  }
}

template <class T, class I>
LETHE_HD T one_hot(I label, int64_t c) {
  return label == c ? T(1) : T(0);
}

}  // namespace sm

}  // namespace lethe
