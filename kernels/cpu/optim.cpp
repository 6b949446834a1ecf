#include "kernels/optim.h"

#include <vector>

#include "kernels/common/reduce.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/static_flags.h"

namespace lethe::cpu {

namespace {

template <class T>
void sgd_loop(T* theta, const T* grad, T* momentum, int64_t n, const optim::SgdStep<T> step) {
  const unsigned flags =
      step.first | step.use_momentum << 1 | step.nesterov << 2 | step.decoupled << 3 | step.coupled << 4;
  with_static_flags<4>(flags, [&](auto constant) {
    constexpr unsigned f = decltype(constant)::value;
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      // A local copy (stores through theta cannot alias it) with constant switches.
      optim::SgdStep<T> s = step;
      s.first = f & 1u, s.use_momentum = f & 2u, s.nesterov = f & 4u, s.decoupled = f & 8u, s.coupled = f & 16u;
      for (int64_t i = b; i < e; ++i) {
        // Through locals: conditional stores inside the math would stop the vectoriser too.
        T th = theta[i], v = s.use_momentum ? momentum[i] : T(0);
        optim::sgd_update(th, grad[i], v, s);
        theta[i] = th;
        if (s.use_momentum) momentum[i] = v;
      }
    });
  });
}

template <class T>
void adamw_loop(T* theta, const T* grad, T* m, T* v, int64_t n, const optim::AdamWStep<T> step) {
  with_static_flags<0>(step.low_weight, [&](auto constant) {
    parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
      optim::AdamWStep<T> s = step;
      s.low_weight = decltype(constant)::value & 1u;  // lerp's branch fixed: the loop vectorises
      for (int64_t i = b; i < e; ++i) {
        T th = theta[i], mi = m[i], vi = v[i];
        optim::adamw_update(th, grad[i], mi, vi, s);
        theta[i] = th;
        m[i] = mi;
        v[i] = vi;
      }
    });
  });
}

// Chunk partials in parallel, combined in chunk order: independent of the thread count.
template <class T>
double global_norm(const T* g, int64_t n) {
  const int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> partial(chunks);
  parallel_for(chunks, grain_for(kReduceChunk), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t end = std::min(n, (c + 1) * kReduceChunk);
      double acc = 0;
      for (int64_t i = c * kReduceChunk; i < end; ++i) acc = optim::add_square(acc, g[i]);
      partial[c] = acc;
    }
  });
  double total = 0;
  for (const double p : partial) total += p;
  return std::sqrt(total);
}

template <class T>
void clip_typed(T* g, int64_t n, double max_norm, double* norm_out) {
  const double norm = global_norm(g, n);
  *norm_out = norm;
  const double coef = optim::clip_coefficient(norm, max_norm);
  if (coef == 1) return;  // g·1 == g: skip the pass
  const T c = static_cast<T>(coef);
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) g[i] = g[i] * c;
  });
}

}  // namespace

void sgd_step(const Tensor& params, const Tensor& grad, const Tensor& momentum, const Tensor& scalars,
              const SgdConfig& config) {
  double* s = static_cast<double*>(scalars.data_ptr());
  optim::sgd_advance(s);
  LETHE_DISPATCH_FLOAT(params.dtype(), "sgd_step",
                       sgd_loop(static_cast<scalar_t*>(params.data_ptr()),
                                static_cast<const scalar_t*>(grad.data_ptr()), ptr_or_null<scalar_t>(momentum),
                                params.numel(), optim::sgd_step_values<scalar_t>(s, config)));
}

void adamw_step(const Tensor& params, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const Tensor& scalars, const AdamWConfig& config) {
  double* s = static_cast<double*>(scalars.data_ptr());
  optim::adamw_advance(s, config);
  LETHE_DISPATCH_FLOAT(params.dtype(), "adamw_step",
                       adamw_loop(static_cast<scalar_t*>(params.data_ptr()),
                                  static_cast<const scalar_t*>(grad.data_ptr()),
                                  static_cast<scalar_t*>(exp_avg.data_ptr()),
                                  static_cast<scalar_t*>(exp_avg_sq.data_ptr()), params.numel(),
                                  optim::adamw_step_values<scalar_t>(s, config)));
}

void clip_by_global_norm(const Tensor& grad, double max_norm, const Tensor& norm) {
  LETHE_DISPATCH_FLOAT(grad.dtype(), "clip_grad_norm",
                       clip_typed(static_cast<scalar_t*>(grad.data_ptr()), grad.numel(), max_norm,
                                  static_cast<double*>(norm.data_ptr())));
}

}  // namespace lethe::cpu
