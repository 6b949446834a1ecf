// batch_norm, group_norm and dropout.
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/norm.h"
#if defined(LETHE_WITH_CUDA)
#include "engine/cuda_runtime.h"
#endif

namespace lethe {

namespace {

// A per-channel parameter or buffer: undefined, or a [C] tensor of x's dtype on x's device.
void check_channel_tensor(const char* op, const Tensor& t, const char* name, const Tensor& x) {
  if (!t.defined()) return;
  const int64_t channels = x.size(1);
  LETHE_CHECK(t.shape() == Shape{channels} && t.dtype() == x.dtype() && t.device() == x.device(),
              op, name, " must be ", dtype_name(x.dtype()), "[", channels, "] on ",
              x.device().str(), " for input ", x.str(), ", got ", t.str());
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                  const Tensor& running_mean, const Tensor& running_var, bool training,
                  double momentum, double eps) {
  LETHE_CHECK(x_in.defined(), "batch_norm", "undefined input");
  LETHE_CHECK(is_floating(x_in.dtype()) && (x_in.dim() == 2 || x_in.dim() == 4), "batch_norm",
              "needs a floating [N,C] or [N,C,H,W] input, got ", x_in.str());
  LETHE_CHECK(eps >= 0, "batch_norm", "eps must be >= 0, got ", eps);
  check_channel_tensor("batch_norm", weight, "weight", x_in);
  check_channel_tensor("batch_norm", bias, "bias", x_in);
  check_channel_tensor("batch_norm", running_mean, "running_mean", x_in);
  check_channel_tensor("batch_norm", running_var, "running_var", x_in);
  LETHE_CHECK(running_mean.defined() == running_var.defined(), "batch_norm",
              "running_mean and running_var must both be given or both be undefined, got ",
              running_mean.str(), " and ", running_var.str());
  LETHE_CHECK(training || running_mean.defined(), "batch_norm",
              "eval mode needs running_mean and running_var");

  const ChannelShape s{x_in.size(0), x_in.size(1), x_in.dim() == 4 ? x_in.size(2) * x_in.size(3) : 1};
  LETHE_CHECK(!training || s.count() > 1, "batch_norm",
              "training needs more than one value per channel, got input ", x_in.str());
  const BatchNormParams p{training, momentum, eps};
  const Tensor x = x_in.contiguous();
  const Device dev = x.device();

  // The running statistics are buffers, written in place through detached handles (never
  // recorded by autograd); the write bumps their version like any in-place op.
  Tensor rm, rv;
  if (running_mean.defined()) {
    LETHE_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm",
                "running statistics must be contiguous");
    rm = running_mean.detach();
    rv = running_var.detach();
    if (training) {
      rm.check_writable("batch_norm");
      rv.check_writable("batch_norm");
    }
  }
  Tensor mean = Tensor::empty({s.channels}, DType::f64, dev);
  Tensor invstd = Tensor::empty({s.channels}, DType::f64, dev);
  LETHE_DISPATCH(dev, batch_norm_stats, x, s, p, rm, rv, mean, invstd);

  const Tensor w = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  LETHE_DISPATCH(dev, batch_norm_forward, x, s, mean, invstd, w, b, y);

  autograd::record("batch_norm", y, {&x_in, &weight, &bias},
                   [s, training, sx = autograd::Saved(x), sw = autograd::Saved(w),
                    smean = autograd::Saved(mean), sinvstd = autograd::Saved(invstd)](
                       const Tensor& g_in, autograd::Needs needs) {
                     const Tensor xv = sx.get(), wv = sw.get(), m = smean.get(), is = sinvstd.get();
                     const Tensor g = g_in.contiguous();
                     // dx in training goes through the batch statistics and needs both sums;
                     // dweight and dbias are the sums themselves.
                     Tensor sum_dy, sum_dy_xhat;
                     if ((needs[0] && training) || needs[1] || needs[2]) {
                       sum_dy = Tensor::empty({s.channels}, DType::f64, xv.device());
                       sum_dy_xhat = Tensor::empty({s.channels}, DType::f64, xv.device());
                       LETHE_DISPATCH(xv.device(), batch_norm_backward_reduce, g, xv, s, m, is,
                                      sum_dy, sum_dy_xhat);
                     }
                     Tensor gx;
                     if (needs[0]) {
                       gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
                       LETHE_DISPATCH(xv.device(), batch_norm_backward, g, xv, s, m, is, wv, sum_dy,
                                      sum_dy_xhat, training, gx);
                     }
                     return std::vector<Tensor>{gx, needs[1] ? sum_dy_xhat.to(xv.dtype()) : Tensor(),
                                                needs[2] ? sum_dy.to(xv.dtype()) : Tensor()};
                   });
  return y;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  LETHE_CHECK(x.defined(), "group_norm", "undefined input");
  LETHE_CHECK(is_floating(x.dtype()) && x.dim() >= 2 && x.numel() > 0, "group_norm",
              "expects a non-empty float32 or float64 x [N,C,...], got ", x.str());
  const int64_t n = x.size(0), channels = x.size(1);
  LETHE_CHECK(groups >= 1 && channels % groups == 0, "group_norm", groups, " groups do not divide the ", channels,
              " channels of ", x.str());
  LETHE_CHECK(eps > 0 && std::isfinite(eps), "group_norm", "eps must be positive and finite, got ", eps);
  check_channel_tensor("group_norm", weight, "weight", x);
  check_channel_tensor("group_norm", bias, "bias", x);
  const GroupShape s{n, groups, channels / groups, x.numel() / (n * channels)};
  const Tensor xc = x.contiguous();
  const Device dev = xc.device();
  Tensor mean = Tensor::empty({s.rows()}, DType::f64, dev);
  Tensor invstd = Tensor::empty({s.rows()}, DType::f64, dev);
  LETHE_DISPATCH(dev, group_norm_stats, xc, s, eps, mean, invstd);
  const Tensor w = weight.defined() ? weight.contiguous() : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty(xc.shape(), xc.dtype(), dev);
  LETHE_DISPATCH(dev, group_norm_forward, xc, s, mean, invstd, w, b, y);

