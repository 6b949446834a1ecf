// conv2d on the CPU: the images of a batch are split over the threads and each is lowered on its
// own thread: im2col into that thread's column matrix [C·kh·kw, OH·OW] (small enough to stay in
// cache), then per group one single-threaded GEMM (blas::gemm) that writes the image's NCHW
// output rows in place; or, in float32 with lethe's sgemm and unit stride and dilation, implicit
// GEMMs that read the zero-padded image directly (implicit_gemm below). Many cache-resident GEMMs
// side by side run faster than one wide GEMM split over the threads, whose column matrix streams
// through memory, and they need no reorder of the result. A batch of one image runs on one
// thread with the GEMM threaded inside instead.
#include <algorithm>
#include <optional>
#include <type_traits>
#include <vector>

#include "kernels/common/elementwise.h"
#include "kernels/common/pool.h"
#include "kernels/conv.h"
#include "kernels/copy.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/max_pool_2x2.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sgemm.h"

namespace lethe::cpu {

namespace {

// Whether a float32 convolution runs as implicit GEMMs (lethe's sgemm): unit stride and
// dilation, where row (c, i, j) of an image's column matrix is the zero-padded image read from
// offset (c·Hp + i)·Wp + j on, once the output is computed on the padded width Wp (the extra
// Wp − OW columns of each output row are computed and dropped). That replaces writing and
// reading the column matrix, the largest cost after the products themselves, with reading the
// padded image, which stays in L1.
bool implicit_gemm(const ConvGeometry& g) {
  return blas::uses_lethe_sgemm() && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1;
}
// The weight gradient's implicit GEMM has Og columns: with fewer than AVX-512's 32-column block it
// wastes most of each block (cnn-s's conv1, 16 channels: 0.6 ms a batch explicit, 1.0 ms
// implicit). AVX2's block has 16 columns, yet conv1 gains nothing implicit there either (0.92 ms
// explicit, 1.00 ms implicit), so every kernel follows one rule: then they all compute the same
// sums, and a model trains to the same bits on either.
bool implicit_weight_grad(const ConvGeometry& g) { return implicit_gemm(g) && g.group_out_channels() >= 32; }

// A zero-filled CPU scratch buffer.
Tensor zeros(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  fill(t, 0);
  return t;
}

// An image's convolution output in its thread's own buffer (which the fused epilogue overwrites),
// channel after channel, row after row, rows `row_stride` apart: on the implicit GEMMs' padded
// width, or packed.
template <class T>
struct OutputRows {
  T* data;
  int64_t channel_stride, row_stride;
  T* row(int64_t o, int64_t oh) const { return data + o * channel_stride + oh * row_stride; }
};

// One thread's buffers for lowering images: the image with its zero padding [C, H + 2·ph,
// W + 2·pw] (plus kw − 1 + kSgemmMaxCols − 1 zeros, as far as the implicit GEMM's last column
// block reads), so that im2col's copies need no bounds checks (they were most of its time), and
// the column matrix [col_rows, L]; for the implicit GEMMs, each column row's offset in the padded
// image and an output or dy buffer on the padded width.
template <class T>
class Lowering {
 public:
  // `with_col`: also the column matrix (im2col, or a scratch matrix of its size); `with_wide`:
  // the padded-width buffer of the implicit GEMMs.
  Lowering(const ConvGeometry& g, DType dtype, bool with_col, bool with_wide)
      : g_(g),
        padded_h_(g.height + 2 * g.pad_h),
        padded_w_(g.width + 2 * g.pad_w),
        padded_(zeros({g.channels * padded_h_ * padded_w_ + g.kernel_w - 1 + kSgemmMaxCols - 1}, dtype)),
        col_(with_col ? Tensor::empty({g.col_rows() * g.out_pixels()}, dtype) : Tensor()) {
    for (int64_t r = 0; r < g.col_rows(); ++r) {
      const ColRow tap = conv_col_row(g, r);
      offsets_.push_back((tap.c * padded_h_ + tap.i * g.dilation_h) * padded_w_ + tap.j * g.dilation_w);
    }
    if (with_wide) wide_ = zeros({g.out_channels * wide_stride()}, dtype);
  }

