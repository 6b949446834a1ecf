#include "harness.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <sstream>

#include "kernels/cpu/blas.h"
#include "engine/device.h"

namespace lethe::test {

namespace {

// What this process ran, kept by the listener below: the test case under way (named in the skip
// log) and the assertions made, so that main() can tell a run in which only skips happened from
// one whose other checks ran.
struct Tally {
  std::string test_case;
  int assertions = 0;
  int skipped = 0;
  int selected = 0;
};
Tally& tally() {
  static Tally t;
  return t;
}

class TallyListener : public doctest::IReporter {
 public:
  explicit TallyListener(const doctest::ContextOptions&) {}
  void test_case_start(const doctest::TestCaseData& test_case) override { tally().test_case = test_case.m_name; }
  void test_run_end(const doctest::TestRunStats& stats) override {
    tally().assertions = stats.numAsserts;
    tally().selected = static_cast<int>(stats.numTestCasesPassingFilters);
  }
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("lethe-tally", 1, TallyListener);

// One write with O_APPEND, so that tests running side by side never interleave their lines.
void append_to_skip_log(const std::string& why) {
  const char* log = std::getenv("LETHE_SKIP_LOG");
  if (log == nullptr || *log == '\0') return;
  std::string line = tally().test_case;
  // The same test case runs again with other GEMM kernels (tests/CMakeLists.txt): say which.
  for (const char* variable : {"LETHE_SGEMM", "OPENBLAS_CORETYPE"})
    if (const char* value = std::getenv(variable)) line += std::string(" [") + variable + "=" + value + "]";
  line += "\t" + why + "\n";
  const int fd = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  const bool written = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (!written) FAIL_CHECK("cannot append to the skip log ", log, ": ", std::strerror(err));
}

}  // namespace

Tensor random_tensor(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype, Device device) {
  NoGradGuard no_grad;
  Tensor u = Tensor::rand(shape, seed, /*stream=*/0xC0FFEE, DType::f64);
  return add(mul(u, hi - lo), lo).to(dtype).to(device);
}

Tensor distinct_tensor(const Shape& shape, uint64_t seed, double gap, DType dtype) {
  NoGradGuard no_grad;
  const std::vector<double> keys = Tensor::rand(shape, seed, 0xD157, DType::f64).to_vector<double>();
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<double> values(keys.size());
  const double half = static_cast<double>(keys.size()) / 2;
  for (size_t rank = 0; rank < order.size(); ++rank) values[order[rank]] = (static_cast<double>(rank) - half) * gap;
  return Tensor::from_vector(values, shape).to(dtype);
}

namespace {

// Compares two host vectors and reports the worst element.
void compare(const std::vector<double>& a, const std::vector<double>& e, double rtol, double atol,
             const char* what) {
  REQUIRE_MESSAGE(a.size() == e.size(), what, ": ", a.size(), " values, expected ", e.size());
  size_t worst = 0;
  double worst_excess = -1;
  bool ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - e[i]), tol = atol + rtol * std::abs(e[i]);
    const bool good = err <= tol || (std::isnan(a[i]) && std::isnan(e[i])) || a[i] == e[i];
    if (!good) ok = false;
    const double excess = good ? -1 : (std::isnan(err) ? INFINITY : err - tol);
    if (!good && excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  std::ostringstream msg;
  if (!ok) msg << what << ": element " << worst << " is " << a[worst] << ", expected " << e[worst]
               << " (rtol " << rtol << ", atol " << atol << ")";
  CHECK_MESSAGE(ok, msg.str());
}

std::vector<double> host_values(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(Device::cpu()).to(DType::f64).to_vector<double>();
}

double weighted_sum(const Tensor& out, const Tensor& w) { return sum(mul(out.to(DType::f64), w)).item(); }

}  // namespace

void expect_close(const Tensor& actual, const std::vector<double>& expected, double rtol, double atol) {
  compare(host_values(actual), expected, rtol, atol, "value");
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.detach().to(Device::cpu()).contiguous(), cb = b.detach().to(Device::cpu()).contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  CHECK_MESSAGE(actual.shape() == expected.shape(), "shape ", actual.shape().str(), ", expected ",
                expected.shape().str());
  compare(host_values(actual), host_values(expected), rtol, atol, "value");
}

void gradcheck(const Fn& fn, std::vector<Tensor> inputs, double eps, double rtol, double atol) {
  std::vector<Tensor> wrt;
  for (const Tensor& t : inputs) {
    if (!t.defined() || !t.requires_grad()) continue;
    REQUIRE_MESSAGE((t.dtype() == DType::f64 && t.device().is_cpu() && t.is_contiguous()),
                    "gradcheck needs contiguous float64 CPU inputs, got ", t.str());
    wrt.push_back(t);
  }
  REQUIRE_MESSAGE(!wrt.empty(), "gradcheck: no input requires grad");
  const Tensor out = fn(inputs);
  const Tensor w = random_tensor(out.shape(), 4242, -1, 1);
  const std::vector<Tensor> analytic = autograd::grad(sum(mul(out, w)), wrt);

  NoGradGuard no_grad;
  for (size_t k = 0; k < wrt.size(); ++k) {
    double* p = wrt[k].data<double>();
    std::vector<double> numeric(wrt[k].numel());
    for (int64_t j = 0; j < wrt[k].numel(); ++j) {
      const double saved = p[j];
      p[j] = saved + eps;
      const double up = weighted_sum(fn(inputs), w);
      p[j] = saved - eps;
      const double down = weighted_sum(fn(inputs), w);
      p[j] = saved;
      numeric[j] = (up - down) / (2 * eps);
    }
    INFO("gradient of input ", k, " ", wrt[k].str());
    compare(host_values(analytic[k]), numeric, rtol, atol, "gradient");
  }
}

void record_skip(const std::string& why) {
  ++tally().skipped;
  MESSAGE("skipped: ", why);
  append_to_skip_log(why);
}

int skipped_checks() { return tally().skipped; }

bool only_skips_ran() { return tally().skipped > 0 && tally().assertions == 0; }

int selected_test_cases() { return tally().selected; }

void for_each_sgemm_path(const std::function<void()>& check) {
  struct Restore {
    blas::SgemmKernel kernel = blas::sgemm_kernel();
    ~Restore() { blas::use_sgemm_kernel(kernel); }
  } restore;
  for (const blas::SgemmKernel kernel : blas::kSgemmKernels) {
    if (!blas::cpu_has(kernel)) {
      record_skip(std::string("lethe's ") + blas::sgemm_kernel_name(kernel) + " sgemm needs " +
                  blas::sgemm_kernel_needs(kernel) + ", which this CPU lacks (the other float32 GEMM paths still run)");
      continue;
    }
    blas::use_sgemm_kernel(kernel);
    INFO("float32 GEMM: ", blas::sgemm_name());
    check();
  }
}

bool cuda_or_skip(const char* what) {
  if (cuda_available()) return true;
  record_skip(std::string("no CUDA device: ") + what);
  return false;
}

namespace {

// One side of a parity check: fn on float32 copies of `inputs` on `device`, and the gradients of
// sum(out * w) with respect to the inputs that require them (w uniform in [-1, 1], the same
// numbers on every device).
struct ParitySide {
  Tensor out;
  std::vector<Tensor> grads;
};

ParitySide parity_side(const Fn& fn, const std::vector<Tensor>& inputs, const std::vector<bool>& keep_dtype,
                       Device device) {
  std::vector<Tensor> in, wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) {
      in.push_back(t);
      continue;
    }
    const bool keep = i < keep_dtype.size() && keep_dtype[i];
    Tensor c = t.detach().to(is_floating(t.dtype()) && !keep ? DType::f32 : t.dtype()).to(device).clone();
    if (t.requires_grad()) {
      c.set_requires_grad();
      wrt.push_back(c);
    }
    in.push_back(c);
  }
  ParitySide side{fn(in), {}};
  if (wrt.empty() || !side.out.requires_grad()) return side;
  const Tensor w = random_tensor(side.out.shape(), 777, -1, 1, side.out.dtype()).to(device);
  side.grads = autograd::grad(sum(mul(side.out, w)), wrt);
  return side;
}

}  // namespace

