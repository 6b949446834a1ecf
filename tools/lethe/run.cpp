// lethe run: a whole unlearning study from one TOML file. It trains the original, and per scenario
// draws the split, retrains, searches every method's setting first when the study has [tune]
// (tune.h), runs every method, measures every model and relearns them all in one batched pass
// (RCD); then writes results.json, results.csv, curves.csv and report.html. Every phase resumes
// (study_phases.h) and runs through study_runner.h. --plan prints the study's graph of phases
// (study_plan.h), --phase ID runs one, --jobs N runs them in N processes, --slurm as Slurm jobs
// (slurm.h).
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/option_range.h"
#include "unlearn/study/processes.h"
#include "unlearn/study/slurm.h"
#include "unlearn/study/study_config.h"
#include "unlearn/study/study_phases.h"
#include "unlearn/study/study_plan.h"
#include "unlearn/study/study_runner.h"
#include "unlearn/study/tune.h"

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

// Runs the phase `p` alone (its inputs must be done): what `--phase ID` runs.
void run_phase(StudyRunner& runner, const PlannedPhase& p, const RunCommand& c) {
  runner.only(p.id);
  if (p.kind == "report") return runner.report(c.config, c.quick);
  runner.run(p);
  fmt::print("phase {}: done\n", p.id);
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
  StudyRunner runner(s, out, source, start(s.run), {c.config, out.string(), c.quick}, phases, run_command);
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
    return run_on_slurm(run, plan, [&](const PlannedPhase& p) { return runner.done(p); });
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
