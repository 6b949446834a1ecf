// lethe relearn: fine-tunes models on the forget set of a split and reports how many steps each
// takes to recover it (RCD), next to the retrained model's, with each model's FA/RA/TA/MIA. All
// models relearn in one batched pass where the model allows (--sequential: one by one).
#include <fmt/core.h>

#include <cmath>
#include <filesystem>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/relearn_models.h"
#include "unlearn/study/scenario_args.h"
#include "subcommand.h"

namespace lethe::cli {

namespace {

struct RelearnCommand {
  RunOptions run;
  ScenarioArgs scenario;
  std::vector<std::string> from;
  std::string original, retrained, curves, trajectory;
  ModelFlags model;
  int64_t trajectory_every = 1;
  double margin = 0.02;
  std::string mode = "auto";
  unlearn::RelearnOptions options;
  GeneratorFlags generator;  // generators: their judge and its metrics' sizes
};

std::string method_of(const std::string& path, const ModelFlags& plain, const DataSource& source) {
  const nn::Checkpoint c = load_checkpoint_for(path, source, plain);
  const auto it = c.info.extra.find("unlearn_method");
  return it == c.info.extra.end() ? "" : it->second;
}

void run_relearn(const RelearnCommand& c) {
  LETHE_CHECK(!c.from.empty() || !c.original.empty() || !c.retrained.empty(), "relearn",
              "nothing to relearn: give --from, --original or --retrained");
  const CommandRun command("relearn", c.run);
  const Device device = command.device();
  const DataSource source = load_data(c.run);
  const unlearn::Split split = resolve_split(c.scenario, source);
  RelearnInputs in{source, split, device, c.options, c.margin, unlearn::parse_relearn_mode(c.mode), c.run.json, {}, c.trajectory,
                   c.trajectory_every, c.model, "", {}};
  if (!c.generator.evaluator.empty()) generator_relearn_defaults(in.options);
  in.options.resolve(split.scenario);
  in.evaluator = c.generator.evaluator;
  in.generator = c.generator.metrics;
  in.generator.seed = in.options.seed;
  if (!c.original.empty()) in.models.push_back({c.original, "original", "original", "original", nullptr});
  if (!c.retrained.empty()) in.models.push_back({c.retrained, "retrained", "retrain", "retrained", nullptr});
  std::vector<NamedPath> inputs = {{"--original", c.original}, {"--retrained", c.retrained}, {"--split", c.scenario.split}};
  for (const std::string& path : c.from) {
    in.models.push_back(
        {path, std::filesystem::path(path).stem().string(), method_of(path, c.model, source), "unlearned", nullptr});
    inputs.push_back({"--from", path});
  }
  check_outputs("relearn", {{"--curves", c.curves, true}, {"--trajectory", c.trajectory, true}}, inputs);
  const RelearnOutput out = relearn_models(in);

  nlohmann::json result = command.result();
  result.update({{"scenario", split.scenario.str()},
                 {"split_seed", split.seed},
                 {"split_digest", split.digest()},
                 {"forget_size", split.forget.size()},
                 {"relearn", in.options},
                 {"targets", out.targets},
                 {"relearn_data", out.data},
                 {"margin", c.margin},
                 {"mode", c.mode},
                 {"device", device.str()},
                 {"threads", c.run.threads},
                 {"relearn_seconds", out.seconds},
                 {"models", out.models},
                 {"lethe_version", version()}});
  result["wall_seconds"] = command.wall_seconds();
  if (!c.trajectory.empty()) result["trajectory"] = c.trajectory;
  if (!c.curves.empty()) append_curves_csv(c.curves, split.scenario.str(), out.models);
  const std::string text =
      fmt::format("{} on {}: targets on {} ({} images) accuracy >= {:.2f}%, loss <= {:.4f}; relearning data {} forget "
                  "+ {} retain samples; {:.1f} s\n",
                  in.options.preset.empty() ? "relearning" : in.options.preset, split.scenario.str(),
                  out.data.at("target_set").get<std::string>(), out.data.at("target_samples").get<int64_t>(),
                  100 * out.targets.accuracy, out.targets.loss, out.data.at("forget_samples").get<int64_t>(),
                  out.data.at("retain_samples").get<int64_t>(), out.seconds) +
      rcd_table(out.models, in.options.headline);
  command.print(result, text);
}

}  // namespace

void add_relearn_command(CLI::App& app) {
  add_data_command<RelearnCommand>(
      app, "relearn", "fine-tune models on a split's forget set and count the steps until they recover it (RCD)",
      [](CLI::App& cmd, RelearnCommand& c) {
        add_scenario_options(cmd, c.scenario);
        cmd.add_option("--from", c.from, "checkpoints to relearn (any number, all on one batch stream)");
        cmd.add_option("--original", c.original, "the original model: the targets come from its forget accuracy and "
                       "loss, and it is relearned too");
        cmd.add_option("--retrained", c.retrained,
                       "the retrained model: relearned too, and every RCD is also given divided by its RCD");
        add_model_flags(cmd, c.model);
        cmd.add_option("--margin", c.margin, "flag models whose RA or TA is more than this below the retrained model's")
            ->check(range_check(fraction()))
            ->capture_default_str();
        cmd.add_option("--curves", c.curves, "append the relearning curves to this CSV");
        add_trajectory_options(
            cmd, c.trajectory, c.trajectory_every,
            "write the weight-space trajectory of every model to this CSV (overwritten): per step and parameter "
            "tensor, plus a 'model' row, the L2 norm and the distances to the model's start, the original and the "
            "retrained model; evaluates after every step (--eval-every 1)",
            "log every K-th relearning step");
        cmd.add_option("--mode", c.mode, "batched: all models stacked into one pass; sequential: one after another; "
                       "auto: batched on CUDA, sequential on the CPU (where it is faster); the results are the same")
            ->capture_default_str()
            ->check(CLI::IsMember({"auto", "batched", "sequential"}));
        add_generator_flags(cmd, c.generator,
                            "generators (class:C): the classifier (W1's cnn-s) that judges their samples; their "
                            "forget fidelity and loss take the forget accuracy's and loss's places");
        add_option_flags(cmd, c.options, unlearn::relearn_options());
      },
      run_relearn);
}

}  // namespace lethe::cli
