#include "kernels/ieu.h"

#include <algorithm>

#include "kernels/cpu/normal_blocks.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/static_flags.h"

namespace lethe::cpu {

namespace {

// The noise of this many elements is drawn into a buffer before they are updated, so the update
// loop has no Philox in it and vectorises. A multiple of 4: tiles start on Philox blocks. Small, so
// that one tile's loads are still in flight while the next tile's noise is computed (1024 took
// 15-25% longer on one thread at 5e6 parameters, 128 and 256 the same).
constexpr int64_t kNoiseTile = 256;

template <class T>
void ieu_loop(T* theta, const T* g_r, const T* g_f, T* v, int64_t n, const ieu::Step<T> step) {
  const unsigned flags = step.use_forget | step.use_momentum << 1 | step.use_noise << 2;
  with_static_flags<2>(flags, [&](auto constant) {
    constexpr unsigned f = decltype(constant)::value;
    // Split over blocks of 4 elements, so every chunk starts on a Philox block and the result
    // does not depend on the thread count.
    parallel_for((n + 3) / 4, kGrain / 4, [&](int64_t block_begin, int64_t block_end) {
      // A local copy (stores through theta cannot alias it) with constant switches.
      ieu::Step<T> s = step;
      s.use_forget = f & 1u, s.use_momentum = f & 2u, s.use_noise = f & 4u;
      const int64_t end = std::min(n, 4 * block_end);
      float xi[kNoiseTile];
      for (int64_t tile = 4 * block_begin; tile < end; tile += kNoiseTile) {
        const int64_t tile_end = std::min(end, tile + kNoiseTile);
        if (s.use_noise)
          normal_blocks(s.seed, s.stream, static_cast<uint64_t>(tile / 4), (tile_end - tile + 3) / 4, xi);
        for (int64_t i = tile; i < tile_end; ++i) {
          // Through locals: conditional stores inside the math would stop the vectoriser too.
          T th = theta[i], vi = s.use_momentum ? v[i] : T(0);
          const T gf = s.use_forget ? g_f[i] : T(0), noise = s.use_noise ? T(xi[i - tile]) : T(0);
          ieu::update(th, g_r[i], gf, vi, noise, s);
          theta[i] = th;
          if (s.use_momentum) v[i] = vi;
        }
      }
    });
  });
}

}  // namespace

void ieu_update(const Tensor& params, const Tensor& grad_retain, const Tensor& grad_forget, const Tensor& momentum,
                const Tensor& scalars, const Tensor& forget_loss, const IeuConfig& config) {
  double* s = static_cast<double*>(scalars.data_ptr());
  const double cap = config.forget_loss_cap;
  if (!forget_loss.defined()) ieu::advance(s, static_cast<const double*>(nullptr), cap);
  else if (forget_loss.dtype() == DType::f32) ieu::advance(s, static_cast<const float*>(forget_loss.data_ptr()), cap);
  else ieu::advance(s, static_cast<const double*>(forget_loss.data_ptr()), cap);
  LETHE_DISPATCH_FLOAT(params.dtype(), "ieu_update",
                       ieu_loop(static_cast<scalar_t*>(params.data_ptr()),
                                static_cast<const scalar_t*>(grad_retain.data_ptr()),
                                ptr_or_null<const scalar_t>(grad_forget), ptr_or_null<scalar_t>(momentum),
                                params.numel(), ieu::step_values<scalar_t>(s, config, grad_forget.defined())));
}

}  // namespace lethe::cpu
