// conv2d's cases (tests/op_registry.h): stride, padding, dilation and groups one at a time and all
// together, with and without bias, a rectangular everything, and cnn-s's two layers; CPU/CUDA
// parity on both CUDA backends (cuDNN and lethe's im2col); conv2d_relu_max_pool2's forward,
// parity and gradchecks.
#include <algorithm>
#include <string>

#include "kernels/conv.h"
#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// Naive float64 conv2d straight from the definition.
Tensor reference_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(w.size(0), 0.0);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), Og = O / o.groups;
  const int64_t OH = (H + 2 * o.pad_h - o.dilation_h * (kh - 1) - 1) / o.stride_h + 1;
  const int64_t OW = (W + 2 * o.pad_w - o.dilation_w * (kw - 1) - 1) / o.stride_w + 1;
  std::vector<double> y(N * O * OH * OW);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < O; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = bv[oc];
          for (int64_t cg = 0; cg < Cg; ++cg) {
            const int64_t c = (oc / Og) * Cg + cg;
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t h = oh * o.stride_h - o.pad_h + i * o.dilation_h, ww = ow * o.stride_w - o.pad_w + j * o.dilation_w;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                s += xv[((n * C + c) * H + h) * W + ww] * wv[((oc * Cg + cg) * kh + i) * kw + j];
              }
          }
          y[((n * O + oc) * OH + oh) * OW + ow] = s;
        }
  return expected(y, {N, O, OH, OW});
}

// max over each 2×2 window (stride 2, the last odd row and column dropped) of max(y, 0), in float64.
Tensor relu_max_pool2_reference(const Tensor& y) {
  const std::vector<double> v = y.to_vector<double>();
  const int64_t planes = y.size(0) * y.size(1), H = y.size(2), W = y.size(3), PH = H / 2, PW = W / 2;
  std::vector<double> out(planes * PH * PW);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t ph = 0; ph < PH; ++ph)
      for (int64_t pw = 0; pw < PW; ++pw) {
        double best = 0;  // ReLU's floor
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 2; ++j) best = std::max(best, v[(p * H + 2 * ph + i) * W + 2 * pw + j]);
        out[(p * PH + ph) * PW + pw] = best;
      }
  return expected(out, {y.size(0), y.size(1), PH, PW});
}

Fn conv(const Conv2dOptions& o, bool bias = true) {
  return [o, bias](const V& in) { return conv2d(in[0], in[1], bias ? in[2] : Tensor(), o); };
}

Reference conv_reference(const Conv2dOptions& o, bool bias = true) {
  return [o, bias](const V& in) { return reference_conv(in[0], in[1], bias ? in[2] : Tensor(), o); };
}

// Runs a case's checks with CUDA convolutions on `backend`.
std::function<void(const std::function<void()>&)> on_backend(ConvBackend backend) {
  return [backend](const std::function<void()>& check) {
    struct Restore {
      ConvBackend before = conv_backend();
      ~Restore() { set_conv_backend(before); }
    } restore;
    set_conv_backend(backend);
    check();
  };
}

OpCase im2col_variant(OpCase c) {
  return {.name = c.name + "-im2col", .fn = c.fn, .parity = c.parity, .within = on_backend(ConvBackend::im2col)};
}

const std::vector<Precision> kBothPrecisions{{DType::f64, 1e-12, 1e-12}, {DType::f32, 1e-5, 1e-5}};

}  // namespace

