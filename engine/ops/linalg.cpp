// matmul and linear. Matrix operands stored as transposes (the views .t() and transpose(-1,-2)
// make) go to GEMM as they are, with the transpose flag set, so backward's Bᵀ and Aᵀ cost no copy.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/blas.h"
#include "kernels/matmul.h"

namespace lethe {

namespace {

void check_float_pair(const char* op, const Tensor& a, const Tensor& b) {
  LETHE_CHECK(a.defined() && b.defined(), op, "undefined input");
  LETHE_CHECK(is_floating(a.dtype()) && a.dtype() == b.dtype(), op,
              "needs two float32 or two float64 tensors, got ", a.str(), " and ", b.str());
  LETHE_CHECK(a.device() == b.device(), op, "devices differ: ", a.str(), " and ", b.str());
}

// How GEMM reads the matrix in the last two dims of a 2-d or 3-d tensor.
struct GemmOperand {
  Tensor t;            // the tensor GEMM reads: the input itself, or its contiguous copy
  bool trans = false;  // stored column by column (as the transpose of a row-major matrix)
  int64_t ld = 0;
  int64_t batch_stride = 0;  // 0 for a 2-d operand: one matrix serves the whole batch
};

// Rows stored with unit column stride, or columns stored with unit row stride, are used in place
// (any batch stride, any leading dim large enough); other layouts are copied to contiguous.
GemmOperand gemm_operand(const Tensor& x) {
  const int r = x.dim();
  const int64_t rows = x.size(r - 2), cols = x.size(r - 1);
  const int64_t row_stride = x.strides()[r - 2], col_stride = x.strides()[r - 1];
  const int64_t batch_stride = r == 3 ? x.strides()[0] : 0;
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols))
    return {x, false, rows == 1 ? cols : row_stride, batch_stride};
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows))
    return {x, true, cols == 1 ? rows : col_stride, batch_stride};
  return {x.contiguous(), false, cols, r == 3 ? rows * cols : 0};
}

// out = a·b for validated, non-empty operands; out is contiguous.
void gemm_into(const Tensor& a, const Tensor& b, const Tensor& out) {
  const GemmOperand pa = gemm_operand(a), pb = gemm_operand(b);
  int64_t batch = out.dim() == 3 ? out.size(0) : 1, m = a.size(-2);
  const int64_t k = a.size(-1), n = b.size(-1), stride_c = m * n;
  // [B,M,K]x[K,N] with A's rows evenly spaced through the batch is one [B·M,K]x[K,N] product.
  if (a.dim() == 3 && b.dim() == 2 && !pa.trans && pa.batch_stride == m * pa.ld) {
    m *= batch;
    batch = 1;
  }
  LETHE_DISPATCH(out.device(), gemm_batched, pa.trans, pb.trans, batch, m, n, k, pa.t, pa.ld,
                 pa.batch_stride, pb.t, pb.ld, pb.batch_stride, out, n, stride_c, 0.0);
}

void check_square_f64(const char* op, const Tensor& a) {
  LETHE_CHECK(a.defined() && a.dtype() == DType::f64 && a.dim() == 2 && a.size(0) == a.size(1) && a.numel() > 0, op,
              "needs a non-empty square float64 matrix, got ", a.defined() ? a.str() : "undefined");
}

}  // namespace

Tensor eigvalsh(const Tensor& a) {
  check_square_f64("eigvalsh", a);
  const int64_t n = a.size(0);
  return Tensor::from_vector(blas::symmetric_eigenvalues(n, a.to_vector<double>()), {n}).to(a.device());
}

Tensor sqrtmh(const Tensor& a) {
  check_square_f64("sqrtmh", a);
  const int64_t n = a.size(0);
  std::vector<double> v;
  const std::vector<double> w = blas::symmetric_eigenvalues(n, a.to(Device::cpu()).contiguous().to_vector<double>(), &v);
  std::vector<double> root(w.size());
  for (size_t k = 0; k < w.size(); ++k) root[k] = std::sqrt(std::max(w[k], 0.0));
  std::vector<double> s(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += v[static_cast<size_t>(i * n + k)] * root[static_cast<size_t>(k)] * v[static_cast<size_t>(j * n + k)];
      s[static_cast<size_t>(i * n + j)] = sum;
    }
  return Tensor::from_vector(s, {n, n}).to(a.device());
}

