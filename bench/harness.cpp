#include "bench/harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "engine/error.h"
#include "engine/storage.h"
#include "kernels/cpu/parallel.h"

#if defined(LETHE_WITH_CUDA)
#include <cuda_runtime.h>

#include "kernels/cuda/common.cuh"
#endif

namespace lethe::bench {

void add_run_flags(CLI::App& app, RunFlags& flags) {
  app.add_option_function<std::string>(
         "--device",
         [&flags](const std::string& v) {
           flags.devices = v == "cpu"    ? std::vector<Device>{Device::cpu()}
                           : v == "cuda" ? std::vector<Device>{Device::cuda()}
                                         : std::vector<Device>{Device::cpu(), Device::cuda()};
         },
         "cpu (default), cuda or all")
      ->check(CLI::IsMember({"cpu", "cuda", "all"}));
  app.add_option("--threads", flags.threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--repeats", flags.repeats, "timed repeats of each case (default: each case's own)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--json", flags.json, "also write the rows as JSON lines to this file");
}

void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
}

namespace {

// 256 MiB: several times the L2 of any current GPU (60 MB on an H200).
constexpr int64_t kL2FlushBytes = int64_t{256} << 20;

Timing summarize(const std::vector<double>& ms) {
  return {median(ms), *std::min_element(ms.begin(), ms.end()), static_cast<int>(ms.size())};
}

#if defined(LETHE_WITH_CUDA)
// An event pair, destroyed even when a timed call throws.
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  Events() {
    LETHE_CUDA_CHECK(cudaEventCreate(&start));
    LETHE_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~Events() {
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
};

Timing run_cuda(int device, const Tensor& l2_flush, int warmup, int repeats,
                const std::function<void()>& fn) {
  cuda::DeviceGuard guard(device);
  const cudaStream_t stream = cuda::stream(device);
  for (int i = 0; i < warmup; ++i) fn();
  LETHE_CUDA_CHECK(cudaStreamSynchronize(stream));
  Events events;
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    LETHE_CUDA_CHECK(cudaMemsetAsync(l2_flush.data_ptr(), i & 0xff, l2_flush.nbytes(), stream));
    LETHE_CUDA_CHECK(cudaEventRecord(events.start, stream));
    fn();
    LETHE_CUDA_CHECK(cudaEventRecord(events.stop, stream));
    LETHE_CUDA_CHECK(cudaEventSynchronize(events.stop));
    float elapsed = 0;
    LETHE_CUDA_CHECK(cudaEventElapsedTime(&elapsed, events.start, events.stop));
    ms.push_back(elapsed);
  }
  return summarize(ms);
}
#endif

Timing run_cpu(int warmup, int repeats, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    ms.push_back(ms_since(start));
  }
  return summarize(ms);
}

std::string format_number(double v, int precision) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// Three significant digits at least, without an exponent: 0.0123, 1.23, 123.4, 12345.
std::string format_value(double v) {
  const double a = std::fabs(v);
  return format_number(v, a >= 100 ? 1 : a >= 1 ? 3 : a >= 0.01 ? 4 : 6);
}

// Repeats of a memory-bound pass over n elements: `given` when set (--repeats), else enough for a
// stable median without spending minutes at 1e8.
int pass_repeats(int given, Device device, int64_t n) {
  if (given > 0) return given;
  if (device.is_cuda()) return n >= 100'000'000 ? 20 : 100;
  return n >= 100'000'000 ? 5 : n >= 10'000'000 ? 10 : 50;
}

// "1e7 f32"; other counts than powers of ten as they are.
std::string pass_shape(int64_t n) {
  int exponent = 0;
  int64_t m = n;
  for (; m >= 10 && m % 10 == 0; m /= 10) ++exponent;
  return (m == 1 ? "1e" + std::to_string(exponent) : std::to_string(n)) + " f32";
}

}  // namespace

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0 : n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string device_name(Device device) {
#if defined(LETHE_WITH_CUDA)
  if (device.is_cuda()) {
    cudaDeviceProp prop{};
    LETHE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device.index));
    return prop.name;
  }
#endif
  if (device.is_cuda()) return device.str();
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "cpu";
}

Timer::Timer(Device device) : device_(device) {
  if (device_.is_cuda()) l2_flush_ = Tensor::empty({kL2FlushBytes}, DType::u8, device_);
}

Timing Timer::run(int warmup, int repeats, const std::function<void()>& fn) {
  LETHE_CHECK(repeats >= 1 && warmup >= 0, "bench", "needs repeats >= 1 and warmup >= 0, got ",
              repeats, " and ", warmup);
#if defined(LETHE_WITH_CUDA)
  if (device_.is_cuda()) return run_cuda(device_.index, l2_flush_, warmup, repeats, fn);
#endif
  return run_cpu(warmup, repeats, fn);
}

void Report::begin_case() { case_start_ = static_cast<int>(entries_.size()); }

void Report::add(Row row) {
  const int index = static_cast<int>(entries_.size());
  entries_.push_back({std::move(row), index == case_start_ ? -1 : case_start_});
}

double Report::ratio(const Entry& e) const {
  return e.reference < 0 ? NAN : e.row.rate() / entries_[e.reference].row.rate();
}

void Report::measure(Timer& timer, Row row, int warmup, int repeats, const std::function<void()>& fn) {
  try {
    row.timing = timer.run(warmup, repeats, fn);
    add(std::move(row));
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s (%s on %s) failed: %s\n", program_.c_str(), row.name.c_str(), row.impl.c_str(),
                 row.device.c_str(), e.what());
    ++failures_;
  }
}

