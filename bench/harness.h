#pragma once
// A small benchmark harness: warm-up runs, then repeats timed one by one, reported as median and
// minimum; rows collected into a table (stdout) and JSON lines (--json). Also what every benchmark
// shares: its flags, the median, main()'s error handling, and the base of the runners on one device.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/device.h"
#include "engine/tensor.h"

namespace lethe::bench {

// The flags every microbenchmark takes: --device cpu|cuda|all, --threads, --repeats, --json.
struct RunFlags {
  std::vector<Device> devices = {Device::cpu()};
  int threads = 2;  // W1's thread count
  int repeats = 0;  // 0: each case's default
  std::string json;
};
void add_run_flags(CLI::App& app, RunFlags& flags);
// Parses the command line into `app`'s options; on --help or an error, prints and exits.
void parse_or_exit(CLI::App& app, int argc, char** argv);
// A benchmark's command line: the run flags, then its own (`add_own(app, flags)` registers them).
template <class Flags, class AddOwn>
Flags parse_flags(const char* description, int argc, char** argv, const AddOwn& add_own) {
  Flags flags;
  CLI::App app{description};
  add_run_flags(app, flags);
  add_own(app, flags);
  parse_or_exit(app, argc, argv);
  return flags;
}

// "AMD EPYC" (the CPU's model name), "NVIDIA H200".
std::string device_name(Device device);

// The middle value, or the mean of the two middle values for an even count; 0 for none.
double median(std::vector<double> values);
// Milliseconds from t0 to now on the steady clock.
double ms_since(std::chrono::steady_clock::time_point t0);

struct Timing {
  double median_ms = 0, min_ms = 0;
  int repeats = 0;
};

// Times calls of a function on one device. CPU: std::chrono::steady_clock around each call.
// CUDA: a cudaEvent pair on the device's compute stream around each call, and before each one
// (outside the timed region) a write of a buffer larger than the L2, so no repeat finds the
// previous one's data in the cache.
class Timer {
 public:
  explicit Timer(Device device);
  Timing run(int warmup, int repeats, const std::function<void()>& fn);

 private:
  Device device_;
  Tensor l2_flush_;  // CUDA only
};

// One measured implementation of one benchmark case. `work` is the FLOPs or bytes one call does;
// the rate is work over the median time.
struct Row {
  std::string name, impl, device, shape;
  Timing timing;
  double work = 0;
  std::string unit;  // "GFLOP/s" or "GB/s"
  double rate() const { return work / (timing.median_ms * 1e6); }
};

// Rows of one run. The first row of each case is its reference: the case's other rows get the
// ratio of their rate to the reference's (measured side by side, in the same run).
// Also the run's bookkeeping: a measurement or a device that fails is reported (under `program`'s
// name) and counted, and the run goes on with the others.
class Report {
 public:
  explicit Report(std::string program) : program_(std::move(program)) {}

  void begin_case();
  // Times `fn` with `timer` into `row` and adds it.
  void measure(Timer& timer, Row row, int warmup, int repeats, const std::function<void()>& fn);
  // The run: `measure_device` on each device of --device that can be measured, then `note` (how to
  // read the table), the table, and the JSON lines (--json) with `context` (e.g. threads, BLAS
  // core; a GPU's name is added) in each; returns the exit status (1 after any failure).
  int measure_devices(const RunFlags& flags, nlohmann::json context, const char* note,
                      const std::function<void(Device)>& measure_device);

 private:
  void add(Row row);
  // Whether `device` can be measured (CUDA: a device is visible); records a GPU's name in context.
  bool start_device(Device device, nlohmann::json& context);
  void print(std::FILE* out) const;
  // One JSON object per row and line, each with `context`.
  void write_json(const std::string& path, const nlohmann::json& context) const;

  struct Entry {
    Row row;
    int reference = -1;  // index of the case's reference row, -1 for a reference itself
  };
  double ratio(const Entry& e) const;
  std::string program_;
  std::vector<Entry> entries_;
  int case_start_ = 0;
  int failures_ = 0;
};

// What a microbenchmark's runner on one device builds on: its rows are timed on the device and go
// to `report`, as many times as --repeats says or else as each case's default.
class DeviceRunner {
 protected:
  DeviceRunner(Device device, const RunFlags& flags, Report& report)
      : device_(device), report_(report), given_repeats_(flags.repeats), timer_(device) {}

  int repeats_or(int fallback) const { return given_repeats_ > 0 ? given_repeats_ : fallback; }
  // Times fn into `row` and adds it to the report. An error (cuDNN may offer no deterministic
  // algorithm for a shape, say) is reported and the run goes on; the program fails at the end.
  void measure(Row row, int warmup, int repeats, const std::function<void()>& fn) {
    report_.measure(timer_, std::move(row), warmup, repeats, fn);
  }
  // A tenth of the repeats, at least two: the first call loads libraries and plans.
  static int default_warmup(int repeats) { return std::max(2, repeats / 10); }
  void measure(Row row, int repeats, const std::function<void()>& fn) {
    measure(std::move(row), default_warmup(repeats), repeats, fn);
  }
  // The ceiling of a memory-bound case, as the row (name, copy, shape): src's bytes copied into
  // dst, 2 bytes moved per byte, in GB/s. On the CPU std::memcpy over the same threads as the
  // kernels ("memcpy"); on CUDA, cudaMemcpyAsync device to device.
  void measure_copy(const std::string& name, const std::string& shape, const Tensor& src, const Tensor& dst,
                    int warmup, int repeats);

  const Device device_;
  Report& report_;

 private:
  int given_repeats_;  // --repeats, 0 when not given
  Timer timer_;
};

// The runner of one memory-bound pass over n elements in several implementations (an optimizer or
// IEU step): each case opens with the copy as its reference row; every row is shaped "1e7 f32",
// rated in GB/s and timed as often as a pass of n elements needs.
class PassRunner : public DeviceRunner {
 protected:
  PassRunner(Device device, int64_t n, const RunFlags& flags, Report& report);

  // Begins the case `name` with its reference row: a copy of src into dst.
  void begin_pass_case(const std::string& name, const Tensor& src, const Tensor& dst);
  // A row of the current case: `impl` moving `bytes` (what the pass must move, for the rate).
  void measure_pass(const std::string& impl, double bytes, const std::function<void()>& fn);

  const int64_t n_;

 private:
  std::string shape_, case_name_;
  int repeats_;
};

// The run of a benchmark of PassRunners: sets the CPU threads, prints "PROGRAM: N threads; CPU",
// and measures each device (Report::measure_devices) with the threads and the CPU as context.
int run_passes(const char* program, const RunFlags& flags, const char* note,
               const std::function<void(Device, Report&)>& measure_device);

// A benchmark's main(): returns run(argc, argv); an exception becomes a message and status 1.
int run_main(const char* program, int (*run)(int, char**), int argc, char** argv);

}  // namespace lethe::bench
