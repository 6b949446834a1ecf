#pragma once
// What the `lethe` subcommands share: the run options every command has, the data set they name,
// checkpoints checked against it, and the outputs they write.
#include "unlearn/study/cli_fwd.h"
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/file.h"
#include "nn/checkpoint.h"
#include "nn/data/loader.h"
#include "nn/data/registry.h"
#include "nn/models.h"
#include "unlearn/generative_metrics.h"

namespace lethe::study {

using data::DataSource;

// The version of the output JSON's schema: "schema_version" of every command's result and of a
// study's results.json. README ("Output JSON") says what changed in each version.
inline constexpr int kOutputSchemaVersion = 2;

// The most --threads (and [study] threads) may ask for.
inline constexpr int64_t kMaxThreads = 1024;

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

// The data set of --dataset from --data (data::load_data: the test set stays null, unread, without
// `need_test`).
DataSource load_data(const RunOptions& run, bool need_train = true, bool need_test = true);
// The model spec of `name` for this data's geometry.
nn::ModelSpec model_spec(const std::string& name, double width, const DataSource& data);

// --model and --width of every command that reads checkpoints: the model a plain state dict (a
// PyTorch state dict saved as safetensors, no lethe metadata) holds. A lethe checkpoint names its
// own model; --model, when given, must then agree with it.
struct ModelFlags {
  std::string model;  // empty: not given
  double width = 1;
};
void add_model_flags(CLI::App& cmd, ModelFlags& flags);

// A generator's judge and metrics (unlearn/generative_metrics.h): --evaluator (`evaluator_help`
// says what it does in the command), --samples-per-class, --loss-images.
struct GeneratorFlags {
  std::string evaluator;  // empty: not given
  unlearn::GeneratorMetricOptions metrics;
};
void add_generator_flags(CLI::App& cmd, GeneratorFlags& flags, const std::string& evaluator_help);

// A checkpoint to run on `data`: loaded (finite, unless `nonfinite` allows otherwise; a plain
// state dict as the model of `plain`) and checked to fit its data set, image geometry and classes
// (nn::check_fits_data).
nn::Checkpoint load_checkpoint_for(const std::string& path, const DataSource& data, const ModelFlags& plain = {},
                                   nn::NonFinite nonfinite = nn::NonFinite::refuse);
// Refuses a generator checkpoint (cvae, ddpm-s) where `op` needs a classifier: unlearning,
// relearning and their metrics are the classifiers' so far (issue 17 adds the generators').
void require_classifier(const nn::CheckpointInfo& info, const std::string& path, const char* op);
// Evaluation order: every sample once, in order, on `device`.
data::DataLoader eval_loader(std::shared_ptr<const data::Dataset> set, const DataSource& source, Device device,
                             int64_t batch = 1000);

// Appends `rows` (whole lines, each ending in a newline) to the CSV file at `path`, with `header`
// (one line, no newline) first when the file is new or empty: one checked write (AppendFile), so a
// full disk is an error (lethe::Error naming `op` and the path) and leaves no half row.
void append_to_csv(const std::string& path, const std::string& header, const std::string& rows, const char* op = "csv");

// An output a command writes: its flag, its path (empty: not asked for), and whether it is
// appended to (a log, a CSV: AppendFile) or replaced whole (write_file_atomically).
struct OutputArg {
  std::string flag, path;
  bool appended = false;
};
// Call once the inputs are read and checked, before anything is written: each output can be
// written (check_output_path: its folder exists, it is no directory, device or FIFO), and is not
// the same file as an input or as another output. Empty paths are skipped.
void check_outputs(const char* op, const std::vector<OutputArg>& outputs, const std::vector<NamedPath>& inputs);

}  // namespace lethe::study
