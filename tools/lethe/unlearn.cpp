// lethe unlearn: runs one unlearning method on an original checkpoint under a split, writes the
// unlearned checkpoint (atomically, with the method, its options and the split in the metadata),
// then measures it: FA, RA, TA, MIA (both features), the scenario's own metrics, weight
// distances, and the average gap when the retrained model is given.
#include <fmt/core.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "commands.h"
#include "common.h"
#include "engine/error.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "option_range.h"
#include "progress.h"
#include "scenario_args.h"
#include "toml_config.h"
#include "unlearn/method.h"
#include "unlearn/trajectory.h"
#include "unlearn_report.h"

namespace lethe::cli {

namespace {

struct UnlearnOptions {
  RunOptions run;
  ScenarioArgs scenario;
  std::string method, from, out, retrained, csv, split_out, trajectory;
  int64_t trajectory_every = 1;
  bool skip_eval = false;
  unlearn::MethodOptions method_options;
};

void run_unlearn(const UnlearnOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  const Device device = start(o.run);
  const unlearn::Method& method = unlearn::find_method(o.method);
  const DataSource source = load_data(o.run);
  const unlearn::Split split = resolve_split(o.scenario, source);
  // A drawn split is always written (with the checkpoint, once the method has run), so later runs
  // (relearning, other methods) can reuse it.
  const std::string split_file =
      !o.split_out.empty() ? o.split_out : o.scenario.split.empty() ? o.out + ".split.json" : o.scenario.split;
  const bool writes_split = !o.split_out.empty() || split_file != o.scenario.split;
  unlearn::MethodOptions options = o.method_options;
  options.resolve(split.scenario);

  const nn::Checkpoint original = load_checkpoint_for(o.from, source);
  check_trained_for(original.info, o.from, split);
  nn::Model model = nn::load_model(original, device, method.grad_buffers);
  if (!o.retrained.empty()) load_checkpoint_for(o.retrained, source);  // checked now, before anything is written
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
    if (!o.retrained.empty()) refs.retrained = unlearn::checkpoint_parameters(nn::load_checkpoint(o.retrained));
    trajectory.emplace(o.trajectory, std::move(refs), o.trajectory_every);
    run.observe = [&](int64_t step, int64_t total, const NamedTensors& params) {
      trajectory->record(method.name, "unlearn", step, params, step == total);  // the last step always
    };
  }
  const auto method_start = std::chrono::steady_clock::now();
  const nlohmann::json details = method.run(run);
  const double method_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - method_start).count();
  if (progress) progress->finish(fmt::format("{} steps", steps_total));

  nlohmann::json options_json = options;
  nn::CheckpointInfo info = original.info;
  info.epoch = 0;
  info.step = 0;
  if (method.name != "retrain") info.recipe.reset();
  info.extra["unlearn_method"] = method.name;
  info.extra["unlearn_options"] = options_json.dump();
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

  nlohmann::json result = {{"command", "unlearn"},
                           {"method", method.name},
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
                           {"options", options_json},
                           {"details", details},
                           {"method_seconds", method_seconds},
                           {"lethe_version", version()}};
  if (!o.trajectory.empty()) result["trajectory"] = o.trajectory;
  std::string text = fmt::format("{}: {:.1f} s\ncheckpoint: {}\n", method.name, method_seconds, o.out);
  if (!o.skip_eval) {
    const UnlearningReport report = unlearning_report(model, {source, split, device, o.from, o.retrained});
    result.update(report.json);
    text += report.text;
  }
  result["wall_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!o.csv.empty()) append_csv(o.csv, result);
  print_result(o.run, result, text);
}

}  // namespace

