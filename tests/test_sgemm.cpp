// lethe's AVX-512 float GEMM (kernels/cpu/sgemm.h) against float64 loops: every transpose
// combination, sizes that leave partial row and column blocks and several k blocks, alpha and
// beta (beta 0 must not read C), padded leading dimensions; and bitwise independence of the
// thread count. Skipped, visibly, on CPUs without AVX-512.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/blas.h"
#include "engine/parallel.h"
#include "harness.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/sgemm.h"

using namespace lethe;

namespace {

std::vector<float> random_floats(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(philox::random_u32(7, stream, i) >> 8) / 8388608.0f - 1.0f;
  return v;
}

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
};

// Runs one case with padded leading dimensions and checks it against float64.
void check_case(const Case& t) {
  CAPTURE(t.ta);
  CAPTURE(t.tb);
  CAPTURE(t.m);
  CAPTURE(t.n);
  CAPTURE(t.k);
  CAPTURE(t.alpha);
  CAPTURE(t.beta);
  const int64_t lda = (t.ta ? t.m : t.k) + 3, ldb = (t.tb ? t.k : t.n) + 5, ldc = t.n + 2;
  const std::vector<float> a = random_floats(static_cast<size_t>((t.ta ? t.k : t.m) * lda), 1);
  const std::vector<float> b = random_floats(static_cast<size_t>((t.tb ? t.n : t.k) * ldb), 2);
  std::vector<float> c = random_floats(static_cast<size_t>(t.m * ldc), 3);
  if (t.beta == 0) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  const std::vector<float> c0 = c;
  cpu::sgemm_avx512(t.ta, t.tb, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta, c.data(), ldc);
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < t.n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t s = 0; s < t.k; ++s) {
        const double x = a[static_cast<size_t>(t.ta ? s * lda + i : i * lda + s)];
        const double y = b[static_cast<size_t>(t.tb ? j * ldb + s : s * ldb + j)];
        sum += x * y;
        magnitude += std::abs(x * y);
      }
      const double old = c0[static_cast<size_t>(i * ldc + j)];
      const double from_c = t.beta == 0 ? 0.0 : t.beta * old;  // old is NaN when beta is 0
      const double want = t.alpha * sum + from_c;
      const double got = c[static_cast<size_t>(i * ldc + j)];
      CAPTURE(i);
      CAPTURE(j);
      REQUIRE(std::abs(got - want) <= 1e-6 * (std::abs(t.alpha) * magnitude + std::abs(from_c)) + 1e-6);
    }
  // Padding columns of C are never written.
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = t.n; j < ldc; ++j) {
      const float before = c0[static_cast<size_t>(i * ldc + j)], after = c[static_cast<size_t>(i * ldc + j)];
      REQUIRE((before == after || (std::isnan(before) && std::isnan(after))));
    }
}

bool avx512_or_skip() {
  if (cpu::has_avx512_sgemm()) return true;
  test::record_skip("no AVX-512 on this CPU: lethe's sgemm is not used here (OpenBLAS is)");
  return false;
}

}  // namespace

TEST_CASE("sgemm_avx512: every transpose, partial blocks, several k blocks, alpha and beta, against float64") {
  if (!avx512_or_skip()) return;
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {13, 47, 300}, {40, 100, 513}, {9, 16, 257}};
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const auto& s : sizes)
        for (const float beta : {0.0f, 1.0f, 0.25f}) check_case({ta, tb, s[0], s[1], s[2], beta == 1 ? 1.0f : -0.5f, beta});
}

TEST_CASE("sgemm_avx512: k = 0 scales C by beta; empty m or n touches nothing") {
  if (!avx512_or_skip()) return;
  std::vector<float> c = {1, 2, 3, 4};
  cpu::sgemm_avx512(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2);
  CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
  cpu::sgemm_avx512(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  CHECK(c == std::vector<float>{0, 0, 0, 0});
  cpu::sgemm_avx512(false, false, 0, 2, 3, 1.0f, nullptr, 3, nullptr, 2, 0.0f, nullptr, 2);
}

TEST_CASE("sgemm_avx512: the result does not depend on the thread count, bit for bit") {
  if (!avx512_or_skip()) return;
  const int64_t m = 70, n = 90, k = 600;
  const std::vector<float> a = random_floats(static_cast<size_t>(m * k), 4), b = random_floats(static_cast<size_t>(k * n), 5);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> c(static_cast<size_t>(m * n));
    cpu::sgemm_avx512(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
    return c;
  };
  const std::vector<float> one = run(1), two = run(2);
  set_num_threads(2);
  CHECK(one == two);
  CHECK(blas::uses_lethe_sgemm() == (std::getenv("LETHE_SGEMM") == nullptr));
  CHECK(blas::sgemm_name() == (blas::uses_lethe_sgemm() ? "lethe-avx512" : "openblas-" + blas::core_name()));
}
