// lethe run: a whole unlearning study from one TOML file. It trains the original, and per scenario
// draws the split, retrains, searches every method's setting first when the study has [tune]
// (tune.h), runs every method, measures every model and relearns them all in one batched pass
// (RCD); then writes results.json, results.csv, curves.csv and report.html. Every phase resumes
// (study_phases.h).
#include <fmt/core.h>

#include <filesystem>
#include <map>

#include "commands.h"
#include "common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "option_flags.h"
#include "relearn_models.h"
#include "report.h"
#include "study_config.h"
#include "study_output.h"
#include "study_phases.h"
#include "tune.h"
#include "tune_output.h"
#include "unlearn/method.h"
#include "unlearn/study_summary.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

struct RunCommand {
  std::string config, out;
  bool quick = false;
};

// The search of a study with [tune], made by replicate 0: its record per scenario (tune.json's
// "scenarios") and every method's chosen flags per scenario, which every replicate runs with.
struct Tuned {
  nlohmann::json records = nlohmann::json::array();
  std::map<std::string, std::map<std::string, std::vector<std::string>>> flags;
};

// Runs one replicate: the original, then per scenario the split, the retrained model, the search
// (replicate 0 of a study with [tune]: `tuned` gets every method's chosen flags per scenario; later
// replicates read them), every method, the measurements and the relearning. Returns per scenario
// (in the config's order) the replicate's record.
std::vector<nlohmann::json> run_replicate(const Study& s, const Replicate& rep, const DataSource& source, Device device,
                                          const TuneInvocation& invocation, Phases& phases, nlohmann::json& timings,
                                          Tuned& tuned) {
  const std::string seed = std::to_string(rep.seed);
  ReplicatePhases rp(s, rep, phases, timings);
  const std::string& tag = rp.tag();
  const PhaseOutput original = rp.original();

  std::vector<nlohmann::json> out;
  for (const std::string& scenario_text : s.scenarios) {
    const unlearn::Scenario scenario = unlearn::parse_scenario(scenario_text);
    const fs::path dir = rp.scenario_folder(scenario);
    const PhaseOutput split = rp.split(scenario);

    std::vector<ModelFile> models = {{original.path.string(), "original", "original", "original", nullptr}};
    nlohmann::json records = nlohmann::json::object();  // every model's key and digest: the relearning phase's key
    auto add = [&](const std::string& method, const PhaseOutput& made) {
      records[method] = made.key;
      const bool is_retrain = method == "retrain";
      models.push_back({made.path.string(), is_retrain ? "retrained" : method, method,
                        is_retrain ? "retrained" : "unlearned", made.record.at("seconds")});
    };
    const PhaseOutput retrained = rp.model(scenario, original, split, "retrain", {}, dir / "retrain.safetensors");
    add("retrain", retrained);
    if (s.tune && rep.index == 0) {
      phases.begin(tag + scenario.str() + ": search every method's setting (" + std::to_string(s.tune->trials) +
                   " trials each)");
      tuned.records.push_back(search_scenario(s, rp, {scenario, original, split, retrained}, source, device, invocation));
      tuned.flags[scenario.str()] = chosen_flags(tuned.records.back(), s.methods);
    }
    for (const std::string& method : s.methods) {
      const auto& chosen = tuned.flags[scenario.str()];
      const auto it = chosen.find(method);
      add(method, rp.model(scenario, original, split, method, it == chosen.end() ? std::vector<std::string>{} : it->second,
                           dir / (method + ".safetensors")));
    }

    // Measure and relearn every model of the scenario.
    const std::vector<std::string> relearn_flags = joined({s.relearn, {"--seed=" + seed}});
    unlearn::RelearnOptions relearn_options;
    {
      CLI::App parser;  // the flags of `lethe relearn`, which the [relearn] table holds
      add_option_flags(parser, relearn_options, unlearn::relearn_options());
      parse_flags(parser, relearn_flags, "[relearn]");
    }
    relearn_options.resolve(scenario);
    const fs::path relearn_file = dir / "relearn.json";
    const std::vector<std::string> key = joined({{"relearn", records.dump()}, relearn_flags, {fmt::format("{}", s.margin)}});
    phases.begin(tag + scenario.str() + ": measure and relearn " + std::to_string(models.size()) + " models");
    const fs::path split_file = split.path;
    std::vector<fs::path> relearn_inputs = {split_file};
    for (const ModelFile& m : models) relearn_inputs.push_back(m.path);
    std::optional<nlohmann::json> done = finished(relearn_file, key, false, relearn_inputs);
    if (!done) {
      const unlearn::Split drawn = unlearn::load_split(split_file.string());
      RelearnOutput result;
      const double seconds = timed([&] {
        result = relearn_models({source, drawn, device, relearn_options, s.margin, s.relearn_mode, false, models, "", 1, {}});
      });
      const nlohmann::json body = {{"models", result.models},
                                   {"targets", result.targets},
                                   {"relearn_data", result.data},
                                   {"relearn_seconds", result.seconds},
                                   {"split_digest", drawn.digest()},
                                   {"forget_size", drawn.forget.size()}};
      write_file_atomically(relearn_file.string(), body.dump(1), "run");
      write_record(relearn_file, key, seconds, relearn_inputs);
      done = finished(relearn_file, key, false, relearn_inputs);
      fmt::print(stderr, "{}", rcd_table(result.models, relearn_options.headline));
    } else {
      fmt::print(stderr, "done before: {}\n", relearn_file.string());
    }
    timings.push_back({{"phase", tag + scenario.str() + ": measure and relearn"}, {"seconds", done->at("seconds")}});
    const nlohmann::json body = parse_json(read_file(relearn_file.string(), "run"), "run: " + relearn_file.string());
    try {  // a field missing or of another type: nlohmann's exception, said as lethe's
      nlohmann::json relearn_json = relearn_options;
      relearn_json["accuracy_target"] = body.at("targets").at("accuracy");
      relearn_json["loss_target"] = body.at("targets").at("loss");
      relearn_json["calibrated_loss_target"] = body.at("targets").value("calibrated_loss", nlohmann::json());
      const nlohmann::json read = body.value("relearn_data", nlohmann::json::object());
      relearn_json["data"] = relearn_options.retain_samples > 0 || relearn_options.retain_mix > 0 ? "forget+retain" : "forget";
      relearn_json["read"] = read;  // how many forget and retain samples the steps read, what was measured
      out.push_back({{"replicate", rep.index},
                     {"seed", rep.seed},
                     {"split_digest", body.at("split_digest")},
                     {"forget_size", body.at("forget_size")},
                     {"relearn", relearn_json},
                     {"relearn_seconds", body.at("relearn_seconds")},
                     {"models", body.at("models")}});
    } catch (const nlohmann::json::exception& e) {
      LETHE_FAIL("run", relearn_file.string(), ": malformed: ", e.what());
    }
  }
  return out;
}

