#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

#include "engine/blas.h"
#include "engine/parallel.h"
#include "harness.h"

using namespace lethe;

namespace {

// Naive float64 [B,M,K]x[B,K,N] (batch 1 for 2-d) on row-major host copies; b_batched false
// reuses one [K,N] matrix for every batch entry.
std::vector<double> reference_matmul(const Tensor& a, const Tensor& b) {
  const std::vector<double> av = a.to(DType::f64).to_vector<double>(), bv = b.to(DType::f64).to_vector<double>();
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
  return out;
}

Tensor grad_input(const Shape& shape, uint64_t seed) {
  return test::random_tensor(shape, seed).set_requires_grad();
}

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

TEST_CASE("matmul: forward against float64 loops, 2-d, batched and broadcast") {
  for (DType dt : {DType::f64, DType::f32}) {
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    const Tensor a2 = test::random_tensor({5, 7}, 1, -1, 1, dt), b2 = test::random_tensor({7, 3}, 2, -1, 1, dt);
    test::expect_close(matmul(a2, b2), reference_matmul(a2, b2), tol, tol);
    const Tensor a3 = test::random_tensor({3, 4, 6}, 3, -1, 1, dt), b3 = test::random_tensor({3, 6, 5}, 4, -1, 1, dt);
    const Tensor y3 = matmul(a3, b3);
    CHECK(y3.shape() == Shape{3, 4, 5});
    test::expect_close(y3, reference_matmul(a3, b3), tol, tol);
    const Tensor bb = test::random_tensor({6, 5}, 5, -1, 1, dt);
    test::expect_close(matmul(a3, bb), reference_matmul(a3, bb), tol, tol);
    CHECK(matmul(a3, bb).dtype() == dt);
  }
  // Large enough for OpenBLAS's threaded and blocked paths.
  const Tensor a = test::random_tensor({130, 257}, 6, -1, 1, DType::f32), b = test::random_tensor({257, 70}, 7, -1, 1, DType::f32);
  test::expect_close(matmul(a, b), reference_matmul(a, b), 1e-4, 1e-4);
}

TEST_CASE("matmul: transposed and strided views are read in place and give the same result") {
  const Tensor a = test::random_tensor({6, 4}, 11), b = test::random_tensor({5, 6}, 12);
  const Tensor at = a.t(), bt = b.t();  // [4,6] and [6,5], column-major layouts
  CHECK(!at.is_contiguous());
  test::expect_close(matmul(at, bt), reference_matmul(at.contiguous(), bt.contiguous()), 1e-12, 1e-12);
  test::expect_close(matmul(at, b.t().contiguous()), reference_matmul(at.contiguous(), bt.contiguous()), 1e-12, 1e-12);

  // Batched transposes (transpose(-1,-2)) on either side, and a 2-d transposed b broadcast.
  const Tensor a3 = test::random_tensor({3, 6, 4}, 13), b3 = test::random_tensor({3, 5, 6}, 14);
  const Tensor ref = Tensor::from_vector(reference_matmul(a3.transpose(-1, -2).contiguous(), b3.transpose(-1, -2).contiguous()), {3, 4, 5});
  test::expect_close(matmul(a3.transpose(-1, -2), b3.transpose(-1, -2)), ref, 1e-12, 1e-12);
  test::expect_close(matmul(a3.transpose(-1, -2), bt), reference_matmul(a3.transpose(-1, -2).contiguous(), bt.contiguous()), 1e-12, 1e-12);

  // Row slices (leading dim larger than the width), a batch slice, and a layout that must be
  // copied (every other column).
  const Tensor wide = test::random_tensor({6, 9}, 15);
  const Tensor cols = wide.narrow(1, 2, 4);  // [6,4], row stride 9
  test::expect_close(matmul(cols.t(), b.t()), reference_matmul(cols.t().contiguous(), bt.contiguous()), 1e-12, 1e-12);
  const Tensor every_other = test::random_tensor({4, 12}, 16).view({4, 6, 2}).select(2, 0);  // [4,6], col stride 2
  test::expect_close(matmul(every_other, bt), reference_matmul(every_other.contiguous(), bt.contiguous()), 1e-12, 1e-12);
  const Tensor batch_slice = test::random_tensor({5, 6, 4}, 17).narrow(0, 1, 3);
  test::expect_close(matmul(batch_slice, test::random_tensor({4, 2}, 18)),
                     reference_matmul(batch_slice.contiguous(), test::random_tensor({4, 2}, 18)), 1e-12, 1e-12);
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

TEST_CASE("matmul: gradcheck for 2-d, batched, broadcast and transposed-view operands") {
  using V = std::vector<Tensor>;
  test::gradcheck([](const V& in) { return matmul(in[0], in[1]); }, {grad_input({3, 4}, 31), grad_input({4, 5}, 32)});
  test::gradcheck([](const V& in) { return matmul(in[0], in[1]); }, {grad_input({2, 3, 4}, 33), grad_input({2, 4, 2}, 34)});
  test::gradcheck([](const V& in) { return matmul(in[0], in[1]); }, {grad_input({3, 2, 4}, 35), grad_input({4, 3}, 36)});
  test::gradcheck([](const V& in) { return matmul(in[0].t(), in[1].transpose(-1, -2)); },
                  {grad_input({4, 3}, 37), grad_input({5, 4}, 38)});
  test::gradcheck([](const V& in) { return matmul(in[0].transpose(-1, -2), in[1].t()); },
                  {grad_input({2, 4, 3}, 39), grad_input({2, 4}, 40)});
  // Only one side needing a gradient.
  test::gradcheck([](const V& in) { return matmul(in[0], in[1]); }, {test::random_tensor({3, 4}, 41), grad_input({4, 2}, 42)});
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

TEST_CASE("matmul: CPU/CUDA parity") {
  using V = std::vector<Tensor>;
  const test::Fn mm = [](const V& in) { return matmul(in[0], in[1]); };
  test::check_parity(mm, {grad_input({33, 70}, 51), grad_input({70, 17}, 52)});
  test::check_parity(mm, {grad_input({4, 9, 20}, 53), grad_input({4, 20, 7}, 54)});
  test::check_parity(mm, {grad_input({4, 9, 20}, 55), grad_input({20, 7}, 56)});
  test::check_parity([](const V& in) { return matmul(in[0].transpose(-1, -2), in[1].t()); },
                     {grad_input({4, 20, 9}, 57), grad_input({7, 20}, 58)});
}

TEST_CASE("linear: forward, stacked models, gradcheck") {
  const Tensor x = test::random_tensor({5, 4}, 61), w = test::random_tensor({3, 4}, 62), b = test::random_tensor({3}, 63);
  std::vector<double> ref = reference_matmul(x, w.t().contiguous());
  const std::vector<double> bv = b.to_vector<double>();
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[i % 3];
  test::expect_close(linear(x, w, b), ref, 1e-12, 1e-12);
  test::expect_close(linear(x, w), reference_matmul(x, w.t().contiguous()), 1e-12, 1e-12);

  // Two models stacked: model i maps x[i] with w[i] and b[i].
  const Tensor xs = test::random_tensor({2, 5, 4}, 64), ws = test::random_tensor({2, 3, 4}, 65), bs = test::random_tensor({2, 3}, 66);
  const Tensor ys = linear(xs, ws, bs);
  REQUIRE(ys.shape() == Shape{2, 5, 3});
  for (int64_t i = 0; i < 2; ++i) test::expect_close(ys.select(0, i), linear(xs.select(0, i), ws.select(0, i), bs.select(0, i)), 1e-12, 1e-12);

  using V = std::vector<Tensor>;
  test::gradcheck([](const V& in) { return linear(in[0], in[1], in[2]); }, {grad_input({5, 4}, 67), grad_input({3, 4}, 68), grad_input({3}, 69)});
  test::gradcheck([](const V& in) { return linear(in[0], in[1], in[2]); },
                  {grad_input({2, 5, 4}, 70), grad_input({2, 3, 4}, 71), grad_input({2, 3}, 72)});
  test::gradcheck([](const V& in) { return linear(in[0], in[1]); }, {grad_input({5, 4}, 73), grad_input({3, 4}, 74)});
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

TEST_CASE("linear: CPU/CUDA parity") {
  using V = std::vector<Tensor>;
  test::check_parity([](const V& in) { return linear(in[0], in[1], in[2]); }, {grad_input({16, 30}, 81), grad_input({10, 30}, 82), grad_input({10}, 83)});
  test::check_parity([](const V& in) { return linear(in[0], in[1], in[2]); },
                     {grad_input({3, 16, 30}, 84), grad_input({3, 10, 30}, 85), grad_input({3, 10}, 86)});
}
