#include "kernels/index.h"

#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

void check_index_range(const Tensor& index, int64_t limit, const IndexCheck& check) {
  LETHE_DISPATCH_INDEX(index.dtype(), check.op, {
    const scalar_t* ip = index.data<scalar_t>();
    for (int64_t p = 0; p < index.numel(); ++p)
      if (!idx::in_range(ip[p], limit)) fail_index_range(check, index.shape(), p, ip[p], limit);
  });
}

void index_select_forward(const Tensor& x, const Tensor& index, SliceShape s, const Tensor& out) {
  dispatch_all_index(x.dtype(), index.dtype(), "index_select", [&](auto t, auto i) {
    using T = decltype(t);
    const T* xp = static_cast<const T*>(x.data_ptr());
    const decltype(i)* ip = index.data<decltype(i)>();
    T* op = static_cast<T*>(out.data_ptr());
    parallel_for(out.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) op[p] = idx::select_at(p, xp, ip, s);
    });
  });
}

// A scatter instead of the CUDA kernel's per-element search: each (outer, inner) column of gx is
// owned by one thread and receives g's slices in index order, so every element adds the same
// terms in the same order as idx::select_grad_at.
void index_select_backward(const Tensor& g, const Tensor& index, SliceShape s, const Tensor& gx) {
  dispatch_float_index(g.dtype(), index.dtype(), "index_select_backward", [&](auto t, auto i) {
    using T = decltype(t);
    const T* gp = g.data<T>();
    const decltype(i)* ip = index.data<decltype(i)>();
    T* out = gx.data<T>();
    const int64_t grain = grain_for(s.count + s.size);
    parallel_for(s.outer * s.inner, grain, [&](int64_t b, int64_t e) {
      // Columns [b, e) as pieces of rows: outer index o, inner range [i0, i1).
      for (int64_t o = b / s.inner; o * s.inner < e; ++o) {
        const int64_t i0 = std::max(b, o * s.inner) - o * s.inner;
        const int64_t i1 = std::min(e, (o + 1) * s.inner) - o * s.inner;
        for (int64_t j = 0; j < s.size; ++j)
          for (int64_t c = i0; c < i1; ++c) out[(o * s.size + j) * s.inner + c] = T(0);
        for (int64_t k = 0; k < s.count; ++k) {
          if (!idx::in_range(ip[k], s.size)) continue;
          T* dst = out + (o * s.size + ip[k]) * s.inner;
          const T* src = gp + (o * s.count + k) * s.inner;
          for (int64_t c = i0; c < i1; ++c) dst[c] += src[c];
        }
      }
    });
  });
}

void gather_forward(const Tensor& x, const Tensor& index, const GatherShape& s, const Tensor& out) {
  dispatch_all_index(x.dtype(), index.dtype(), "gather", [&](auto t, auto i) {
    using T = decltype(t);
    const T* xp = static_cast<const T*>(x.data_ptr());
    const decltype(i)* ip = index.data<decltype(i)>();
    T* op = static_cast<T*>(out.data_ptr());
    parallel_for(out.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) op[p] = idx::gather_at(p, xp, ip, s);
    });
  });
}

void gather_backward(const Tensor& g, const Tensor& index, const GatherShape& s, const Tensor& gx) {
  dispatch_float_index(g.dtype(), index.dtype(), "gather_backward", [&](auto t, auto i) {
    using T = decltype(t);
    const T* gp = g.data<T>();
    const decltype(i)* ip = index.data<decltype(i)>();
    T* out = gx.data<T>();
    // Each element searches index_size[dim] candidates.
    const int64_t grain = grain_for(s.index_size[s.dim]);
    parallel_for(gx.numel(), grain, [&](int64_t b, int64_t e) {
      for (int64_t q = b; q < e; ++q) out[q] = idx::gather_grad_at(q, gp, ip, s);
    });
  });
}

}  // namespace lethe::cpu