  T* col() const { return col_.defined() ? col_.data<T>() : nullptr; }

  // The column matrix of one image [C,H,W].
  const T* lower(const T* image) const {
    pad(image);
    im2col();
    return col();
  }

  // y [O, L] of one image, without bias, through its column matrix: per group
  // y_k [Og, L] = w_k [Og, R] · col_k [R, L].
  void forward_explicit(const T* image, const T* w, T* y) const {
    const int64_t L = g_.out_pixels(), R = g_.group_rows(), Og = g_.group_out_channels();
    const T* cp = lower(image);
    for (int64_t k = 0; k < g_.groups; ++k)
      blas::gemm(false, false, Og, L, R, 1.0, w + k * Og * R, R, cp + k * R * L, L, 0.0, y + k * Og * L, L);
  }

  // The output of one image without bias, on the padded width (implicit GEMM; float32 only):
  // rows [O, OH, Wp] of which the first OW columns are the output's (wide_rows()). Only those are
  // computed (column runs): conv2 of cnn-s skips 4 of every 18 columns' products.
  T* forward_wide(const T* image, const T* w) const {
    T* wide = wide_.data<T>();
    if constexpr (std::is_same_v<T, float>) {
      const int64_t R = g_.group_rows(), Og = g_.group_out_channels(), Lw = wide_pixels(), ld = wide_stride();
      const T* p = pad(image);
      for (int64_t k = 0; k < g_.groups; ++k)  // y_k [Og, Lw] = w_k [Og, R] · (rows of the padded image)
        sgemm_rows(blas::sgemm_kernel(), Og, Lw, R, 1.0f, w + k * Og * R, nullptr, R, p, offsets_.data() + k * R, 0,
                   0.0f, wide + k * Og * ld, ld, Runs{g_.out_w, padded_w_});
    }
    return wide;
  }
  OutputRows<T> wide_rows(T* wide) const { return {wide, wide_stride(), padded_w_}; }

  // y [O, L] of one image, without bias (implicit GEMM; float32 only).
  void forward_implicit(const T* image, const T* w, T* y) const {
    const OutputRows<T> rows = wide_rows(forward_wide(image, w));
    for (int64_t o = 0; o < g_.out_channels; ++o)
      for (int64_t oh = 0; oh < g_.out_h; ++oh) std::copy_n(rows.row(o, oh), g_.out_w, y + (o * g_.out_h + oh) * g_.out_w);
  }

  // gwᵀ_k [R, Og] (+)= (rows of the padded image) · dyᵀ of one image (implicit GEMM; float32 only).
  // Each group's dyᵀ gets its own [OH·Wp, Og] block, so a group's GEMM reads the same layout as an
  // ungrouped conv of Og channels (rows Og floats apart, not O: with many groups, rows 1 KB apart
  // thrash the cache), and its bits are that conv's. The sum runs over the output's pixels only (k
  // runs): the padded width's other columns would add dy's zeros.
  void weight_grad_implicit(const T* image, const T* dy, T* gwt, float beta) const {
    if constexpr (std::is_same_v<T, float>) {
      const int64_t R = g_.group_rows(), Og = g_.group_out_channels(), Lw = wide_pixels();
      const T* p = pad(image);
      T* dyt = wide_.data<T>();  // [groups][OH·Wp, Og]; the rows of the columns past OW are not read
      for (int64_t o = 0; o < g_.out_channels; ++o) {
        T* block = dyt + o / Og * Lw * Og + o % Og;
        for (int64_t oh = 0; oh < g_.out_h; ++oh)
          for (int64_t ow = 0; ow < g_.out_w; ++ow)
            block[(oh * padded_w_ + ow) * Og] = dy[(o * g_.out_h + oh) * g_.out_w + ow];
      }
      for (int64_t k = 0; k < g_.groups; ++k)
        sgemm_rows(blas::sgemm_kernel(), R, Og, Lw, 1.0f, p, offsets_.data() + k * R, 0, dyt + k * Lw * Og, nullptr,
                   Og, beta, gwt + k * R * Og, Og, {}, Runs{g_.out_w, padded_w_});
    }
  }

