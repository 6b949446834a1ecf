// lethe run: a whole unlearning study from one TOML file. It trains the original, and per scenario
// draws the split, retrains, searches every method's setting first when the study has [tune]
// (tune.h), runs every method, measures every model and relearns them all in one batched pass
// (RCD); then writes results.json, results.csv, curves.csv and report.html. Every phase resumes
// (study_phases.h). --plan prints the study's graph of phases (study_plan.h), --phase ID runs one,
// --jobs N runs them in N processes, --slurm as Slurm jobs (slurm.h).
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "commands.h"
#include "common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "option_flags.h"
#include "option_range.h"
#include "relearn_models.h"
#include "report.h"
#include "slurm.h"
#include "study_config.h"
#include "study_output.h"
#include "study_phases.h"
#include "study_plan.h"
#include "tune.h"
#include "tune_output.h"
#include "unlearn/method.h"
#include "unlearn/study_summary.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

struct RunCommand {
  std::string config, out, phase, format = "json", plan_digest;
  bool quick = false, plan = false, slurm = false, no_wait = false, dry_run = false;
  int64_t jobs = 1;
  SlurmOptions slurm_options;
  std::vector<CLI::Option*> slurm_flags;  // those given override [slurm]
};

// The id only() takes to let no phase run: what checking whether a phase is done needs.
const char* const kNoPhase = "(none)";

// The search of a study with [tune], made by replicate 0: its record per scenario (tune.json's
// "scenarios") and every method's chosen flags per scenario, which every replicate runs with.
struct Tuned {
  std::map<std::string, nlohmann::json> records;
  std::map<std::string, std::map<std::string, std::vector<std::string>>> flags;
};

// Runs a study's phases (study_plan.h), each when something needs it and at most once: report()
// needs every phase, so it runs the whole study; after only(ID), a phase that is not done and is
// not ID throws instead of running, so `--phase ID` runs that phase alone on its finished inputs.
class StudyRunner {
 public:
  StudyRunner(const Study& s, const fs::path& out, const DataSource& source, Device device,
              TuneInvocation invocation, Phases& phases)
      : s_(s), out_(out), source_(source), device_(device), invocation_(std::move(invocation)), phases_(phases) {}

  void only(const std::string& phase_id) {
    only_ = phase_id;
    for (auto& [r, rp] : replicates_) rp->only(phase_id);
  }

  ReplicatePhases& replicate(int64_t r) {
    auto& rp = replicates_[r];
    if (!rp) {
      rp = std::make_unique<ReplicatePhases>(s_, replicate_of(s_, out_, r), phases_, timings_);
      if (!only_.empty()) rp->only(only_);
    }
    return *rp;
  }

  const PhaseOutput& original(int64_t r) {
    return cached(replicate(r).id("original"), [&] { return replicate(r).original(); });
  }
  const PhaseOutput& split(int64_t r, const unlearn::Scenario& sc) {
    return cached(replicate(r).id(sc, "split"), [&] { return replicate(r).split(sc); });
  }
  // `method` (retrain among them) at the setting replicate 0's search chose, with [tune].
  const PhaseOutput& model(int64_t r, const unlearn::Scenario& sc, const std::string& method) {
    return cached(replicate(r).id(sc, method), [&] {
      const PhaseOutput& from = original(r);
      const PhaseOutput& drawn = split(r, sc);
      std::vector<std::string> extra;
      if (s_.tune && method != "retrain") {
        const auto& chosen = search(sc);
        const auto it = chosen.find(method);
        if (it != chosen.end()) extra = it->second;
      }
      return replicate(r).model(sc, from, drawn, method, extra);
    });
  }

  // Replicate 0's search of the scenario: every method's chosen flags.
  const std::map<std::string, std::vector<std::string>>& search(const unlearn::Scenario& sc) {
    const auto found = tuned_.flags.find(sc.str());
    if (found != tuned_.flags.end()) return found->second;
    ReplicatePhases& rp = replicate(0);
    const SearchScenario at{sc, original(0), split(0, sc), model(0, sc, "retrain")};
    if (rp.shown(rp.id(sc, "search")))
      phases_.begin(rp.tag() + sc.str() + ": search every method's setting (" + std::to_string(s_.tune->trials) +
                    " trials each)");
    tuned_.records[sc.str()] = search_scenario(s_, rp, at, source_, device_, invocation_);
    return tuned_.flags[sc.str()] = chosen_flags(tuned_.records[sc.str()], s_.methods);
  }

