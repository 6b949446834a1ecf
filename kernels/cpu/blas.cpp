// Loads OpenBLAS with dlopen instead of linking it. OpenBLAS picks its kernels once, in its
// load-time constructor, from OPENBLAS_CORETYPE or else its own CPUID table, and Debian's 0.3.21
// does not know every current CPU (an unknown one can get slow generic kernels). Loading it
// ourselves lets us choose the core type first. The rule:
//  - OPENBLAS_CORETYPE set (non-empty) by the user or CI: respected as is, never changed;
//  - unset, on x86-64: "SkylakeX" when the CPU has AVX512F, AVX512BW, AVX512VL and AVX512DQ,
//    else "Haswell" when it has AVX2 and FMA, else left unset (OpenBLAS decides).
#include "kernels/cpu/blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/loaded_library.h"

#ifndef LETHE_OPENBLAS_LIBRARY
#error "LETHE_OPENBLAS_LIBRARY (the path of libopenblas.so) must be defined by the build"
#endif

namespace lethe::blas {

namespace {

// CBLAS's enums travel as ints; Debian's libopenblas0 uses 32-bit integers (not ILP64).
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

template <class T>
using GemmFn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, T alpha,
                        const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc);

struct Library {
  GemmFn<float> sgemm = nullptr;
  GemmFn<double> dgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  int (*get_num_threads)() = nullptr;
  char* (*get_corename)() = nullptr;
  // LAPACK's symmetric eigensolver (divide and conquer), Fortran interface: OpenBLAS bundles
  // LAPACK, so the process keeps one BLAS and one thread pool.
  void (*dsyevd)(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                 double* work, const int* lwork, int* iwork, const int* liwork, int* info) = nullptr;
  // Cholesky factorisation and solve (the convex study's Newton steps).
  void (*dpotrf)(const char* uplo, const int* n, double* a, const int* lda, int* info) = nullptr;
  void (*dpotrs)(const char* uplo, const int* n, const int* nrhs, const double* a, const int* lda, double* b,
                 const int* ldb, int* info) = nullptr;
};

void choose_core_type() {
  const char* set = std::getenv("OPENBLAS_CORETYPE");
  if (set != nullptr && *set != '\0') return;  // OpenBLAS ignores an empty value; so do we
#if defined(__x86_64__)
  __builtin_cpu_init();
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    core = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    core = "Haswell";
  }
  if (core != nullptr) setenv("OPENBLAS_CORETYPE", core, /*overwrite=*/1);
#endif
}

// Loaded on first use, once, by whichever thread gets here first. A failed load throws and
// leaves the flag unset, so the next call tries (and reports) again.
const Library& library() {
  static Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    choose_core_type();
    void* handle = dlopen(LETHE_OPENBLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      LETHE_FAIL("blas", "cannot load OpenBLAS from ", LETHE_OPENBLAS_LIBRARY, ": ",
                 why ? why : "unknown error", " (run tools/setup: it installs libopenblas0-openmp)");
    }
    const auto resolve = [&](const char* name, auto& fn) {
      resolve_symbol("blas", handle, LETHE_OPENBLAS_LIBRARY, name, fn);
    };
    Library l;
    resolve("cblas_sgemm", l.sgemm);
    resolve("cblas_dgemm", l.dgemm);
    resolve("openblas_set_num_threads", l.set_num_threads);
    resolve("openblas_get_num_threads", l.get_num_threads);
    resolve("openblas_get_corename", l.get_corename);
    resolve("dsyevd_", l.dsyevd);
    resolve("dpotrf_", l.dpotrf);
    resolve("dpotrs_", l.dpotrs);
    lib = l;
  });
  return lib;
}

int as_blas_int(int64_t v, const char* what) {
  LETHE_CHECK(v >= 0 && v <= INT_MAX, "gemm", what, " = ", v, " does not fit OpenBLAS's 32-bit integers");
  return static_cast<int>(v);
}

template <class T>
GemmFn<T> gemm_fn(const Library& lib) {
  if constexpr (std::is_same_v<T, float>) {
    return lib.sgemm;
  } else {
    return lib.dgemm;
  }
}

}  // namespace

namespace {

// What each float32 GEMM kernel is called and needs, and whether this CPU has it.
struct KernelFacts {
  SgemmKernel kernel;
  const char* name;
  const char* needs;
  bool present;
};
const KernelFacts& facts(SgemmKernel kernel) {
  static const KernelFacts table[] = {
      {SgemmKernel::avx512, "avx512", "AVX512F", cpu::has_avx512f()},
      {SgemmKernel::avx2, "avx2", "AVX2 and FMA", cpu::has_avx2_fma()},
      {SgemmKernel::openblas, "openblas", "", true}};
  return *std::find_if(std::begin(table), std::end(table), [&](const KernelFacts& f) { return f.kernel == kernel; });
}

}  // namespace

const char* sgemm_kernel_name(SgemmKernel kernel) { return facts(kernel).name; }
const char* sgemm_kernel_needs(SgemmKernel kernel) { return facts(kernel).needs; }
bool cpu_has(SgemmKernel kernel) { return facts(kernel).present; }

namespace {

std::string lacks(SgemmKernel kernel) {
  return std::string("lethe's ") + sgemm_kernel_name(kernel) + " sgemm needs " + sgemm_kernel_needs(kernel) +
         ", which this CPU lacks";
}

// The kernel in use, chosen from LETHE_SGEMM at the first call. A bad setting throws and leaves
// it unchosen, so every later float32 GEMM reports it again.
std::atomic<SgemmKernel>& active_kernel() {
  static std::atomic<SgemmKernel> kernel{choose_sgemm_kernel(std::getenv("LETHE_SGEMM"))};
  return kernel;
}

}  // namespace

