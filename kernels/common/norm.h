#pragma once
// Per-element math of batch_norm, group_norm and dropout, shared by the CPU loops and the CUDA
// kernels. Statistics (mean, invstd, and the backward sums) are float64 whatever x's dtype.
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace lethe {

// x viewed as [outer, channels, inner]: [N,C] has inner 1, [N,C,H,W] has inner H·W.
struct ChannelShape {
  int64_t outer = 1, channels = 1, inner = 1;
  // Elements per channel: what the batch statistics average over.
  LETHE_HD int64_t count() const { return outer * inner; }
  // Element offset of the j-th element (0 <= j < count()) of channel c.
  LETHE_HD int64_t offset(int64_t c, int64_t j) const {
    return ((j / inner) * channels + c) * inner + j % inner;
  }
  LETHE_HD int64_t channel_of(int64_t i) const { return (i / inner) % channels; }
};

// x viewed as [batch, groups, group_channels, inner] (group_norm): the statistics are per row, one
// (sample, group) pair, whose count() elements are contiguous; the affine is per channel.
struct GroupShape {
  int64_t batch = 1, groups = 1, group_channels = 1, inner = 1;
  LETHE_HD int64_t rows() const { return batch * groups; }
  LETHE_HD int64_t count() const { return group_channels * inner; }
  LETHE_HD int64_t channels() const { return groups * group_channels; }
  LETHE_HD int64_t row_of(int64_t i) const { return i / count(); }
  LETHE_HD int64_t channel_of(int64_t i) const { return (i / inner) % channels(); }
};

struct BatchNormParams {
  bool training = true;
  double momentum = 0.1, eps = 1e-5;
};

namespace norm {

LETHE_HD double invstd(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// y = x̂·w + b with x̂ = (x − mean)·invstd; weight and bias (of channel c) may be null (no affine).
template <class T>
LETHE_HD T affine(T x, double mean, double invstd, int64_t c, const T* weight, const T* bias) {
  double y = (static_cast<double>(x) - mean) * invstd;
  if (weight) y *= static_cast<double>(weight[c]);
  if (bias) y += static_cast<double>(bias[c]);
  return static_cast<T>(y);
}

// dL/dx of an element normalised with its group's statistics, from d = dL/dx̂:
// (d − (Σd + x̂·Σd·x̂)/count)·invstd, the sums over the count elements of the group.
LETHE_HD double through_statistics(double d, double xhat, double sum_d, double sum_d_xhat, int64_t count,
                                   double invstd) {
  d -= (sum_d + xhat * sum_d_xhat) / static_cast<double>(count);
  return d * invstd;
}

}  // namespace norm

namespace bn {

// PyTorch's running-statistics update: the running variance tracks the unbiased batch variance.
template <class T>
LETHE_HD void update_running(T* running_mean, T* running_var, int64_t c, double mean,
                             double biased_var, int64_t count, double momentum) {
  const double unbiased = biased_var * static_cast<double>(count) / static_cast<double>(count - 1);
  running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * mean);
  running_var[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) + momentum * unbiased);
}

// y = x̂·w + b with x̂ = (x − mean)·invstd; weight and bias may be null (no affine).
template <class T>
LETHE_HD T forward(T x, int64_t c, const double* mean, const double* invstd, const T* weight,
                   const T* bias) {
  return norm::affine(x, mean[c], invstd[c], c, weight, bias);
}

// dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)) in training, where the batch statistics depend on
// x; w·invstd·dy in eval. sum_dy and sum_dy_xhat are per-channel sums over count() elements
// (only read in training).
template <class T>
LETHE_HD T backward(T g, T x, int64_t c, const double* mean, const double* invstd, const T* weight,
                    const double* sum_dy, const double* sum_dy_xhat, int64_t count, bool training) {
  double d = static_cast<double>(g);
  if (training) {
    const double xhat = (static_cast<double>(x) - mean[c]) * invstd[c];
    d = norm::through_statistics(d, xhat, sum_dy[c], sum_dy_xhat[c], count, invstd[c]);
  } else {
    d *= invstd[c];
  }
  if (weight) d *= static_cast<double>(weight[c]);
  return static_cast<T>(d);
}

}  // namespace bn

namespace gn {

// group_norm's dx: d = dy·w (the weight varies within a group), then through the row's statistics;
// sum_d and sum_d_xhat are the row's Σd and Σd·x̂.
template <class T>
LETHE_HD T backward(T g, T x, int64_t c, double mean, double invstd, const T* weight, double sum_d,
                    double sum_d_xhat, int64_t count) {
  double d = static_cast<double>(g);
  if (weight) d *= static_cast<double>(weight[c]);
  const double xhat = (static_cast<double>(x) - mean) * invstd;
  return static_cast<T>(norm::through_statistics(d, xhat, sum_d, sum_d_xhat, count, invstd));
}

}  // namespace gn

namespace drop {

// Inverted dropout of one element: kept when its Philox uniform u is >= p, then scaled by
// 1/(1−p). The same function masks the forward values and the backward gradients.
template <class T>
LETHE_HD T apply(T x, float u, double p, T scale) {
  return static_cast<double>(u) >= p ? x * scale : T(0);
}

}  // namespace drop

}  // namespace lethe
