#include "kernels/norm.h"

#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {

// Σ f(offset) over channel c's elements in index order, in float64: one thread sums a channel,
// so the result does not depend on the thread count.
template <class F>
double channel_sum(ChannelShape s, int64_t c, F f) {
  double acc = 0;
  for (int64_t n = 0; n < s.outer; ++n) {
    const int64_t base = (n * s.channels + c) * s.inner;
    for (int64_t i = 0; i < s.inner; ++i) acc += f(base + i);
  }
  return acc;
}

// Channels are independent, so threads split channels; each channel is summed by one thread.
int64_t channel_grain(ChannelShape s) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s.count())); }

}  // namespace

void batch_norm_stats(const Tensor& x, ChannelShape s, BatchNormParams p, const Tensor& running_mean,
                      const Tensor& running_var, const Tensor& mean, const Tensor& invstd) {
  double* m = mean.data<double>();
  double* is = invstd.data<double>();
  const int64_t count = s.count();
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* rm = ptr_or_null<scalar_t>(running_mean);
    scalar_t* rv = ptr_or_null<scalar_t>(running_var);
    parallel_for(s.channels, channel_grain(s), [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        if (!p.training) {
          m[c] = static_cast<double>(rm[c]);
          is[c] = bn::invstd(static_cast<double>(rv[c]), p.eps);
          continue;
        }
        const double mu =
            channel_sum(s, c, [&](int64_t o) { return static_cast<double>(xp[o]); }) / static_cast<double>(count);
        const double var = channel_sum(s, c, [&](int64_t o) {
                             const double d = static_cast<double>(xp[o]) - mu;
                             return d * d;
                           }) / static_cast<double>(count);
        m[c] = mu;
        is[c] = bn::invstd(var, p.eps);
        if (rm) bn::update_running(rm, rv, c, mu, var, count, p.momentum);
      }
    });
  });
}

void batch_norm_forward(const Tensor& x, ChannelShape s, const Tensor& mean, const Tensor& invstd,
                        const Tensor& weight, const Tensor& bias, const Tensor& y) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* w = ptr_or_null<scalar_t>(weight);
    const scalar_t* bp = ptr_or_null<scalar_t>(bias);
    scalar_t* yp = y.data<scalar_t>();
    parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] = bn::forward(xp[i], s.channel_of(i), m, is, w, bp);
    });
  });
}

void batch_norm_backward_reduce(const Tensor& g, const Tensor& x, ChannelShape s, const Tensor& mean,
                                const Tensor& invstd, const Tensor& sum_dy, const Tensor& sum_dy_xhat) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  double* sdy = sum_dy.data<double>();
  double* sdx = sum_dy_xhat.data<double>();
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", {
    const scalar_t* gp = g.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    parallel_for(s.channels, channel_grain(s), [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        sdy[c] = channel_sum(s, c, [&](int64_t o) { return static_cast<double>(gp[o]); });
        sdx[c] = channel_sum(s, c, [&](int64_t o) {
          return static_cast<double>(gp[o]) * (static_cast<double>(xp[o]) - m[c]) * is[c];
        });
      }
    });
  });
}

void batch_norm_backward(const Tensor& g, const Tensor& x, ChannelShape s, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& sum_dy,
                         const Tensor& sum_dy_xhat, bool training, const Tensor& gx) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  const double* sdy = ptr_or_null<double>(sum_dy);
  const double* sdx = ptr_or_null<double>(sum_dy_xhat);
  const int64_t count = s.count();
  LETHE_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", {
    const scalar_t* gp = g.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* w = ptr_or_null<scalar_t>(weight);
    scalar_t* out = gx.data<scalar_t>();
    parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        out[i] = bn::backward(gp[i], xp[i], s.channel_of(i), m, is, w, sdy, sdx, count, training);
    });
  });
}

void dropout_apply(const Tensor& x, double p, uint64_t seed, uint64_t stream, const Tensor& y) {
  const int64_t n = x.numel();
  LETHE_DISPATCH_FLOAT(x.dtype(), "dropout", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t scale = static_cast<scalar_t>(1 / (1 - p));
    // One Philox block gives the uniforms of 4 consecutive elements.
    parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) {
        float u[4];
        philox::uniform4(seed, stream, static_cast<uint64_t>(blk), u);
        for (int64_t j = 0; j < 4 && blk * 4 + j < n; ++j)
          yp[blk * 4 + j] = drop::apply(xp[blk * 4 + j], u[j], p, scale);
      }
    });
  });
}

}  // namespace lethe::cpu
