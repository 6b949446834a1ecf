#pragma once
// What the `lethe` subcommands share: the run options every command has, the datasets by name,
// and how results are written (human text, or one JSON object with --json).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "nn/data/loader.h"
#include "nn/models.h"

namespace lethe::cli {

struct RunOptions {
  std::string data;                      // folder of the dataset's files (default: its Debian path)
  std::string dataset = "fashion-mnist";  // fashion-mnist | mnist | cifar10
  std::string device = "cpu";
  int threads = 2;
  bool json = false;
};
void add_run_options(CLI::App& app, RunOptions& run);

// Sets the thread count and checks the device; returns it.
Device start(const RunOptions& run);

// A dataset by name with what a model and a loader need to know about it.
struct DataSource {
  std::string name;
  std::shared_ptr<const data::Dataset> train, test;
  data::Normalization normalization;
  std::vector<std::string> class_names;
  int64_t channels = 0, image_size = 0, classes = 0;
};
DataSource load_data(const RunOptions& run, bool need_train = true);
// The model spec of `name` for this data's geometry.
nn::ModelSpec model_spec(const std::string& name, double width, const DataSource& data);
// Evaluation order: every sample once, in order, on `device`.
data::DataLoader eval_loader(std::shared_ptr<const data::Dataset> set, const DataSource& source, Device device,
                             int64_t batch = 1000);

// Prints a command's final result: one JSON object on stdout with --json, `text` otherwise.
void print_result(const RunOptions& run, const nlohmann::json& result, const std::string& text);

// A CSV file opened for appending rows; `header` (one line, no newline) is written first when the
// file is new or empty.
std::ofstream append_to_csv(const std::string& path, const std::string& header);

}  // namespace lethe::cli
