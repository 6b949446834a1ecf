// lethe eval: accuracy, mean loss, per-class accuracy and the confusion matrix of a checkpoint
// on a dataset split. Reads lethe checkpoints and plain PyTorch state dicts saved as safetensors.
#include <fmt/core.h>

#include <chrono>
#include <cmath>

#include "commands.h"
#include "common.h"
#include "nn/checkpoint.h"
#include "nn/train.h"
#include "toml_config.h"

namespace lethe::cli {

namespace {

struct EvalOptions {
  RunOptions run;
  std::string checkpoint, split = "test", model = "cnn-s";
  double width = 1;
  int64_t batch = 1000;
};

std::string report_text(const nn::Evaluation& e, const DataSource& source, const std::string& split) {
  std::string text = fmt::format("{} split: {} images\naccuracy: {:.4f}\nmean loss: {:.4f}\n\nper-class accuracy:\n",
                                 split, e.count, e.accuracy, e.mean_loss);
  for (int64_t c = 0; c < e.classes; ++c)
    text += fmt::format("  {:>2} {:<12} {:.4f}\n", c, source.class_names[static_cast<size_t>(c)],
                        e.class_accuracy[static_cast<size_t>(c)]);
  text += "\nconfusion matrix (rows: true class, columns: predicted):\n     ";
  for (int64_t p = 0; p < e.classes; ++p) text += fmt::format("{:>6}", p);
  text += "\n";
  for (int64_t t = 0; t < e.classes; ++t) {
    text += fmt::format("  {:>2} ", t);
    for (int64_t p = 0; p < e.classes; ++p) text += fmt::format("{:>6}", e.confusion[static_cast<size_t>(t * e.classes + p)]);
    text += "\n";
  }
  return text;
}

void run_eval(const EvalOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  const Device device = start(o.run);
  const DataSource source = load_data(o.run, o.split == "train");
  const nn::Checkpoint checkpoint = nn::load_checkpoint(o.checkpoint, model_spec(o.model, o.width, source));
  nn::Model model = nn::load_model(checkpoint, device);
  data::DataLoader loader = eval_loader(o.split == "train" ? source.train : source.test, source, device, o.batch);
  const nn::Evaluation e = nn::evaluate(model, loader);
  nlohmann::json result = nn::to_json(e);
  result["command"] = "eval";
  result["checkpoint"] = o.checkpoint;
  result["model"] = model.spec().name;
  result["dataset"] = source.name;
  result["split"] = o.split;
  result["wall_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  print_result(o.run, result, report_text(e, source, o.split));
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "evaluate a checkpoint: accuracy, loss, per-class accuracy, confusion");
  add_toml_config(*cmd);
  add_run_options(*cmd, o->run);
  cmd->add_option("--checkpoint", o->checkpoint, "checkpoint (safetensors) to evaluate")->required();
  cmd->add_option("--split", o->split, "test or train")->capture_default_str()->check(CLI::IsMember({"test", "train"}));
  cmd->add_option("--model", o->model, "the model a plain state dict (no lethe metadata) holds")
      ->capture_default_str()
      ->check(CLI::IsMember(nn::model_names()));
  cmd->add_option("--width", o->width, "resnet18c's width multiplier, for a plain state dict")->capture_default_str();
  cmd->add_option("--batch", o->batch, "evaluation batch size")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace lethe::cli
