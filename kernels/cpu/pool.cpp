// Pooling on the CPU. Backward scatters within each (n, c) plane, which one thread owns, visiting
// windows in order: the same sums, in the same order, as the CUDA gather.
#include <algorithm>

#include "kernels/cpu/parallel.h"
#include "kernels/pool.h"

namespace lethe::cpu {

namespace {
// Grains for loops whose items each cost `work` simple operations (a window, a plane).
int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(work, 1)); }
}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Tensor& argmax, const PoolGeometry& g) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "max_pool2d", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    int64_t* ip = argmax.data<int64_t>();
    parallel_for(y.numel(), grain_for(g.kernel_h * g.kernel_w), [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t p = e / g.out_plane(), o = e % g.out_plane();
        max_window(g, xp + p * g.plane(), o / g.out_w, o % g.out_w, &yp[e], &ip[e]);
      }
    });
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
    parallel_for(y.numel(), grain_for(g.kernel_h * g.kernel_w), [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const int64_t p = e / g.out_plane(), o = e % g.out_plane();
        yp[e] = avg_window(g, xp + p * g.plane(), o / g.out_w, o % g.out_w);
      }
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

}  // namespace lethe::cpu
