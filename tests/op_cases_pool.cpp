// The pooling ops' cases (tests/op_registry.h): max_pool2d and avg_pool2d over five square
// windows and a rectangular one, max pooling of negative values next to padding, and
// global_avg_pool2d.
#include <cmath>
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// Naive float64 pooling: max over in-bounds positions, or the sum over them divided by kh·kw.
Tensor reference_pool(const Tensor& x, const Pool2dOptions& o, bool is_max) {
  const std::vector<double> xv = x.to_vector<double>();
  const int64_t P = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * o.pad_h - o.kernel_h) / o.stride_h + 1, OW = (W + 2 * o.pad_w - o.kernel_w) / o.stride_w + 1;
  std::vector<double> y;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double best = -INFINITY, sum = 0;
        for (int64_t i = 0; i < o.kernel_h; ++i)
          for (int64_t j = 0; j < o.kernel_w; ++j) {
            const int64_t h = oh * o.stride_h - o.pad_h + i, w = ow * o.stride_w - o.pad_w + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            best = std::max(best, xv[(p * H + h) * W + w]);
            sum += xv[(p * H + h) * W + w];
          }
        y.push_back(is_max ? best : sum / static_cast<double>(o.kernel_h * o.kernel_w));
      }
  return expected(y, {x.size(0), x.size(1), OH, OW});
}

Fn max_pool(const Pool2dOptions& o) {
  return [o](const V& in) { return max_pool2d(in[0], o); };
}
Fn avg_pool(const Pool2dOptions& o) {
  return [o](const V& in) { return avg_pool2d(in[0], o); };
}
Reference pool_reference(const Pool2dOptions& o, bool is_max) {
  return [o, is_max](const V& in) { return reference_pool(in[0], o, is_max); };
}

}  // namespace

LETHE_OP_CASES(pool) {
  std::vector<OpCase> cases;
  for (const Pool2dOptions& o : {pool_options(2, 2, 0), pool_options(3, 2, 1), pool_options(3, 1, 1), pool_options(2, 1, 0), pool_options(3, 3, 0)}) {
    const std::string variant = "/k" + std::to_string(o.kernel_h) + "-s" + std::to_string(o.stride_h) + "-p" + std::to_string(o.pad_h);
    // Distinct values keep every window's max away from ties (central differences need that).
    cases.push_back({.name = "max_pool2d" + variant,
                     .fn = max_pool(o),
                     .forward = ForwardCheck{{uniform({2, 3, 7, 8}, 1).grad()}, pool_reference(o, true),
                                             {{DType::f64, 0, 0}, {DType::f32, 0, 0}}},
                     .gradcheck = GradCheck{{distinct({2, 2, 5, 6}, 11).grad()}},
                     .parity = ParityCheck{{distinct({4, 3, 9, 10}, 31).grad()}}});
    cases.push_back({.name = "avg_pool2d" + variant,
                     .fn = avg_pool(o),
                     .forward = ForwardCheck{{uniform({2, 3, 7, 8}, 1).grad()}, pool_reference(o, false),
                                             {{DType::f64, 1e-6, 1e-7}, {DType::f32, 1e-6, 1e-7}}},
                     .gradcheck = GradCheck{{uniform({2, 2, 5, 6}, 12).grad()}},
                     .parity = ParityCheck{{uniform({4, 3, 9, 10}, 32).grad()}}});
  }
  Pool2dOptions rect;
  rect.kernel_h = 3, rect.kernel_w = 2, rect.stride_h = 1, rect.stride_w = 2, rect.pad_h = 1, rect.pad_w = 0;
  cases.push_back({.name = "max_pool2d/rectangular",
                   .fn = max_pool(rect),
                   .forward = ForwardCheck{{uniform({1, 2, 5, 6}, 2)}, pool_reference(rect, true), {{DType::f64, 0, 0}}}});
  cases.push_back({.name = "avg_pool2d/rectangular",
                   .fn = avg_pool(rect),
                   .forward = ForwardCheck{{uniform({1, 2, 5, 6}, 2)}, pool_reference(rect, false), {{DType::f64, 1e-14, 1e-15}}}});
  // All negative: a zero from the padding must not be the max.
  cases.push_back({.name = "max_pool2d/k3-s2-p1-negative-values",
                   .fn = max_pool(pool_options(3, 2, 1)),
                   .forward = ForwardCheck{{uniform({1, 1, 4, 4}, 3, -2, -1)}, pool_reference(pool_options(3, 2, 1), true), {{DType::f64, 0, 0}}}});

  // Nearest upsampling: out (h, w) = x (h/s, w/s).
  for (int scale : {1, 2, 3}) {
    cases.push_back({.name = "upsample_nearest2d/x" + std::to_string(scale),
                     .fn = [scale](const V& in) { return upsample_nearest2d(in[0], scale); },
                     .forward = ForwardCheck{{uniform({2, 3, 4, 5}, 41).grad()},
                                             [scale](const V& in) {
                                               const std::vector<double> xv = in[0].to_vector<double>();
                                               const int64_t planes = in[0].size(0) * in[0].size(1), H = in[0].size(2), W = in[0].size(3);
                                               std::vector<double> y;
                                               for (int64_t p = 0; p < planes; ++p)
                                                 for (int64_t h = 0; h < H * scale; ++h)
                                                   for (int64_t w = 0; w < W * scale; ++w) y.push_back(xv[(p * H + h / scale) * W + w / scale]);
                                               return expected(y, {in[0].size(0), in[0].size(1), H * scale, W * scale});
                                             },
                                             {{DType::f64, 0, 0}, {DType::f32, 0, 0}}},
                     .gradcheck = GradCheck{{uniform({2, 2, 3, 4}, 42).grad()}},
                     .parity = ParityCheck{{uniform({3, 4, 7, 9}, 43).grad()}, 0, 0}});
  }

  cases.push_back({.name = "global_avg_pool2d",
                   .fn = [](const V& in) { return global_avg_pool2d(in[0]); },
                   .forward = ForwardCheck{{uniform({2, 3, 4, 5}, 21).grad()},
                                           [](const V& in) {
                                             const std::vector<double> xv = in[0].to_vector<double>();
                                             const int64_t plane = in[0].size(2) * in[0].size(3);
                                             std::vector<double> y(in[0].size(0) * in[0].size(1), 0.0);
                                             for (size_t i = 0; i < xv.size(); ++i) y[i / plane] += xv[i] / static_cast<double>(plane);
                                             return expected(y, {in[0].size(0), in[0].size(1)});
                                           },
                                           {{DType::f64, 1e-14, 1e-15}}},
                   .gradcheck = GradCheck{{uniform({2, 3, 4, 5}, 22).grad()}},
                   .parity = ParityCheck{{uniform({4, 3, 7, 7}, 33).grad()}}});
  return cases;
}
