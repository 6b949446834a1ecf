// The linear algebra ops' cases (tests/op_registry.h): matmul 2-d, batched, broadcast, large enough
// for OpenBLAS's threaded paths, on transposed and strided views read in place; linear with and
// without bias and stacked; eigvalsh, sqrtmh, cholesky and cholesky_solve (LAPACK) against float64 loops.
#include <cmath>
#include <string>
#include <vector>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// Naive float64 [B,M,K]x[B,K,N] (batch 1 for 2-d) on row-major host copies; a 2-d b is used for
// every batch entry.
Tensor reference_matmul(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.contiguous().to_vector<double>(), bv = b.contiguous().to_vector<double>();
  const int64_t batch = a.dim() == 3 ? a.size(0) : 1, M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const bool b_batched = b.dim() == 3;
  std::vector<double> out(batch * M * N, 0.0);
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += av[(i * M + m) * K + k] * bv[((b_batched ? i : 0) * K + k) * N + n];
        out[(i * M + m) * N + n] = s;
      }
  return expected(out, a.dim() == 3 ? Shape{batch, M, N} : Shape{M, N});
}

// x [N,in]·wᵀ + bias, or per model for x [B,N,in], w [B,out,in], bias [B,out].
Tensor reference_linear(const V& in) {
  const Tensor &x = in[0], &w = in[1];
  const bool stacked = x.dim() == 3;
  const int64_t models = stacked ? x.size(0) : 1, N = x.size(-2), K = x.size(-1), O = w.size(-2);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = in.size() > 2 ? in[2].to_vector<double>() : std::vector<double>(models * O, 0.0);
  std::vector<double> y;
  for (int64_t b = 0; b < models; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        double s = bv[b * O + o];
        for (int64_t k = 0; k < K; ++k) s += xv[(b * N + n) * K + k] * wv[(b * O + o) * K + k];
        y.push_back(s);
      }
  return expected(y, stacked ? Shape{models, N, O} : Shape{N, O});
}

Tensor mm(const V& in) { return matmul(in[0], in[1]); }
Tensor reference_mm(const V& in) { return reference_matmul(in[0], in[1]); }

const std::vector<Precision> kBothPrecisions{{DType::f64, 1e-12, 1e-12}, {DType::f32, 1e-5, 1e-5}};

// A view whose strides are not row-major (the point of its case), read by matmul in place.
Input strided_view(std::string what, std::function<Tensor()> make) {
  return made(what, [what, make] {
    const Tensor view = make();
    CHECK_MESSAGE(!view.is_contiguous(), what, " should not be contiguous");
    return view;
  });
}

OpCase matmul_of_views(std::string variant, Input a, Input b) {
  return {.name = "matmul/" + std::move(variant),
          .fn = mm,
          .forward = ForwardCheck{{std::move(a), std::move(b)}, reference_mm}};
}


// A symmetric positive definite n×n matrix with eigenvalues 1, 2, …, n scaled by `spread`:
// Q·diag·Qᵀ with the Householder reflection Q = I − 2vvᵀ/‖v‖², v uniform from `seed`.
// Q·diag(eigenvalues)·Qᵀ with Q the Householder reflection of a seeded random vector.
std::vector<double> symmetric_with_eigenvalues(uint64_t seed, const std::vector<double>& eigenvalues) {
  const auto n = static_cast<int64_t>(eigenvalues.size());
  const std::vector<double> v = random_tensor({n}, seed, -1, 1, DType::f64).to_vector<double>();
  double vv = 0;
  for (double x : v) vv += x * x;
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) {
        const double qik = (i == k ? 1.0 : 0.0) - 2 * v[i] * v[k] / vv, qjk = (j == k ? 1.0 : 0.0) - 2 * v[j] * v[k] / vv;
        s += qik * eigenvalues[static_cast<size_t>(k)] * qjk;
      }
      a[i * n + j] = a[j * n + i] = s;
    }
  return a;
}

