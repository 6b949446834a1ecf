// lethe tune: a fair hyper-parameter search for every unlearning method of a study. It trains
// replicate 0's original on the study's pool with a validation split held out, and per scenario
// draws the split, retrains, and runs every searched method's trials, each measured on the
// validation split against the retrained model — the test set is never read. Writes OUT/tune/:
// tune.json, trials.csv, tuned-SCENARIO.toml and report.html. OUT is the folder `lethe run` uses
// for the same study, so a run after the search reuses its original, splits and retrained models.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/version.h"
#include "nn/option_json.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/tune.h"
#include "unlearn/study/tune_output.h"
#include "unlearn/method.h"
#include "unlearn/search_space.h"

namespace lethe::cli {

namespace {

struct TuneCommand {
  std::string config, out, worker;
  bool quick = false, list = false;
  std::vector<std::string> scenarios, methods;
  TuneOptions options;
  std::vector<CLI::Option*> option_flags;  // the TuneOptions flags: those given override [tune]
};

// [tune]'s settings, then the flags given on the command line over them.
TuneOptions settings(const Study& s, const TuneCommand& c) {
  TuneOptions o = s.tune.value_or(TuneOptions{});
  const nn::OptionTable<TuneOptions>& table = tune_options();
  for (size_t i = 0; i < table.size(); ++i)
    if (c.option_flags[i]->count() > 0)
      std::visit([&](auto field) { o.*field = c.options.*field; }, table[i].field);
  return o;
}

void run_tune(const TuneCommand& c) {
  if (c.list) {
    fmt::print("{}", unlearn::search_spaces_text(unlearn::default_search_spaces()));
    return;
  }
  if (c.worker.empty())
    stop_on_interrupt("\nlethe tune: interrupted; every finished trial is kept, run the same command again to resume\n");
  const auto began = std::chrono::steady_clock::now();
  Study s = read_study(c.config);
  s.tune = settings(s, c);
  // The test set is never loaded: nothing here can read it.
  const DataSource source = load_data(s.run, true, false);
  if (c.quick) apply_quick(s, source.train->size());
  if (!c.scenarios.empty()) s.scenarios = c.scenarios;
  if (!c.methods.empty()) {
    for (const std::string& m : c.methods) unlearn::find_method(m);
    s.methods = c.methods;
  }
  LETHE_CHECK(!searched_methods(s.methods).empty(), "tune", "no method to search among [", fmt::format("{}", fmt::join(s.methods, ", ")),
              "] (retrain is the reference; IEU's ablations run at IEU's setting)");
  check_search_spaces(s);
  const fs::path out = c.out.empty() ? fs::path("study") / s.name : fs::path(c.out);
  std::error_code made;
  fs::create_directories(out / "tune", made);
  LETHE_CHECK(!made, "tune", "cannot make the output folder ", (out / "tune").string(), ": ", made.message());

  const Device device = start(s.run);
  Phases phases(1 + 2 * static_cast<int64_t>(s.scenarios.size()));
  nlohmann::json timings = nlohmann::json::array();
  ReplicatePhases rp(s, replicate_of(s, out, 0), phases, timings, run_command);
  const PhaseOutput original = rp.original();
  auto prepare = [&](const unlearn::Scenario& scenario) {
    const PhaseOutput split = rp.split(scenario);
    const PhaseOutput retrained =
        rp.model(scenario, original, split, "retrain", {});
    return SearchScenario{scenario, original, split, retrained};
  };
  const TuneInvocation invocation{c.config, out.string(), c.quick};

  if (!c.worker.empty()) {  // one trial, in a process of its parent's search: "SCENARIO|METHOD|INDEX"
    const size_t a = c.worker.find('|'), b = c.worker.rfind('|');
    LETHE_CHECK(a != std::string::npos && b > a, "tune", "--worker ", c.worker, ": expected SCENARIO|METHOD|INDEX");
    const SearchScenario at = prepare(unlearn::parse_scenario(c.worker.substr(0, a)));
    run_worker_trial(s, rp, at, source, device, c.worker.substr(a + 1, b - a - 1), std::stoll(c.worker.substr(b + 1)));
    return;
  }

  nlohmann::json record = tune_header(s);
  record["scenarios"] = nlohmann::json::array();
  for (const std::string& text : s.scenarios)
    record["scenarios"].push_back(search_scenario(s, rp, prepare(unlearn::parse_scenario(text)), source, device,
                                                  invocation));
  finish_tune_record(record);
  record["wall_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  write_file_atomically((out / "tune" / "tune.json").string(), record.dump(1), "tune");
  write_tune_outputs(record, out / "tune");

  std::string text;
  for (const nlohmann::json& sc : record["scenarios"]) {
    text += fmt::format("{} (validation: {} images)\n", sc.at("scenario").get<std::string>(),
                        sc.at("validation").get<int64_t>());
    for (const nlohmann::json& m : sc.at("methods")) {
      const nlohmann::json& t = m.at("trials").at(m.at("chosen").get<size_t>());
      text += fmt::format("  {:<10} trial {:>2}  criterion {:6.2f}  {}\n", m.at("method").get<std::string>(),
                          t.at("trial").get<int64_t>(), 100 * t.at("criterion").get<double>(),
                          fmt::format("{}", fmt::join(t.at("flags").get<std::vector<std::string>>(), " ")));
    }
  }
  fmt::print("{}search: {:.0f} s of trials, {:.0f} s in all\nresults: {}\nchosen settings: {}\nreport: {}\n", text,
             record["search_seconds"].get<double>(), record["wall_seconds"].get<double>(), (out / "tune" / "tune.json").string(),
             (out / "tune").string() + "/tuned-*.toml", (out / "tune" / "report.html").string());
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto c = std::make_shared<TuneCommand>();
  CLI::App* cmd = app.add_subcommand(
      "tune", "search every method's hyper-parameters on the same budget of trials, measured on a validation split");
  cmd->add_option("config", c->config, "the study's TOML file (README, \"lethe tune\"); without it, the default study")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", c->out, "output folder (default: study/NAME, the folder `lethe run` uses)");
  cmd->add_option("--scenario", c->scenarios, "search this scenario (repeatable; default: the study's scenarios)");
  cmd->add_option("--methods", c->methods, "search these methods (comma-separated; default: the study's)")
      ->delimiter(',');
  cmd->add_flag("--quick", c->quick, "the small setting of `lethe run --quick` (a pool of at most 4,000 images)");
  cmd->add_flag("--list", c->list, "print every method's default search space and exit");
  c->option_flags = add_option_flags(*cmd, c->options, tune_options());
  cmd->add_option("--worker", c->worker, "(internal) run one trial of the search: SCENARIO|METHOD|INDEX")->group("");
  cmd->callback([c] { run_tune(*c); });
}

}  // namespace lethe::cli