LETHE_OP_CASES(conv) {
  std::vector<OpCase> cases;
  struct Option {
    const char* name;
    Conv2dOptions o;
  };
  // The gradcheck shape N=2, C=4, H=W=6, O=4, k=3 under each option and all of them together.
  for (const Option& opt : {Option{"plain", conv_options(1, 0, 1, 1)}, Option{"stride2", conv_options(2, 0, 1, 1)},
                            Option{"padding1", conv_options(1, 1, 1, 1)}, Option{"dilation2", conv_options(1, 0, 2, 1)},
                            Option{"groups2", conv_options(1, 0, 1, 2)},
                            Option{"stride2-padding1-dilation2-groups2", conv_options(2, 1, 2, 2)}}) {
    const int64_t in_per_group = 4 / opt.o.groups;
    const std::string name = std::string("conv2d/") + opt.name;
    OpCase with_bias{
        .name = name,
        .fn = conv(opt.o),
        .forward = ForwardCheck{{uniform({2, 4, 6, 6}, 1).grad(), uniform({4, in_per_group, 3, 3}, 2).grad(), uniform({4}, 3).grad()},
                                conv_reference(opt.o), kBothPrecisions},
        .gradcheck = GradCheck{{uniform({2, 4, 6, 6}, 11).grad(), uniform({4, in_per_group, 3, 3}, 12).grad(), uniform({4}, 13).grad()}},
        .parity = ParityCheck{{uniform({3, 4, 9, 9}, 41).grad(), uniform({6, in_per_group, 3, 3}, 42).grad(), uniform({6}, 43).grad()}},
        .within = on_backend(ConvBackend::cudnn)};
    cases.push_back(with_bias);
    cases.push_back(im2col_variant(with_bias));
    OpCase no_bias{.name = name + "-no-bias",
                   .fn = conv(opt.o, false),
                   .forward = ForwardCheck{{uniform({2, 4, 6, 6}, 1).grad(), uniform({4, in_per_group, 3, 3}, 2).grad()},
                                           conv_reference(opt.o, false), kBothPrecisions}};
    if (opt.o.pad_h == 1 && opt.o.groups == 1)
      no_bias.gradcheck = GradCheck{{uniform({1, 2, 4, 4}, 14).grad(), uniform({3, 2, 3, 3}, 15).grad()}};
    cases.push_back(no_bias);
  }
  cases.push_back({.name = "conv2d/padding1-no-bias-grad-of-w-only",
                   .fn = conv(conv_options(1, 1, 1, 1), false),
                   .gradcheck = GradCheck{{uniform({1, 2, 4, 4}, 16), uniform({3, 2, 3, 3}, 17).grad()}}});

  Conv2dOptions rectangular;
  rectangular.stride_h = 2, rectangular.stride_w = 1, rectangular.pad_h = 0, rectangular.pad_w = 2;
  rectangular.dilation_h = 1, rectangular.dilation_w = 2, rectangular.groups = 3;
  cases.push_back({.name = "conv2d/rectangular",
                   .fn = conv(rectangular),
                   .forward = ForwardCheck{{uniform({3, 6, 9, 7}, 4).grad(), uniform({9, 2, 2, 3}, 5).grad(), uniform({9}, 6).grad()},
                                           conv_reference(rectangular)}});

  // cnn-s's layers at a small batch.
  const OpCase conv1{.name = "conv2d/cnn-s-conv1",
                     .fn = conv(conv_options(1, 2, 1, 1)),
                     .parity = ParityCheck{{uniform({8, 1, 28, 28}, 44).grad(), uniform({16, 1, 5, 5}, 45).grad(), uniform({16}, 46).grad()}},
                     .within = on_backend(ConvBackend::cudnn)};
  const OpCase conv2{.name = "conv2d/cnn-s-conv2",
                     .fn = conv(conv_options(1, 2, 1, 1)),
                     .parity = ParityCheck{{uniform({8, 16, 14, 14}, 47).grad(), uniform({32, 16, 5, 5}, 48).grad(),
                                            uniform({32}, 49).grad()},
                                           1e-4, 1e-4},
                     .within = on_backend(ConvBackend::cudnn)};
  for (const OpCase& layer : {conv1, conv2}) {
    cases.push_back(layer);
    cases.push_back(im2col_variant(layer));
  }

  // The fused op: cnn-s's layers (implicit GEMMs on the CPU), no bias with an odd output, stride
  // and groups (explicit GEMMs); gradchecks on distinct inputs small enough for central differences.
  struct Fused {
    const char* name;
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  for (const Fused& f : {Fused{"cnn-s-conv1", {2, 1, 28, 28}, {16, 1, 5, 5}, conv_options(1, 2, 1, 1), true},
                         Fused{"cnn-s-conv2", {2, 16, 14, 14}, {32, 16, 5, 5}, conv_options(1, 2, 1, 1), true},
                         Fused{"no-bias-odd-output", {2, 3, 9, 9}, {4, 3, 3, 3}, conv_options(1, 1, 1, 1), false},
                         Fused{"stride2-groups2", {2, 4, 11, 11}, {6, 2, 3, 3}, conv_options(2, 1, 1, 2), true}}) {
    Inputs inputs{uniform(f.x, 51).grad(), uniform(f.w, 52).grad()};
    if (f.bias) inputs.push_back(uniform({f.w[0]}, 53).grad());
    const Conv2dOptions o = f.o;
    const bool bias = f.bias;
    cases.push_back({.name = std::string("conv2d_relu_max_pool2/") + f.name,
                     .fn = [o, bias](const V& in) { return conv2d_relu_max_pool2(in[0], in[1], bias ? in[2] : Tensor(), o); },
                     .forward = ForwardCheck{inputs,
                                             [o, bias](const V& in) {
                                               return relu_max_pool2_reference(reference_conv(in[0], in[1], bias ? in[2] : Tensor(), o));
                                             },
                                             kBothPrecisions},
                     .parity = ParityCheck{inputs, 1e-4, 1e-4}});
  }
  for (const bool bias : {true, false}) {
    const Conv2dOptions o = conv_options(1, 1, 1, 1);
    Inputs inputs{distinct({2, 2, 5, 5}, 54, 1e-3).grad(), distinct({3, 2, 3, 3}, 55, 1e-3).grad()};
    if (bias) inputs.push_back(distinct({3}, 56, 1e-3).grad());
    cases.push_back({.name = std::string("conv2d_relu_max_pool2/gradcheck") + (bias ? "" : "-no-bias"),
                     .fn = [o, bias](const V& in) { return conv2d_relu_max_pool2(in[0], in[1], bias ? in[2] : Tensor(), o); },
                     .gradcheck = GradCheck{inputs}});
  }
  return cases;
}
