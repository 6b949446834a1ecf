#pragma once
// Index math of 2-d pooling over one (n, c) plane, shared by the CPU and CUDA launchers.
// Output pixel (oh, ow) pools the window of rows [oh·sh − ph, oh·sh − ph + kh) and columns
// likewise; positions in the padding are skipped (max) or count as zeros (avg).
#include <cstdint>

#include "kernels/common/hd.h"

namespace lethe {

struct PoolGeometry {
  int64_t height = 0, width = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;

  LETHE_HD int64_t plane() const { return height * width; }
  LETHE_HD int64_t out_plane() const { return out_h * out_w; }
};

// Whether a pooling (PoolGeometry, or the ops' Pool2dOptions) is MaxPool2d(2): a 2×2 window,
// stride 2, no padding, the one every model here uses, which has loops of its own.
template <class Pool>
LETHE_HD bool is_pool2(const Pool& p) {
  return p.kernel_h == 2 && p.kernel_w == 2 && p.stride_h == 2 && p.stride_w == 2 && p.pad_h == 0 && p.pad_w == 0;
}

// The in-bounds part [begin, end) of window o along a dim of extent `in`.
struct Span {
  int64_t begin, end;
};
LETHE_HD Span pool_window(int64_t o, int64_t kernel, int64_t stride, int64_t pad, int64_t in) {
  const int64_t start = o * stride - pad;
  return {start < 0 ? 0 : start, start + kernel < in ? start + kernel : in};
}

// The windows [begin, end) along a dim that cover input index x.
LETHE_HD Span pool_covering(int64_t x, int64_t kernel, int64_t stride, int64_t pad, int64_t out) {
  const int64_t lo = x + pad - kernel + 1;  // o·stride ≥ lo
  const int64_t last = (x + pad) / stride + 1;
  return {lo <= 0 ? 0 : (lo + stride - 1) / stride, last < out ? last : out};
}

// Max of window (oh, ow) and its index h·W + w in the plane. Ties go to the first position in
// scan order (rows, then columns); NaN wins (the last NaN in scan order, as in PyTorch). Every window holds an input pixel
// (padding ≤ kernel/2 is checked by the op).
// Whether v replaces the running maximum `best` of a window scanned in order (PyTorch's rule:
// larger, or NaN), as a value the caller can select on rather than branch on.
template <class T>
LETHE_HD bool max_pool_takes(T v, T best) {
  return (v > best) | (v != v);
}

// The maximum of a 2×2 window given in scan order (top left, top right, bottom left, bottom right)
// by max_pool_takes: MaxPool2d(2)'s value, and that of the CPU's fused convolution epilogue
// (kernels/cpu/conv.cpp), which must give the same bits.
template <class T>
LETHE_HD T max_2x2(T top_left, T top_right, T bottom_left, T bottom_right) {
  T best = top_left;
  best = max_pool_takes(top_right, best) ? top_right : best;
  best = max_pool_takes(bottom_left, best) ? bottom_left : best;
  return max_pool_takes(bottom_right, best) ? bottom_right : best;
}
// max_2x2 and, in *index, where the value it returns lies in the plane: `top_left` is the
// window's first index, the row below starts `width` further on.
template <class T>
LETHE_HD T max_2x2(T top_left, T top_right, T bottom_left, T bottom_right, int64_t at, int64_t width, int64_t* index) {
  T best = top_left;
  int64_t best_i = at;
  const T candidates[3] = {top_right, bottom_left, bottom_right};
  const int64_t where[3] = {at + 1, at + width, at + width + 1};
  for (int c = 0; c < 3; ++c) {
    const bool take = max_pool_takes(candidates[c], best);
    best = take ? candidates[c] : best;
    best_i = take ? where[c] : best_i;
  }
  *index = best_i;
  return best;
}

template <class T>
LETHE_HD void max_window(const PoolGeometry& g, const T* plane, int64_t oh, int64_t ow, T* value, int64_t* index) {
  const Span hs = pool_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
  const Span ws = pool_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
  int64_t best_i = hs.begin * g.width + ws.begin;
  T best = plane[best_i];
  for (int64_t h = hs.begin; h < hs.end; ++h) {
    for (int64_t w = ws.begin; w < ws.end; ++w) {
      const T v = plane[h * g.width + w];
      const bool take = max_pool_takes(v, best);
      best = take ? v : best;
      best_i = take ? h * g.width + w : best_i;
    }
  }
  *value = best;
  if (index != nullptr) *index = best_i;  // null: nothing will run the backward (no autograd)
}

// Mean of window (oh, ow), padding counted as zeros in the divisor (count_include_pad).
template <class T>
LETHE_HD T avg_window(const PoolGeometry& g, const T* plane, int64_t oh, int64_t ow) {
  const Span hs = pool_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
  const Span ws = pool_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
  T sum = 0;
  for (int64_t h = hs.begin; h < hs.end; ++h)
    for (int64_t w = ws.begin; w < ws.end; ++w) sum += plane[h * g.width + w];
  return sum / T(g.kernel_h * g.kernel_w);
}

// Backward as a gather: input pixel (h, w) sums, over the windows covering it in order (oh, then
// ow, ascending), the gradient of those whose argmax it is (max) or its share (avg). The CPU
// scatters per plane in the same window order, so both backends add the same terms in order.
template <class T>
LETHE_HD T max_pool_grad(const PoolGeometry& g, const T* gy, const int64_t* argmax, int64_t h, int64_t w) {
  const Span ohs = pool_covering(h, g.kernel_h, g.stride_h, g.pad_h, g.out_h);
  const Span ows = pool_covering(w, g.kernel_w, g.stride_w, g.pad_w, g.out_w);
  const int64_t self = h * g.width + w;
  T sum = 0;
  for (int64_t oh = ohs.begin; oh < ohs.end; ++oh)
    for (int64_t ow = ows.begin; ow < ows.end; ++ow)
      if (argmax[oh * g.out_w + ow] == self) sum += gy[oh * g.out_w + ow];
  return sum;
}

template <class T>
LETHE_HD T avg_pool_share(const PoolGeometry& g, T gy) {
  return gy / T(g.kernel_h * g.kernel_w);
}

template <class T>
LETHE_HD T avg_pool_grad(const PoolGeometry& g, const T* gy, int64_t h, int64_t w) {
  const Span ohs = pool_covering(h, g.kernel_h, g.stride_h, g.pad_h, g.out_h);
  const Span ows = pool_covering(w, g.kernel_w, g.stride_w, g.pad_w, g.out_w);
  T sum = 0;
  for (int64_t oh = ohs.begin; oh < ohs.end; ++oh)
    for (int64_t ow = ows.begin; ow < ows.end; ++ow) sum += avg_pool_share(g, gy[oh * g.out_w + ow]);
  return sum;
}

// Nearest-neighbour upsampling by (s_h, s_w) = (stride_h, stride_w) (kernel = stride, no padding;
// height/width are the input's, out_h/out_w the output's) is the adjoint of sum pooling over
// s_h×s_w blocks: output pixel (oh, ow) is input pixel (oh/s_h, ow/s_w), and input pixel (h, w)'s
// gradient sums its block of the output gradient, rows then columns (one order on both backends).
template <class T>
LETHE_HD T upsample_value(const PoolGeometry& g, const T* plane, int64_t oh, int64_t ow) {
  return plane[(oh / g.stride_h) * g.width + ow / g.stride_w];
}

template <class T>
LETHE_HD T upsample_grad(const PoolGeometry& g, const T* gy, int64_t h, int64_t w) {
  T sum = 0;
  for (int64_t oh = h * g.stride_h; oh < (h + 1) * g.stride_h; ++oh)
    for (int64_t ow = w * g.stride_w; ow < (w + 1) * g.stride_w; ++ow) sum += gy[oh * g.out_w + ow];
  return sum;
}

// upsample_grad of a 2×2 block, top row (t0, t1) then bottom row (b0, b1): the same additions in
// the same order, from the same zero (the CPU's row loop for scale 2, which vectorises).
template <class T>
LETHE_HD T upsample_grad_2x2(T t0, T t1, T b0, T b1) {
  return (((T(0) + t0) + t1) + b0) + b1;
}

}  // namespace lethe
