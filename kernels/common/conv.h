#pragma once
// Index math of conv2d lowered to GEMM (im2col), shared by the CPU and CUDA launchers.
//
// A chunk of `images` NCHW images becomes a column matrix with one row per (input channel c,
// kernel tap i, j), r = (c·kh + i)·kw + j, and one column per (image n, output pixel oh, ow),
// q = n·L + oh·OW + ow with L = OH·OW. Rows are channel-major, so group g owns the contiguous
// rows [g·R, (g+1)·R), R = C/groups·kh·kw, and the forward pass is, per group, the GEMM
// out_g [O/groups, images·L] = w_g [O/groups, R] · col_g [R, images·L].
#include <algorithm>
#include <cstdint>

#include "kernels/common/hd.h"

namespace lethe {

struct ConvGeometry {
  int64_t channels = 0, height = 0, width = 0;  // input C, H, W of one image
  int64_t out_channels = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 0, kernel_w = 0;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  LETHE_HD int64_t image_size() const { return channels * height * width; }
  LETHE_HD int64_t out_pixels() const { return out_h * out_w; }                 // L
  LETHE_HD int64_t col_rows() const { return channels * kernel_h * kernel_w; }  // all groups
  LETHE_HD int64_t group_rows() const { return col_rows() / groups; }          // R
  LETHE_HD int64_t group_out_channels() const { return out_channels / groups; }
};

// Output extent along one dim: (in + 2p − d(k−1) − 1)/s + 1, or 0 when the kernel does not fit.
LETHE_HD int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// The input row (column) that kernel tap i (j) of output row oh (column ow) reads; outside
// [0, H) ([0, W)) it lies in the zero padding.
LETHE_HD int64_t conv_input_h(const ConvGeometry& g, int64_t oh, int64_t i) {
  return oh * g.stride_h - g.pad_h + i * g.dilation_h;
}
LETHE_HD int64_t conv_input_w(const ConvGeometry& g, int64_t ow, int64_t j) {
  return ow * g.stride_w - g.pad_w + j * g.dilation_w;
}

// The outputs [begin, end) along one dim whose input index o·stride + offset lies in [0, in),
// offset = tap·dilation − pad: the CPU loops copy these without per-element bounds checks.
struct OutRange {
  int64_t begin, end;
};
LETHE_HD OutRange conv_valid_outputs(int64_t in, int64_t offset, int64_t stride, int64_t out) {
  const int64_t first = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = in - 1 - offset;  // o·stride ≤ last
  const int64_t begin = first < out ? first : out;
  const int64_t end = last < 0 ? 0 : (last / stride + 1 < out ? last / stride + 1 : out);
  return {begin, end > begin ? end : begin};
}

struct ColRow {
  int64_t c, i, j;
};
LETHE_HD ColRow conv_col_row(const ConvGeometry& g, int64_t r) {
  return {r / (g.kernel_h * g.kernel_w), (r / g.kernel_w) % g.kernel_h, r % g.kernel_w};
}

// col[r][n·L + l] for the image at `image` ([C,H,W]).
template <class T>
LETHE_HD T im2col_value(const ConvGeometry& g, const T* image, int64_t r, int64_t l) {
  const ColRow t = conv_col_row(g, r);
  const int64_t h = conv_input_h(g, l / g.out_w, t.i), w = conv_input_w(g, l % g.out_w, t.j);
  return h >= 0 && h < g.height && w >= 0 && w < g.width ? image[(t.c * g.height + h) * g.width + w] : T(0);
}

// Gradient of input pixel (c, h, w) of image n of a chunk, from the gradient of its column
// matrix (`cols` columns): the sum over the kernel taps that read the pixel, taps in order
// (i, then j, ascending). The CPU's per-plane scatter in tap order adds the same terms in the
// same order, so both backends give the same bits.
template <class T>
LETHE_HD T col2im_value(const ConvGeometry& g, const T* dcol, int64_t cols, int64_t n, int64_t c,
                        int64_t h, int64_t w) {
  T sum = 0;
  for (int64_t i = 0; i < g.kernel_h; ++i) {
    const int64_t th = h + g.pad_h - i * g.dilation_h;  // = oh·stride_h for the tap's output row
    if (th < 0 || th % g.stride_h != 0 || th / g.stride_h >= g.out_h) continue;
    const int64_t oh = th / g.stride_h;
    for (int64_t j = 0; j < g.kernel_w; ++j) {
      const int64_t tw = w + g.pad_w - j * g.dilation_w;
      if (tw < 0 || tw % g.stride_w != 0 || tw / g.stride_w >= g.out_w) continue;
      const int64_t r = (c * g.kernel_h + i) * g.kernel_w + j;
      sum += dcol[r * cols + n * g.out_pixels() + oh * g.out_w + tw / g.stride_w];
    }
  }
  return sum;
}

// The GEMM result [O, images·L] and the NCHW output [images, O, OH, OW] of a chunk hold the same
// rows of L values in different orders: the GEMM row of NCHW row (n, o)...
LETHE_HD int64_t conv_gemm_row(int64_t images, int64_t n, int64_t o) { return o * images + n; }
// ...and the GEMM offset of NCHW element e.
LETHE_HD int64_t conv_gemm_offset(const ConvGeometry& g, int64_t images, int64_t e) {
  const int64_t L = g.out_pixels(), row = e / L;
  return conv_gemm_row(images, row / g.out_channels, row % g.out_channels) * L + e % L;
}

// Images per chunk so a column matrix holds at most `budget` elements (and at least one image).
inline int64_t conv_chunk_images(const ConvGeometry& g, int64_t images, int64_t budget) {
  return std::clamp<int64_t>(budget / (g.col_rows() * g.out_pixels()), 1, std::max<int64_t>(images, 1));
}

}  // namespace lethe
