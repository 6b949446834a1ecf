// The float32 GEMM (blas::gemm<float>) on every path, lethe's AVX-512 and AVX2 kernels
// (kernels/cpu/sgemm.h; each a recorded skip where the CPU lacks its instructions) and OpenBLAS's,
// against float64 loops: every transpose combination, sizes that leave partial row and column
// blocks, partial chunks of k and several k blocks, alpha and beta (beta 0 must not read C), padded
// leading dimensions and operands that end where memory does; lethe's kernels' bitwise
// independence of the thread count and of the instruction set; which path runs by default.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
#include "harness.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/sgemm.h"

using namespace lethe;
using blas::SgemmKernel;

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

// The float32 rounding the kernels may add to alpha·Σ x·y + from_c, whose products' magnitudes sum
// to `magnitude`.
double tolerance(double alpha, double magnitude, double from_c) {
  return 1e-6 * (std::abs(alpha) * magnitude + std::abs(from_c)) + 1e-6;
}

// Σ_s A[i, s]·B[s, j] in float64 over the steps `keep` accepts, and Σ |A[i, s]·B[s, j]|: row i of A
// (k contiguous floats) at pool[a_row], row s of B at pool[b_rows[s]], as sgemm_rows reads them.
struct Dot {
  double sum = 0, magnitude = 0;
};
template <class Keep>
Dot pooled_dot(const std::vector<float>& pool, int64_t a_row, const std::vector<int64_t>& b_rows, int64_t j,
               const Keep& keep) {
  Dot d;
  for (int64_t s = 0; s < static_cast<int64_t>(b_rows.size()); ++s) {
    if (!keep(s)) continue;
    const double x = pool[static_cast<size_t>(a_row + s)];
    const double y = pool[static_cast<size_t>(b_rows[static_cast<size_t>(s)] + j)];
    d.sum += x * y;
    d.magnitude += std::abs(x * y);
  }
  return d;
}
// Whether float32's `got` is alpha·d + from_c within tolerance().
bool near_float64(float got, double alpha, const Dot& d, double from_c) {
  return std::abs(got - (alpha * d.sum + from_c)) <= tolerance(alpha, d.magnitude, from_c);
}

// One case's operands, with leading dimensions padded or not, and its float64 result: for each
// element of C [m, n], the value and the float32 rounding it allows. Built once for every path.
struct Problem {
  Case t;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c0;
  std::vector<double> want, tolerance;
};

Problem make_problem(const Case& t, bool padded = true) {
  Problem p{t, (t.ta ? t.m : t.k) + (padded ? 3 : 0), (t.tb ? t.k : t.n) + (padded ? 5 : 0), t.n + (padded ? 2 : 0),
            {}, {}, {}, {}, {}};
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
      p.tolerance.push_back(tolerance(t.alpha, magnitude, from_c));
    }
  return p;
}

// Runs the case on the float32 GEMM in use with the operands at a, b and C at c (p.c0's values):
// every element of C against float64, and the padding columns of C never written.
void check(const Problem& p, const float* a, const float* b, float* c) {
  const Case& t = p.t;
  CAPTURE(t.ta);
  CAPTURE(t.tb);
  CAPTURE(t.m);
  CAPTURE(t.n);
  CAPTURE(t.k);
  CAPTURE(t.alpha);
  CAPTURE(t.beta);
  blas::gemm<float>(t.ta, t.tb, t.m, t.n, t.k, t.alpha, a, p.lda, b, p.ldb, t.beta, c, p.ldc);
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

void check(const Problem& p) {
  std::vector<float> c = p.c0;
  check(p, p.a.data(), p.b.data(), c.data());
}

// A copy of `values` that ends where an inaccessible page begins: reading or writing one float
// past its end faults.
class Guarded {
 public:
  explicit Guarded(const std::vector<float>& values) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE)), bytes = values.size() * sizeof(float);
    size_ = (bytes + page - 1) / page * page + page;
    base_ = static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base_ != MAP_FAILED);
    REQUIRE(mprotect(base_ + size_ - page, page, PROT_NONE) == 0);
    data_ = reinterpret_cast<float*>(base_ + size_ - page - bytes);
    std::copy(values.begin(), values.end(), data_);
  }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  ~Guarded() { munmap(base_, size_); }
  float* data() const { return data_; }

 private:
  char* base_;
  size_t size_;
  float* data_;
};