void add_unlearn_command(CLI::App& app) {
  auto o = std::make_shared<UnlearnOptions>();
  CLI::App* cmd = app.add_subcommand("unlearn", "run an unlearning method on a checkpoint and measure the result");
  add_toml_config(*cmd);
  add_run_options(*cmd, o->run);
  add_scenario_options(*cmd, o->scenario);
  std::string names;
  for (const unlearn::Method& m : unlearn::methods()) names += "\n  " + m.name + ": " + m.summary;
  cmd->add_option("--method", o->method, "the method:" + names)->required()->check(CLI::IsMember(unlearn::method_names()));
  cmd->add_option("--from", o->from, "the original model's checkpoint")->required();
  cmd->add_option("--out", o->out, "unlearned checkpoint to write (safetensors, atomically)")->required();
  cmd->add_option("--retrained", o->retrained, "the retrained model's checkpoint: report the average gap to it");
  cmd->add_option("--csv", o->csv, "append the metrics as one row to this CSV file");
  cmd->add_option("--split-out", o->split_out, "write the split used to this file (default with --scenario: "
                  "OUT.split.json)");
  cmd->add_flag("--no-eval", o->skip_eval, "write the checkpoint without measuring it");
  CLI::Option* trajectory = cmd->add_option(
      "--trajectory", o->trajectory,
      "write the weight-space trajectory to this CSV (overwritten): per step and parameter tensor, plus a 'model' "
      "row, the L2 norm and the distances to the start, the original and --retrained (blank without it); for "
      "unlearning the start is the original, so dist_start = dist_original (retrain's own path starts at its fresh "
      "initialisation)");
  cmd->add_option("--trajectory-every", o->trajectory_every, "log every K-th step (and always the first and last)")
      ->check(integer_in(1, kMaxCount))
      ->capture_default_str()->needs(trajectory);
  unlearn::MethodOptions& m = o->method_options;
  cmd->add_option("--steps", m.steps, "unlearning steps (each one retain and/or forget batch)")
      ->check(integer_in(1, kMaxCount))->capture_default_str();
  cmd->add_option("--batch", m.batch, "batch size (of each of the retain and forget batches)")
      ->check(integer_in(1, 1 << 20))->capture_default_str();
  cmd->add_option("--lr", m.lr, "learning rate η")->check(real_in(0, 100))->capture_default_str();
  cmd->add_option("--momentum", m.momentum, "SGD momentum (all but ieu and retrain)")
      ->check(unit_open())->capture_default_str();
  cmd->add_option("--weight-decay", m.weight_decay, "SGD weight decay, coupled (all but ieu and retrain)")
      ->check(real_in(0, 100))
      ->capture_default_str();
  cmd->add_option("--seed", m.seed, "seed of batch orders, random labels and the IEU noise")
      ->check(seed_range())->capture_default_str();
  cmd->add_option("--ga-lr", m.ga_lr, "ga: learning rate")->check(real_in(0, 100))->capture_default_str();
  cmd->add_option("--ascent-clip", m.ascent_clip, "ga, neggrad+, scrub (its max steps): clip the gradient to this "
                  "global L2 norm (0: off)")->check(real_in(0, 1e9))
      ->capture_default_str();
  cmd->add_option("--neggrad-beta", m.neggrad_beta, "neggrad+: β of β·CE(retain) − (1 − β)·CE(forget)")
      ->check(fraction())
      ->capture_default_str();
  cmd->add_option("--l1", m.l1, "l1-sparse: γ of γ·‖θ‖₁, decayed linearly to 0")
      ->check(real_in(0, 100))->capture_default_str();
  cmd->add_option("--saliency", m.saliency, "salun: fraction of weights updated (largest forget-gradient magnitude)")
      ->check(positive_up_to(1))
      ->capture_default_str();
  cmd->add_option("--mask", m.mask, "salun: strict (masked weights held at the original: no update, decay or "
                  "momentum; as the public code since its PR #33) or loose (gradient masked only, as the code was "
                  "before it)")
      ->capture_default_str()->check(CLI::IsMember({"strict", "loose"}));
  cmd->add_option("--scrub-epochs", m.scrub_epochs, "scrub: epochs the steps are cut into (the code's sgda_epochs)")
      ->check(integer_in(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--scrub-msteps", m.scrub_msteps, "scrub: epochs that begin with max steps on forget batches, "
                  "their share of the epoch n_forget/(n_forget + n_retain) (the code's msteps)")
      ->check(integer_in(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--scrub-alpha", m.scrub_alpha, "scrub: weight of the KL to the teacher on retain batches")
      ->check(real_in(0, 1e6))
      ->capture_default_str();
  cmd->add_option("--scrub-gamma", m.scrub_gamma, "scrub: weight of the cross-entropy on retain batches")
      ->check(real_in(0, 1e6))
      ->capture_default_str();
  cmd->add_option("--scrub-temperature", m.scrub_temperature, "scrub: distillation temperature")
      ->check(positive_up_to(1000))->capture_default_str();
  cmd->add_option("--alpha", m.alpha, "ieu: forget-ascent weight α (default: 0.5 random, 0.1 otherwise; "
                  "ieu-no-ascent: 0)")->check(real_in(0, 1000));
  cmd->add_option("--ieu-decay", m.ieu_decay, "ieu: decoupled weight decay λ (default: 0.05 random, 0.02 otherwise; "
                  "ieu-no-decay: 0)")->check(real_in(0, 100));
  cmd->add_option("--sigma", m.sigma, "ieu: noise standard deviation σ (default: 1e-3 random, 3e-4 otherwise; "
                  "ieu-no-noise: 0)")->check(real_in(0, 10));
  cmd->add_option("--cap", m.cap, "ieu: ascend the forget batch only while its mean CE is below this (default: "
                  "ln 10 random, 10 otherwise; inf: always)")
      ->check(positive_up_to(std::numeric_limits<double>::infinity()));
  for (auto [flag, field, what] : {std::tuple{"--alpha-schedule", &m.alpha_schedule, "α"},
                                   std::tuple{"--decay-schedule", &m.decay_schedule, "λ"},
                                   std::tuple{"--sigma-schedule", &m.sigma_schedule, "σ"}})
    cmd->add_option(flag, *field, fmt::format("ieu: schedule of {}: constant, linear or cosine (decay to 0)", what))
        ->capture_default_str()->check(CLI::IsMember({"constant", "linear", "cosine"}));
  cmd->add_option("--ieu-momentum", m.ieu_momentum, "ieu: heavy-ball momentum of the fused update (0: the plain "
                  "update IEU is defined with; the SGD baselines use --momentum)")
      ->check(unit_open())->capture_default_str();
  cmd->add_flag("--single-pass", m.single_pass,
                "ieu: g_r − α·g_f from one backward over both batches with signed per-sample weights (no batch norm)");
  cmd->callback([o] { run_unlearn(*o); });
}

}  // namespace lethe::cli
