// Pooling on the CPU. Backward scatters within each (n, c) plane, which one thread owns, visiting
// windows in order: the same sums, in the same order, as the CUDA gather.
#include <algorithm>

#include "kernels/cpu/max_pool_2x2.h"
#include "kernels/cpu/parallel.h"
#include "kernels/pool.h"

namespace lethe::cpu {

namespace {

// Calls row(plane, oh, first output element) for every output row of `outputs` elements, rows
// in parallel: the plane and row indices come from one division per row, not per output pixel.
template <class F>
void for_output_rows(int64_t outputs, const PoolGeometry& g, const F& row) {
  const int64_t rows = outputs / std::max<int64_t>(g.out_w, 1);
  parallel_for(rows, grain_for(g.out_w * g.kernel_h * g.kernel_w), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row(r / g.out_h, r % g.out_h, r * g.out_w);
  });
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "max_pool2d", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    int64_t* ip = ptr_or_null<int64_t>(argmax);  // undefined without autograd
    // MaxPool2d(2) is most of the pooling there is: its windows are scanned by a loop written for
    // them, in max_window's order with its rule (max_pool_takes): cnn-s's pool1 at batch 128 on
    // 2 threads takes 0.5 ms instead of 4.0.
    if (is_pool2(g)) {
      for_output_rows(y.numel(), g, [&](int64_t p, int64_t oh, int64_t e) {
        const int64_t top = 2 * oh * g.width;
        const scalar_t* row = xp + p * g.plane() + top;
        max_pool_2x2_row(row, row + g.width, g.out_w, yp + e, ip != nullptr ? ip + e : nullptr, top, g.width);
      });
    } else {
      for_output_rows(y.numel(), g, [&](int64_t p, int64_t oh, int64_t e) {
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          max_window(g, xp + p * g.plane(), oh, ow, &yp[e + ow], ip != nullptr ? &ip[e + ow] : nullptr);
      });
    }
  });
}

void max_pool2d_backward(const Tensor& gy, const Tensor& argmax, const Tensor& gx, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(gx.dtype(), "max_pool2d_backward", {
    const scalar_t* gyp = gy.data<scalar_t>();
    const int64_t* ip = argmax.data<int64_t>();
    scalar_t* gxp = gx.data<scalar_t>();
    const int64_t planes = gx.numel() / std::max<int64_t>(g.plane(), 1);
    parallel_for(planes, grain_for(g.plane()), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        scalar_t* plane = gxp + p * g.plane();
        std::fill(plane, plane + g.plane(), scalar_t(0));
        for (int64_t o = p * g.out_plane(); o < (p + 1) * g.out_plane(); ++o) plane[ip[o]] += gyp[o];
      }
    });
  });
}

void avg_pool2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    for_output_rows(y.numel(), g, [&](int64_t p, int64_t oh, int64_t e) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) yp[e + ow] = avg_window(g, xp + p * g.plane(), oh, ow);
    });
  });
}

void avg_pool2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(gx.dtype(), "avg_pool2d_backward", {
    const scalar_t* gyp = gy.data<scalar_t>();
    scalar_t* gxp = gx.data<scalar_t>();
    const int64_t planes = gx.numel() / std::max<int64_t>(g.plane(), 1);
    parallel_for(planes, grain_for(g.plane()), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        scalar_t* plane = gxp + p * g.plane();
        const scalar_t* gyplane = gyp + p * g.out_plane();
        std::fill(plane, plane + g.plane(), scalar_t(0));
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          const Span hs = pool_window(oh, g.kernel_h, g.stride_h, g.pad_h, g.height);
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const Span ws = pool_window(ow, g.kernel_w, g.stride_w, g.pad_w, g.width);
            const scalar_t share = avg_pool_share(g, gyplane[oh * g.out_w + ow]);
            for (int64_t h = hs.begin; h < hs.end; ++h)
              for (int64_t w = ws.begin; w < ws.end; ++w) plane[h * g.width + w] += share;
          }
        }
      }
    });
  });
}

// upsample_value's map a row at a time: output row oh copies input row oh / s_h, each pixel s_w
// times, with no division per pixel (those divisions took 14% of the cvae study's cycles).
void upsample_nearest2d_forward(const Tensor& x, const Tensor& y, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "upsample_nearest2d", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    const int64_t s = g.stride_w;
    for_output_rows(y.numel(), g, [&](int64_t p, int64_t oh, int64_t e) {
      const scalar_t* src = xp + p * g.plane() + oh / g.stride_h * g.width;
      scalar_t* dst = yp + e;
      if (s == 2) {
        for (int64_t w = 0; w < g.width; ++w) dst[2 * w] = dst[2 * w + 1] = src[w];
      } else {
        for (int64_t w = 0; w < g.width; ++w)
          for (int64_t k = 0; k < s; ++k) dst[w * s + k] = src[w];
      }
    });
  });
}

void upsample_nearest2d_backward(const Tensor& gy, const Tensor& gx, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(gx.dtype(), "upsample_nearest2d_backward", {
    const scalar_t* gyp = gy.data<scalar_t>();
    scalar_t* gxp = gx.data<scalar_t>();
    const int64_t rows = gx.numel() / std::max<int64_t>(g.width, 1);
    const bool scale2 = g.stride_h == 2 && g.stride_w == 2;
    parallel_for(rows, grain_for(g.width * g.stride_h * g.stride_w), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t p = r / g.height, h = r % g.height;
        const scalar_t* plane = gyp + p * g.out_plane();
        scalar_t* out = gxp + r * g.width;
        if (scale2) {
          const scalar_t* top = plane + 2 * h * g.out_w;
          const scalar_t* bottom = top + g.out_w;
          for (int64_t w = 0; w < g.width; ++w)
            out[w] = upsample_grad_2x2(top[2 * w], top[2 * w + 1], bottom[2 * w], bottom[2 * w + 1]);
        } else {
          for (int64_t w = 0; w < g.width; ++w) out[w] = upsample_grad(g, plane, h, w);
        }
      }
    });
  });
}

}  // namespace lethe::cpu