 private:
  int64_t wide_pixels() const { return g_.out_h * padded_w_; }
  // The padded-width buffer's channel stride: room for the column runs' last block.
  int64_t wide_stride() const { return wide_pixels() + kSgemmMaxCols - 1; }

  const T* pad(const T* image) const {
    T* p = padded_.data<T>();
    const int64_t plane = padded_h_ * padded_w_;
    for (int64_t c = 0; c < g_.channels; ++c) {
      T* dst = p + c * plane;
      std::fill(dst, dst + g_.pad_h * padded_w_, T(0));
      for (int64_t h = 0; h < g_.height; ++h) {
        T* row = dst + (h + g_.pad_h) * padded_w_;
        const T* src = image + (c * g_.height + h) * g_.width;
        std::fill(row, row + g_.pad_w, T(0));
        std::copy(src, src + g_.width, row + g_.pad_w);
        std::fill(row + g_.pad_w + g_.width, row + padded_w_, T(0));
      }
      std::fill(dst + (g_.pad_h + g_.height) * padded_w_, dst + plane, T(0));
    }
    return p;
  }

  // col[r, oh·OW + ow] = padded[offset(r) + oh·sh·Wp + ow·sw] for tap r = (c, i, j).
  void im2col() const {
    const T* p = padded_.data<T>();
    T* out = col();
    const int64_t out_w = g_.out_w, stride_w = g_.stride_w;
    for (int64_t r = 0; r < g_.col_rows(); ++r) {
      const T* src = p + offsets_[static_cast<size_t>(r)];
      for (int64_t oh = 0; oh < g_.out_h; ++oh, out += out_w) {
        const T* row = src + oh * g_.stride_h * padded_w_;
        if (stride_w == 1) {
          for (int64_t ow = 0; ow < out_w; ++ow) out[ow] = row[ow];
        } else {
          for (int64_t ow = 0; ow < out_w; ++ow) out[ow] = row[ow * stride_w];
        }
      }
    }
  }