// Eigenvalues 1, 1 + spread, 1 + 2·spread, ...
std::vector<double> spd_values(int64_t n, uint64_t seed, double spread) {
  std::vector<double> eigenvalues;
  for (int64_t k = 0; k < n; ++k) eigenvalues.push_back(1 + spread * static_cast<double>(k));
  return symmetric_with_eigenvalues(seed, eigenvalues);
}

Input spd(int64_t n, uint64_t seed) {
  return made("a symmetric positive definite " + std::to_string(n) + "x" + std::to_string(n) + " matrix (seed " +
                  std::to_string(seed) + ")",
              [=] { return Tensor::from_vector(spd_values(n, seed, 0.5), {n, n}); });
}

// The textbook Cholesky–Banachiewicz factorisation in float64: the reference for cholesky.
std::vector<double> naive_cholesky(const std::vector<double>& a, int64_t n) {
  std::vector<double> l(a.size(), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = a[i * n + j];
      for (int64_t k = 0; k < j; ++k) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = i == j ? std::sqrt(s) : s / l[j * n + j];
    }
  return l;
}

// x of L·Lᵀ·x = b, per column of b ([n] or [n,k]), by forward and back substitution.
Tensor reference_cholesky_solve(const V& in) {
  const Tensor& b = in[0];
  const int64_t n = in[1].size(0), k = b.dim() == 1 ? 1 : b.size(1);
  const std::vector<double> l = in[1].to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> x(bv.size());
  for (int64_t c = 0; c < k; ++c) {
    std::vector<double> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      double s = bv[i * k + c];
      for (int64_t j = 0; j < i; ++j) s -= l[i * n + j] * y[j];
      y[i] = s / l[i * n + i];
    }
    for (int64_t i = n - 1; i >= 0; --i) {
      double s = y[i];
      for (int64_t j = i + 1; j < n; ++j) s -= l[j * n + i] * x[j * k + c];
      x[i * k + c] = s / l[i * n + i];
    }
  }
  return expected(x, b.shape());
}

}  // namespace

