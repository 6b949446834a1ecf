#include "unlearn/study/common.h"

#include <CLI/CLI.hpp>

#include "engine/error.h"
#include "nn/generative.h"
#include "kernels/cpu/parallel.h"
#include "unlearn/study/option_range.h"

namespace lethe::study {

void add_run_options(CLI::App& app, RunOptions& run) {
  app.add_option("--data", run.data, "folder with the dataset's files (default: the Debian package's, under /usr/share/datasets, or under $LETHE_DATASETS where set)");
  app.add_option("--dataset", run.dataset, "fashion-mnist, mnist or cifar10 (binary version)")
      ->capture_default_str()
      ->check(CLI::IsMember(data::dataset_names()));
  app.add_option("--device", run.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", run.threads, "CPU threads (results are bitwise reproducible per thread count)")
      ->check(range_check(integer_in(1, kMaxThreads)))
      ->capture_default_str();
  app.add_flag("--json", run.json, "print the final metrics as one JSON object on stdout");
}

Device start(const RunOptions& run) {
  set_num_threads(run.threads);
  const Device device = Device::parse(run.device);
  LETHE_CHECK(device.is_cpu() || device.index < cuda_device_count(), "--device", "no CUDA device ", device.str(),
              " (", cuda_device_count(), " visible)");
  return device;
}

DataSource load_data(const RunOptions& run, bool need_train, bool need_test) {
  return data::load_data(run.dataset, run.data, need_train, need_test);
}

nn::ModelSpec model_spec(const std::string& name, double width, const DataSource& data) {
  return {name, data.channels, data.image_size, data.classes, width};
}

void add_model_flags(CLI::App& cmd, ModelFlags& flags) {
  cmd.add_option("--model", flags.model, "the model a plain state dict (no lethe metadata, e.g. from PyTorch) holds")
      ->check(CLI::IsMember(nn::model_names()));
  cmd.add_option("--width", flags.width, "resnet18c's width multiplier, with --model")
      ->check(range_check(positive_up_to(64)))
      ->capture_default_str();
}

void add_generator_flags(CLI::App& cmd, GeneratorFlags& flags, const std::string& evaluator_help) {
  cmd.add_option("--evaluator", flags.evaluator, evaluator_help);
  cmd.add_option("--samples-per-class", flags.metrics.samples_per_class,
                 "generators: samples drawn per class for the metrics (2500: each share's 95% interval within ±2 "
                 "points); in relearning also the forget class's samples at every evaluation")
      ->check(range_check(integer_in(2, 1000000)))
      ->capture_default_str();
  cmd.add_option("--loss-images", flags.metrics.loss_images,
                 "generators: images of each set (forget, retain, test) whose loss is measured, evenly spaced (0: all)")
      ->check(range_check(integer_in(0, kMaxCount)))
      ->capture_default_str();
}

nn::Checkpoint load_checkpoint_for(const std::string& path, const DataSource& data, const ModelFlags& plain,
                                   nn::NonFinite nonfinite) {
  std::optional<nn::ModelSpec> fallback;
  if (!plain.model.empty()) fallback = model_spec(plain.model, plain.width, data);
  nn::Checkpoint c = nn::load_checkpoint(path, fallback, nonfinite);
  LETHE_CHECK(!fallback || (c.info.model.name == fallback->name && c.info.model.width == fallback->width), "checkpoint",
              path, " holds a ", c.info.model.name, " (width ", c.info.model.width, "), not the --model ", fallback->name,
              " (width ", fallback->width, ") given");
  nn::check_fits_data(c.info, path, {data.name, data.channels, data.image_size, data.classes});
  return c;
}

void require_classifier(const nn::CheckpointInfo& info, const std::string& path, const char* op) {
  LETHE_CHECK(!nn::is_generator_name(info.model.name), op, path, " holds the generator ", info.model.name,
              ": unlearning, relearning and their metrics take classifiers only so far");
}

data::DataLoader eval_loader(std::shared_ptr<const data::Dataset> set, const DataSource& source, Device device,
                             int64_t batch) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;
  o.normalization = source.normalization;
  o.device = device;
  return data::DataLoader(data::Subset::all(std::move(set)), o);
}

void append_to_csv(const std::string& path, const std::string& header, const std::string& rows, const char* op) {
  AppendFile file(path, op);
  file.write(file.was_empty() ? header + "\n" + rows : rows);
  file.close();
}

void check_outputs(const char* op, const std::vector<OutputArg>& outputs, const std::vector<NamedPath>& inputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputArg& o = outputs[i];
    if (o.path.empty()) continue;
    check_output_path(o.path, op, o.appended);
    check_distinct_output({o.flag, o.path}, inputs, op);
    for (size_t j = 0; j < i; ++j)
      LETHE_CHECK(!same_file(o.path, outputs[j].path), op, outputs[j].flag, " and ", o.flag, " name the same file, ",
                  o.path, ": give each output its own path");
  }
}

}  // namespace lethe::study