void run_study(const RunCommand& c) {
  stop_on_interrupt("\nlethe run: interrupted; every finished phase is kept, run the same command again to resume\n");
  Study s = read_study(c.config);
  if (s.tune) check_search_spaces(s);
  const DataSource source = load_data(s.run);
  if (c.quick) apply_quick(s, source.train->size());
  const fs::path out = c.out.empty() ? fs::path("study") / s.name : fs::path(c.out);
  std::error_code made;
  fs::create_directories(out, made);
  LETHE_CHECK(!made && fs::is_directory(out), "run", "cannot make the output folder ", out.string(), ": ",
              made ? made.message() : "it exists and is not a folder");
  Phases phases(s.replicates * (1 + static_cast<int64_t>(s.scenarios.size()) * (3 + static_cast<int64_t>(s.methods.size()))) +
                (s.tune ? static_cast<int64_t>(s.scenarios.size()) : 0));
  nlohmann::json timings = nlohmann::json::array();

  const Device device = start(s.run);
  std::vector<std::vector<nlohmann::json>> by_scenario(s.scenarios.size());  // [scenario][replicate]
  const TuneInvocation invocation{c.config, out.string(), c.quick};
  Tuned tuned;
  for (int64_t r = 0; r < s.replicates; ++r) {
    const Replicate rep{r, s.study_seed + static_cast<uint64_t>(r), out / fmt::format("replicate-{}", r)};
    const std::vector<nlohmann::json> records =
        run_replicate(s, rep, source, device, invocation, phases, timings, tuned);
    for (size_t i = 0; i < records.size(); ++i) by_scenario[i].push_back(records[i]);
  }

  nlohmann::json scenarios = nlohmann::json::array();
  for (size_t i = 0; i < s.scenarios.size(); ++i) {
    std::vector<nlohmann::json> models;
    for (const nlohmann::json& rep : by_scenario[i]) models.push_back(rep.at("models"));
    const nlohmann::json summary = unlearn::summarize_replicates(models, s.confidence);
    scenarios.push_back({{"scenario", unlearn::parse_scenario(s.scenarios[i]).str()},
                         {"relearn", by_scenario[i].front().at("relearn")},
                         {"replicates", by_scenario[i]},
                         {"summary", summary}});
    fmt::print(stderr, "\n== {}: {} replicate{}\n{}", s.scenarios[i], s.replicates, s.replicates == 1 ? "" : "s",
               summary_table(summary));
  }

  double total = 0;
  for (const nlohmann::json& t : timings) total += t.at("seconds").get<double>();
  nlohmann::json tune;  // null without [tune]
  if (s.tune) {
    tune = tune_header(s);
    tune["scenarios"] = tuned.records;
    finish_tune_record(tune);
    fs::create_directories(out / "tune");
    write_file_atomically((out / "tune" / "tune.json").string(), tune.dump(1), "run");
    write_tune_outputs(tune, out / "tune");
  }
  nlohmann::json results = {{"lethe_version", version()},
                                  {"schema_version", kOutputSchemaVersion},
                                  {"study", s.name},
                                  {"created", utc_now()},
                                  {"config", {{"file", c.config}, {"quick", c.quick}, {"toml", s.config}}},
                                  {"device", device.str()},
                                  {"threads", s.run.threads},
                                  {"replicates", s.replicates},
                                  {"study_seed", s.study_seed},
                                  {"confidence", s.confidence},
                                  {"timings", timings},
                                  {"total_seconds", total},
                                  {"margin", s.margin},
                                  {"scenarios", scenarios}};
  if (s.tune) results["tune"] = tune;
  write_file_atomically((out / "results.json").string(), results.dump(1), "run");
  write_results_csv(out / "results.csv", results);
  write_summary_csv(out / "summary.csv", results);
  std::string curves = curves_csv_header(true) + "\n";  // written whole, atomically, as the other tables
  for (const nlohmann::json& sc : scenarios)
    for (const nlohmann::json& rep : sc.at("replicates"))
      curves += curves_csv_rows(sc.at("scenario"), rep.at("models"), rep.at("replicate").get<int64_t>());
  write_file_atomically((out / "curves.csv").string(), curves, "run");
  write_report(results, out / "report.html");
  fmt::print("study {}: {} replicate{}, {:.0f} s of phases ({:.0f} s this run)\nresults: {}\nreport: {}\n", s.name,
             s.replicates, s.replicates == 1 ? "" : "s", total, phases.seconds(), (out / "results.json").string(),
             (out / "report.html").string());
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto c = std::make_shared<RunCommand>();
  CLI::App* cmd = app.add_subcommand(
      "run", "run a whole study from a TOML file: train, unlearn with every method, measure, relearn (RCD), report");
  cmd->add_option("config", c->config, "the study's TOML file (README, \"lethe run\"); without it, the default study")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", c->out, "output folder (default: study/NAME)");
  cmd->add_flag("--quick", c->quick, "a small version for smoke tests: 4,000 training images, 2 epochs, 40 "
                "unlearning and at most 60 relearning steps (NAME-quick)");
  cmd->callback([c] { run_study(*c); });
}

}  // namespace lethe::cli
