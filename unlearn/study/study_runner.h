#pragma once
// Runs a study's phases (study_plan.h): each when something needs it and at most once. report()
// needs every phase, so it runs the whole study (`lethe run`); after only(ID), a phase that is not
// done and is not ID throws instead of running, so `lethe run --phase ID` runs that phase alone on
// its finished inputs, and done() checks a phase without running anything. report_done() reports
// on the phases that are done and names those that are not (`lethe report --study`).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "unlearn/study/common.h"
#include "unlearn/study/study_config.h"
#include "unlearn/study/study_phases.h"
#include "unlearn/study/study_plan.h"
#include "unlearn/study/tune.h"

namespace lethe::study {

class StudyRunner {
 public:
  // `command` runs the phases' subcommands (study_phases.h).
  StudyRunner(const Study& s, const std::filesystem::path& out, const DataSource& source, Device device,
              TuneInvocation invocation, Phases& phases, CommandRunner command)
      : s_(s),
        out_(out),
        source_(source),
        device_(device),
        invocation_(std::move(invocation)),
        phases_(phases),
        command_(std::move(command)) {}

  void only(const std::string& phase_id);
  ReplicatePhases& replicate(int64_t r);

  // A generator study's judge: [study] evaluator, or the one its phase "evaluator" trains.
  const PhaseOutput& evaluator();
  const PhaseOutput& original(int64_t r);
  const PhaseOutput& split(int64_t r, const unlearn::Scenario& sc);
  // `method` (retrain among them) at the setting replicate 0's search chose, with [tune].
  const PhaseOutput& model(int64_t r, const unlearn::Scenario& sc, const std::string& method);
  // Replicate 0's search of the scenario: every method's chosen flags.
  const std::map<std::string, std::vector<std::string>>& search(const unlearn::Scenario& sc);
  // Measures and relearns every model of the scenario; returns the replicate's record of it.
  nlohmann::json relearn(int64_t r, const unlearn::Scenario& sc);

  // Runs the phase `p` (not report) as far as only() allows.
  void run(const PlannedPhase& p);
  // Whether the phase `p` (not report) is done: its record matches, as do its inputs'. Runs nothing.
  bool done(const PlannedPhase& p);

  // Every replicate's relearning, then results.json, the tables and report.html in the study's folder.
  void report(const std::string& config, bool quick);
  // The same from the phases of `plan` that are done, running none: the scenarios' replicates whose
  // relearning is done. Returns the ids of the phases that are not (results.json's "pending_phases",
  // listed on the page), in the plan's order.
  std::vector<std::string> report_done(const std::string& config, bool quick, const std::vector<PlannedPhase>& plan);

 private:
  void write_outputs(const std::string& config, bool quick, const std::vector<std::vector<nlohmann::json>>& by_scenario,
                    const std::vector<std::string>& pending);
  const PhaseOutput& cached(const std::string& id, const std::function<PhaseOutput()>& make);

  const Study& s_;
  std::filesystem::path out_;
  const DataSource& source_;
  Device device_;
  TuneInvocation invocation_;
  Phases& phases_;
  CommandRunner command_;
  std::string only_;
  nlohmann::json timings_ = nlohmann::json::array();
  std::map<int64_t, std::unique_ptr<ReplicatePhases>> replicates_;
  std::map<std::string, PhaseOutput> outputs_;
  // The search of a study with [tune], made by replicate 0: its record per scenario (tune.json's
  // "scenarios") and every method's chosen flags per scenario, which every replicate runs with.
  std::map<std::string, nlohmann::json> search_records_;
  std::map<std::string, std::map<std::string, std::vector<std::string>>> chosen_;
};

// `lethe report --study CONFIG`: the report of the study's phases that are done, in `out` (the
// study's folder; default study/NAME), listing those that are not. Runs no phase.
void report_study(const std::string& config, const std::string& out, bool quick);

}  // namespace lethe::study
