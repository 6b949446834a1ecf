// Linear algebra beyond the op registry's table (tests/op_cases_linalg.cpp has matmul's and
// linear's forward, gradient and parity checks): OpenBLAS's core and threads, a batch of small
// products bitwise equal to each on its own, an empty inner dimension, and the errors; the LAPACK
// ops (eigvalsh, cholesky, cholesky_solve) against matrices built with known answers.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
#include "harness.h"

using namespace lethe;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

TEST_CASE("blas: core name is reported and follows OPENBLAS_CORETYPE, threads reach OpenBLAS") {
  const std::string core = blas::core_name();
  INFO("OpenBLAS core: ", core);
  CHECK(!core.empty());
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (forced != nullptr && *forced != '\0') CHECK(lower(core) == lower(forced));
  const int before = num_threads();
  set_num_threads(1);
  CHECK(num_threads() == 1);
  CHECK(blas::threads() == 1);
  set_num_threads(before);
  CHECK(blas::threads() == before);
  CHECK_THROWS_WITH_AS(set_num_threads(0), doctest::Contains("set_num_threads: needs at least 1 thread"), Error);
}

TEST_CASE("matmul: a batch of small products equals the products one by one, bitwise") {
  // Small batched GEMMs are spread over threads; each must be computed exactly as on its own.
  const Tensor a = test::random_tensor({16, 8, 12}, 21, -1, 1, DType::f32);
  const Tensor b = test::random_tensor({16, 12, 10}, 22, -1, 1, DType::f32);
  const Tensor y = matmul(a, b);
  for (int64_t i = 0; i < 16; ++i) test::expect_close(y.select(0, i), matmul(a.select(0, i), b.select(0, i)), 0, 0);
  const Tensor y1 = matmul(a, b);
  test::expect_close(y1, y, 0, 0);
}

TEST_CASE("matmul: empty inner dimension gives zeros") {
  const Tensor y = matmul(Tensor::ones({3, 0}), Tensor::ones({0, 4}));
  CHECK(y.shape() == Shape{3, 4});
  test::expect_close(y, std::vector<double>(12, 0.0), 0, 0);
}

TEST_CASE("matmul: errors name the op and the shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({128, 1568}), Tensor::zeros({1600, 128})),
                       "matmul: inner dims differ: [128,1568] x [1600,128]", Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::f64)),
                       doctest::Contains("float32[2,3] on cpu and float64[3,2] on cpu"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}, DType::i32), Tensor::zeros({3, 2}, DType::i32)),
                       doctest::Contains("matmul: needs two float32 or two float64 tensors"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 3, 2})),
                       doctest::Contains("matmul: supports [M,K]x[K,N], [B,M,K]x[B,K,N] and [B,M,K]x[K,N], got [2,3] x [4,3,2]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({4, 3, 2})),
                       "matmul: batch sizes differ: [2,2,3] x [4,3,2]", Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})), doctest::Contains("got [3] x [3,2]"), Error);
}

TEST_CASE("linear: errors name the op and the shapes") {
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({5, 4}), Tensor::zeros({3, 6})),
                       doctest::Contains("linear: in features differ: x float32[5,4] on cpu, w float32[3,6] on cpu"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({5, 4}), Tensor::zeros({3, 4}), Tensor::zeros({4})),
                       doctest::Contains("linear: bias float32[4] on cpu does not match w float32[3,4] on cpu"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 5, 4}), Tensor::zeros({3, 3, 4})), doctest::Contains("linear: model counts differ"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({5, 4}), Tensor::zeros({2, 3, 4})), doctest::Contains("linear: expects x [N,in] with w [out,in]"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({5, 4}), Tensor::zeros({3, 4}, DType::f64)), doctest::Contains("linear: needs two float32 or two float64"), Error);
}

namespace {

// A = Q·diag(w)·Qᵀ with Q = I − 2vvᵀ/‖v‖² (orthogonal, symmetric): eigenvalues w by construction.
Tensor with_eigenvalues(const std::vector<double>& w, uint64_t seed) {
  const auto n = static_cast<int64_t>(w.size());
  const std::vector<double> v = test::random_tensor({n}, seed, -1, 1, DType::f64).to_vector<double>();
  double vv = 0;
  for (double x : v) vv += x * x;
  std::vector<double> q(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) q[i * n + j] = (i == j ? 1.0 : 0.0) - 2 * v[i] * v[j] / vv;
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += q[i * n + k] * w[k] * q[j * n + k];
  // Symmetric exactly: LAPACK reads one triangle.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) a[i * n + j] = a[j * n + i];
  return Tensor::from_vector(a, {n, n});
}

}  // namespace

// (The op registry has their forward cases against float64 loops, on the CPU and with CUDA inputs.)
TEST_CASE("linalg: eigvalsh, cholesky and cholesky_solve: residuals, triangularity and errors") {
  const std::vector<double> w = {3.5, 0.01, 1, 2.25, 0.5, 7, 0.125};
  const Tensor a = with_eigenvalues(w, 21);
  std::vector<double> sorted = w;
  std::sort(sorted.begin(), sorted.end());
  const std::vector<double> eig = eigvalsh(a).to_vector<double>();
  for (size_t i = 0; i < w.size(); ++i) CHECK(eig[i] == doctest::Approx(sorted[i]).epsilon(1e-12).scale(1));

  const Tensor l = cholesky(a);
  const std::vector<double> lv = l.to_vector<double>(), av = a.to_vector<double>();
  const int64_t n = 7;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (j > i) CHECK(lv[i * n + j] == 0);  // lower triangular
      double llt = 0;
      for (int64_t k = 0; k < n; ++k) llt += lv[i * n + k] * lv[j * n + k];
      CHECK(llt == doctest::Approx(av[i * n + j]).epsilon(1e-12).scale(1));
    }
  }
  // One right-hand side and three: A·x = b.
  for (const Shape& shape : {Shape{7}, Shape{7, 3}}) {
    const Tensor b = test::random_tensor(shape, 22, -1, 1, DType::f64);
    const Tensor x = cholesky_solve(b, l);
    REQUIRE(x.shape() == shape);
    const Tensor ax = matmul(a, b.dim() == 1 ? x.reshape({7, 1}) : x).reshape(shape);
    const std::vector<double> got = ax.to_vector<double>(), want = b.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-10).scale(1));
  }

  CHECK_THROWS_WITH_AS(cholesky(with_eigenvalues({1, -0.5, 2}, 23)), doctest::Contains("not positive definite"), Error);
  CHECK_THROWS_WITH_AS(eigvalsh(a.to(DType::f32)), doctest::Contains("square float64 matrix"), Error);
  CHECK_THROWS_WITH_AS(eigvalsh(Tensor::zeros({2, 3}, DType::f64)), doctest::Contains("square float64 matrix"), Error);
  CHECK_THROWS_WITH_AS(cholesky_solve(Tensor::zeros({6}, DType::f64), l), doctest::Contains("needs b [7]"), Error);
}