  // Measures and relearns every model of the scenario; returns the replicate's record of it.
  nlohmann::json relearn(int64_t r, const unlearn::Scenario& sc);

  // Every replicate's relearning, then results.json, the tables and report.html.
  void report(const std::string& config, bool quick);

 private:
  const PhaseOutput& cached(const std::string& id, const std::function<PhaseOutput()>& make) {
    auto it = outputs_.find(id);
    if (it == outputs_.end()) it = outputs_.emplace(id, make()).first;
    return it->second;
  }

  const Study& s_;
  fs::path out_;
  const DataSource& source_;
  Device device_;
  TuneInvocation invocation_;
  Phases& phases_;
  std::string only_;
  nlohmann::json timings_ = nlohmann::json::array();
  std::map<int64_t, std::unique_ptr<ReplicatePhases>> replicates_;
  std::map<std::string, PhaseOutput> outputs_;
  Tuned tuned_;
};

nlohmann::json StudyRunner::relearn(int64_t r, const unlearn::Scenario& scenario) {
  ReplicatePhases& rp = replicate(r);
  const Replicate& rep = rp.replicate();
  const PhaseOutput& original_model = original(r);
  const PhaseOutput& drawn = split(r, scenario);
  std::vector<ModelFile> models = {{original_model.path.string(), "original", "original", "original", nullptr}};
  nlohmann::json records = nlohmann::json::object();  // every model's key and digest: the relearning phase's key
  auto add = [&](const std::string& method) {
    const PhaseOutput& made = model(r, scenario, method);
    records[method] = made.key;
    const bool is_retrain = method == "retrain";
    models.push_back({made.path.string(), is_retrain ? "retrained" : method, method,
                      is_retrain ? "retrained" : "unlearned", made.record.at("seconds")});
  };
  add("retrain");
  for (const std::string& method : s_.methods) add(method);

  const std::vector<std::string> relearn_flags = joined({s_.relearn, {"--seed=" + std::to_string(rep.seed)}});
  unlearn::RelearnOptions relearn_options;
  {
    CLI::App parser;  // the flags of `lethe relearn`, which the [relearn] table holds
    add_option_flags(parser, relearn_options, unlearn::relearn_options());
    parse_flags(parser, relearn_flags, "[relearn]");
  }
  relearn_options.resolve(scenario);
  const fs::path relearn_file = rp.scenario_folder(scenario) / "relearn.json";
  const std::vector<std::string> key = joined({{"relearn", records.dump()}, relearn_flags, {fmt::format("{}", s_.margin)}});
  const std::string phase = rp.id(scenario, "relearn");
  if (rp.shown(phase))
    phases_.begin(rp.tag() + scenario.str() + ": measure and relearn " + std::to_string(models.size()) + " models");
  std::vector<fs::path> relearn_inputs = {drawn.path};
  for (const ModelFile& m : models) relearn_inputs.push_back(m.path);
  std::optional<nlohmann::json> done = finished(relearn_file, key, false, relearn_inputs);
  if (!done) {
    rp.check_may_run(phase, relearn_file);
    const unlearn::Split split_drawn = unlearn::load_split(drawn.path.string());
    RelearnOutput result;
    const double seconds = timed([&] {
      result = relearn_models(
          {source_, split_drawn, device_, relearn_options, s_.margin, s_.relearn_mode, false, models, "", 1, {}});
    });
    const nlohmann::json body = {{"models", result.models},
                                 {"targets", result.targets},
                                 {"relearn_data", result.data},
                                 {"relearn_seconds", result.seconds},
                                 {"split_digest", split_drawn.digest()},
                                 {"forget_size", split_drawn.forget.size()}};
    write_file_atomically(relearn_file.string(), body.dump(1), "run");
    write_record(relearn_file, key, seconds, relearn_inputs);
    done = finished(relearn_file, key, false, relearn_inputs);
    fmt::print(stderr, "{}", rcd_table(result.models, relearn_options.headline));
  } else if (rp.shown(phase)) {
    fmt::print(stderr, "done before: {}\n", relearn_file.string());
  }
  timings_.push_back({{"phase", rp.tag() + scenario.str() + ": measure and relearn"}, {"seconds", done->at("seconds")}});
  const nlohmann::json body = parse_json(read_file(relearn_file.string(), "run"), "run: " + relearn_file.string());
  try {  // a field missing or of another type: nlohmann's exception, said as lethe's
    nlohmann::json relearn_json = relearn_options;
    relearn_json["accuracy_target"] = body.at("targets").at("accuracy");
    relearn_json["loss_target"] = body.at("targets").at("loss");
    relearn_json["calibrated_loss_target"] = body.at("targets").value("calibrated_loss", nlohmann::json());
    const nlohmann::json read = body.value("relearn_data", nlohmann::json::object());
    relearn_json["data"] =
        relearn_options.retain_samples > 0 || relearn_options.retain_mix > 0 ? "forget+retain" : "forget";
    relearn_json["read"] = read;  // how many forget and retain samples the steps read, what was measured
    return {{"replicate", rep.index},
            {"seed", rep.seed},
            {"split_digest", body.at("split_digest")},
            {"forget_size", body.at("forget_size")},
            {"relearn", relearn_json},
            {"relearn_seconds", body.at("relearn_seconds")},
            {"models", body.at("models")}};
  } catch (const nlohmann::json::exception& e) {
    LETHE_FAIL("run", relearn_file.string(), ": malformed: ", e.what());
  }
}

