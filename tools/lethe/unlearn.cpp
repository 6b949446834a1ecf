// lethe unlearn: runs one unlearning method on an original checkpoint under a split, writes the
// unlearned checkpoint (atomically, with the method, its options and the split in the metadata),
// then measures it: FA, RA, TA, MIA (both features), the scenario's own metrics, weight
// distances, and the average gap when the retrained model is given.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "nn/generative.h"
#include "nn/option_json.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/progress.h"
#include "unlearn/study/scenario_args.h"
#include "subcommand.h"
#include "unlearn/method.h"
#include "unlearn/trajectory.h"
#include "unlearn_report.h"

namespace lethe::cli {

namespace {

struct UnlearnOptions {
  RunOptions run;
  ScenarioArgs scenario;
  std::string method, from, out, retrained, csv, split_out, trajectory;
  ModelFlags model;
  int64_t trajectory_every = 1;
  bool skip_eval = false;
  unlearn::MethodOptions method_options;
};

void run_unlearn(const UnlearnOptions& o) {
  const CommandRun command("unlearn", o.run);
  const Device device = command.device();
  const unlearn::Method& method = unlearn::find_method(o.method);
  DataSource source = load_data(o.run, true, !o.skip_eval);  // only the report reads the test set
  const unlearn::Split split = resolve_split(o.scenario, source);
  // A drawn split is always written (with the checkpoint, once the method has run), so later runs
  // (relearning, other methods) can reuse it.
  const std::string split_file =
      !o.split_out.empty() ? o.split_out : o.scenario.split.empty() ? o.out + ".split.json" : o.scenario.split;
  const bool writes_split = !o.split_out.empty() || split_file != o.scenario.split;
  unlearn::MethodOptions options = o.method_options;
  const nn::Checkpoint original = load_checkpoint_for(o.from, source, o.model);
  const bool generator = nn::is_generator_name(original.info.model.name);
  if (generator) {
    source.normalization = {};  // a generator models pixels in [0, 1]
    LETHE_CHECK(split.scenario.kind == unlearn::ScenarioKind::class_wise, "unlearn", o.from, " holds the generator ",
                original.info.model.name, ": a generator forgets classes (class:C), not ", split.scenario.str());
    LETHE_CHECK(!std::isnan(options.cap) || method.name.rfind("ieu", 0) != 0, "unlearn",
                "IEU's gate caps the forget loss; for the generator ", original.info.model.name,
                " give --cap in its loss's units (the classifiers' default, a cross-entropy, means nothing here): e.g. "
                "the retrained generator's forget loss (lethe eval --scenario ... --evaluator ...)");
  }
  options.resolve(split.scenario);
  check_trained_for(original.info, o.from, split);
  nn::Model model = nn::load_model(original, device, method.grad_buffers);
  if (!o.retrained.empty()) load_checkpoint_for(o.retrained, source, o.model);  // checked now, before anything is written
  check_outputs("unlearn",
                {{"--out", o.out},
                 {o.split_out.empty() ? "the split (--split-out, default OUT.split.json)" : "--split-out",
                  writes_split ? split_file : ""},
                 {"--csv", o.csv, true},
                 {"--trajectory", o.trajectory, true}},
                {{"--from", o.from}, {"--retrained", o.retrained}, {"--split", o.scenario.split}});

  const std::shared_ptr<const data::Dataset> train = unlearn::scenario_training_set(split, source.train);
  const bool quiet = o.run.json;
  if (!quiet)
    fmt::print(stderr, "lethe unlearn: {} on {} ({}), {} forget / {} retain samples, {}, {} threads\n", method.name,
               model.spec().name, split.scenario.str(), split.forget.size(), split.retain.size(), device.str(),
               o.run.threads);
  std::optional<Progress> progress;  // made at the first report, which says the total
  int64_t steps_total = 0;
  unlearn::MethodRun run{model, original, train, split, source.normalization, options,
                         [&](int64_t step, int64_t total) {
                           if (!progress) progress.emplace(method.name, steps_total = total, quiet);
                           progress->update(step);
                         }};
  std::optional<unlearn::TrajectoryLog> trajectory;
  if (!o.trajectory.empty()) {
    unlearn::TrajectoryReferences refs;
    refs.original = unlearn::checkpoint_parameters(original);
    refs.start = refs.original;  // unlearning starts from the original (retrain's path from its fresh init)
    if (!o.retrained.empty())
      refs.retrained = unlearn::checkpoint_parameters(load_checkpoint_for(o.retrained, source, o.model));
    trajectory.emplace(o.trajectory, std::move(refs), o.trajectory_every);
    run.observe = [&](int64_t step, int64_t total, const NamedTensors& params) {
      trajectory->record(method.name, "unlearn", step, params, step == total);  // the last step always
    };
  }
  const auto method_start = std::chrono::steady_clock::now();
  const nlohmann::json details = method.run(run);
  const double method_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - method_start).count();
  if (progress) progress->finish(fmt::format("{} steps", steps_total));