Tensor cholesky(const Tensor& a) {
  check_square_f64("cholesky", a);
  const int64_t n = a.size(0);
  Tensor l = a.to(Device::cpu()).contiguous().clone();
  double* p = l.data<double>();
  blas::cholesky(n, p);
  for (int64_t r = 0; r < n; ++r) std::fill(p + r * n + r + 1, p + (r + 1) * n, 0.0);  // A's upper half: not L
  return l.to(a.device());
}

Tensor cholesky_solve(const Tensor& b, const Tensor& factor) {
  check_square_f64("cholesky_solve", factor);
  const int64_t n = factor.size(0);
  LETHE_CHECK(b.defined() && b.dtype() == DType::f64 && (b.dim() == 1 || b.dim() == 2) && b.size(0) == n,
              "cholesky_solve", "needs b [", n, "] or [", n, ",k] in float64 for a ", factor.shape().str(), " factor, got ",
              b.defined() ? b.str() : "undefined");
  const Tensor l = factor.to(Device::cpu()).contiguous();
  // LAPACK reads the right-hand sides column by column: [k, n] row-major.
  Tensor x = (b.dim() == 1 ? b.reshape({1, n}) : b.t()).to(Device::cpu()).contiguous().clone();
  blas::cholesky_solve(n, x.size(0), l.data<double>(), x.data<double>());
  return (b.dim() == 1 ? x.reshape({n}) : x.t().contiguous()).to(b.device());
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_float_pair("matmul", a, b);
  LETHE_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && (b.dim() == 2 || b.dim() == 3)),
              "matmul", "supports [M,K]x[K,N], [B,M,K]x[B,K,N] and [B,M,K]x[K,N], got ",
              a.shape().str(), " x ", b.shape().str());
  LETHE_CHECK(a.size(-1) == b.size(-2), "matmul", "inner dims differ: ", a.shape().str(), " x ",
              b.shape().str());
  LETHE_CHECK(b.dim() == 2 || a.size(0) == b.size(0), "matmul", "batch sizes differ: ",
              a.shape().str(), " x ", b.shape().str());
  Shape shape = a.shape();
  shape[shape.size() - 1] = b.size(-1);
  Tensor out;
  if (shape.numel() == 0 || a.size(-1) == 0) {
    out = Tensor::zeros(shape, a.dtype(), a.device());
  } else {
    out = Tensor::empty(shape, a.dtype(), a.device());
    gemm_into(a, b, out);
  }
  autograd::record("matmul", out, {&a, &b},
                   [sa = autograd::Saved(a), sb = autograd::Saved(b)](const Tensor& g, autograd::Needs needs) {
                     const Tensor av = sa.get(), bv = sb.get();
                     Tensor ga, gb;
                     if (needs[0]) ga = matmul(g, bv.transpose(-1, -2));
                     if (needs[1] && av.dim() == bv.dim()) gb = matmul(av.transpose(-1, -2), g);
                     if (needs[1] && av.dim() != bv.dim()) {
                       // b served the whole batch: dB = Σ_i A_iᵀ·dC_i = A_allᵀ·dC_all with the
                       // batch stacked into rows, A_all [B·M,K] and dC_all [B·M,N].
                       const int64_t rows = av.size(0) * av.size(1);
                       gb = matmul(av.reshape({rows, av.size(2)}).t(), g.reshape({rows, g.size(2)}));
                     }
                     return std::vector<Tensor>{ga, gb};
                   });
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_float_pair("linear", x, w);
  const bool stacked = x.dim() == 3;
  LETHE_CHECK((x.dim() == 2 && w.dim() == 2) || (stacked && w.dim() == 3), "linear",
              "expects x [N,in] with w [out,in], or x [B,N,in] with w [B,out,in]; got x ", x.str(),
              " and w ", w.str());
  LETHE_CHECK(x.size(-1) == w.size(-1), "linear", "in features differ: x ", x.str(), ", w ", w.str());
  LETHE_CHECK(!stacked || x.size(0) == w.size(0), "linear", "model counts differ: x ", x.str(),
              ", w ", w.str());
  Tensor y = matmul(x, w.transpose(-1, -2));
  if (!bias.defined()) return y;
  const Shape want = stacked ? Shape{w.size(0), w.size(1)} : Shape{w.size(0)};
  LETHE_CHECK(bias.shape() == want && bias.dtype() == w.dtype() && bias.device() == w.device(),
              "linear", "bias ", bias.str(), " does not match w ", w.str(), " (expected shape ",
              want.str(), ")");
  return add(y, stacked ? bias.unsqueeze(1) : bias);
}

}  // namespace lethe
