// conv2d on the CPU: the images of a batch are split over the threads and each is lowered on its
// own thread: im2col into that thread's column matrix [C·kh·kw, OH·OW] (small enough to stay in
// cache), then per group one single-threaded OpenBLAS GEMM that writes the image's NCHW output
// rows in place. Many cache-resident GEMMs side by side run faster than one wide GEMM split by
// OpenBLAS, whose column matrix streams through memory, and they need no reorder of the result.
// A batch of one image runs on one thread with OpenBLAS threaded inside instead.
#include <algorithm>

#include "engine/blas.h"
#include "engine/parallel.h"
#include "kernels/conv.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {

// col [col_rows, L] from one image. Within a row, each output row copies its in-bounds run and
// zero-fills the padding around it.
template <class T>
void im2col(const ConvGeometry& g, const T* image, T* col) {
  const int64_t L = g.out_pixels();
  for (int64_t r = 0; r < g.col_rows(); ++r) {
    const ColRow tap = conv_col_row(g, r);
    const int64_t h_off = tap.i * g.dilation_h - g.pad_h, w_off = tap.j * g.dilation_w - g.pad_w;
    const OutRange hs = conv_valid_outputs(g.height, h_off, g.stride_h, g.out_h);
    const OutRange ws = conv_valid_outputs(g.width, w_off, g.stride_w, g.out_w);
    const T* plane = image + tap.c * g.height * g.width;
    T* out = col + r * L;
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
}

// dx of one image from its dcol [col_rows, L]: each channel plane adds its taps' contributions
// in tap order, the order of col2im_value (what the CUDA kernel computes).
template <class T>
void col2im(const ConvGeometry& g, const T* dcol, T* dx) {
  const int64_t L = g.out_pixels(), plane_size = g.height * g.width;
  for (int64_t c = 0; c < g.channels; ++c) {
    T* plane = dx + c * plane_size;
    std::fill(plane, plane + plane_size, T(0));
    for (int64_t i = 0; i < g.kernel_h; ++i) {
      const int64_t h_off = i * g.dilation_h - g.pad_h;
      const OutRange hs = conv_valid_outputs(g.height, h_off, g.stride_h, g.out_h);
      for (int64_t j = 0; j < g.kernel_w; ++j) {
        const int64_t w_off = j * g.dilation_w - g.pad_w;
        const OutRange ws = conv_valid_outputs(g.width, w_off, g.stride_w, g.out_w);
        const T* in = dcol + ((c * g.kernel_h + i) * g.kernel_w + j) * L;
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
}

// The batch in `parts` contiguous runs of images, one per thread: part p's images.
struct Part {
  int64_t begin, end;
};
Part part_of(int64_t p, int64_t parts, int64_t images) { return {p * images / parts, (p + 1) * images / parts}; }

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* wp = w.data<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data<scalar_t>() : nullptr;
    scalar_t* yp = y.data<scalar_t>();
    parallel_for(N, 1, [&](int64_t begin, int64_t end) {
      const Tensor col = Tensor::empty({g.col_rows() * L}, x.dtype());
      scalar_t* cp = col.data<scalar_t>();
      for (int64_t n = begin; n < end; ++n) {
        scalar_t* yn = yp + n * g.out_channels * L;
        im2col(g, xp + n * g.image_size(), cp);
        for (int64_t k = 0; k < g.groups; ++k)  // y_n,k [Og, L] = w_k [Og, R] · col_k [R, L]
          blas::gemm(false, false, Og, L, R, 1.0, wp + k * Og * R, R, cp + k * R * L, L, 0.0, yn + k * Og * L, L);
        if (bp == nullptr) continue;
        for (int64_t o = 0; o < g.out_channels; ++o)
          for (int64_t l = 0; l < L; ++l) yn[o * L + l] += bp[o];
      }
    });
  });
}

// Both gradients in one pass over the images, so each image's dy is read while in cache. The
// weight gradient is accumulated transposed, gwᵀ_k [R, Og] (+)= col_k [R, L] · dy_n,kᵀ, so the
// operand a GEMM has to transpose is the small dy_n,k [Og, L], not the column matrix [R, L]. It
// sums over images: each part accumulates its images in order into its own gwᵀ buffer, then the
// parts are added in order while transposing into gw, so for a given thread count the result
// is fixed.
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gy, const Tensor& gx,
                     const Tensor& gw, const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels(), R = g.group_rows(), Og = g.group_out_channels();
  const int64_t parts = std::min<int64_t>(N, num_threads()), wsize = g.out_channels * R;
  const Tensor transposed = gw.defined() ? Tensor::empty({parts * wsize}, x.dtype()) : Tensor();
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d_backward", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* wp = w.data<scalar_t>();
    const scalar_t* gyp = gy.data<scalar_t>();
    scalar_t* gxp = gx.defined() ? gx.data<scalar_t>() : nullptr;
    scalar_t* gwt = gw.defined() ? transposed.data<scalar_t>() : nullptr;  // [parts][groups][R, Og]
    parallel_for(parts, 1, [&](int64_t p_begin, int64_t p_end) {
      const Tensor col = Tensor::empty({g.col_rows() * L}, x.dtype());
      scalar_t* cp = col.data<scalar_t>();
      for (int64_t p = p_begin; p < p_end; ++p) {
        const Part part = part_of(p, parts, N);
        scalar_t* gwpart = gwt == nullptr ? nullptr : gwt + p * wsize;
        for (int64_t n = part.begin; n < part.end; ++n) {
          const scalar_t* dyn = gyp + n * g.out_channels * L;
          if (gwpart != nullptr) {  // gwᵀ_k (+)= col_k [R, L] · dy_n,k [Og, L]ᵀ
            im2col(g, xp + n * g.image_size(), cp);
            const double beta = n == part.begin ? 0.0 : 1.0;
            for (int64_t k = 0; k < g.groups; ++k)
              blas::gemm(false, true, R, Og, L, 1.0, cp + k * R * L, L, dyn + k * Og * L, L, beta,
                         gwpart + k * R * Og, Og);
          }
          if (gxp != nullptr) {  // dcol_k [R, L] = w_kᵀ · dy_n,k, then back to pixels
            for (int64_t k = 0; k < g.groups; ++k)
              blas::gemm(true, false, R, L, Og, 1.0, wp + k * Og * R, R, dyn + k * Og * L, L, 0.0,
                         cp + k * R * L, L);
            col2im(g, cp, gxp + n * g.image_size());
          }
        }
      }
    });
    if (gwt != nullptr) {  // gw[k·Og + o, r] = Σ_parts gwᵀ_part[k][r, o], parts in order
      scalar_t* gwp = gw.data<scalar_t>();
      parallel_for(wsize, kGrain / std::max<int64_t>(parts, 1), [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e) {
          const int64_t k = e / (Og * R), o = e / R % Og, r = e % R;
          const int64_t t = k * R * Og + r * Og + o;
          scalar_t sum = gwt[t];
          for (int64_t p = 1; p < parts; ++p) sum += gwt[p * wsize + t];
          gwp[e] = sum;
        }
      });
    }
  });
}

}  // namespace lethe::cpu