  ConvGeometry g_;
  int64_t padded_h_, padded_w_;
  Tensor padded_, col_, wide_;
  std::vector<int64_t> offsets_;
};

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

// dx of a unit-stride convolution is the forward convolution of dy, zero-padded by k − 1 − p,
// with the weights flipped and transposed: w' [C, O/groups, kh, kw], w'[k·Cg + c, o, i, j] =
// w[k·Og + o, c, kh − 1 − i, kw − 1 − j]. As such it runs as implicit GEMMs, without col2im,
// whose rows are the C/groups input channels: fewer than AVX-512's 8-row block waste most of each
// block (a 1-channel input: 0.8 ms a batch of 128 28×28 images explicit, 1.3 ms implicit). The
// same rule on AVX2 (6-row blocks), for the same sums on every kernel.
bool implicit_input_grad(const ConvGeometry& g) {
  return implicit_gemm(g) && g.pad_h <= g.kernel_h - 1 && g.pad_w <= g.kernel_w - 1 && g.channels / g.groups >= 8;
}
ConvGeometry input_grad_geometry(const ConvGeometry& g) {
  ConvGeometry t = g;
  t.channels = g.out_channels, t.height = g.out_h, t.width = g.out_w;
  t.out_channels = g.channels, t.out_h = g.height, t.out_w = g.width;
  t.pad_h = g.kernel_h - 1 - g.pad_h, t.pad_w = g.kernel_w - 1 - g.pad_w;
  return t;
}
template <class T>
void flip_weights(const ConvGeometry& g, const T* w, T* flipped) {
  const int64_t Og = g.group_out_channels(), Cg = g.channels / g.groups, kh = g.kernel_h, kw = g.kernel_w;
  for (int64_t k = 0; k < g.groups; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t o = 0; o < Og; ++o)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            flipped[(((k * Cg + c) * Og + o) * kh + i) * kw + j] =
                w[(((k * Og + o) * Cg + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
}

// The batch in `parts` contiguous runs of images, one per thread: part p's images.
struct Part {
  int64_t begin, end;
};
Part part_of(int64_t p, int64_t parts, int64_t images) { return {p * images / parts, (p + 1) * images / parts}; }

}  // namespace

ImplicitGemmSteps implicit_gemm_steps(const ConvGeometry& g) {
  return {implicit_gemm(g), implicit_weight_grad(g), implicit_input_grad(g)};
}

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                    const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels();
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* wp = w.data<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data<scalar_t>() : nullptr;
    scalar_t* yp = y.data<scalar_t>();
    const bool implicit = std::is_same_v<scalar_t, float> && implicit_gemm(g);
    parallel_for(N, 1, [&](int64_t begin, int64_t end) {
      const Lowering<scalar_t> lowering(g, x.dtype(), !implicit, implicit);
      for (int64_t n = begin; n < end; ++n) {
        scalar_t* yn = yp + n * g.out_channels * L;
        if (implicit) {
          lowering.forward_implicit(xp + n * g.image_size(), wp, yn);
        } else {
          lowering.forward_explicit(xp + n * g.image_size(), wp, yn);
        }
        if (bp == nullptr) continue;
        for (int64_t o = 0; o < g.out_channels; ++o)
          for (int64_t l = 0; l < L; ++l) yn[o * L + l] += bp[o];
      }
    });
  });
}

// The convolution of each image into a buffer its thread keeps in cache, then bias, ReLU and the
// 2×2 max-pool (and its argmax) from there into y: the three ops' per-element math
// (kernels/common: Relu, max_2x2) on the same values in the same order, so the same bits, without
// writing the full-size output to memory and reading it back twice. A missing bias adds 0, which
// changes no ReLU output (−0 and +0 both become +0).
void conv2d_relu_max_pool2_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y,
                                   const Tensor& argmax, const ConvGeometry& g) {
  const int64_t N = x.size(0), L = g.out_pixels();
  const int64_t PH = g.out_h / 2, PW = g.out_w / 2;
  LETHE_DISPATCH_FLOAT(x.dtype(), "conv2d_relu_max_pool2", {
    const scalar_t* xp = x.data<scalar_t>();
    const scalar_t* wp = w.data<scalar_t>();
    const scalar_t* bp = bias.defined() ? bias.data<scalar_t>() : nullptr;
    scalar_t* yp = y.data<scalar_t>();
    int64_t* ip = ptr_or_null<int64_t>(argmax);
    const bool implicit = std::is_same_v<scalar_t, float> && implicit_gemm(g);
    parallel_for(N, 1, [&](int64_t begin, int64_t end) {
      const Lowering<scalar_t> lowering(g, x.dtype(), !implicit, implicit);
      const Tensor packed = implicit ? Tensor() : Tensor::empty({g.out_channels * L}, x.dtype());
      for (int64_t n = begin; n < end; ++n) {
        const scalar_t* image = xp + n * g.image_size();
        OutputRows<scalar_t> rows{};
        if (implicit) {
          rows = lowering.wide_rows(lowering.forward_wide(image, wp));
        } else {
          lowering.forward_explicit(image, wp, packed.data<scalar_t>());
          rows = {packed.data<scalar_t>(), L, g.out_w};
        }
        // Bias and ReLU in place over each channel's rows (on the padded width: the columns past
        // OW are never read), one long loop that vectorises; then the pool, row by row.
        for (int64_t o = 0; o < g.out_channels; ++o) {
          const scalar_t b = bp != nullptr ? bp[o] : scalar_t(0);
          scalar_t* channel = rows.row(o, 0);
          for (int64_t j = 0; j < g.out_h * rows.row_stride; ++j) channel[j] = ew::Relu::f(channel[j] + b, UnaryParams{});
          for (int64_t ph = 0; ph < PH; ++ph) {
            const int64_t e = ((n * g.out_channels + o) * PH + ph) * PW;  // the output row (n, o, ph)
            max_pool_2x2_row(rows.row(o, 2 * ph), rows.row(o, 2 * ph + 1), PW, yp + e, ip != nullptr ? ip + e : nullptr,
                             2 * ph * g.out_w, g.out_w);
          }
        }
      }
    });
  });
}

