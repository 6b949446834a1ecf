// The float32 GEMM (blas::gemm<float>) on every path this CPU has, lethe's AVX-512 sgemm
// (kernels/cpu/sgemm.h; a recorded skip without AVX512F) and OpenBLAS's, against float64 loops:
// every transpose combination, sizes that leave partial row and column blocks and several k
// blocks, alpha and beta (beta 0 must not read C), padded leading dimensions; lethe's kernel's
// bitwise independence of the thread count; which path runs by default.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
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

// One case's operands, with padded leading dimensions, and its float64 result: for each element
// of C [m, n], the value and the float32 rounding it allows. Built once for every path.
struct Problem {
  Case t;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c0;
  std::vector<double> want, tolerance;
};

Problem make_problem(const Case& t) {
  Problem p{t, (t.ta ? t.m : t.k) + 3, (t.tb ? t.k : t.n) + 5, t.n + 2, {}, {}, {}, {}, {}};
  p.a = random_floats(static_cast<size_t>((t.ta ? t.k : t.m) * p.lda), 1);
  p.b = random_floats(static_cast<size_t>((t.tb ? t.n : t.k) * p.ldb), 2);
  p.c0 = random_floats(static_cast<size_t>(t.m * p.ldc), 3);
  if (t.beta == 0) std::fill(p.c0.begin(), p.c0.end(), std::numeric_limits<float>::quiet_NaN());
  for (int64_t i = 0; i < t.m; ++i)
    for (int64_t j = 0; j < t.n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t s = 0; s < t.k; ++s) {
        const double x = p.a[static_cast<size_t>(t.ta ? s * p.lda + i : i * p.lda + s)];
        const double y = p.b[static_cast<size_t>(t.tb ? j * p.ldb + s : s * p.ldb + j)];
        sum += x * y;
        magnitude += std::abs(x * y);
      }
      const double old = p.c0[static_cast<size_t>(i * p.ldc + j)];
      const double from_c = t.beta == 0 ? 0.0 : t.beta * old;  // old is NaN when beta is 0
      p.want.push_back(t.alpha * sum + from_c);
      p.tolerance.push_back(1e-6 * (std::abs(t.alpha) * magnitude + std::abs(from_c)) + 1e-6);
    }
  return p;
}

// Runs the case on the float32 GEMM in use: every element of C against float64, and the padding
// columns of C never written.
void check(const Problem& p) {
  const Case& t = p.t;
  CAPTURE(t.ta);
  CAPTURE(t.tb);
  CAPTURE(t.m);
  CAPTURE(t.n);
  CAPTURE(t.k);
  CAPTURE(t.alpha);
  CAPTURE(t.beta);
  std::vector<float> c = p.c0;
  blas::gemm<float>(t.ta, t.tb, t.m, t.n, t.k, t.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, t.beta, c.data(), p.ldc);
  std::ostringstream first_wrong;
  for (int64_t i = 0; i < t.m && first_wrong.tellp() == 0; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldc + j), in_c = static_cast<size_t>(i * t.n + j);
      const float before = p.c0[at], after = c[at];
      const bool good = j < t.n ? std::abs(after - p.want[in_c]) <= p.tolerance[in_c]
                                : before == after || (std::isnan(before) && std::isnan(after));
      if (good) continue;
      first_wrong << "C[" << i << ", " << j << "] is " << after << ", expected "
                  << (j < t.n ? p.want[in_c] : static_cast<double>(before)) << (j < t.n ? "" : " (padding)");
      break;
    }
  CHECK_MESSAGE(first_wrong.tellp() == 0, first_wrong.str());
}

}  // namespace

TEST_CASE("sgemm: every transpose, partial blocks, several k blocks, alpha and beta, against float64") {
  const int64_t sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {13, 47, 300}, {40, 100, 513}, {9, 16, 257}};
  std::vector<Problem> problems;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const auto& s : sizes)
        for (const float beta : {0.0f, 1.0f, 0.25f})
          problems.push_back(make_problem({ta, tb, s[0], s[1], s[2], beta == 1 ? 1.0f : -0.5f, beta}));
  test::for_each_sgemm_path([&] {
    for (const Problem& p : problems) check(p);
  });
}

TEST_CASE("sgemm: k = 0 scales C by beta, and an empty m or n touches nothing") {
  test::for_each_sgemm_path([] {
    std::vector<float> c = {1, 2, 3, 4};
    blas::gemm<float>(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.5, c.data(), 2);
    CHECK(c == std::vector<float>{0.5f, 1, 1.5f, 2});
    blas::gemm<float>(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.0, c.data(), 2);
    CHECK(c == std::vector<float>{0, 0, 0, 0});
    blas::gemm<float>(false, false, 0, 2, 3, 1.0, nullptr, 3, nullptr, 2, 0.0, nullptr, 2);
    blas::gemm<float>(false, false, 2, 0, 3, 1.0, nullptr, 3, nullptr, 1, 0.0, nullptr, 1);
  });
}

TEST_CASE("sgemm: lethe's kernel gives the same bits on any thread count, and each path repeats itself") {
  // The README promises bitwise results for a fixed thread count on either path, and
  // independence of the thread count for lethe's kernel only.
  const int64_t m = 70, n = 90, k = 600;
  const std::vector<float> a = random_floats(static_cast<size_t>(m * k), 4), b = random_floats(static_cast<size_t>(k * n), 5);
  auto run = [&](int threads) {
    set_num_threads(threads);
    std::vector<float> c(static_cast<size_t>(m * n));
    blas::gemm<float>(false, false, m, n, k, 1.0, a.data(), k, b.data(), n, 0.0, c.data(), n);
    return c;
  };
  test::for_each_sgemm_path([&] {
    const std::vector<float> one = run(1), two = run(2), again = run(2);
    CHECK(two == again);
    if (blas::uses_lethe_sgemm()) CHECK(one == two);
  });
  set_num_threads(2);
}

TEST_CASE("sgemm: lethe's kernel runs by default exactly on AVX512F CPUs, unless LETHE_SGEMM=openblas") {
  const char* choice = std::getenv("LETHE_SGEMM");
  const bool openblas_asked = choice != nullptr && std::strcmp(choice, "openblas") == 0;
  CHECK(blas::uses_lethe_sgemm() == (cpu::has_avx512_sgemm() && !openblas_asked));
  CHECK(blas::sgemm_name() == (blas::uses_lethe_sgemm() ? "lethe-avx512" : "openblas-" + blas::core_name()));
  // The entries run with OpenBLAS's Haswell kernels (tests/CMakeLists.txt) really run them.
  if (const char* core = std::getenv("OPENBLAS_CORETYPE")) CHECK(blas::core_name() == core);
  if (!cpu::has_avx512_sgemm())
    CHECK_THROWS_WITH_AS(blas::use_lethe_sgemm(true), doctest::Contains("lethe's sgemm needs AVX512F, which this CPU lacks"), Error);
}
