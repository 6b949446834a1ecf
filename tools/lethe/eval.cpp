// lethe eval: accuracy, mean loss, per-class accuracy and the confusion matrix of a checkpoint on
// the test or training set; with --scenario or --split, its unlearning metrics under that split.
// Reads lethe checkpoints and plain PyTorch state dicts saved as safetensors.
#include <fmt/core.h>

#include <cmath>

#include "commands.h"
#include "engine/error.h"
#include "engine/version.h"
#include "unlearn/generative_metrics.h"
#include "unlearn/study/common.h"
#include "nn/checkpoint.h"
#include "nn/train.h"
#include "unlearn/study/option_range.h"
#include "unlearn/study/scenario_args.h"
#include "subcommand.h"
#include "unlearn_report.h"

namespace lethe::cli {

namespace {

struct EvalOptions {
  RunOptions run;
  std::string checkpoint, set = "test";
  ModelFlags model;
  bool allow_nonfinite = false;
  int64_t batch = 1000;
  ScenarioArgs scenario;
  std::string original, retrained, csv;
  GeneratorFlags generator;  // a generator's judge (W1's cnn-s) and its metrics' sizes
};

std::string report_text(const nn::Evaluation& e, const DataSource& source, const std::string& set) {
  if (std::isnan(e.accuracy))  // a generator: its per-image loss only
    return fmt::format("{} set: {} images\nmean loss: {:.4f}\n", set, e.count, e.mean_loss);
  std::string text = fmt::format("{} set: {} images\naccuracy: {:.4f}\nmean loss: {:.4f}\n\nper-class accuracy:\n",
                                 set, e.count, e.accuracy, e.mean_loss);
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

// With a scenario: the unlearning metrics of the checkpoint under its split.
void run_unlearning_eval(const EvalOptions& o, const CommandRun& command, const DataSource& source, nn::Model& model,
                         const nn::Checkpoint& checkpoint) {
  require_classifier(checkpoint.info, o.checkpoint, "eval");
  const unlearn::Split split = resolve_split(o.scenario, source);
  check_trained_for(checkpoint.info, o.checkpoint, split);
  check_outputs("eval", {{"--csv", o.csv, true}},
                {{"--checkpoint", o.checkpoint}, {"--original", o.original}, {"--retrained", o.retrained},
                 {"--split", o.scenario.split}});
  const UnlearningReport report =
      unlearning_report(model, {source, split, command.device(), o.original, o.retrained, o.model});
  nlohmann::json result = command.result();
  result.update(report.json);
  result["checkpoint"] = o.checkpoint;
  result["model"] = model.spec().name;
  result["dataset"] = source.name;
  result["scenario"] = split.scenario.str();
  result["split_seed"] = split.seed;
  result["split_digest"] = split.digest();
  const auto method = checkpoint.info.extra.find("unlearn_method");
  result["method"] = method == checkpoint.info.extra.end() ? "" : method->second;
  result["lethe_version"] = version();
  if (!o.csv.empty()) append_csv(o.csv, result);
  command.print(result, report.text);
}

// A generator under a class:C scenario: its samples judged by the evaluator classifier, its losses.
void run_generator_eval(const EvalOptions& o, const CommandRun& command, const DataSource& source, nn::Model& model) {
  LETHE_CHECK(!o.generator.evaluator.empty(), "eval", o.checkpoint, " holds the generator ", model.spec().name,
              ": its metrics need --evaluator, a classifier checkpoint (W1's cnn-s) that judges its samples");
  LETHE_CHECK(o.original.empty() && o.retrained.empty() && o.csv.empty(), "eval",
              "--original, --retrained and --csv are for classifiers; a generator's metrics stand alone");
  const unlearn::Split split = resolve_split(o.scenario, source);
  nn::Checkpoint judge_checkpoint = load_checkpoint_for(o.generator.evaluator, source);
  require_classifier(judge_checkpoint.info, o.generator.evaluator, "eval --evaluator");
  nn::Model evaluator = nn::load_model(judge_checkpoint, command.device());
  const unlearn::GeneratorMetrics m = unlearn::generator_metrics(model, evaluator, split, source.train, source.test,
                                                                 source.normalization, o.generator.metrics);
  nlohmann::json result = command.result();
  result.update(unlearn::to_json(m));
  result["checkpoint"] = o.checkpoint;
  result["evaluator"] = o.generator.evaluator;
  result["model"] = model.spec().name;
  result["dataset"] = source.name;
  result["scenario"] = split.scenario.str();
  result["samples_per_class"] = o.generator.metrics.samples_per_class;
  result["seed"] = o.generator.metrics.seed;
  result["wall_seconds"] = command.wall_seconds();
  const auto share = [](const unlearn::Proportion& p) {
    return fmt::format("{:.4f} [{:.4f}, {:.4f}] ({} of {})", p.value, p.lo, p.hi, p.hits, p.count);
  };
  std::string text = fmt::format("{} forgetting {} (judged by {})\n", model.spec().name, split.scenario.str(), o.generator.evaluator);
  text += fmt::format("forget fidelity: {}\nretain fidelity: {}\n", share(m.forget_fidelity), share(m.retain_fidelity));
  text += fmt::format("Fréchet distance (evaluator features): forget class {:.3f}, retain classes {:.3f}\n",
                      m.forget_frechet, m.retain_frechet);
  text += fmt::format("mean loss: forget {:.4f}, retain {:.4f}, test {:.4f}, test of the forget class {:.4f}\n",
                      m.forget_loss, m.retain_loss, m.test_loss, m.test_forget_class_loss);
  text += fmt::format("membership gap (test of the forget class − forget): {:.4f}\nper class (fidelity, Fréchet):\n",
                      m.membership_gap);
  for (const unlearn::ClassMetrics& c : m.classes)
    text += fmt::format("  {:>2} {:<12} {}  {:.3f}\n", c.label, source.class_names[static_cast<size_t>(c.label)],
                        share(c.fidelity), c.frechet);
  command.print(result, text);
}

void run_eval(const EvalOptions& o) {
  const CommandRun command("eval", o.run);
  const Device device = command.device();
  const bool unlearning = o.scenario.given();
  LETHE_CHECK(unlearning || (o.original.empty() && o.retrained.empty() && o.csv.empty()), "eval",
              "--original, --retrained and --csv go with --scenario or --split");
  DataSource source = load_data(o.run, o.set == "train" || unlearning);
  const nn::Checkpoint checkpoint =
      load_checkpoint_for(o.checkpoint, source, o.model, o.allow_nonfinite ? nn::NonFinite::allow : nn::NonFinite::refuse);
  nn::Model model = nn::load_model(checkpoint, device);
  if (unlearning && model.generator() != nullptr) return run_generator_eval(o, command, source, model);
  LETHE_CHECK(o.generator.evaluator.empty(), "eval", "--evaluator judges a generator's samples under a scenario; ", o.checkpoint,
              unlearning ? " is a classifier" : " is given no --scenario or --split");
  if (unlearning) return run_unlearning_eval(o, command, source, model, checkpoint);
  if (model.generator() != nullptr) source.normalization = {};  // a generator models pixels in [0, 1]
  data::DataLoader loader = eval_loader(o.set == "train" ? source.train : source.test, source, device, o.batch);
  const nn::Evaluation e = nn::evaluate(model, loader);
  nlohmann::json result = command.result();
  result.update(nn::to_json(e));
  result["checkpoint"] = o.checkpoint;
  result["model"] = model.spec().name;
  result["dataset"] = source.name;
  result["set"] = o.set;
  result["wall_seconds"] = command.wall_seconds();
  command.print(result, report_text(e, source, o.set));
}

}  // namespace

void add_eval_command(CLI::App& app) {
  add_data_command<EvalOptions>(
      app, "eval", "evaluate a checkpoint: accuracy, loss, per-class accuracy, confusion",
      [](CLI::App& cmd, EvalOptions& o) {
        cmd.add_option("--checkpoint", o.checkpoint, "checkpoint (safetensors) to evaluate")->required();
        cmd.add_option("--set", o.set, "test or train")->capture_default_str()->check(CLI::IsMember({"test", "train"}));
        add_model_flags(cmd, o.model);
        cmd.add_option("--batch", o.batch, "evaluation batch size")
            ->check(range_check(integer_in(1, 1 << 20)))
            ->capture_default_str();
        add_scenario_options(cmd, o.scenario);
        cmd.add_flag("--allow-nonfinite", o.allow_nonfinite,
                     "evaluate a checkpoint whose weights hold NaN or inf (forensics; every other command refuses it)");
        cmd.add_option("--original", o.original, "with a scenario: the original model, for the test-accuracy gain, "
                       "the attack success before and the weight distance");
        cmd.add_option("--retrained", o.retrained, "with a scenario: the retrained model, for the average gap");
        cmd.add_option("--csv", o.csv, "with a scenario: append the metrics as one row to this CSV file");
        add_generator_flags(cmd, o.generator,
                            "a generator with a class:C scenario: the classifier (W1's cnn-s) that judges its samples");
        cmd.add_option("--seed", o.generator.metrics.seed, "a generator: seed of its samples and of its losses' draws")
            ->check(range_check(seed_range()))
            ->capture_default_str();
      },
      run_eval);
}

}  // namespace lethe::cli
