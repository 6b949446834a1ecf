#pragma once
// Launchers of softmax, log_softmax, cross_entropy and one_hot. Tensors are contiguous; labels
// are int32 or int64 and already range-checked (see check_index_range in kernels/index.h).
#include <cstdint>

#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/common/softmax.h"

#define LETHE_SOFTMAX_LAUNCHERS                                                                   \
  /* y = (log_)softmax(x) along the middle dim of s; x and y of one floating dtype */             \
  void softmax_forward(const Tensor& x, RowShape s, bool log_out, const Tensor& y);               \
  void softmax_backward(const Tensor& y, const Tensor& g, RowShape s, bool log_out,               \
                        const Tensor& gx);                                                        \
  /* loss[i] = weight[i]·sm::cross_entropy(logits row i, labels[i]); logits [N,C]; weight [N] in  \
     the logits' dtype or undefined (all ones) */                                                 \
  void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& weight,    \
                             double smoothing, const Tensor& loss);                               \
  /* glogits row i = sm::cross_entropy_grad with scale g[i]·weight[i]·g_scale; g has N elements,  \
     or one that every row shares (a reduced loss) */                                             \
  void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& weight,   \
                              double smoothing, const Tensor& g, double g_scale,                  \
                              const Tensor& glogits);                                             \
  /* out [..., num_classes] of any dtype: 1 where the class is the label, else 0 */               \
  void one_hot(const Tensor& labels, int64_t num_classes, const Tensor& out);

LETHE_DECLARE_LAUNCHERS(LETHE_SOFTMAX_LAUNCHERS)
