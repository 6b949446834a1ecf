// lethe report: the HTML report of a study, from its results.json (report.h) or from whatever
// phases of the study are done (study_runner.h).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <filesystem>
#include <memory>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "unlearn/study/report.h"
#include "unlearn/study/study_runner.h"

namespace lethe::cli {

namespace {

struct ReportOptions {
  std::string results, out, study, dir;
  bool quick = false;
};

void run_report(const ReportOptions& o) {
  if (!o.study.empty()) return report_study(o.study == "default" ? "" : o.study, o.dir, o.quick);
  const nlohmann::json results = parse_results(read_file(o.results, "report"), o.results);
  const std::filesystem::path out =
      o.out.empty() ? std::filesystem::path(o.results).parent_path() / "report.html" : std::filesystem::path(o.out);
  check_output_path(out.string(), "report");
  check_distinct_output({"--out", out.string()}, {{"RESULTS", o.results}}, "report");
  // A generator study's pictures are files beside its results.json.
  write_report(results, out, std::filesystem::absolute(o.results).parent_path());
  fmt::print("report written to {}\n", out.string());
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "write the HTML report of a study's results.json (lethe run)");
  CLI::Option* results = cmd->add_option("results", o->results, "results.json written by lethe run");
  CLI::Option* out = cmd->add_option("--out", o->out, "HTML file to write (default: report.html next to RESULTS)");
  CLI::Option* study =
      cmd->add_option("--study", o->study, "instead of RESULTS: the study of this TOML file (`default`: the default "
                      "study), reported from whatever phases are done, listing those that are not; writes "
                      "results.json, the tables and report.html in its folder, runs nothing")
          ->excludes(results)
          ->excludes(out);
  cmd->add_option("--dir", o->dir, "--study: the study's folder (lethe run's --out; default study/NAME)")->needs(study);
  cmd->add_flag("--quick", o->quick, "--study: the study's --quick version (as lethe run --quick ran it)")->needs(study);
  cmd->callback([o, results, study] {
    LETHE_CHECK(results->count() + study->count() == 1, "report", "give RESULTS (a results.json) or --study CONFIG");
    run_report(*o);
  });
}

}  // namespace lethe::cli