void StudyRunner::report(const std::string& config, bool quick) {
  std::vector<std::vector<nlohmann::json>> by_scenario(s_.scenarios.size());  // [scenario][replicate]
  for (int64_t r = 0; r < s_.replicates; ++r)
    for (size_t i = 0; i < s_.scenarios.size(); ++i)
      by_scenario[i].push_back(relearn(r, unlearn::parse_scenario(s_.scenarios[i])));

  nlohmann::json scenarios = nlohmann::json::array();
  for (size_t i = 0; i < s_.scenarios.size(); ++i) {
    std::vector<nlohmann::json> models;
    for (const nlohmann::json& rep : by_scenario[i]) models.push_back(rep.at("models"));
    const nlohmann::json summary = unlearn::summarize_replicates(models, s_.confidence);
    scenarios.push_back({{"scenario", unlearn::parse_scenario(s_.scenarios[i]).str()},
                         {"relearn", by_scenario[i].front().at("relearn")},
                         {"replicates", by_scenario[i]},
                         {"summary", summary}});
    fmt::print(stderr, "\n== {}: {} replicate{}\n{}", s_.scenarios[i], s_.replicates, s_.replicates == 1 ? "" : "s",
               summary_table(summary));
  }

  double total = 0;
  for (const nlohmann::json& t : timings_) total += t.at("seconds").get<double>();
  nlohmann::json tune;  // null without [tune]
  if (s_.tune) {
    tune = tune_header(s_);
    tune["scenarios"] = nlohmann::json::array();
    for (const std::string& text : s_.scenarios) {
      const unlearn::Scenario sc = unlearn::parse_scenario(text);
      search(sc);
      tune["scenarios"].push_back(tuned_.records.at(sc.str()));
    }
    finish_tune_record(tune);
    fs::create_directories(out_ / "tune");
    write_file_atomically((out_ / "tune" / "tune.json").string(), tune.dump(1), "run");
    write_tune_outputs(tune, out_ / "tune");
  }
  nlohmann::json results = {{"lethe_version", version()},
                            {"schema_version", kOutputSchemaVersion},
                            {"study", s_.name},
                            {"created", utc_now()},
                            {"config", {{"file", config}, {"quick", quick}, {"toml", s_.config}}},
                            {"device", device_.str()},
                            {"threads", s_.run.threads},
                            {"replicates", s_.replicates},
                            {"study_seed", s_.study_seed},
                            {"confidence", s_.confidence},
                            {"timings", timings_},
                            {"total_seconds", total},
                            {"margin", s_.margin},
                            {"scenarios", scenarios}};
  if (s_.tune) results["tune"] = tune;
  write_file_atomically((out_ / "results.json").string(), results.dump(1), "run");
  write_results_csv(out_ / "results.csv", results);
  write_summary_csv(out_ / "summary.csv", results);
  std::string curves = curves_csv_header(true) + "\n";  // written whole, atomically, as the other tables
  for (const nlohmann::json& sc : scenarios)
    for (const nlohmann::json& rep : sc.at("replicates"))
      curves += curves_csv_rows(sc.at("scenario"), rep.at("models"), rep.at("replicate").get<int64_t>());
  write_file_atomically((out_ / "curves.csv").string(), curves, "run");
  write_report(results, out_ / "report.html");
  fmt::print("study {}: {} replicate{}, {:.0f} s of phases ({:.0f} s this run)\nresults: {}\nreport: {}\n", s_.name,
             s_.replicates, s_.replicates == 1 ? "" : "s", total, phases_.seconds(), (out_ / "results.json").string(),
             (out_ / "report.html").string());
}

