#pragma once
// A small benchmark harness: warm-up runs, then repeats timed one by one, reported as median and
// minimum; rows collected into a table (stdout) and JSON lines (--json).
#include <algorithm>
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

// "AMD EPYC" (the CPU's model name), "NVIDIA H200".
std::string device_name(Device device);

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
// Repeats of a memory-bound pass over n elements: `given` when set (--repeats), else enough for a
// stable median without spending minutes at 1e8 (a tenth of them, at least two, are warm-up).
int pass_repeats(int given, Device device, int64_t n);

class Report {
 public:
  explicit Report(std::string program) : program_(std::move(program)) {}

  void begin_case();
  void add(Row row);
  // Times `fn` with `timer` into `row` and adds it.
  void measure(Timer& timer, Row row, int warmup, int repeats, const std::function<void()>& fn);
  // The same with a tenth of `repeats` (at least two) as warm-up.
  void measure(Timer& timer, Row row, int repeats, const std::function<void()>& fn) {
    measure(timer, std::move(row), std::max(2, repeats / 10), repeats, fn);
  }
  // Whether `device` can be measured (CUDA: a device is visible); records a GPU's name in context.
  bool start_device(Device device, nlohmann::json& context);

  void print(std::FILE* out) const;
  // One JSON object per row and line; `context` (e.g. threads, BLAS core, GPU) goes into each.
  void write_json(const std::string& path, const nlohmann::json& context) const;
  // Prints the table, writes the JSON lines when `json_path` is set, says how many things failed;
  // returns the exit status (1 after any failure).
  int finish(const std::string& json_path, const nlohmann::json& context) const;

 private:
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

// A benchmark's main(): returns run(argc, argv); an exception becomes a message and status 1.
int run_main(const char* program, int (*run)(int, char**), int argc, char** argv);

}  // namespace lethe::bench
