#include "unlearn/study/slurm.h"

#include <fmt/core.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "engine/error.h"
#include "engine/file.h"
#include "unlearn/study/processes.h"
#include "unlearn/study/study_phases.h"

namespace lethe::study {

namespace fs = std::filesystem;

std::string plan_digest(const nlohmann::json& plan) {
  nlohmann::json phases = plan.at("phases");  // the version is not part of the plan's meaning
  return fnv1a64(phases.dump());
}

namespace {

// `text` as one word of a POSIX shell.
std::string quoted(const std::string& text) {
  std::string q = "'";
  for (const char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  return false;
}

std::string first_line(const std::string& text) {
  const std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(no message)" : line;
}

fs::path log_of(const SlurmRun& run, const PlannedPhase& p) {
  return fs::absolute(fs::path(run.out) / "logs" / (p.id + ".log"));
}

// The job script of phase `p`.
std::string script(const SlurmRun& run, const PlannedPhase& p) {
  const SlurmOptions& o = run.options;
  std::string s = "#!/bin/bash\n";
  auto option = [&](const std::string& text) { s += "#SBATCH " + text + "\n"; };
  option("--job-name=" + quoted("lethe:" + run.study + ":" + p.id));
  option("--chdir=" + quoted(fs::current_path().string()));
  option("--output=" + quoted(log_of(run, p).string()));
  option(fmt::format("--cpus-per-task={}", o.cpus_per_task > 0 ? o.cpus_per_task : run.threads));
  if (!o.partition.empty()) option("--partition=" + quoted(o.partition));
  if (!o.account.empty()) option("--account=" + quoted(o.account));
  if (!o.time.empty()) option("--time=" + quoted(o.time));
  const int64_t gpus = o.gpus >= 0 ? o.gpus : run.device.rfind("cuda", 0) == 0 ? 1 : 0;
  if (gpus > 0 && p.kind != "report") option(fmt::format("--gres=gpu:{}", gpus));
  for (const std::string& w : words(o.sbatch_args)) option(w);
  s += fmt::format("# phase {} ({}); after: {}\n", p.id, p.kind, p.after.empty() ? "nothing" : [&] {
    std::string a;
    for (const std::string& id : p.after) a += (a.empty() ? "" : " ") + id;
    return a;
  }());
  s += "exec " + quoted(fs::read_symlink("/proc/self/exe").string());
  for (const std::string& a : phase_args(run.config, run.out, run.quick, p.id)) s += " " + quoted(a);
  return s + " " + quoted("--plan-digest=" + run.plan_digest) + "\n";
}

struct Submitted {
  const PlannedPhase* phase;
  std::string job;
  std::string end;  // empty while in the queue
};

// Looks at the queue once: every job that left it (or ended) gets its end state.
void look(std::vector<Submitted>& jobs, int64_t& running, int64_t& pending, std::vector<std::string>& stuck) {
  std::string ids;
  for (const Submitted& j : jobs)
    if (j.end.empty()) ids += (ids.empty() ? "" : ",") + j.job;
  running = pending = 0;
  stuck.clear();
  if (ids.empty()) return;
  const CommandResult r = run_capture({"squeue", "-h", "--states=all", "-o", "%i %T %r", "-j", ids}, "run");
  std::map<std::string, std::pair<std::string, std::string>> state;  // job → state, reason
  if (r.status == 0) {
    std::istringstream in(r.out);
    for (std::string id, st, reason; in >> id >> st && std::getline(in, reason);)
      state[id] = {st, reason.empty() ? reason : reason.substr(1)};
  } else if (r.err.find("Invalid job id") == std::string::npos) {
    LETHE_FAIL("run", "squeue failed: ", first_line(r.err));
  }
  for (Submitted& j : jobs) {
    if (!j.end.empty()) continue;
    const auto it = state.find(j.job);
    if (it == state.end()) {
      j.end = "left the queue";
    } else if (it->second.first == "RUNNING" || it->second.first == "COMPLETING" ||
               it->second.first == "CONFIGURING") {
      ++running;
    } else if (it->second.first == "PENDING") {
      ++pending;
      if (it->second.second.find("DependencyNeverSatisfied") != std::string::npos) stuck.push_back(j.job);
    } else {
      j.end = it->second.first;  // COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, ...
    }
  }
}

}  // namespace

void run_on_slurm(const SlurmRun& run, const std::vector<PlannedPhase>& plan,
                  const std::function<bool(const PlannedPhase&)>& done) {
  LETHE_CHECK(run.dry_run || on_path("sbatch"), "run", "--slurm: sbatch is not on PATH (load the cluster's Slurm "
              "module, or start a local one with tools/slurm-local)");
  // What is not done, in the plan's order; report whenever anything else runs.
  std::vector<const PlannedPhase*> todo;
  for (const PlannedPhase& p : plan) {
    const bool is_report = p.kind == "report";
    if (is_report ? !todo.empty() || !fs::exists(fs::path(run.out) / "results.json") : !done(p)) todo.push_back(&p);
  }
  if (todo.empty()) {
    fmt::print("every phase of {} is done: {}\n", run.study, (fs::path(run.out) / "results.json").string());
    return;
  }
  const fs::path scripts = fs::path(run.out) / "slurm";
  std::map<std::string, std::string> job_of;  // phase id → job id, for the phases submitted now
  std::vector<Submitted> jobs;
  for (const PlannedPhase* p : todo) {
    const std::string text = script(run, *p);
    std::string dependency;  // on the jobs of the phases it needs that are submitted now
    for (const std::string& a : p->after)
      if (job_of.count(a)) dependency += ":" + job_of.at(a);
    if (run.dry_run) {
      fmt::print("# {}{}\n{}\n", p->id, dependency.empty() ? "" : ": sbatch --dependency=afterok" + dependency, text);
      job_of[p->id] = "<" + p->id + ">";
      continue;
    }
    const fs::path file = scripts / (p->id + ".sbatch");
    fs::create_directories(file.parent_path());
    fs::create_directories(log_of(run, *p).parent_path());
    write_file_atomically(file.string(), text, "run");
    std::vector<std::string> argv = {"sbatch", "--parsable"};
    if (!dependency.empty()) argv.push_back("--dependency=afterok" + dependency);
    argv.push_back(file.string());
    const CommandResult r = run_capture(argv, "run");
    LETHE_CHECK(r.status == 0, "run", "--slurm: sbatch refused phase ", p->id, ": ", first_line(r.err),
                jobs.empty() ? "" : fmt::format(" ({} jobs submitted before it keep their place: scancel them, or "
                                                "fix the option and run the same command)", jobs.size()));
    const std::vector<std::string> printed = words(r.out.substr(0, r.out.find(';')));  // "ID" or "ID;CLUSTER"
    LETHE_CHECK(!printed.empty(), "run", "--slurm: sbatch printed no job id for phase ", p->id);
    const std::string job = printed.front();
    job_of[p->id] = job;
    jobs.push_back({p, job, ""});
  }
  if (run.dry_run) return;
  std::string ids;
  for (const Submitted& j : jobs) ids += (ids.empty() ? "" : " ") + j.job;
  fmt::print(stderr, "submitted {} of {} phases as Slurm jobs {}; scripts in {}, logs in {}\n", jobs.size(),
             plan.size(), ids, scripts.string(), (fs::path(run.out) / "logs").string());
  fmt::print("{}\n", ids);
  if (!run.wait) return;

  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    int64_t running = 0, pending = 0;
    std::vector<std::string> stuck;
    look(jobs, running, pending, stuck);
    // A job whose dependency failed never runs: take it out so that the wait ends.
    for (const std::string& j : stuck) run_capture({"scancel", j}, "run");
    int64_t ended = 0;
    for (const Submitted& j : jobs) ended += !j.end.empty();
    fmt::print(stderr, "\rslurm: {}/{} jobs ended, {} running, {} pending ({:.0f} s)   ", ended, jobs.size(), running,
               pending, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (ended == static_cast<int64_t>(jobs.size())) break;
    std::this_thread::sleep_for(std::chrono::seconds(run.options.poll));
  }
  fmt::print(stderr, "\n");
  std::string failed;
  int64_t failures = 0;
  for (const Submitted& j : jobs) {
    const bool is_report = j.phase->kind == "report";
    const bool ok = is_report ? fs::exists(fs::path(run.out) / "results.json") && j.end != "FAILED" : done(*j.phase);
    if (ok) continue;
    ++failures;
    if (failures <= 10)
      failed += fmt::format("\n  phase {} (job {}, {}): its log: {}", j.phase->id, j.job, j.end,
                            log_of(run, *j.phase).string());
  }
  LETHE_CHECK(failures == 0, "run", "--slurm: ", failures, " of ", jobs.size(), " phases did not finish", failed,
              failures > 10 ? "\n  ..." : "", "\nthe same command submits again what is not done");
  fmt::print("study {}: {} phases ran as Slurm jobs\nresults: {}\nreport: {}\n", run.study, jobs.size(),
             (fs::path(run.out) / "results.json").string(), (fs::path(run.out) / "report.html").string());
}

}  // namespace lethe::study