// Every transpose combination of the given sizes {m, n, k}.
std::vector<Case> transposes(std::initializer_list<std::array<int64_t, 3>> sizes, float alpha, float beta) {
  std::vector<Case> cases;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const auto& s : sizes) cases.push_back({ta, tb, s[0], s[1], s[2], alpha, beta});
  return cases;
}

}  // namespace

TEST_CASE("sgemm: every transpose, partial blocks, several k blocks, alpha and beta, against float64") {
  // Register blocks: 8 × 32 (AVX-512), 6 × 16 (AVX2); k blocks of 256; C = A·Bᵀ with k >= 512 as dot
  // products over 16-wide chunks of k. {6, 16, 512}: whole blocks and chunks for AVX2; {11, 24, 600}:
  // a last chunk of 8, whose second AVX2 vector is all masked.
  std::vector<Problem> problems;
  for (const float beta : {0.0f, 1.0f, 0.25f})
    for (const Case& t : transposes({{1, 1, 1}, {7, 33, 5}, {8, 32, 256}, {13, 47, 300}, {40, 100, 513}, {9, 16, 257},
                                     {6, 16, 512}, {11, 24, 600}},
                                    beta == 1 ? 1.0f : -0.5f, beta))
      problems.push_back(make_problem(t));
  test::for_each_sgemm_path([&] {
    for (const Problem& p : problems) check(p);
  });
}

