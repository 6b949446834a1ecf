// conv2d on the CPU: im2col over a chunk of images into one wide column matrix, so each group's
// product is one large OpenBLAS GEMM, then a reorder of the [O, images·L] result into NCHW.
#include <algorithm>

#include "kernels/conv.h"
#include "kernels/cpu/parallel.h"
#include "kernels/matmul.h"

namespace lethe::cpu {

namespace {

// Column matrices of up to 4M elements (16 MB in float32): a cnn-s batch of 128 takes one to
// three chunks, so GEMMs stay wide, while memory stays bounded for big inputs and below glibc's
// mmap threshold (so the buffers are reused from the heap instead of page-faulted in each call).
constexpr int64_t kColBudget = int64_t{1} << 22;

// col [rows, images·L] from `images` images at x. Rows in parallel; within a row, each output
// row copies its in-bounds run and zero-fills the padding around it.
template <class T>
void im2col(const ConvGeometry& g, const T* x, int64_t images, T* col) {
  const int64_t L = g.out_pixels(), cols = images * L;
  const int64_t grain = std::max<int64_t>(1, kGrain / L);
  parallel_for(g.col_rows() * images, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r = t / images, n = t % images;
      const ColRow tap = conv_col_row(g, r);
      const int64_t h_off = tap.i * g.dilation_h - g.pad_h, w_off = tap.j * g.dilation_w - g.pad_w;
      const OutRange hs = conv_valid_outputs(g.height, h_off, g.stride_h, g.out_h);
      const OutRange ws = conv_valid_outputs(g.width, w_off, g.stride_w, g.out_w);
      const T* plane = x + n * g.image_size() + tap.c * g.height * g.width;
      T* out = col + r * cols + n * L;
      std::fill(out, out + hs.begin * g.out_w, T(0));
      for (int64_t oh = hs.begin; oh < hs.end; ++oh) {
        const T* row = plane + (oh * g.stride_h + h_off) * g.width;
        T* o = out + oh * g.out_w;
        std::fill(o, o + ws.begin, T(0));
        for (int64_t ow = ws.begin; ow < ws.end; ++ow) o[ow] = row[ow * g.stride_w + w_off];
        std::fill(o + ws.end, o + g.out_w, T(0));
      }
      std::fill(out + hs.end * g.out_w, out + L, T(0));
    }
  });
}

// dx of `images` images from dcol [rows, images·L]. Deterministic without a gather: each (n, c)
// plane belongs to one thread, which adds the taps' contributions in tap order, the order of
// col2im_value (what the CUDA kernel computes).
template <class T>
void col2im(const ConvGeometry& g, const T* dcol, int64_t images, T* dx) {
  const int64_t L = g.out_pixels(), cols = images * L, plane_size = g.height * g.width;
  const int64_t grain = std::max<int64_t>(1, kGrain / plane_size);
  parallel_for(images * g.channels, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t n = t / g.channels, c = t % g.channels;
      T* plane = dx + t * plane_size;
      std::fill(plane, plane + plane_size, T(0));
      for (int64_t i = 0; i < g.kernel_h; ++i) {
        const int64_t h_off = i * g.dilation_h - g.pad_h;
        const OutRange hs = conv_valid_outputs(g.height, h_off, g.stride_h, g.out_h);
        for (int64_t j = 0; j < g.kernel_w; ++j) {
          const int64_t w_off = j * g.dilation_w - g.pad_w;
          const OutRange ws = conv_valid_outputs(g.width, w_off, g.stride_w, g.out_w);
          const T* in = dcol + ((c * g.kernel_h + i) * g.kernel_w + j) * cols + n * L;
          for (int64_t oh = hs.begin; oh < hs.end; ++oh) {
            T* row = plane + (oh * g.stride_h + h_off) * g.width;
            const T* src = in + oh * g.out_w;
            if (g.stride_w == 1) {  // unit stride: let it vectorise
              for (int64_t ow = ws.begin; ow < ws.end; ++ow) row[ow + w_off] += src[ow];
            } else {
              for (int64_t ow = ws.begin; ow < ws.end; ++ow) row[ow * g.stride_w + w_off] += src[ow];
            }
          }
        }
      }
    }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  const int64_t chunk = conv_chunk_images(g, N, kColBudget), row_grain = std::max<int64_t>(1, kGrain / L);
  const Tensor col = Tensor::empty({g.col_rows() * chunk * L}, x.dtype());
  const Tensor out = Tensor::empty({g.out_channels * chunk * L}, x.dtype());
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data<scalar_t>() : nullptr;
    scalar_t* yp = y.data<scalar_t>();
    const scalar_t* op = out.data<scalar_t>();
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t images = std::min(chunk, N - n0), cols = images * L;
      im2col(g, xp + n0 * g.image_size(), images, col.data<scalar_t>());
      gemm_batched(false, false, g.groups, Og, cols, R, w, R, Og * R, col, cols, R * cols, out, cols,
                   Og * cols, 0.0);
      scalar_t* yc = yp + n0 * g.out_channels * L;
      parallel_for(images * g.out_channels, row_grain, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t o = t % g.out_channels;
          const scalar_t* src = op + conv_gemm_row(images, t / g.out_channels, o) * L;
          const scalar_t b = bp ? bp[o] : scalar_t(0);
          for (int64_t l = 0; l < L; ++l) yc[t * L + l] = src[l] + b;
        }
      });
    }
  });
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,
                     const Tensor& gw, const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  const int64_t chunk = conv_chunk_images(g, N, kColBudget), row_grain = std::max<int64_t>(1, kGrain / L);
  const Tensor col = Tensor::empty({g.col_rows() * chunk * L}, x.dtype());
  const Tensor dy = Tensor::empty({g.out_channels * chunk * L}, x.dtype());
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d_backward", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* gyp = gy.data<scalar_t>();
    scalar_t* colp = col.data<scalar_t>();
    scalar_t* dyp = dy.data<scalar_t>();
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t images = std::min(chunk, N - n0), cols = images * L;
      const scalar_t* gyc = gyp + n0 * g.out_channels * L;
      parallel_for(images * g.out_channels, row_grain, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t row = conv_gemm_row(images, t / g.out_channels, t % g.out_channels);
          std::copy(gyc + t * L, gyc + (t + 1) * L, dyp + row * L);
        }
      });
      if (gw.defined()) {  // gw_g (+)= dy_g · col_gᵀ, chunks accumulated in order
        im2col(g, xp + n0 * g.image_size(), images, colp);
        gemm_batched(false, true, g.groups, Og, R, cols, dy, cols, Og * cols, col, cols, R * cols, gw,
                     R, Og * R, n0 == 0 ? 0.0 : 1.0);
      }
      if (gx.defined()) {  // dcol_g = w_gᵀ · dy_g, then back to pixels
        gemm_batched(true, false, g.groups, R, cols, Og, w, R, Og * R, dy, cols, Og * cols, col, cols,
                     R * cols, 0.0);
        col2im(g, colp, images, gx.data<scalar_t>() + n0 * g.image_size());
      }
    }
  });
}

}  // namespace lethe::cpu