bool Report::start_device(Device device, nlohmann::json& context) {
  if (!device.is_cuda()) return true;
  if (!cuda_available()) {
    std::fprintf(stderr, "%s: CUDA is not available (a build without the CUDA backend, or no visible device)\n",
                 program_.c_str());
    ++failures_;
    return false;
  }
  context["gpu"] = device_name(device);
  std::printf("GPU: %s\n", context["gpu"].get<std::string>().c_str());
  return true;
}

int Report::measure_devices(const RunFlags& flags, nlohmann::json context, const char* note,
                            const std::function<void(Device)>& measure_device) {
  for (const Device device : flags.devices) {
    if (!start_device(device, context)) continue;
    measure_device(device);
  }
  std::fputs(note, stdout);
  print(stdout);
  if (!flags.json.empty()) write_json(flags.json, context);
  if (failures_ > 0) std::fprintf(stderr, "%s: %d failure(s) (see above)\n", program_.c_str(), failures_);
  return failures_ > 0 ? 1 : 0;
}

void DeviceRunner::measure_copy(const std::string& name, const std::string& shape, const Tensor& src,
                                const Tensor& dst, int warmup, int repeats) {
  const size_t bytes = src.nbytes();
  const char* impl = device_.is_cuda() ? "cudaMemcpyAsync" : "memcpy";
  measure({name, impl, device_.str(), shape, {}, 2.0 * bytes, "GB/s"}, warmup, repeats, [&] {
    if (device_.is_cuda()) {
      copy_bytes(dst.data_ptr(), device_, src.data_ptr(), device_, bytes);
      return;
    }
    char* to = static_cast<char*>(dst.data_ptr());
    const char* from = static_cast<const char*>(src.data_ptr());
    cpu::parallel_for(static_cast<int64_t>(bytes), int64_t{1} << 20, [&](int64_t begin, int64_t end) {
      std::memcpy(to + begin, from + begin, static_cast<size_t>(end - begin));
    });
  });
}

PassRunner::PassRunner(Device device, int64_t n, const RunFlags& flags, Report& report)
    : DeviceRunner(device, flags, report), n_(n), shape_(pass_shape(n)),
      repeats_(pass_repeats(flags.repeats, device, n)) {}

void PassRunner::begin_pass_case(const std::string& name, const Tensor& src, const Tensor& dst) {
  report_.begin_case();
  case_name_ = name;
  measure_copy(name, shape_, src, dst, default_warmup(repeats_), repeats_);
}

void PassRunner::measure_pass(const std::string& impl, double bytes, const std::function<void()>& fn) {
  measure({case_name_, impl, device_.str(), shape_, {}, bytes, "GB/s"}, repeats_, fn);
}

int run_passes(const char* program, const RunFlags& flags, const char* note,
               const std::function<void(Device, Report&)>& measure_device) {
  set_num_threads(flags.threads);
  nlohmann::json context = {{"threads", flags.threads}, {"cpu", device_name(Device::cpu())}};
  std::printf("%s: %d threads; %s\n", program, flags.threads, device_name(Device::cpu()).c_str());
  Report report(program);
  return report.measure_devices(flags, std::move(context), note,
                                [&](Device device) { measure_device(device, report); });
}

int run_main(const char* program, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

void Report::print(std::FILE* out) const {
  const std::vector<std::string> header = {"name", "impl", "device", "shape", "median ms", "min ms", "rate", "unit", "ratio"};
  std::vector<std::vector<std::string>> cells;
  for (const Entry& e : entries_) {
    const Row& r = e.row;
    cells.push_back({r.name, r.impl, r.device, r.shape, format_value(r.timing.median_ms),
                     format_value(r.timing.min_ms), format_number(r.rate(), 1), r.unit,
                     format_number(ratio(e), 3)});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : cells) width[c] = std::max(width[c], row[c].size());
  }
  // Text columns left-aligned, numbers right-aligned.
  auto print_row = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < row.size(); ++c) {
      const bool text = c < 4 || c == 7;
      std::fprintf(out, text ? "%-*s" : "%*s", static_cast<int>(width[c]), row[c].c_str());
      std::fputs(c + 1 < row.size() ? "  " : "\n", out);
    }
  };
  print_row(header);
  for (const auto& row : cells) print_row(row);
}

void Report::write_json(const std::string& path, const nlohmann::json& context) const {
  std::ofstream file(path);
  LETHE_CHECK(file.good(), "bench", "cannot open ", path, " for writing");
  for (const Entry& e : entries_) {
    const Row& r = e.row;
    nlohmann::json j = context;
    j["name"] = r.name;
    j["impl"] = r.impl;
    j["device"] = r.device;
    j["shape"] = r.shape;
    j["median_ms"] = r.timing.median_ms;
    j["min_ms"] = r.timing.min_ms;
    j["repeats"] = r.timing.repeats;
    j["work"] = r.work;
    j["unit"] = r.unit;
    j["rate"] = r.rate();
    if (e.reference >= 0) {
      j["ratio"] = ratio(e);
      j["ratio_to"] = entries_[e.reference].row.impl;
    }
    file << j.dump() << '\n';
  }
  LETHE_CHECK(file.good(), "bench", "writing ", path, " failed");
}

}  // namespace lethe::bench