TEST_CASE("sgemm: masked lanes read and write nothing past the operands") {
  // Unpadded operands, each ending at an inaccessible page: a masked-off lane that touched memory
  // past the last row would crash the test. Last rows and columns of every block size, and last
  // chunks of k on both kernels.
  std::vector<Problem> problems;
  for (const Case& t : transposes({{7, 13, 21}, {9, 17, 513}, {5, 3, 600}, {1, 1, 1}}, -0.5f, 0.25f))
    problems.push_back(make_problem(t, /*padded=*/false));
  test::for_each_sgemm_path([&] {
    for (const Problem& p : problems) {
      const Guarded a(p.a), b(p.b), c(p.c0);
      check(p, a.data(), b.data(), c.data());
    }
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

TEST_CASE("sgemm: lethe's kernels give the same bits on any thread count, and each path repeats itself") {
  // The README promises bitwise results for a fixed thread count on every path, and independence
  // of the thread count for lethe's kernels: register blocks (A·B) and dot products (A·Bᵀ).
  const int64_t m = 70, n = 90, k = 600;
  const std::vector<float> a = random_floats(static_cast<size_t>(m * k), 4), b = random_floats(static_cast<size_t>(k * n), 5);
  auto run = [&](bool trans_b, int threads) {
    set_num_threads(threads);
    std::vector<float> c(static_cast<size_t>(m * n));
    blas::gemm<float>(false, trans_b, m, n, k, 1.0, a.data(), k, b.data(), trans_b ? k : n, 0.0, c.data(), n);
    return c;
  };
  test::for_each_sgemm_path([&] {
    for (const bool trans_b : {false, true}) {
      CAPTURE(trans_b);
      const std::vector<float> one = run(trans_b, 1), two = run(trans_b, 2), again = run(trans_b, 2);
      CHECK(two == again);
      if (blas::uses_lethe_sgemm()) CHECK(one == two);
    }
  });
  set_num_threads(2);
}

TEST_CASE("sgemm: lethe's AVX2 and AVX-512 kernels give the same bits") {
  // Both compute every element by the same sequence of operations (kernels/cpu/sgemm_kernel.h), so
  // a float32 GEMM's result does not depend on which of the two a CPU runs.
  if (!blas::cpu_has(SgemmKernel::avx512) || !blas::cpu_has(SgemmKernel::avx2)) {
    test::record_skip("comparing lethe's AVX2 and AVX-512 sgemm needs a CPU with AVX512F, AVX2 and FMA");
    return;
  }
  auto bits = [](SgemmKernel kernel, const Problem& p) {
    std::vector<float> c = p.c0;
    cpu::sgemm(kernel, p.t.ta, p.t.tb, p.t.m, p.t.n, p.t.k, p.t.alpha, p.a.data(), p.lda, p.b.data(), p.ldb, p.t.beta,
               c.data(), p.ldc);
    return c;
  };
  for (const Case& t : transposes({{13, 47, 300}, {40, 100, 513}, {11, 24, 600}, {6, 16, 512}}, -0.5f, 0.25f)) {
    const Problem p = make_problem(t);
    CAPTURE(t.ta);
    CAPTURE(t.tb);
    CAPTURE(t.m);
    CAPTURE(t.n);
    CAPTURE(t.k);
    CHECK(bits(SgemmKernel::avx2, p) == bits(SgemmKernel::avx512, p));
  }
  // Rows through offset tables, as the convolutions' implicit GEMMs read them.
  const int64_t m = 13, n = 37, k = 300, pool_size = 20000;
  const std::vector<float> pool = random_floats(static_cast<size_t>(pool_size), 6);
  std::vector<int64_t> a_rows, b_rows;
  for (int64_t i = 0; i < m; ++i) a_rows.push_back(i * 977 % (pool_size - k));
  for (int64_t s = 0; s < k; ++s) b_rows.push_back(s * 131 % (pool_size - n));
  auto rows_bits = [&](SgemmKernel kernel) {
    std::vector<float> c(static_cast<size_t>(m * n));
    cpu::sgemm_rows(kernel, m, n, k, 1.0f, pool.data(), a_rows.data(), 0, pool.data(), b_rows.data(), 0, 0.0f, c.data(), n);
    return c;
  };
  CHECK(rows_bits(SgemmKernel::avx2) == rows_bits(SgemmKernel::avx512));
}

TEST_CASE("sgemm: column runs give the runs' columns the bits of the whole product, and float64's values") {
  // A convolution's output rows on the padded width (kernels/cpu/conv.cpp): runs of `length`
  // columns every `stride`, the columns between them dropped. cnn-s's conv2 and conv1 as they run,
  // runs shorter and longer than a block, runs that fill their stride, one-column runs, k over two
  // k blocks, beta 0 and not.
  struct RunsCase {
    int64_t m, runs, length, stride, k;
    float beta;
  };
  const std::vector<RunsCase> cases = {{32, 14, 14, 18, 400, 0}, {16, 28, 28, 32, 25, 0}, {7, 5, 3, 7, 300, 0.5f},
                                       {9, 4, 40, 40, 513, 1}, {6, 3, 1, 33, 17, 0}};
  const int64_t pool_size = 40000;
  const std::vector<float> pool = random_floats(static_cast<size_t>(pool_size), 8);
  test::for_each_sgemm_path([&] {
    if (!blas::uses_lethe_sgemm()) return;  // OpenBLAS has no offset tables: not a path of sgemm_rows
    for (const RunsCase& t : cases) {
      CAPTURE(t.m);
      CAPTURE(t.length);
      CAPTURE(t.stride);
      CAPTURE(t.k);
      const int64_t n = t.runs * t.stride, ldc = n + cpu::kSgemmMaxCols - 1;
      std::vector<int64_t> a_rows, b_rows;  // B's rows leave room for the last block's columns past n
      for (int64_t i = 0; i < t.m; ++i) a_rows.push_back(i * 977 % (pool_size - t.k));
      for (int64_t s = 0; s < t.k; ++s) b_rows.push_back(s * 131 % (pool_size - ldc));
      const std::vector<float> c0 = random_floats(static_cast<size_t>(t.m * ldc), 9);
      auto product = [&](cpu::Runs runs) {
        std::vector<float> c = c0;
        cpu::sgemm_rows(blas::sgemm_kernel(), t.m, n, t.k, -0.5f, pool.data(), a_rows.data(), 0, pool.data(),
                        b_rows.data(), 0, t.beta, c.data(), ldc, runs);
        return c;
      };
      const std::vector<float> whole = product({}), in_runs = product({t.length, t.stride});
      int64_t differ = 0, off = 0;
      for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (j % t.stride >= t.length) continue;
          const size_t at = static_cast<size_t>(i * ldc + j);
          differ += std::memcmp(&whole[at], &in_runs[at], sizeof(float)) != 0;
          const Dot d = pooled_dot(pool, a_rows[static_cast<size_t>(i)], b_rows, j, [](int64_t) { return true; });
          off += !near_float64(in_runs[at], -0.5, d, t.beta * c0[at]);
        }
      CHECK(differ == 0);
      CHECK(off == 0);
    }
    // Runs that do not tile n, and C's rows too close for the last block, are refused.
    std::vector<float> c(static_cast<size_t>(4 * 64));
    const std::vector<int64_t> b_rows(3, 0);
    CHECK_THROWS_WITH_AS(cpu::sgemm_rows(blas::sgemm_kernel(), 2, 20, 3, 1.0f, pool.data(), nullptr, 3, pool.data(),
                                         b_rows.data(), 0, 0.0f, c.data(), 64, {5, 6}),
                         doctest::Contains("do not tile 20 columns"), Error);
    CHECK_THROWS_WITH_AS(cpu::sgemm_rows(blas::sgemm_kernel(), 2, 20, 3, 1.0f, pool.data(), nullptr, 3, pool.data(),
                                         b_rows.data(), 0, 0.0f, c.data(), 40, {5, 10}),
                         doctest::Contains("C's rows are 40 apart"), Error);
  });
}

TEST_CASE("sgemm: k runs sum the runs' steps, with the bits of the whole sum where the others add zeros") {
  // A convolution's weight gradient sums over the output's pixels on the padded width: runs of
  // `length` k-steps every `stride`, the steps between them dy's zeros. cnn-s's conv2 as it runs
  // (k = 14 rows of 18), runs across k blocks of 256, one-step runs, runs without gaps.
  struct RunsCase {
    int64_t m, n, length, stride, k;
    float beta;
  };
  const std::vector<RunsCase> cases = {{400, 32, 14, 18, 252, 0}, {13, 37, 30, 70, 600, 0.5f}, {7, 16, 1, 3, 300, 1},
                                       {9, 20, 5, 5, 513, 0}};
  const int64_t pool_size = 40000, zeros_at = pool_size - 64;  // the last 64 floats are zeros
  std::vector<float> pool = random_floats(static_cast<size_t>(pool_size), 10);
  std::fill(pool.begin() + zeros_at, pool.end(), 0.0f);
  test::for_each_sgemm_path([&] {
    if (!blas::uses_lethe_sgemm()) return;
    for (const RunsCase& t : cases) {
      CAPTURE(t.m);
      CAPTURE(t.n);
      CAPTURE(t.length);
      CAPTURE(t.stride);
      CAPTURE(t.k);
      auto in_run = [&](int64_t s) { return s % t.stride < t.length; };
      std::vector<int64_t> a_rows, b_rows, b_zeroed;  // b_zeroed: the steps outside the runs read zeros
      for (int64_t i = 0; i < t.m; ++i) a_rows.push_back(i * 977 % (zeros_at - t.k));
      for (int64_t s = 0; s < t.k; ++s) {
        b_rows.push_back(s * 131 % (zeros_at - t.n));
        b_zeroed.push_back(in_run(s) ? b_rows.back() : zeros_at);
      }
      const std::vector<float> c0 = random_floats(static_cast<size_t>(t.m * t.n), 11);
      auto product = [&](const std::vector<int64_t>& rows, cpu::Runs runs) {
        std::vector<float> c = c0;
        cpu::sgemm_rows(blas::sgemm_kernel(), t.m, t.n, t.k, 1.5f, pool.data(), a_rows.data(), 0, pool.data(),
                        rows.data(), 0, t.beta, c.data(), t.n, {}, runs);
        return c;
      };
      const std::vector<float> in_runs = product(b_rows, {t.length, t.stride});
      CHECK(in_runs == product(b_zeroed, {}));
      int64_t off = 0;
      for (int64_t i = 0; i < t.m; ++i)
        for (int64_t j = 0; j < t.n; ++j) {
          const size_t at = static_cast<size_t>(i * t.n + j);
          off += !near_float64(in_runs[at], 1.5, pooled_dot(pool, a_rows[static_cast<size_t>(i)], b_rows, j, in_run),
                               t.beta * c0[at]);
        }
      CHECK(off == 0);
    }
    std::vector<float> c(4);
    const std::vector<int64_t> b_rows(3, 0);
    CHECK_THROWS_WITH_AS(cpu::sgemm_rows(blas::sgemm_kernel(), 2, 2, 3, 1.0f, pool.data(), nullptr, 3, pool.data(),
                                         b_rows.data(), 0, 0.0f, c.data(), 2, {}, {4, 3}),
                         doctest::Contains("runs of 4 k-steps every 3 overlap"), Error);
    CHECK_THROWS_WITH_AS(cpu::sgemm_rows(blas::sgemm_kernel(), 2, 2, 3, 1.0f, pool.data(), nullptr, 3, pool.data(),
                                         b_rows.data(), 0, 0.0f, c.data(), 2, {-1, 0}, {}),
                         doctest::Contains("runs of negative length (-1 columns, 0 k-steps)"), Error);
  });
}

TEST_CASE("sgemm: the best kernel this CPU has runs by default, and LETHE_SGEMM forces one") {
  const SgemmKernel best = blas::cpu_has(SgemmKernel::avx512) ? SgemmKernel::avx512
                           : blas::cpu_has(SgemmKernel::avx2) ? SgemmKernel::avx2
                                                              : SgemmKernel::openblas;
  MESSAGE("the float32 GEMM this CPU runs by default: ", std::string(blas::sgemm_kernel_name(best)));
  CHECK(blas::choose_sgemm_kernel(nullptr) == best);
  CHECK(blas::choose_sgemm_kernel("") == best);
  // This process's choice, made from its environment at the first GEMM (the other test cases
  // restore it after switching).
  CHECK(blas::sgemm_kernel() == blas::choose_sgemm_kernel(std::getenv("LETHE_SGEMM")));
  for (const SgemmKernel kernel : blas::kSgemmKernels) {
    const std::string name = blas::sgemm_kernel_name(kernel);
    CAPTURE(name);
    if (blas::cpu_has(kernel)) {
      CHECK(blas::choose_sgemm_kernel(name.c_str()) == kernel);
      continue;
    }
    const std::string lacks = "lethe's " + name + " sgemm needs " + blas::sgemm_kernel_needs(kernel) + ", which this CPU lacks";
    const std::string refused = "gemm: LETHE_SGEMM=" + name + ": " + lacks;
    CHECK_THROWS_WITH_AS(blas::choose_sgemm_kernel(name.c_str()), doctest::Contains(refused.c_str()), Error);
    CHECK_THROWS_WITH_AS(blas::use_sgemm_kernel(kernel), doctest::Contains(lacks.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(blas::choose_sgemm_kernel("AVX2"),
                       doctest::Contains("gemm: LETHE_SGEMM=AVX2 names no float32 GEMM kernel (openblas, avx2 or avx512)"),
                       Error);

  // use_lethe_sgemm, for callers that only switch between lethe's kernel and OpenBLAS.
  const SgemmKernel before = blas::sgemm_kernel();
  blas::use_lethe_sgemm(false);
  CHECK(!blas::uses_lethe_sgemm());
  CHECK(blas::sgemm_name() == "openblas-" + blas::core_name());
  if (best != SgemmKernel::openblas) {
    blas::use_lethe_sgemm(true);
    CHECK(blas::sgemm_kernel() == best);
    CHECK(blas::sgemm_name() == std::string("lethe-") + blas::sgemm_kernel_name(best));
  } else {
    CHECK_THROWS_WITH_AS(blas::use_lethe_sgemm(true), doctest::Contains("lethe's sgemm needs AVX2 and FMA or AVX512F"), Error);
  }
  blas::use_sgemm_kernel(before);
  // The entries run with OpenBLAS's Haswell kernels (tests/CMakeLists.txt) really run them.
  if (const char* core = std::getenv("OPENBLAS_CORETYPE")) CHECK(blas::core_name() == core);
}
