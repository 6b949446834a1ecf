// 2-d pooling (NCHW). max_pool2d saves each window's argmax for its backward (when recorded).
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/pool.h"

namespace lethe {

namespace {

PoolGeometry pool_geometry(const char* op, const Tensor& x, const Pool2dOptions& opt) {
  LETHE_CHECK(x.defined(), op, "undefined input");
  LETHE_CHECK(x.dim() == 4 && is_floating(x.dtype()), op,
              "expects a float32 or float64 x [N,C,H,W], got ", x.str());
  // Padding at most half the kernel keeps an input pixel in every window.
  LETHE_CHECK(opt.kernel_h >= 1 && opt.kernel_w >= 1 && opt.stride_h >= 1 && opt.stride_w >= 1 &&
                  opt.pad_h >= 0 && opt.pad_w >= 0 && 2 * opt.pad_h <= opt.kernel_h &&
                  2 * opt.pad_w <= opt.kernel_w,
              op, "invalid options kernel [", opt.kernel_h, ",", opt.kernel_w, "] stride [",
              opt.stride_h, ",", opt.stride_w, "] padding [", opt.pad_h, ",", opt.pad_w,
              "] (kernel, stride >= 1; 0 <= padding <= kernel/2)");
  PoolGeometry g;
  g.height = x.size(2);
  g.width = x.size(3);
  g.kernel_h = opt.kernel_h;
  g.kernel_w = opt.kernel_w;
  g.stride_h = opt.stride_h;
  g.stride_w = opt.stride_w;
  g.pad_h = opt.pad_h;
  g.pad_w = opt.pad_w;
  const int64_t span_h = g.height + 2 * g.pad_h - g.kernel_h, span_w = g.width + 2 * g.pad_w - g.kernel_w;
  LETHE_CHECK(span_h >= 0 && span_w >= 0, op, "kernel [", g.kernel_h, ",", g.kernel_w,
              "] does not fit input ", x.str(), " with padding [", g.pad_h, ",", g.pad_w, "]");
  g.out_h = span_h / g.stride_h + 1;
  g.out_w = span_w / g.stride_w + 1;
  return g;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, const Pool2dOptions& opt) {
  const PoolGeometry g = pool_geometry("max_pool2d", x_in, opt);
  const Tensor x = x_in.contiguous();
  const Shape shape{x.size(0), x.size(1), g.out_h, g.out_w};
  Tensor y = Tensor::empty(shape, x.dtype(), x.device());
  // Each window's argmax, for the backward: not written when there will be none (evaluation).
  const Tensor argmax = autograd::needs_grad({&x_in}) ? Tensor::empty(shape, DType::i64, x.device()) : Tensor();
  LETHE_DISPATCH(x.device(), max_pool2d_forward, x, y, argmax, g);
  autograd::record("max_pool2d", y, {&x_in},
                   [g, si = autograd::Saved(argmax), from = x.shape()](const Tensor& gy, autograd::Needs) {
                     const Tensor idx = si.get();
                     Tensor gx = Tensor::empty(from, gy.dtype(), gy.device());
                     LETHE_DISPATCH(gy.device(), max_pool2d_backward, gy.contiguous(), idx, gx, g);
                     return std::vector<Tensor>{gx};
                   });
  return y;
}

Tensor avg_pool2d(const Tensor& x_in, const Pool2dOptions& opt) {
  const PoolGeometry g = pool_geometry("avg_pool2d", x_in, opt);
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.out_h, g.out_w}, x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), avg_pool2d_forward, x, y, g);
  autograd::record("avg_pool2d", y, {&x_in}, [g, from = x.shape()](const Tensor& gy, autograd::Needs) {
    Tensor gx = Tensor::empty(from, gy.dtype(), gy.device());
    LETHE_DISPATCH(gy.device(), avg_pool2d_backward, gy.contiguous(), gx, g);
    return std::vector<Tensor>{gx};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  LETHE_CHECK(x.defined(), "global_avg_pool2d", "undefined input");
  LETHE_CHECK(x.dim() == 4 && is_floating(x.dtype()), "global_avg_pool2d",
              "expects a float32 or float64 x [N,C,H,W], got ", x.str());
  LETHE_CHECK(x.size(2) > 0 && x.size(3) > 0, "global_avg_pool2d", "empty plane in ", x.str());
  return mean(x, {2, 3});
}

Tensor upsample_nearest2d(const Tensor& x_in, int scale) {
  LETHE_CHECK(x_in.defined(), "upsample_nearest2d", "undefined input");
  LETHE_CHECK(x_in.dim() == 4 && is_floating(x_in.dtype()), "upsample_nearest2d",
              "expects a float32 or float64 x [N,C,H,W], got ", x_in.str());
  LETHE_CHECK(scale >= 1 && scale <= 1024, "upsample_nearest2d", "scale ", scale, " is not in [1, 1024]");
  PoolGeometry g;
  g.height = x_in.size(2);
  g.width = x_in.size(3);
  g.kernel_h = g.kernel_w = g.stride_h = g.stride_w = scale;
  g.out_h = g.height * scale;
  g.out_w = g.width * scale;
  const Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.out_h, g.out_w}, x.dtype(), x.device());
  LETHE_DISPATCH(x.device(), upsample_nearest2d_forward, x, y, g);
  autograd::record("upsample_nearest2d", y, {&x_in}, [g, from = x.shape()](const Tensor& gy, autograd::Needs) {
    Tensor gx = Tensor::empty(from, gy.dtype(), gy.device());
    LETHE_DISPATCH(gy.device(), upsample_nearest2d_backward, gy.contiguous(), gx, g);
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace lethe
