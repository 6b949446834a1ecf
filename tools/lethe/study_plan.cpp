#include "study_plan.h"

#include <fmt/core.h>

#include "engine/error.h"
#include "engine/version.h"
#include "study_phases.h"
#include "tune.h"
#include "unlearn/scenario.h"

namespace lethe::cli {

std::vector<PlannedPhase> plan_study(const Study& s, const fs::path& out) {
  std::vector<PlannedPhase> plan;
  Phases unused(0);
  nlohmann::json no_timings = nlohmann::json::array();
  std::vector<std::string> relearned;  // the relearn phases: what the report needs
  const std::vector<std::string> searched = s.tune ? searched_methods(s.methods) : std::vector<std::string>{};
  for (int64_t r = 0; r < s.replicates; ++r) {
    const ReplicatePhases rp(s, replicate_of(s, out, r), unused, no_timings);
    const std::string original_id = rp.id("original");
    const std::string original_file = (rp.replicate().dir / "original.safetensors").string();
    plan.push_back({original_id, "train", r, "", "", rp.original_command(), false, {}, {original_file}, {}});
    for (const std::string& text : s.scenarios) {
      const unlearn::Scenario scenario = unlearn::parse_scenario(text);
      const fs::path dir = rp.scenario_folder(scenario);
      const std::string split_id = rp.id(scenario, "split"), split_file = (dir / "split.json").string();
      plan.push_back({split_id, "split", r, scenario.str(), "", rp.split_command(scenario), false, {}, {split_file}, {}});
      auto model = [&](const std::string& method, bool tuned, const std::string& search_id) {
        std::vector<std::string> after = {original_id, split_id};
        if (tuned) after.push_back(search_id);
        plan.push_back({rp.id(scenario, method), "unlearn", r, scenario.str(), method,
                        rp.model_command(scenario, method, {}), tuned, {original_file, split_file},
                        {rp.model_file(scenario, method).string()}, after});
      };
      model("retrain", false, "");
      const std::string retrain_file = rp.model_file(scenario, "retrain").string();
      // Every replicate runs the methods at the settings replicate 0's search chose.
      const std::string search_id =
          ReplicatePhases(s, replicate_of(s, out, 0), unused, no_timings).id(scenario, "search");
      if (s.tune && r == 0)
        plan.push_back({search_id, "search", r, scenario.str(), "", {}, false, {original_file, split_file, retrain_file},
                        {(dir / "tune-reference.json").string(), (dir / "trials").string()},
                        {original_id, split_id, rp.id(scenario, "retrain")}});
      std::vector<std::string> models = {original_file, retrain_file};
      std::vector<std::string> after = {original_id, split_id, rp.id(scenario, "retrain")};
      for (const std::string& method : s.methods) {
        model(method, s.tune.has_value(), search_id);
        models.push_back(rp.model_file(scenario, method).string());
        after.push_back(rp.id(scenario, method));
      }
      std::vector<std::string> inputs = {split_file};
      inputs.insert(inputs.end(), models.begin(), models.end());
      plan.push_back({rp.id(scenario, "relearn"), "relearn", r, scenario.str(), "", {}, false, inputs,
                      {(dir / "relearn.json").string()}, after});
      relearned.push_back(plan.back().id);
    }
  }
  std::vector<std::string> inputs, outputs;
  for (const PlannedPhase& p : plan)
    if (p.kind == "relearn") inputs.push_back(p.outputs.front());
  for (const char* f : {"results.json", "results.csv", "summary.csv", "curves.csv", "report.html"})
    outputs.push_back((out / f).string());
  if (s.tune) outputs.push_back((out / "tune").string());
  plan.push_back({"report", "report", -1, "", "", {}, false, inputs, outputs, relearned});
  return plan;
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

}  // namespace lethe::cli
