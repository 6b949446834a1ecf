#include "unlearn/study/study_plan.h"

#include <fmt/core.h>

#include "engine/error.h"
#include "engine/version.h"
#include "unlearn/study/study_phases.h"
#include "unlearn/scenario.h"

namespace lethe::study {

std::vector<PlannedPhase> plan_study(const Study& s, const fs::path& out) {
  std::vector<PlannedPhase> plan;
  Phases unused(0);
  nlohmann::json no_timings = nlohmann::json::array();
  // Every replicate runs the methods at the settings replicate 0's search chose. The plan runs
  // nothing: its ReplicatePhases have no CommandRunner.
  const ReplicatePhases searcher(s, replicate_of(s, out, 0), unused, no_timings, {});
  std::vector<std::string> relearned, relearn_files;  // the relearn phases: what the report needs
  // A generator study without [study] evaluator trains its judge first; every relearn phase needs it.
  std::vector<std::string> judge_inputs, judge_after;
  if (generative(s)) {
    judge_inputs.push_back(evaluator_file(s, out).string());
    if (s.evaluator.empty()) {
      plan.push_back({kEvaluatorPhase, "evaluator", -1, "", "", evaluator_command(s, out), false, {},
                      judge_inputs, {}});
      judge_after.push_back(kEvaluatorPhase);
    }
  }
  for (int64_t r = 0; r < s.replicates; ++r) {
    const ReplicatePhases rp(s, replicate_of(s, out, r), unused, no_timings, {});
    const std::string original_id = rp.id("original"), original_file = rp.original_file().string();
    plan.push_back({original_id, "train", r, "", "", rp.original_command(), false, {}, {original_file}, {}});
    for (const std::string& text : s.scenarios) {
      const unlearn::Scenario scenario = unlearn::parse_scenario(text);
      const fs::path dir = rp.scenario_folder(scenario);
      const std::string split_id = rp.id(scenario, "split"), split_file = rp.split_file(scenario).string();
      const std::string search_id = searcher.id(scenario, "search");
      plan.push_back({split_id, "split", r, scenario.str(), "", rp.split_command(scenario), false, {}, {split_file}, {}});
      // The relearning reads the split and every model; it waits for the phases that make them.
      std::vector<std::string> relearn_inputs = joined({{split_file, original_file}, judge_inputs});
      std::vector<std::string> relearn_after = joined({judge_after, {original_id, split_id}});
      auto model = [&](const std::string& method, bool tuned) {
        std::vector<std::string> after = {original_id, split_id};
        if (tuned) after.push_back(search_id);
        plan.push_back({rp.id(scenario, method), "unlearn", r, scenario.str(), method,
                        rp.model_command(scenario, method, {}), tuned, {original_file, split_file},
                        {rp.model_file(scenario, method).string()}, after});
        relearn_inputs.push_back(plan.back().outputs.front());
        relearn_after.push_back(plan.back().id);
      };
      model("retrain", false);
      if (s.tune && r == 0)
        plan.push_back({search_id, "search", r, scenario.str(), "", {}, false,
                        {original_file, split_file, rp.model_file(scenario, "retrain").string()},
                        {(dir / "tune-reference.json").string(), (dir / "trials").string()},
                        {original_id, split_id, rp.id(scenario, "retrain")}});
      for (const std::string& method : s.methods) model(method, s.tune.has_value());
      std::vector<std::string> relearn_outputs = {(dir / "relearn.json").string()};
      if (generative(s)) relearn_outputs.push_back((dir / "samples").string());
      plan.push_back({rp.id(scenario, "relearn"), "relearn", r, scenario.str(), "", {}, false, relearn_inputs,
                      relearn_outputs, relearn_after});
      relearned.push_back(plan.back().id);
      relearn_files.push_back(plan.back().outputs.front());
    }
  }
  std::vector<std::string> outputs;
  for (const char* f : {"results.json", "results.csv", "summary.csv", "curves.csv", "report.html"})
    outputs.push_back((out / f).string());
  if (s.tune) outputs.push_back((out / "tune").string());
  plan.push_back({"report", "report", -1, "", "", {}, false, relearn_files, outputs, relearned});
  return plan;
}

std::vector<std::string> phase_args(const std::string& config, const std::string& out, bool quick,
                                    const std::string& id) {
  std::vector<std::string> args = {"run"};
  if (!config.empty()) args.push_back(config);
  args.push_back("--out=" + out);
  if (quick) args.push_back("--quick");
  args.push_back("--phase=" + id);
  return args;
}

const PlannedPhase& find_phase(const std::vector<PlannedPhase>& plan, const std::string& id) {
  for (const PlannedPhase& p : plan)
    if (p.id == id) return p;
  LETHE_FAIL("run", "--phase ", excerpt(id, 80, '\''), ": the study has no such phase (",
             plan.front().id, ", ..., ", plan.back().id, "; lethe run CONFIG --plan lists them)");
}

nlohmann::json plan_json(const Study& s, const fs::path& out, const std::vector<PlannedPhase>& plan) {
  nlohmann::json phases = nlohmann::json::array();
  for (const PlannedPhase& p : plan) {
    nlohmann::json j = {{"id", p.id}, {"kind", p.kind}};
    j["replicate"] = p.replicate >= 0 ? nlohmann::json(p.replicate) : nlohmann::json();
    j["scenario"] = p.scenario.empty() ? nlohmann::json() : nlohmann::json(p.scenario);
    j["method"] = p.method.empty() ? nlohmann::json() : nlohmann::json(p.method);
    j["command"] = p.command.empty() ? nlohmann::json() : nlohmann::json(p.command);
    j["tuned"] = p.tuned;
    j["inputs"] = p.inputs;
    j["outputs"] = p.outputs;
    j["after"] = p.after;
    phases.push_back(std::move(j));
  }
  return {{"lethe_version", version()}, {"study", s.name}, {"out", out.string()}, {"phases", phases}};
}

std::string plan_dot(const Study& s, const std::vector<PlannedPhase>& plan) {
  // JSON's quoting is DOT's for these strings: a quoted name with \" escapes.
  std::string dot = fmt::format("digraph study {{\n  label={};\n  rankdir=LR;\n", nlohmann::json(s.name).dump());
  for (const PlannedPhase& p : plan) {
    dot += fmt::format("  \"{}\" [label=\"{}\\n{}\"];\n", p.id, p.id, p.kind);
    for (const std::string& a : p.after) dot += fmt::format("  \"{}\" -> \"{}\";\n", a, p.id);
  }
  return dot + "}\n";
}

}  // namespace lethe::study