LETHE_OP_CASES(linalg) {
  std::vector<OpCase> cases;
  cases.push_back({.name = "matmul/2d",
                   .fn = mm,
                   .forward = ForwardCheck{{uniform({5, 7}, 1).grad(), uniform({7, 3}, 2).grad()}, reference_mm, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({3, 4}, 31).grad(), uniform({4, 5}, 32).grad()}},
                   .parity = ParityCheck{{uniform({33, 70}, 51).grad(), uniform({70, 17}, 52).grad()}}});
  cases.push_back({.name = "matmul/batched",
                   .fn = mm,
                   .forward = ForwardCheck{{uniform({3, 4, 6}, 3).grad(), uniform({3, 6, 5}, 4).grad()}, reference_mm, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({2, 3, 4}, 33).grad(), uniform({2, 4, 2}, 34).grad()}},
                   .parity = ParityCheck{{uniform({4, 9, 20}, 53).grad(), uniform({4, 20, 7}, 54).grad()}}});
  cases.push_back({.name = "matmul/batched-by-2d",
                   .fn = mm,
                   .forward = ForwardCheck{{uniform({3, 4, 6}, 3).grad(), uniform({6, 5}, 5).grad()}, reference_mm, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({3, 2, 4}, 35).grad(), uniform({4, 3}, 36).grad()}},
                   .parity = ParityCheck{{uniform({4, 9, 20}, 55).grad(), uniform({20, 7}, 56).grad()}}});
  // Large enough for OpenBLAS's threaded and blocked paths.
  cases.push_back({.name = "matmul/130x257-by-257x70",
                   .fn = mm,
                   .forward = ForwardCheck{{uniform({130, 257}, 6), uniform({257, 70}, 7)}, reference_mm, {{DType::f32, 1e-4, 1e-4}}}});
  // Only one side needing a gradient.
  cases.push_back({.name = "matmul/grad-of-b-only",
                   .fn = mm,
                   .gradcheck = GradCheck{{uniform({3, 4}, 41), uniform({4, 2}, 42).grad()}}});

  // Transposed operands, differentiated through the views.
  cases.push_back({.name = "matmul/transposed-2d",
                   .fn = [](const V& in) { return matmul(in[0].t(), in[1].transpose(-1, -2)); },
                   .gradcheck = GradCheck{{uniform({4, 3}, 37).grad(), uniform({5, 4}, 38).grad()}}});
  cases.push_back({.name = "matmul/transposed-batched-by-transposed-2d",
                   .fn = [](const V& in) { return matmul(in[0].transpose(-1, -2), in[1].t()); },
                   .gradcheck = GradCheck{{uniform({2, 4, 3}, 39).grad(), uniform({2, 4}, 40).grad()}},
                   .parity = ParityCheck{{uniform({4, 20, 9}, 57).grad(), uniform({7, 20}, 58).grad()}}});
  // Views read in place: column-major, row slices (leading dim above the width), every other
  // column (a layout that must be copied), a batch slice.
  const auto transposed = [](const Shape& shape, uint64_t seed) {
    return strided_view("the transpose of " + uniform(shape, seed).what, [=] { return random_tensor(shape, seed).t(); });
  };
  const auto batch_transposed = [](const Shape& shape, uint64_t seed) {
    return strided_view("transpose(-1, -2) of " + uniform(shape, seed).what,
                        [=] { return random_tensor(shape, seed).transpose(-1, -2); });
  };
  cases.push_back(matmul_of_views("transposed-views", transposed({6, 4}, 11), transposed({5, 6}, 12)));
  cases.push_back(matmul_of_views("transposed-view-by-contiguous", transposed({6, 4}, 11),
                                  made("the transpose of " + uniform({5, 6}, 12).what + ", made contiguous",
                                       [] { return random_tensor({5, 6}, 12).t().contiguous(); })));
  cases.push_back(matmul_of_views("batched-transposed-views", batch_transposed({3, 6, 4}, 13), batch_transposed({3, 5, 6}, 14)));
  cases.push_back(matmul_of_views("batched-transposed-view-by-transposed-2d", batch_transposed({3, 6, 4}, 13),
                                  transposed({5, 6}, 12)));
  cases.push_back(matmul_of_views(
      "column-slice-transposed",
      strided_view("columns 2..5 of " + uniform({6, 9}, 15).what + ", transposed",
                   [] { return random_tensor({6, 9}, 15).narrow(1, 2, 4).t(); }),
      transposed({5, 6}, 12)));
  cases.push_back(matmul_of_views(
      "every-other-column",
      strided_view("every other column of " + uniform({4, 12}, 16).what,
                   [] { return random_tensor({4, 12}, 16).view({4, 6, 2}).select(2, 0); }),
      transposed({5, 6}, 12)));
  cases.push_back(matmul_of_views("batch-slice",
                                  made("batches 1..3 of " + uniform({5, 6, 4}, 17).what,
                                       [] { return random_tensor({5, 6, 4}, 17).narrow(0, 1, 3); }),
                                  uniform({4, 2}, 18)));

  const Fn linear_with_bias = [](const V& in) { return linear(in[0], in[1], in[2]); };
  cases.push_back({.name = "linear/bias",
                   .fn = linear_with_bias,
                   .forward = ForwardCheck{{uniform({5, 4}, 61).grad(), uniform({3, 4}, 62).grad(), uniform({3}, 63).grad()},
                                           reference_linear, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({5, 4}, 67).grad(), uniform({3, 4}, 68).grad(), uniform({3}, 69).grad()}},
                   .parity = ParityCheck{{uniform({16, 30}, 81).grad(), uniform({10, 30}, 82).grad(), uniform({10}, 83).grad()}}});
  cases.push_back({.name = "linear/no-bias",
                   .fn = [](const V& in) { return linear(in[0], in[1]); },
                   .forward = ForwardCheck{{uniform({5, 4}, 61).grad(), uniform({3, 4}, 62).grad()}, reference_linear, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({5, 4}, 73).grad(), uniform({3, 4}, 74).grad()}}});
  // Two (three) models stacked: model i maps x[i] with w[i] and bias[i].
  cases.push_back({.name = "linear/stacked",
                   .fn = linear_with_bias,
                   .forward = ForwardCheck{{uniform({2, 5, 4}, 64).grad(), uniform({2, 3, 4}, 65).grad(), uniform({2, 3}, 66).grad()},
                                           reference_linear, kBothPrecisions},
                   .gradcheck = GradCheck{{uniform({2, 5, 4}, 70).grad(), uniform({2, 3, 4}, 71).grad(), uniform({2, 3}, 72).grad()}},
                   .parity = ParityCheck{{uniform({3, 16, 30}, 84).grad(), uniform({3, 10, 30}, 85).grad(),
                                          uniform({3, 10}, 86).grad()}}});
  // LAPACK's ops, float64 only and without gradients (computed on the CPU for any device).
  cases.push_back({.name = "eigvalsh/spd-9",
                   .fn = [](const V& in) { return eigvalsh(in[0]); },
                   .forward = ForwardCheck{{spd(9, 71)}, [](const V&) {
                                             std::vector<double> w;
                                             for (int k = 0; k < 9; ++k) w.push_back(1 + 0.5 * k);
                                             return expected(w, {9});
                                           }, {{DType::f64, 1e-12, 1e-12}}}});
  // The square root of Q·diag(λ)·Qᵀ is Q·diag(√λ)·Qᵀ; a zero eigenvalue too (semi-definite).
  for (const double first : {1.0, 0.0}) {
    std::vector<double> eigenvalues;
    for (int k = 0; k < 9; ++k) eigenvalues.push_back(k == 0 ? first : 0.5 * k);
    std::vector<double> roots;
    for (double e : eigenvalues) roots.push_back(std::sqrt(e));
    cases.push_back({.name = first > 0 ? "sqrtmh/spd-9" : "sqrtmh/semidefinite-9",
                     .fn = [](const V& in) { return sqrtmh(in[0]); },
                     .forward = ForwardCheck{{made("Q·diag(λ)·Qᵀ, 9x9 (seed 75)",
                                                  [eigenvalues] {
                                                    return Tensor::from_vector(symmetric_with_eigenvalues(75, eigenvalues), {9, 9});
                                                  })},
                                             [roots](const V&) { return expected(symmetric_with_eigenvalues(75, roots), {9, 9}); },
                                             {{DType::f64, 1e-7, 1e-7}}}});
  }
  cases.push_back({.name = "cholesky/spd-9",
                   .fn = [](const V& in) { return cholesky(in[0]); },
                   .forward = ForwardCheck{{spd(9, 72)}, [](const V& in) {
                                             return expected(naive_cholesky(in[0].to_vector<double>(), 9), {9, 9});
                                           }, {{DType::f64, 1e-12, 1e-12}}}});
  const Input factor = made("the Cholesky factor of a symmetric positive definite 9x9 matrix (seed 73)",
                            [] { return Tensor::from_vector(naive_cholesky(spd_values(9, 73, 0.5), 9), {9, 9}); });
  cases.push_back({.name = "cholesky_solve/one-column",
                   .fn = [](const V& in) { return cholesky_solve(in[0], in[1]); },
                   .forward = ForwardCheck{{uniform({9}, 74), factor}, reference_cholesky_solve, {{DType::f64, 1e-11, 1e-12}}}});
  cases.push_back({.name = "cholesky_solve/three-columns",
                   .fn = [](const V& in) { return cholesky_solve(in[0], in[1]); },
                   .forward = ForwardCheck{{uniform({9, 3}, 75), factor}, reference_cholesky_solve, {{DType::f64, 1e-11, 1e-12}}}});
  return cases;
}
