#include "kernels/norm.h"

#include <algorithm>

#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {

// Calls body(u) for u < units, units of `size` elements each (rows, planes, blocks of channels),
// split over the threads.
template <class Body>
void for_units(int64_t units, int64_t size, Body body) {
  parallel_for(units, grain_for(size), [&](int64_t b, int64_t e) {
    for (int64_t u = b; u < e; ++u) body(u);
  });
}

// Threads split blocks of kChannelBlock channels; within a block the channels advance together.
constexpr int64_t kChannelBlock = 8;

// out[j] = Σ f(c, offset) over channel c = c0 + j's elements (j < lanes <= kChannelBlock), each in
// index order in float64: the sums one channel at a time would give (so one thread's block, and
// the thread count, change nothing), with the channels' dependency chains overlapping.
template <class F>
void channel_sums(ChannelShape s, int64_t c0, int64_t lanes, F f, double* out) {
  double acc[kChannelBlock] = {};
  with_block_size<kChannelBlock>(lanes, [&](auto count) {
    for (int64_t n = 0; n < s.outer; ++n) {
      const int64_t base = (n * s.channels + c0) * s.inner;
      for (int64_t i = 0; i < s.inner; ++i)
        for (int64_t j = 0; j < count; ++j) acc[j] += f(c0 + j, base + j * s.inner + i);
    }
  });
  for (int64_t j = 0; j < lanes; ++j) out[j] = acc[j];
}

// Calls body(c0, lanes) for the blocks of channels, split over the threads.
template <class Body>
void for_channel_blocks(ChannelShape s, Body body) {
  for_units((s.channels + kChannelBlock - 1) / kChannelBlock, s.count() * kChannelBlock, [&](int64_t block) {
    body(block * kChannelBlock, std::min(kChannelBlock, s.channels - block * kChannelBlock));
  });
}

// Σ f(i) for 0 <= i < n in float64, element i in partial sum i % 8, the partials added pairwise at
// the end: a fixed order (whatever the threads), in eight independent chains the compiler can keep in
// vector registers, where one chain would wait on each addition.
template <class F>
double lane_sum(int64_t n, F f) {
  constexpr int64_t kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) acc[k] += f(i + k);
  for (int64_t k = 0; i + k < n; ++k) acc[k] += f(i + k);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

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
    for_channel_blocks(s, [&](int64_t c0, int64_t lanes) {
      if (!p.training) {
        for (int64_t c = c0; c < c0 + lanes; ++c) {
          m[c] = static_cast<double>(rm[c]);
          is[c] = norm::invstd(static_cast<double>(rv[c]), p.eps);
        }
        return;
      }
      double sums[kChannelBlock];
      channel_sums(s, c0, lanes, [&](int64_t, int64_t o) { return static_cast<double>(xp[o]); }, sums);
      for (int64_t j = 0; j < lanes; ++j) m[c0 + j] = sums[j] / static_cast<double>(count);
      channel_sums(s, c0, lanes, [&](int64_t c, int64_t o) {
        const double d = static_cast<double>(xp[o]) - m[c];
        return d * d;
      }, sums);
      for (int64_t j = 0; j < lanes; ++j) {
        const int64_t c = c0 + j;
        const double var = sums[j] / static_cast<double>(count);
        is[c] = norm::invstd(var, p.eps);
        if (rm) bn::update_running(rm, rv, c, m[c], var, count, p.momentum);
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
    // One (sample, channel) plane at a time: no division per element to find its channel.
    for_units(s.outer * s.channels, s.inner, [&](int64_t p) {
      const int64_t c = p % s.channels;
      for (int64_t i = p * s.inner; i < (p + 1) * s.inner; ++i) yp[i] = bn::forward(xp[i], c, m, is, w, bp);
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
    for_channel_blocks(s, [&](int64_t c0, int64_t lanes) {
      channel_sums(s, c0, lanes, [&](int64_t, int64_t o) { return static_cast<double>(gp[o]); }, sdy + c0);
      channel_sums(s, c0, lanes, [&](int64_t c, int64_t o) {
        return static_cast<double>(gp[o]) * (static_cast<double>(xp[o]) - m[c]) * is[c];
      }, sdx + c0);
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
    for_units(s.outer * s.channels, s.inner, [&](int64_t p) {
      const int64_t c = p % s.channels;
      for (int64_t i = p * s.inner; i < (p + 1) * s.inner; ++i)
        out[i] = bn::backward(gp[i], xp[i], c, m, is, w, sdy, sdx, count, training);
    });
  });
}

void group_norm_stats(const Tensor& x, GroupShape s, double eps, const Tensor& mean, const Tensor& invstd) {
  double* m = mean.data<double>();
  double* is = invstd.data<double>();
  const int64_t count = s.count();
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm", {
    const scalar_t* xp = x.data<scalar_t>();
    for_units(s.rows(), count, [&](int64_t r) {
      const scalar_t* row = xp + r * count;
      const double mu =
          lane_sum(count, [&](int64_t i) { return static_cast<double>(row[i]); }) / static_cast<double>(count);
      const double var = lane_sum(count, [&](int64_t i) {
                           const double d = static_cast<double>(row[i]) - mu;
                           return d * d;
                         }) / static_cast<double>(count);
      m[r] = mu;
      is[r] = norm::invstd(var, eps);
    });
  });
}

void group_norm_forward(const Tensor& x, GroupShape s, const Tensor& mean, const Tensor& invstd,
                        const Tensor& weight, const Tensor& bias, const Tensor& y) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* w = ptr_or_null<scalar_t>(weight);
    const scalar_t* bp = ptr_or_null<scalar_t>(bias);
    scalar_t* yp = y.data<scalar_t>();
    // One (sample, channel) plane at a time: its statistics and affine are constants of the loop.
    for_units(s.batch * s.channels(), s.inner, [&](int64_t p) {
      const int64_t r = p / s.group_channels, c = p % s.channels(), at = p * s.inner;
      for (int64_t i = 0; i < s.inner; ++i) yp[at + i] = norm::affine(xp[at + i], m[r], is[r], c, w, bp);
    });
  });
}