void check_parity_cpu_side(const Fn& fn, const std::vector<Tensor>& inputs, const std::vector<bool>& keep_dtype) {
  parity_side(fn, inputs, keep_dtype, Device::cpu());
}

void check_parity(const Fn& fn, const std::vector<Tensor>& inputs, double rtol, double atol,
                  const std::vector<bool>& keep_dtype) {
  const ParitySide cpu = parity_side(fn, inputs, keep_dtype, Device::cpu());
  if (!cuda_or_skip("CPU/CUDA parity")) return;
  const ParitySide cuda = parity_side(fn, inputs, keep_dtype, Device::cuda(0));
  INFO("forward");
  expect_close(cuda.out, cpu.out, rtol, atol);
  REQUIRE(cuda.grads.size() == cpu.grads.size());
  for (size_t k = 0; k < cpu.grads.size(); ++k) {
    INFO("gradient of input ", k);
    expect_close(cuda.grads[k], cpu.grads[k], rtol, atol);
  }
}

std::vector<int64_t> padding_indices(const ParamArena& arena) {
  std::vector<bool> used(arena.size(), false);
  for (size_t i = 0; i < arena.params().size(); ++i)
    for (int64_t j = 0; j < arena.params()[i].numel(); ++j) used[arena.offset(i) + j] = true;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < arena.size(); ++i)
    if (!used[i]) out.push_back(i);
  return out;
}

std::shared_ptr<const data::Dataset> band_task(int64_t n, int64_t size, int64_t classes) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n * size * size));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % classes;
    for (int64_t p = 0; p < size * size; ++p)
      pixels[static_cast<size_t>(i * size * size + p)] =
          static_cast<uint8_t>((p / (2 * size) == i % classes ? 180 : 30) + (i * 13 + p * 7) % 40);
  }
  return std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(pixels, {n, 1, size, size}), Tensor::from_vector(labels, {n})});
}

}  // namespace lethe::test