  autograd::record("group_norm", y, {&x, &weight, &bias},
                   [s, sx = autograd::Saved(xc), sw = autograd::Saved(w), smean = autograd::Saved(mean),
                    sinvstd = autograd::Saved(invstd)](const Tensor& g_in, autograd::Needs needs) {
                     const Tensor xv = sx.get(), wv = sw.get(), m = smean.get(), is = sinvstd.get();
                     const Tensor g = g_in.contiguous();
                     // Per sample and channel: Σ dy and Σ dy·x̂ [N, C]. Summed over the samples they are
                     // dbias and dweight; weighted by w and summed over a group's channels, each row's
                     // Σ d and Σ d·x̂ of d = dy·w, which dx needs.
                     const Tensor sum_dy = Tensor::empty({s.batch, s.channels()}, DType::f64, xv.device());
                     const Tensor sum_dy_xhat = Tensor::empty({s.batch, s.channels()}, DType::f64, xv.device());
                     LETHE_DISPATCH(xv.device(), group_norm_backward_reduce, g, xv, s, m, is, sum_dy, sum_dy_xhat);
                     Tensor gx;
                     if (needs[0]) {
                       const Tensor w64 = wv.defined() ? wv.to(DType::f64).reshape({1, s.channels()}) : Tensor();
                       const auto per_row = [&](const Tensor& per_channel) {
                         const Tensor d = w64.defined() ? mul(per_channel, w64) : per_channel;
                         return sum(d.reshape({s.batch, s.groups, s.group_channels}), {2}).contiguous();
                       };
                       gx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
                       LETHE_DISPATCH(xv.device(), group_norm_backward, g, xv, s, m, is, wv, per_row(sum_dy),
                                      per_row(sum_dy_xhat), gx);
                     }
                     return std::vector<Tensor>{gx, needs[1] ? sum(sum_dy_xhat, {0}).to(xv.dtype()) : Tensor(),
                                                needs[2] ? sum(sum_dy, {0}).to(xv.dtype()) : Tensor()};
                   });
  return y;
}

Tensor dropout(const Tensor& x_in, double p, bool training, uint64_t seed, uint64_t stream) {
  LETHE_CHECK(x_in.defined(), "dropout", "undefined input");
  LETHE_CHECK(is_floating(x_in.dtype()), "dropout", "needs a floating tensor, got ", x_in.str());
  LETHE_CHECK(p >= 0 && p <= 1, "dropout", "p must be in [0, 1], got ", p);
  if (!training || p == 0) return x_in;
#if defined(LETHE_WITH_CUDA)
  // The mask's key is a kernel argument: a captured graph would replay one mask at every step.
  LETHE_CHECK(!x_in.is_cuda() || !cuda::capturing(x_in.device().index), "dropout",
              "cannot be captured in a CUDA graph: every replay would draw the captured call's mask; run it "
              "without a graph (relearning: cuda_graph = false)");
#endif
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), dropout_apply, x, p, seed, stream, y);
  // The mask is regenerated from its Philox key rather than saved.
  autograd::record("dropout", y, {&x_in}, [p, seed, stream](const Tensor& g_in, autograd::Needs) {
    const Tensor g = g_in.contiguous();
    Tensor gx = Tensor::empty(g.shape(), g.dtype(), g.device());
    LETHE_DISPATCH(g.device(), dropout_apply, g, p, seed, stream, gx);
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace lethe
