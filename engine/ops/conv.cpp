// conv2d (NCHW): validation, geometry, and the backward rule. The bias gradient is a plain
// reduction of dy over N, H, W (on every backend).
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/conv.h"

namespace lethe {

namespace {

ConvGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dOptions& opt) {
  LETHE_CHECK(x.defined() && w.defined(), "conv2d", "undefined input");
  LETHE_CHECK(x.dim() == 4, "conv2d", "expects x [N,C,H,W], got ", x.str());
  LETHE_CHECK(w.dim() == 4, "conv2d", "expects w [O,C/groups,kh,kw], got ", w.str());
  LETHE_CHECK(is_floating(x.dtype()) && x.dtype() == w.dtype(), "conv2d",
              "needs float32 or float64 x and w of one dtype, got x ", x.str(), " and w ", w.str());
  LETHE_CHECK(x.device() == w.device(), "conv2d", "devices differ: x ", x.str(), ", w ", w.str());
  LETHE_CHECK(opt.stride_h >= 1 && opt.stride_w >= 1 && opt.dilation_h >= 1 && opt.dilation_w >= 1 &&
                  opt.pad_h >= 0 && opt.pad_w >= 0 && opt.groups >= 1,
              "conv2d", "invalid options stride [", opt.stride_h, ",", opt.stride_w, "] padding [",
              opt.pad_h, ",", opt.pad_w, "] dilation [", opt.dilation_h, ",", opt.dilation_w,
              "] groups ", opt.groups, " (stride, dilation, groups >= 1; padding >= 0)");
  ConvGeometry g;
  g.channels = x.size(1);
  g.height = x.size(2);
  g.width = x.size(3);
  g.out_channels = w.size(0);
  g.kernel_h = w.size(2);
  g.kernel_w = w.size(3);
  g.stride_h = opt.stride_h;
  g.stride_w = opt.stride_w;
  g.pad_h = opt.pad_h;
  g.pad_w = opt.pad_w;
  g.dilation_h = opt.dilation_h;
  g.dilation_w = opt.dilation_w;
  g.groups = opt.groups;
  LETHE_CHECK(g.channels % g.groups == 0 && g.out_channels % g.groups == 0, "conv2d",
              "input channels (", g.channels, ") and output channels (", g.out_channels,
              ") must be divisible by groups (", g.groups, "); x ", x.str(), ", w ", w.str());
  LETHE_CHECK(w.size(1) == g.channels / g.groups, "conv2d", "w ", w.str(), " expects ", w.size(1),
              " input channels per group, x ", x.str(), " has ", g.channels / g.groups, " (groups ",
              g.groups, ")");
  LETHE_CHECK(g.channels > 0 && g.out_channels > 0 && g.kernel_h > 0 && g.kernel_w > 0, "conv2d",
              "empty channels or kernel: x ", x.str(), ", w ", w.str());
  g.out_h = conv_out_size(g.height, g.kernel_h, g.stride_h, g.pad_h, g.dilation_h);
  g.out_w = conv_out_size(g.width, g.kernel_w, g.stride_w, g.pad_w, g.dilation_w);
  LETHE_CHECK(g.out_h > 0 && g.out_w > 0, "conv2d", "kernel [", g.kernel_h, ",", g.kernel_w,
              "] with dilation [", g.dilation_h, ",", g.dilation_w, "] does not fit input [", g.height,
              ",", g.width, "] with padding [", g.pad_h, ",", g.pad_w, "]: output size would be [",
              g.out_h, ",", g.out_w, "]");
  if (bias.defined()) {
    LETHE_CHECK(bias.dim() == 1 && bias.size(0) == g.out_channels && bias.dtype() == w.dtype() &&
                    bias.device() == w.device(),
                "conv2d", "bias ", bias.str(), " does not match w ", w.str(), " (expected [",
                g.out_channels, "])");
  }
  return g;
}

// The gradients of x, w and bias (each when needed) from gy, the gradient of the output.
std::vector<Tensor> conv2d_gradients(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& gy,
                                     autograd::Needs needs) {
  Tensor gx = needs[0] ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor();
  Tensor gw = needs[1] ? Tensor::empty(w.shape(), w.dtype(), w.device()) : Tensor();
  if (x.size(0) > 0 && (gx.defined() || gw.defined())) {
    LETHE_DISPATCH(x.device(), conv2d_backward, x, w, gy, gx, gw, g);
  } else if (gw.defined()) {  // no images: no gradient reaches w
    gw = Tensor::zeros(w.shape(), w.dtype(), w.device());
  }
  // Over H, W then N: two reductions over adjacent dims, neither needing a permuted copy of dy.
  return {gx, gw, needs[2] ? sum(sum(gy, {2, 3}), {0}) : Tensor()};
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dOptions& opt) {
  const ConvGeometry g = conv_geometry(x_in, w_in, bias_in, opt);
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  Tensor y = Tensor::empty({x.size(0), g.out_channels, g.out_h, g.out_w}, x.dtype(), x.device());
  if (y.numel() > 0) LETHE_DISPATCH(x.device(), conv2d_forward, x, w, bias, y, g);
  autograd::record("conv2d", y, {&x_in, &w_in, &bias_in},
                   [g, sx = autograd::Saved(x), sw = autograd::Saved(w)](const Tensor& gy, autograd::Needs needs) {
                     return conv2d_gradients(g, sx.get(), sw.get(), gy.contiguous(), needs);
                   });
  return y;
}

Tensor conv2d_relu_max_pool2(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dOptions& opt) {
  const ConvGeometry g = conv_geometry(x_in, w_in, bias_in, opt);
  LETHE_CHECK(g.out_h >= 2 && g.out_w >= 2, "conv2d_relu_max_pool2", "the convolution's output [", g.out_h, ",",
              g.out_w, "] is smaller than the 2x2 pooling window (x ", x_in.str(), ", w ", w_in.str(), ")");
  if (!x_in.device().is_cpu()) return max_pool2d(relu(conv2d(x_in, w_in, bias_in, opt)), Pool2dOptions{});
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  const Shape pooled{x.size(0), g.out_channels, g.out_h / 2, g.out_w / 2};
  Tensor y = Tensor::empty(pooled, x.dtype());
  const bool recorded = autograd::needs_grad({&x_in, &w_in, &bias_in});
  const Tensor argmax = recorded ? Tensor::empty(pooled, DType::i64) : Tensor();
  if (y.numel() > 0) cpu::conv2d_relu_max_pool2_forward(x, w, bias, y, argmax, g);
  if (!recorded) return y;
  autograd::record("conv2d_relu_max_pool2", y, {&x_in, &w_in, &bias_in},
                   [g, sx = autograd::Saved(x), sw = autograd::Saved(w), sy = autograd::Saved(y), argmax](
                       const Tensor& gy, autograd::Needs needs) {
                     const Tensor xv = sx.get();
                     Tensor gz = Tensor::empty({xv.size(0), g.out_channels, g.out_h, g.out_w}, xv.dtype());
                     if (gz.numel() > 0) cpu::relu_max_pool2_backward(gy.contiguous(), sy.get(), argmax, gz, g);
                     return conv2d_gradients(g, xv, sw.get(), gz, needs);
                   });
  return y;
}

}  // namespace lethe
