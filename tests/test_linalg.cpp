// Linear algebra beyond the op registry's table (tests/op_cases_linalg.cpp has matmul's and
// linear's forward, gradient and parity checks): OpenBLAS's core and threads, a batch of small
// products bitwise equal to each on its own, an empty inner dimension, and the errors.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

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
