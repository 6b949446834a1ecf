#include "kernels/softmax.h"

#include "kernels/cpu/parallel.h"
#include "kernels/index.h"

namespace lethe::cpu {

void softmax_forward(const Tensor& x, RowShape s, bool log_out, const Tensor& y) {
  LETHE_DISPATCH_FLOAT(x.dtype(), "softmax", {
    const scalar_t* xp = x.data<scalar_t>();
    scalar_t* yp = y.data<scalar_t>();
    parallel_for(s.rows(), grain_for(s.size), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) sm::forward(xp + s.base(r), yp + s.base(r), s.size, s.inner, log_out);
    });
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, RowShape s, bool log_out, const Tensor& gx) {
  LETHE_DISPATCH_FLOAT(y.dtype(), "softmax_backward", {
    const scalar_t* yp = y.data<scalar_t>();
    const scalar_t* gp = g.data<scalar_t>();
    scalar_t* out = gx.data<scalar_t>();
    parallel_for(s.rows(), grain_for(s.size), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        sm::backward(yp + s.base(r), gp + s.base(r), out + s.base(r), s.size, s.inner, log_out);
    });
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& weight,
                           double smoothing, const Tensor& loss) {
  const int64_t N = logits.size(0), C = logits.size(1);
  dispatch_float_index(logits.dtype(), labels.dtype(), "cross_entropy", [&](auto t, auto i) {
    using T = decltype(t);
    const T* x = logits.data<T>();
    const decltype(i)* y = labels.data<decltype(i)>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    T* out = loss.data<T>();
    parallel_for(N, grain_for(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        out[r] = static_cast<T>((w ? static_cast<double>(w[r]) : 1.0) * sm::cross_entropy(x + r * C, C, y[r], smoothing));
    });
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& labels, const Tensor& weight,
                            double smoothing, const Tensor& g, double g_scale, const Tensor& glogits) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const int64_t g_stride = g.numel() == 1 ? 0 : 1;
  dispatch_float_index(logits.dtype(), labels.dtype(), "cross_entropy_backward", [&](auto t, auto i) {
    using T = decltype(t);
    const T* x = logits.data<T>();
    const decltype(i)* y = labels.data<decltype(i)>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* gp = g.data<T>();
    T* out = glogits.data<T>();
    parallel_for(N, grain_for(C), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const double scale = static_cast<double>(gp[r * g_stride]) * (w ? static_cast<double>(w[r]) : 1.0) * g_scale;
        sm::cross_entropy_grad(x + r * C, C, y[r], smoothing, scale, out + r * C);
      }
    });
  });
}

void one_hot(const Tensor& labels, int64_t num_classes, const Tensor& out) {
  dispatch_all_index(out.dtype(), labels.dtype(), "one_hot", [&](auto t, auto i) {
    using T = decltype(t);
    T* o = static_cast<T*>(out.data_ptr());
    const decltype(i)* y = labels.data<decltype(i)>();
    parallel_for(out.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) o[p] = sm::one_hot<T>(y[p / num_classes], p % num_classes);
    });
  });
}

}  // namespace lethe::cpu
