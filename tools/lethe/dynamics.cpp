// lethe dynamics: the convex study (unlearn/dynamics.h). IEU on the linear model from the exact
// original optimum, measured against the contraction factor and noise spread the linear theory
// computes at IEU's fixed point; relearning from points along the run against their distance to
// the retrained optimum. Writes dynamics.json and report.html to --out.
#include <fmt/core.h>

#include <filesystem>

#include "commands.h"
#include "engine/file.h"
#include "engine/version.h"
#include "subcommand.h"
#include "unlearn/dynamics.h"
#include "unlearn/relearn.h"
#include "unlearn/study/common.h"
#include "unlearn/study/dynamics_report.h"
#include "unlearn/study/option_range.h"
#include "unlearn/study/scenario_args.h"

namespace lethe::cli {

namespace {

struct DynamicsCommand {
  RunOptions run;
  ScenarioArgs scenario;
  std::string model = "linear", dtype = "float64", out;
  unlearn::DynamicsOptions options;
  double relearn_lr = unlearn::kUnset;
  int64_t relearn_steps = 300, relearn_batch = 0, input_pool = 1;
};

void run_dynamics_command(const DynamicsCommand& c) {
  const CommandRun command("dynamics", c.run);
  const DataSource source = load_data(c.run, true, false);
  const unlearn::Split split = resolve_split(c.scenario, source);
  unlearn::DynamicsOptions options = c.options;
  options.resolve();
  nn::ModelSpec spec = model_spec(c.model, 1, source);
  spec.dtype = c.dtype == "float32" ? DType::f32 : DType::f64;
  spec.input_pool = c.input_pool;
  unlearn::RelearnOptions relearn;
  relearn.lr = c.relearn_lr;
  relearn.steps = c.relearn_steps;
  relearn.batch = c.relearn_batch;
  relearn.stop = "loss";
  relearn.resolve(split.scenario);
  const std::filesystem::path dir(c.out);
  if (!c.out.empty()) {
    std::filesystem::create_directories(dir);
    check_outputs("dynamics", {{"--out", (dir / "dynamics.json").string()}, {"--out", (dir / "report.html").string()}},
                  {{"--split", c.scenario.split}});
  }
  unlearn::DynamicsInputs in{unlearn::scenario_training_set(split, source.train), split, source.normalization, spec,
                             command.device(), options, relearn, [&](const std::string& phase) {
                               if (!c.run.json) fmt::print(stderr, "dynamics: {}\n", phase);
                             }};
  nlohmann::json record = unlearn::run_dynamics(in);

  nlohmann::json result = command.result();
  result.update({{"scenario", split.scenario.str()}, {"split_seed", split.seed}, {"split_digest", split.digest()},
                 {"relearn", relearn}, {"threads", c.run.threads}, {"device", command.device().str()},
                 {"lethe_version", version()}});
  result.update(record);
  result["wall_seconds"] = command.wall_seconds();
  if (!c.out.empty()) {
    write_file_atomically((dir / "dynamics.json").string(), result.dump(1) + "\n", "dynamics");
    write_file_atomically((dir / "report.html").string(), study::render_dynamics_report(result), "dynamics");
  }
  const auto& m = result["measured"];
  const auto& p = result["predicted"];
  const auto& h = result["hessian"];
  auto num = [](const nlohmann::json& j) { return j.is_number() ? fmt::format("{:.6g}", j.get<double>()) : std::string("—"); };
  std::string text = fmt::format(
      "{} on {} ({} parameters, {}): retain Hessian at θ*_r μ = {}, L = {}; ∇²G at θ_fp in [{}, {}]\n"
      "contraction factor q = {} (predicted); fitted {} (full batch, σ = 0), {} (linearised recursion)\n"
      "‖θ*_o − θ*_r‖ = {}, ‖θ_fp − θ*_r‖ = {}; after {} steps ‖θ − θ_fp‖ = {}\n"
      "noise spread, late: measured/predicted = {}",
      split.scenario.str(), spec.name, result["problem"]["parameters"].get<int64_t>(), dtype_name(spec.dtype),
      num(h["retain_at_retrained"]["mu"]), num(h["retain_at_retrained"]["L"]), num(h["ieu_at_fixed_point"]["min"]),
      num(h["ieu_at_fixed_point"]["max"]), num(p["contraction_factor"]), num(m["rate_full_batch"]),
      num(m["rate_linearised"]), num(result["reference_points"]["distance_original_to_retrained"]),
      num(result["reference_points"]["distance_fixed_point_to_retrained"]), options.steps,
      num(m["final_distance_to_fixed_point"]), num(m["spread_ratio"]));
  if (m["minibatch"].is_object())
    text += fmt::format("; minibatch (batch {}) late ‖θ − θ_fp‖² / prediction without gradient noise = {}",
                        options.batch, num(m["minibatch"]["ratio"]));
  text += "\nrelearning (steps to the original's forget loss):";
  for (const auto& point : result["relearning"]["points"])
    text += fmt::format(" {} at ‖θ − θ*_r‖ = {}: {};",
                        point["start"] == "retrained" ? std::string("θ*_r") : fmt::format("step {}", point["step"].get<int64_t>()),
                        num(point["distance_to_retrained"]), unlearn::rcd_figure_text(point["rcd"], "loss"));
  text += "\n";
  if (!c.out.empty()) text += fmt::format("written: {}/dynamics.json, {}/report.html\n", c.out, c.out);
  command.print(result, text);
}

}  // namespace

void add_dynamics_command(CLI::App& app) {
  add_data_command<DynamicsCommand>(
      app, "dynamics",
      "the convex study: IEU on the linear model against its exact optima, contraction factor and noise spread",
      [](CLI::App& cmd, DynamicsCommand& c) {
        add_scenario_options(cmd, c.scenario);
        cmd.add_option("--model", c.model, "the model: linear (the only one convex in its parameters)")
            ->capture_default_str();
        cmd.add_option("--dtype", c.dtype, "the IEU runs' dtype (the reference points are always float64)")
            ->check(CLI::IsMember({"float32", "float64"}))
            ->capture_default_str();
        cmd.add_option("--input-pool", c.input_pool, "average-pool the images P×P before the linear map (28×28 → 7×7 "
                       "at 4): a smaller problem, whose dense Hessian and spectrum are cheap")
            ->check(range_check(nn::integer_in(1, 28)))
            ->capture_default_str();
        unlearn::DynamicsOptions& o = c.options;
        constexpr double kBig = 1e9;
        const auto positive = range_check(nn::positive_up_to(kBig)), non_negative = range_check(nn::real_in(0, kBig));
        cmd.add_option("--l2", o.l2, "ρ: the L2 term of the original and retrained objectives")
            ->check(positive)->capture_default_str();
        cmd.add_option("--tolerance", o.tolerance, "‖∇‖₂ the reference points are solved to (> 0)")
            ->check(positive)->capture_default_str();
        cmd.add_option("--lr", o.lr, "IEU's learning rate η")->check(positive)->capture_default_str();
        cmd.add_option("--alpha", o.alpha, "IEU's ascent weight α")->check(non_negative)->capture_default_str();
        cmd.add_option("--decay", o.decay, "IEU's decoupled decay λ (default: --l2)")->check(non_negative);
        cmd.add_option("--sigma", o.sigma, "IEU's noise σ per step")->check(non_negative)->capture_default_str();
        cmd.add_option("--cap", o.cap, "the bounded-ascent gate's cap on the forget loss (default: none)")->check(positive);
        cmd.add_option("--steps", o.steps, "IEU steps of every run")
            ->check(range_check(nn::integer_in(4, 100000000)))->capture_default_str();
        cmd.add_option("--batch", o.batch, "the minibatch run's batch (0: no minibatch run)")
            ->check(range_check(nn::integer_in(0, 1000000)))->capture_default_str();
        cmd.add_option("--snapshots", o.snapshots, "points of the noisy run relearned, evenly spaced after step 0")
            ->check(range_check(nn::integer_in(0, 1000)))->capture_default_str();
        cmd.add_option("--seed", o.seed, "the noise and the minibatch order")
            ->check(range_check(nn::seed_range()))->capture_default_str();
        cmd.add_option("--relearn-lr", c.relearn_lr, "relearning's learning rate (default: lethe relearn's)")->check(positive);
        cmd.add_option("--relearn-steps", c.relearn_steps, "relearning's step cap")
            ->check(range_check(nn::integer_in(1, 100000000)))->capture_default_str();
        cmd.add_option("--relearn-batch", c.relearn_batch, "relearning's batch (0: lethe relearn's default)")
            ->check(range_check(nn::integer_in(0, 1000000)))->capture_default_str();
        cmd.add_option("--out", c.out, "folder for dynamics.json and report.html");
      },
      run_dynamics_command);
}

}  // namespace lethe::cli
