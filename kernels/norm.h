#pragma once
// Launchers of batch_norm, group_norm and dropout. Tensors are contiguous; x-shaped tensors share
// x's floating dtype; batch_norm's mean, invstd, sum_dy and sum_dy_xhat are float64 [C],
// group_norm's are float64 [rows] (GroupShape); weight, bias and the running statistics are [C] in
// x's dtype and may be undefined where noted.
#include <cstdint>

#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/norm.h"

#define LETHE_NORM_LAUNCHERS                                                                      \
  /* Training: batch mean and invstd = 1/sqrt(biased var + eps) per channel, summed in float64 in \
     a fixed order; updates running_* in place when defined. Eval: both from running_*. */       \
  void batch_norm_stats(const Tensor& x, ChannelShape s, BatchNormParams p,                       \
                        const Tensor& running_mean, const Tensor& running_var, const Tensor& mean, \
                        const Tensor& invstd);                                                    \
  /* y = (x − mean)·invstd·weight + bias; weight/bias may be undefined */                         \
  void batch_norm_forward(const Tensor& x, ChannelShape s, const Tensor& mean,                    \
                          const Tensor& invstd, const Tensor& weight, const Tensor& bias,         \
                          const Tensor& y);                                                       \
  /* Per channel: sum_dy = Σ g, sum_dy_xhat = Σ g·x̂ (float64, fixed order) */                    \
  void batch_norm_backward_reduce(const Tensor& g, const Tensor& x, ChannelShape s,               \
                                  const Tensor& mean, const Tensor& invstd, const Tensor& sum_dy, \
                                  const Tensor& sum_dy_xhat);                                     \
  /* gx from bn::backward; sum_dy/sum_dy_xhat are read in training only (undefined in eval) */  \
  void batch_norm_backward(const Tensor& g, const Tensor& x, ChannelShape s, const Tensor& mean,  \
                           const Tensor& invstd, const Tensor& weight, const Tensor& sum_dy,      \
                           const Tensor& sum_dy_xhat, bool training, const Tensor& gx);           \
  /* Per row: mean and invstd = 1/sqrt(biased var + eps), summed in float64 in a fixed order */    \
  void group_norm_stats(const Tensor& x, GroupShape s, double eps, const Tensor& mean,            \
                        const Tensor& invstd);                                                    \
  /* y = (x − mean[row])·invstd[row]·weight[c] + bias[c]; weight/bias may be undefined */         \
  void group_norm_forward(const Tensor& x, GroupShape s, const Tensor& mean, const Tensor& invstd, \
                          const Tensor& weight, const Tensor& bias, const Tensor& y);             \
  /* Per sample and channel, float64 [batch, C] in a fixed order: sum_dy = Σ g, sum_dy_xhat =     \
     Σ g·x̂ over the channel's inner elements */                                                   \
  void group_norm_backward_reduce(const Tensor& g, const Tensor& x, GroupShape s,                 \
                                  const Tensor& mean, const Tensor& invstd, const Tensor& sum_dy, \
                                  const Tensor& sum_dy_xhat);                                     \
  /* gx from gn::backward; sum_d and sum_d_xhat: each row's Σ g·w and Σ g·w·x̂, float64 [rows] */  \
  void group_norm_backward(const Tensor& g, const Tensor& x, GroupShape s, const Tensor& mean,    \
                           const Tensor& invstd, const Tensor& weight, const Tensor& sum_d,       \
                           const Tensor& sum_d_xhat, const Tensor& gx);                           \
  /* y[i] = x[i]/(1−p) where Philox uniform (seed, stream, i) >= p, else 0; also the backward */  \
  void dropout_apply(const Tensor& x, double p, uint64_t seed, uint64_t stream, const Tensor& y);

LETHE_DECLARE_LAUNCHERS(LETHE_NORM_LAUNCHERS)