  nn::CheckpointInfo info = original.info;
  info.epoch = 0;
  info.step = 0;
  if (method.name != "retrain") info.recipe.reset();
  info.extra["unlearn_method"] = method.name;
  // Under the flags' names, as the recipe: the metadata's keys (nn::JsonKeys).
  info.extra["unlearn_options"] = nn::options_json(options, unlearn::method_options(), nn::JsonKeys::flag).dump();
  info.extra[kScenarioKey] = split.scenario.str();
  info.extra[kSplitDigestKey] = split.digest();
  info.extra["unlearned_from"] = o.from;
  // The split first: a checkpoint names its split's digest. When the checkpoint cannot be written,
  // a split file this run created is removed again: a failed run leaves no output.
  std::error_code ec;
  const bool split_existed = writes_split && std::filesystem::exists(split_file, ec);
  if (writes_split) unlearn::save_split(split_file, split);
  try {
    nn::save_checkpoint(o.out, model, nullptr, info);
  } catch (const Error&) {
    if (writes_split && !split_existed) std::filesystem::remove(split_file, ec);
    throw;
  }

  nlohmann::json result = command.result();
  result.update({{"method", method.name},
                 {"scenario", split.scenario.str()},
                 {"split_seed", split.seed},
                 {"split_digest", split.digest()},
                 {"split", split_file},
                 {"model", model.spec().name},
                 {"dataset", source.name},
                 {"device", device.str()},
                 {"threads", o.run.threads},
                 {"from", o.from},
                 {"checkpoint", o.out},
                 {"options", options},
                 {"details", details},
                 {"method_seconds", method_seconds},
                 {"lethe_version", version()}});
  if (!o.trajectory.empty()) result["trajectory"] = o.trajectory;
  std::string text = fmt::format("{}: {:.1f} s\ncheckpoint: {}\n", method.name, method_seconds, o.out);
  if (generator) {
    text += "a generator's metrics: lethe eval --checkpoint " + o.out + " --scenario " + split.scenario.str() +
            " --evaluator CLASSIFIER\n";
  } else if (!o.skip_eval) {
    const UnlearningReport report = unlearning_report(model, {source, split, device, o.from, o.retrained, o.model});
    result.update(report.json);
    text += report.text;
  }
  result["wall_seconds"] = command.wall_seconds();
  if (!o.csv.empty()) append_csv(o.csv, result);
  command.print(result, text);
}

}  // namespace

void add_unlearn_command(CLI::App& app) {
  add_data_command<UnlearnOptions>(
      app, "unlearn", "run an unlearning method on a checkpoint and measure the result",
      [](CLI::App& cmd, UnlearnOptions& o) {
        add_scenario_options(cmd, o.scenario);
        std::string names;
        for (const unlearn::Method& m : unlearn::methods()) names += "\n  " + m.name + ": " + m.summary;
        cmd.add_option("--method", o.method, "the method:" + names)
            ->required()
            ->check(CLI::IsMember(unlearn::method_names()));
        cmd.add_option("--from", o.from, "the original model's checkpoint")->required();
        cmd.add_option("--out", o.out, "unlearned checkpoint to write (safetensors, atomically)")->required();
        cmd.add_option("--retrained", o.retrained, "the retrained model's checkpoint: report the average gap to it");
        add_model_flags(cmd, o.model);
        cmd.add_option("--csv", o.csv, "append the metrics as one row to this CSV file");
        cmd.add_option("--split-out", o.split_out,
                       "write the split used to this file (default with --scenario: OUT.split.json)");
        cmd.add_flag("--no-eval", o.skip_eval, "write the checkpoint without measuring it");
        add_trajectory_options(
            cmd, o.trajectory, o.trajectory_every,
            "write the weight-space trajectory to this CSV (overwritten): per step and parameter tensor, plus a "
            "'model' row, the L2 norm and the distances to the start, the original and --retrained (blank without "
            "it); for unlearning the start is the original, so dist_start = dist_original (retrain's own path starts "
            "at its fresh initialisation)",
            "log every K-th step (and always the first and last)");
        add_option_flags(cmd, o.method_options, unlearn::method_options());
      },
      run_unlearn);
}

}  // namespace lethe::cli
