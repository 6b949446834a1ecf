#include "kernels/copy.h"

#include <algorithm>

#include "engine/layout.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/normal_blocks.h"
#include "kernels/cpu/parallel.h"

namespace lethe::cpu {

namespace {
// A strided copy goes by rows of the last dim: two offset computations (a division per dim) per
// row, not per element, and a loop over the row the compiler vectorises when both strides are 1
// (a concat's slice, its gradient's narrow view).
template <class D, class S>
void copy_typed(D* d, const Layout& dl, const S* s, const Layout& sl, int64_t n, bool flat) {
  if (flat || dl.rank == 0 || dl.rank != sl.rank) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      if (flat) {
        for (int64_t i = b; i < e; ++i) d[i] = static_cast<D>(s[i]);
      } else {
        for (int64_t i = b; i < e; ++i) d[dl.offset_of(i)] = static_cast<D>(s[sl.offset_of(i)]);
      }
    });
    return;
  }
  const int last = dl.rank - 1;
  const int64_t row = dl.size[last], ds = dl.stride[last], ss = sl.stride[last];
  if (row == 0) return;
  parallel_for(n / row, grain_for(row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      D* pd = d + dl.offset_of(r * row);
      const S* ps = s + sl.offset_of(r * row);
      if (ds == 1 && ss == 1) {
        for (int64_t j = 0; j < row; ++j) pd[j] = static_cast<D>(ps[j]);
      } else {
        for (int64_t j = 0; j < row; ++j) pd[j * ds] = static_cast<D>(ps[j * ss]);
      }
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
// gen(first, count, v) writes blocks first .. first + count - 1 to v[0 .. 4 * count).
constexpr int64_t kRandomTile = 256;  // blocks drawn at once into a buffer on the stack
template <class Gen>
void random_fill(const Tensor& dst, Gen gen) {
  const int64_t n = dst.numel();
  LETHE_DISPATCH_FLOAT(dst.dtype(), "random", {
    scalar_t* d = static_cast<scalar_t*>(dst.data_ptr());
    parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t b, int64_t e) {
      float v[4 * kRandomTile];
      for (int64_t tile = b; tile < e; tile += kRandomTile) {
        const int64_t count = std::min(kRandomTile, e - tile);
        gen(static_cast<uint64_t>(tile), count, v);
        const int64_t end = std::min(n, 4 * (tile + count));
        for (int64_t i = 4 * tile; i < end; ++i) d[i] = static_cast<scalar_t>(v[i - 4 * tile]);
      }
    });
  });
}
}  // namespace

void random_uniform(const Tensor& dst, uint64_t seed, uint64_t stream) {
  random_fill(dst, [=](uint64_t first, int64_t count, float* v) {
    for (int64_t k = 0; k < count; ++k) philox::uniform4(seed, stream, first + static_cast<uint64_t>(k), v + 4 * k);
  });
}

void random_normal(const Tensor& dst, uint64_t seed, uint64_t stream) {
  random_fill(dst, [=](uint64_t first, int64_t count, float* v) { normal_blocks(seed, stream, first, count, v); });
}

}  // namespace lethe::cpu
