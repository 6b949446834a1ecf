#include "kernels/copy.h"

#include "engine/layout.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {
template <class D, class S>
void copy_typed(D* d, const Layout& dl, const S* s, const Layout& sl, int64_t n, bool flat) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    if (flat) {
      for (int64_t i = b; i < e; ++i) d[i] = static_cast<D>(s[i]);
    } else {
      for (int64_t i = b; i < e; ++i) d[dl.offset_of(i)] = static_cast<D>(s[sl.offset_of(i)]);
    }
  });
}

template <class D>
void copy_to(D* d, const Layout& dl, const Tensor& src, const Layout& sl, int64_t n, bool flat) {
  LETHE_DISPATCH_ALL(src.dtype(), "copy",
                     copy_typed(d, dl, static_cast<const scalar_t*>(src.data_ptr()), sl, n, flat));
}
}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src, const Layout& src_layout) {
  const int64_t n = dst.numel();
  const bool flat = dst.is_contiguous() && src.is_contiguous() && src.numel() == n;
  LETHE_DISPATCH_ALL(dst.dtype(), "copy",
                     copy_to(static_cast<scalar_t*>(dst.data_ptr()), layout_of(dst), src, src_layout, n, flat));
}

void fill(const Tensor& dst, double value) {
  const Layout dl = layout_of(dst);
  const bool flat = dst.is_contiguous();
  LETHE_DISPATCH_ALL(dst.dtype(), "fill", {
    scalar_t* d = static_cast<scalar_t*>(dst.data_ptr());
    const scalar_t v = static_cast<scalar_t>(value);
    parallel_for(dst.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[flat ? i : dl.offset_of(i)] = v;
    });
  });
}

void arange(const Tensor& dst, double start, double step) {
  LETHE_DISPATCH_ALL(dst.dtype(), "arange", {
    scalar_t* d = static_cast<scalar_t*>(dst.data_ptr());
    parallel_for(dst.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] = static_cast<scalar_t>(start + static_cast<double>(i) * step);
    });
  });
}

namespace {
// Both random fills produce 4 numbers per Philox block; element i is lane i%4 of block i/4.
template <class Gen>
void random_fill(const Tensor& dst, Gen gen4) {
  const int64_t n = dst.numel();
  LETHE_DISPATCH_FLOAT(dst.dtype(), "random", {
    scalar_t* d = static_cast<scalar_t*>(dst.data_ptr());
    parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t b, int64_t e) {
      for (int64_t blk = b; blk < e; ++blk) {
        float v[4];
        gen4(static_cast<uint64_t>(blk), v);
        for (int64_t j = 0; j < 4 && blk * 4 + j < n; ++j) d[blk * 4 + j] = static_cast<scalar_t>(v[j]);
      }
    });
  });
}
}  // namespace

void random_uniform(const Tensor& dst, uint64_t seed, uint64_t stream) {
  random_fill(dst, [=](uint64_t blk, float* v) { philox::uniform4(seed, stream, blk, v); });
}

void random_normal(const Tensor& dst, uint64_t seed, uint64_t stream) {
  random_fill(dst, [=](uint64_t blk, float* v) { philox::normal4(seed, stream, blk, v); });
}

}  // namespace lethe::cpu