void group_norm_backward_reduce(const Tensor& g, const Tensor& x, GroupShape s, const Tensor& mean,
                                const Tensor& invstd, const Tensor& sum_dy, const Tensor& sum_dy_xhat) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  double* sdy = sum_dy.data<double>();
  double* sdx = sum_dy_xhat.data<double>();
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", {
    const scalar_t* gp = g.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    for_units(s.batch * s.channels(), s.inner, [&](int64_t p) {
      const int64_t r = p / s.group_channels, at = p * s.inner;
      sdy[p] = lane_sum(s.inner, [&](int64_t i) { return static_cast<double>(gp[at + i]); });
      sdx[p] = lane_sum(s.inner, [&](int64_t i) {
        return static_cast<double>(gp[at + i]) * ((static_cast<double>(xp[at + i]) - m[r]) * is[r]);
      });
    });
  });
}

void group_norm_backward(const Tensor& g, const Tensor& x, GroupShape s, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight, const Tensor& sum_d,
                         const Tensor& sum_d_xhat, const Tensor& gx) {
  const double* m = mean.data<double>();
  const double* is = invstd.data<double>();
  const double* sd = sum_d.data<double>();
  const double* sdx = sum_d_xhat.data<double>();
  const int64_t count = s.count();
  LETHE_DISPATCH_FLOAT(x.dtype(), "group_norm_backward", {
    const scalar_t* gp = g.data<scalar_t>();
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* w = ptr_or_null<scalar_t>(weight);
    scalar_t* out = gx.data<scalar_t>();
    for_units(s.batch * s.channels(), s.inner, [&](int64_t p) {
      const int64_t r = p / s.group_channels, c = p % s.channels(), at = p * s.inner;
      for (int64_t i = 0; i < s.inner; ++i)
        out[at + i] = gn::backward(gp[at + i], xp[at + i], c, m[r], is[r], w, sd[r], sdx[r], count);
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