// Each pooled gradient goes to its window's argmax where the pooled value is positive (ReLU's
// mask there: pooled = relu(z) at the argmax), 0 + g as max_pool2d's backward adds it to a zeroed
// plane; everything else is 0: the bits of max_pool2d's then relu's backward.
void relu_max_pool2_backward(const Tensor& gy, const Tensor& y, const Tensor& argmax, const Tensor& gz,
                             const ConvGeometry& g) {
  const int64_t plane = g.out_pixels(), pooled = (g.out_h / 2) * (g.out_w / 2), planes = gz.numel() / plane;
  LETHE_DISPATCH_FLOAT(gz.dtype(), "conv2d_relu_max_pool2_backward", {
    const scalar_t* gyp = gy.data<scalar_t>();
    const scalar_t* yp = y.data<scalar_t>();
    const int64_t* ip = argmax.data<int64_t>();
    scalar_t* gzp = gz.data<scalar_t>();
    parallel_for(planes, grain_for(plane), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        scalar_t* out = gzp + p * plane;
        std::fill(out, out + plane, scalar_t(0));
        for (int64_t e = p * pooled; e < (p + 1) * pooled; ++e)
          if (yp[e] > scalar_t(0)) out[ip[e]] = scalar_t(0) + gyp[e];
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
    constexpr bool is_float = std::is_same_v<scalar_t, float>;
    const bool implicit_w = is_float && implicit_weight_grad(g), implicit_x = is_float && implicit_input_grad(g);
    const ConvGeometry gt = input_grad_geometry(g);
    const Tensor flipped = gxp != nullptr && implicit_x ? Tensor::empty(w.shape(), w.dtype()) : Tensor();
    if (flipped.defined()) flip_weights(g, wp, flipped.data<scalar_t>());
    parallel_for(parts, 1, [&](int64_t p_begin, int64_t p_end) {
      const bool with_col = (gwt != nullptr && !implicit_w) || (gxp != nullptr && !implicit_x);
      const Lowering<scalar_t> lowering(g, x.dtype(), with_col, gwt != nullptr && implicit_w);
      const std::optional<Lowering<scalar_t>> dy_lowering =
          flipped.defined() ? std::make_optional<Lowering<scalar_t>>(gt, x.dtype(), false, true) : std::nullopt;
      scalar_t* cp = lowering.col();
      for (int64_t p = p_begin; p < p_end; ++p) {
        const Part part = part_of(p, parts, N);
        scalar_t* gwpart = gwt == nullptr ? nullptr : gwt + p * wsize;
        for (int64_t n = part.begin; n < part.end; ++n) {
          const scalar_t* dyn = gyp + n * g.out_channels * L;
          if (gwpart != nullptr) {  // gwᵀ_k (+)= col_k [R, L] · dy_n,k [Og, L]ᵀ
            const double beta = n == part.begin ? 0.0 : 1.0;
            if (implicit_w) {
              lowering.weight_grad_implicit(xp + n * g.image_size(), dyn, gwpart, static_cast<float>(beta));
            } else {
              lowering.lower(xp + n * g.image_size());
              for (int64_t k = 0; k < g.groups; ++k)
                blas::gemm(false, true, R, Og, L, 1.0, cp + k * R * L, L, dyn + k * Og * L, L, beta,
                           gwpart + k * R * Og, Og);
            }
          }
          if (gxp != nullptr && dy_lowering) {
            dy_lowering->forward_implicit(dyn, flipped.data<scalar_t>(), gxp + n * g.image_size());
          } else if (gxp != nullptr) {  // dcol_k [R, L] = w_kᵀ · dy_n,k, then back to pixels
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
