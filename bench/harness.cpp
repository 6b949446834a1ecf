#include "bench/harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "engine/error.h"

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

Timing summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const double median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  return {median, ms.front(), static_cast<int>(n)};
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
  return summarize(std::move(ms));
}
#endif

Timing run_cpu(int warmup, int repeats, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    const auto stop = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  return summarize(std::move(ms));
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

}  // namespace

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

int pass_repeats(int given, Device device, int64_t n) {
  if (given > 0) return given;
  if (device.is_cuda()) return n >= 100'000'000 ? 20 : 100;
  return n >= 100'000'000 ? 5 : n >= 10'000'000 ? 10 : 50;
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

int Report::finish(const std::string& json_path, const nlohmann::json& context) const {
  print(stdout);
  if (!json_path.empty()) write_json(json_path, context);
  if (failures_ > 0) std::fprintf(stderr, "%s: %d failure(s) (see above)\n", program_.c_str(), failures_);
  return failures_ > 0 ? 1 : 0;
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