// Runs the phase `p` alone (its inputs must be done): what `--phase ID` runs.
// Runs the phase `p`, which is not report, after runner.only(): alone, or checking it is done.
void run_planned(StudyRunner& runner, const PlannedPhase& p) {
  if (p.kind == "train") {
    runner.original(p.replicate);
    return;
  }
  const unlearn::Scenario sc = unlearn::parse_scenario(p.scenario);
  if (p.kind == "split") runner.split(p.replicate, sc);
  if (p.kind == "unlearn") runner.model(p.replicate, sc, p.method);
  if (p.kind == "search") runner.search(sc);
  if (p.kind == "relearn") runner.relearn(p.replicate, sc);
}

// Runs the phase `p` alone (its inputs must be done): what `--phase ID` runs.
void run_phase(StudyRunner& runner, const PlannedPhase& p, const RunCommand& c) {
  runner.only(p.id);
  if (p.kind == "report") return runner.report(c.config, c.quick);
  run_planned(runner, p);
  fmt::print("phase {}: done\n", p.id);
}

// Whether the phase `p` (not report) is done: its record matches, as do its inputs'.
bool phase_done(StudyRunner& runner, const PlannedPhase& p) {
  runner.only(kNoPhase);
  try {
    run_planned(runner, p);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// --jobs N: every phase but report as `lethe run CONFIG --phase ID` in up to N processes at once,
// each started once the phases it needs are done; then the report here, from their records.
void run_in_processes(const RunCommand& c, const Study& s, const fs::path& out, const std::vector<PlannedPhase>& plan,
                      StudyRunner& runner) {
  std::vector<ProcessJob> jobs;
  std::map<std::string, size_t> index;
  for (const PlannedPhase& p : plan) {
    if (p.kind == "report") continue;
    ProcessJob job{"phase " + p.id, phase_args(c.config, out.string(), c.quick, p.id), out / "logs" / (p.id + ".log"),
                   {}};
    for (const std::string& a : p.after) job.after.push_back(index.at(a));
    index[p.id] = jobs.size();
    jobs.push_back(std::move(job));
  }
  const unsigned cores = std::thread::hardware_concurrency();
  fmt::print(stderr, "{} phases in up to {} processes of {} thread{} each (the study's threads); logs in {}\n",
             jobs.size(), c.jobs, s.run.threads, s.run.threads == 1 ? "" : "s", (out / "logs").string());
  if (cores > 0 && c.jobs * s.run.threads > static_cast<int64_t>(cores))
    fmt::print(stderr, "note: {} processes × {} threads is more than this machine's {} cores; [study] threads = {} "
               "would not oversubscribe them (the thread count is part of every phase's record)\n",
               c.jobs, s.run.threads, cores, std::max<int64_t>(1, cores / c.jobs));
  Phases progress(static_cast<int64_t>(jobs.size()));
  run_processes(jobs, c.jobs, [&](size_t i) { progress.begin(jobs[i].name + ": done"); }, "run");
  run_phase(runner, plan.back(), c);
}

void run_study(const RunCommand& c) {
  Study s = read_study(c.config);
  if (s.tune) check_search_spaces(s);
  // --plan reads no data but with --quick, whose pool is at most the training set's size.
  DataSource source;
  if (!c.plan || c.quick) source = load_data(s.run, true, !c.plan);
  if (c.quick) apply_quick(s, source.train->size());
  const fs::path out = c.out.empty() ? fs::path("study") / s.name : fs::path(c.out);
  const std::vector<PlannedPhase> plan = plan_study(s, out);
  if (c.plan) {
    fmt::print("{}", c.format == "dot" ? plan_dot(s, plan) : plan_json(s, out, plan).dump(1) + "\n");
    return;
  }
  stop_on_interrupt("\nlethe run: interrupted; every finished phase is kept, run the same command again to resume\n");
  const PlannedPhase* one = c.phase.empty() ? nullptr : &find_phase(plan, c.phase);
  const nlohmann::json plan_record = plan_json(s, out, plan);
  LETHE_CHECK(c.plan_digest.empty() || c.plan_digest == plan_digest(plan_record), "run", "--phase ", c.phase,
              ": the study's plan is not the one this job was submitted with (--plan-digest ", c.plan_digest, ", now ",
              plan_digest(plan_record), "): the config, --out or --quick changed since; submit the study again");
  std::error_code made;
  fs::create_directories(out, made);
  LETHE_CHECK(!made && fs::is_directory(out), "run", "cannot make the output folder ", out.string(), ": ",
              made ? made.message() : "it exists and is not a folder");
  // Every phase but report, or the one phase.
  Phases phases(one ? 1 : static_cast<int64_t>(plan.size()) - 1);
  StudyRunner runner(s, out, source, start(s.run), {c.config, out.string(), c.quick}, phases);
  if (one) return run_phase(runner, *one, c);
  if (c.jobs > 1) return run_in_processes(c, s, out, plan, runner);
  if (c.slurm) {
    SlurmOptions options = s.slurm;  // [slurm], then the flags given over it
    const nn::OptionTable<SlurmOptions>& table = slurm_options();
    for (size_t i = 0; i < table.size(); ++i)
      if (c.slurm_flags[i]->count() > 0)
        std::visit([&](auto field) { options.*field = c.slurm_options.*field; }, table[i].field);
    const SlurmRun run{s.name,    c.config, out.string(),          c.quick,     s.run.device, s.run.threads,
                       plan_digest(plan_record), options, !c.no_wait, c.dry_run};
    return run_on_slurm(run, plan, [&](const PlannedPhase& p) { return phase_done(runner, p); });
  }
  runner.report(c.config, c.quick);
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
  cmd->add_flag("--plan", c->plan, "print the study's phases (id, command, inputs, outputs, the phases each needs) "
                "as JSON, and run nothing");
  cmd->add_option("--format", c->format, "--plan's format: json, or dot (Graphviz)")
      ->check(CLI::IsMember({"json", "dot"}));
  CLI::Option* phase = cmd->add_option("--phase", c->phase, "run only this phase (an id of --plan), on its inputs "
                                       "as finished phases left them; refused when one is not done or was made with "
                                       "other flags");
  CLI::Option* jobs = cmd->add_option("--jobs", c->jobs, "phases run at once, each in its own process with the "
                                      "study's threads, as soon as the phases it needs are done; the results are a "
                                      "sequential run's, bit for bit")
                          ->check(range_check(integer_in(1, 256)))
                          ->excludes(phase);
  cmd->add_option("--plan-digest", c->plan_digest, "with --phase: refuse to run unless the study's plan has this "
                  "digest (what --slurm's jobs pass: a config changed after the submission is refused)")
      ->needs(phase);
  CLI::Option* slurm = cmd->add_flag("--slurm", c->slurm, "submit every phase not done as a Slurm job (sbatch) with "
                                     "afterok dependencies, wait for them and report (README, \"On a Slurm cluster\")");
  slurm->excludes(phase)->excludes(jobs);
  cmd->add_flag("--no-wait", c->no_wait, "--slurm: print the job ids and return at once")->needs(slurm);
  cmd->add_flag("--dry-run", c->dry_run, "--slurm: print the job scripts, submit nothing")->needs(slurm);
  c->slurm_flags = add_option_flags(*cmd, c->slurm_options, slurm_options());
  cmd->callback([c] { run_study(*c); });
}

}  // namespace lethe::cli