SgemmKernel choose_sgemm_kernel(const char* setting) {
  if (setting == nullptr || *setting == '\0')
    return *std::find_if(std::begin(kSgemmKernels), std::end(kSgemmKernels), cpu_has);  // openblas at worst
  for (const SgemmKernel kernel : kSgemmKernels) {
    if (std::string(setting) != sgemm_kernel_name(kernel)) continue;
    LETHE_CHECK(cpu_has(kernel), "gemm", "LETHE_SGEMM=", setting, ": ", lacks(kernel));
    return kernel;
  }
  LETHE_FAIL("gemm", "LETHE_SGEMM=", setting, " names no float32 GEMM kernel (openblas, avx2 or avx512)");
}

SgemmKernel sgemm_kernel() { return active_kernel().load(std::memory_order_relaxed); }

void use_sgemm_kernel(SgemmKernel kernel) {
  LETHE_CHECK(cpu_has(kernel), "gemm", lacks(kernel));
  active_kernel().store(kernel);
}

bool uses_lethe_sgemm() { return sgemm_kernel() != SgemmKernel::openblas; }

void use_lethe_sgemm(bool on) {
  const SgemmKernel best = choose_sgemm_kernel(nullptr);
  LETHE_CHECK(!on || best != SgemmKernel::openblas, "gemm", "lethe's sgemm needs AVX2 and FMA or AVX512F, which this CPU lacks");
  use_sgemm_kernel(on ? best : SgemmKernel::openblas);
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    if (const SgemmKernel kernel = sgemm_kernel(); kernel != SgemmKernel::openblas)
      return cpu::sgemm(kernel, trans_a, trans_b, m, n, k, static_cast<float>(alpha), a, lda, b, ldb,
                        static_cast<float>(beta), c, ldc);
  }
  gemm_fn<T>(library())(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans,
                        as_blas_int(m, "m"), as_blas_int(n, "n"), as_blas_int(k, "k"),
                        static_cast<T>(alpha), a, as_blas_int(lda, "lda"), b, as_blas_int(ldb, "ldb"),
                        static_cast<T>(beta), c, as_blas_int(ldc, "ldc"));
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, double, const float*, int64_t,
                          const float*, int64_t, double, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

std::vector<double> symmetric_eigenvalues(int64_t n, std::vector<double> a, std::vector<double>* vectors) {
  LETHE_CHECK(n > 0 && static_cast<int64_t>(a.size()) == n * n, "eigenvalues", "expected a ", n, "x", n,
              " matrix, got ", a.size(), " values");
  const int order = as_blas_int(n, "n");
  const auto dsyevd = library().dsyevd;
  std::vector<double> w(static_cast<size_t>(n));
  // A workspace query first (lwork = liwork = -1), then the solve; 'N': eigenvalues only, 'V': and
  // the eigenvectors, over `a` column by column.
  const char jobz = vectors != nullptr ? 'V' : 'N', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
  double work_size = 0;
  dsyevd(&jobz, &uplo, &order, a.data(), &order, w.data(), &work_size, &lwork, &iwork_size, &liwork, &info);
  LETHE_CHECK(info == 0, "eigenvalues", "LAPACK dsyevd's workspace query failed (info ", info, ")");
  lwork = static_cast<int>(work_size);
  liwork = std::max(iwork_size, 1);
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd(&jobz, &uplo, &order, a.data(), &order, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  LETHE_CHECK(info >= 0, "eigenvalues", "LAPACK dsyevd: argument ", -info, " is invalid");
  LETHE_CHECK(info == 0, "eigenvalues", "LAPACK dsyevd did not converge (", info,
              " off-diagonal elements left); is the ", n, "x", n, " matrix finite?");
  if (vectors != nullptr) {  // column-major to row-major: eigenvector j becomes column j
    vectors->resize(a.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) (*vectors)[static_cast<size_t>(i * n + j)] = a[static_cast<size_t>(j * n + i)];
  }
  return w;
}

void cholesky(int64_t n, double* a) {
  const int order = as_blas_int(n, "n");
  const char uplo = 'U';  // column-major upper = row-major lower: the factor L of A = L·Lᵀ, row-major
  int info = 0;
  library().dpotrf(&uplo, &order, a, &order, &info);
  LETHE_CHECK(info >= 0, "cholesky", "LAPACK dpotrf: argument ", -info, " is invalid");
  LETHE_CHECK(info == 0, "cholesky", "the ", n, "x", n, " matrix is not positive definite (LAPACK dpotrf: leading minor ",
              info, ")");
}

void cholesky_solve(int64_t n, int64_t columns, const double* factor, double* b) {
  const int order = as_blas_int(n, "n"), nrhs = as_blas_int(columns, "columns");
  const char uplo = 'U';
  int info = 0;
  library().dpotrs(&uplo, &order, &nrhs, factor, &order, b, &order, &info);
  LETHE_CHECK(info == 0, "cholesky_solve", "LAPACK dpotrs: argument ", -info, " is invalid");
}

std::string core_name() {
  const char* name = library().get_corename();
  return name ? name : "";
}

std::string sgemm_name() {
  const SgemmKernel kernel = sgemm_kernel();
  return kernel == SgemmKernel::openblas ? "openblas-" + core_name() : std::string("lethe-") + sgemm_kernel_name(kernel);
}

void set_threads(int threads) { library().set_num_threads(threads); }

int threads() { return library().get_num_threads(); }

}  // namespace lethe::blas
