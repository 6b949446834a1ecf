#include "unlearn_report.h"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <optional>

#include "engine/error.h"
#include "nn/checkpoint.h"
#include "unlearn/study/scenario_args.h"
#include "unlearn/evaluation.h"

namespace lethe::cli {

namespace {

std::string row(const std::string& name, const unlearn::ModelMetrics& m) {
  std::string s = fmt::format("  {:<10}{:>8.4f}{:>8.4f}{:>8.4f}{:>8.4f}{:>8.4f}", name, m.headline.fa, m.headline.ra,
                              m.headline.ta, m.headline.mia, m.mia_entropy().efficacy);
  if (m.forgotten_class_test_accuracy) s += fmt::format("{:>10.4f}", *m.forgotten_class_test_accuracy);
  if (m.attack_success) s += fmt::format("{:>8.4f}", *m.attack_success);
  return s + "\n";
}

// `value` of a JSON path like "comparison.average_gap", or null.
nlohmann::json lookup(const nlohmann::json& j, const std::string& dotted) {
  const nlohmann::json* at = &j;
  size_t start = 0;
  while (start <= dotted.size()) {
    const size_t end = std::min(dotted.find('.', start), dotted.size());
    const std::string key = dotted.substr(start, end - start);
    if (!at->is_object() || !at->contains(key)) return nullptr;
    at = &(*at)[key];
    start = end + 1;
  }
  return *at;
}

}  // namespace

UnlearningReport unlearning_report(nn::Model& model, const ReportInputs& in) {
  const unlearn::EvalSets sets =
      unlearn::make_eval_sets(in.split, in.source.train, in.source.test, in.source.normalization, in.device);
  const unlearn::ModelMetrics metrics = unlearn::measure(model, sets);
  std::optional<nn::Model> original, retrained;
  std::optional<unlearn::ModelMetrics> original_metrics, retrained_metrics;
  auto load = [&](const std::string& path, std::optional<nn::Model>& m, std::optional<unlearn::ModelMetrics>& mm) {
    if (path.empty()) return;
    const nn::Checkpoint c = load_checkpoint_for(path, in.source, in.plain);
    LETHE_CHECK(c.info.model.name == model.spec().name, "unlearn", path, " holds a ", c.info.model.name, ", not a ",
                model.spec().name);
    m.emplace(nn::load_model(c, in.device));
    mm = unlearn::measure(*m, sets);
  };
  load(in.original, original, original_metrics);
  load(in.retrained, retrained, retrained_metrics);

  UnlearningReport r;
  r.json["metrics"] = unlearn::to_json(metrics);
  r.json["comparison"] = unlearn::compare(metrics, model.net(), original_metrics ? &*original_metrics : nullptr,
                                          original ? &original->net() : nullptr,
                                          retrained_metrics ? &*retrained_metrics : nullptr,
                                          retrained ? &retrained->net() : nullptr);
  const bool class_wise = in.split.scenario.kind == unlearn::ScenarioKind::class_wise;
  r.text = fmt::format("{}: forget {} samples, retain {}; {} test images{}\n", in.split.scenario.str(),
                       in.split.forget.size(), in.split.retain.size(), sets.test->size(),
                       class_wise ? " (TA: the remaining classes)" : "");
  r.text += fmt::format("  {:<10}{:>8}{:>8}{:>8}{:>8}{:>8}{}{}\n", "", "FA", "RA", "TA", "MIA", "MIA-H",
                        class_wise ? "  class TA" : "", metrics.attack_success ? "     ASR" : "");
  r.text += row("model", metrics);
  if (original_metrics) r.text += row("original", *original_metrics);
  if (retrained_metrics) r.text += row("retrained", *retrained_metrics);
  r.text += "  MIA: fraction of the forget set a logistic-regression membership classifier on the confidence calls "
            "non-member (trained on retain = members vs test = non-members, balanced); MIA-H: the same on the softmax "
            "entropy\n";
  if (retrained_metrics)
    r.text += fmt::format("average gap to retrained: {:.2f} points\n",
                          100 * r.json["comparison"]["average_gap"].get<double>());
  if (original_metrics && in.split.scenario.kind == unlearn::ScenarioKind::mislabeled)
    r.text += fmt::format("test-accuracy gain over the original: {:+.2f} points\n",
                          100 * r.json["comparison"]["test_accuracy_gain"].get<double>());
  if (original_metrics && metrics.attack_success)
    r.text += fmt::format("attack success rate: {:.4f} before, {:.4f} after\n", *original_metrics->attack_success,
                          *metrics.attack_success);
  return r;
}

void append_csv(const std::string& path, const nlohmann::json& result) {
  static const std::vector<std::pair<std::string, std::string>> columns = {
      {"command", "command"},
      {"method", "method"},
      {"scenario", "scenario"},
      {"split_digest", "split_digest"},
      {"seed", "options.seed"},
      {"checkpoint", "checkpoint"},
      {"forget_accuracy", "metrics.forget_accuracy"},
      {"retain_accuracy", "metrics.retain_accuracy"},
      {"test_accuracy", "metrics.test_accuracy"},
      {"mia_efficacy", "metrics.mia_efficacy"},
      {"mia_entropy_efficacy", "metrics.mia.entropy.logistic.efficacy"},
      {"forgotten_class_test_accuracy", "metrics.forgotten_class_test_accuracy"},
      {"attack_success_rate", "metrics.attack_success_rate"},
      {"average_gap", "comparison.average_gap"},
      {"test_accuracy_gain", "comparison.test_accuracy_gain"},
      {"l2_to_original", "comparison.weight_distances.to_original.model.l2"},
      {"l2_to_retrained", "comparison.weight_distances.to_retrained.model.l2"},
      {"method_seconds", "method_seconds"},
      {"lethe_version", "lethe_version"},
  };
  std::string header;
  for (const auto& [name, key] : columns) header += (header.empty() ? "" : ",") + name;
  std::string row;  // built whole, then appended with one checked write
  for (size_t i = 0; i < columns.size(); ++i) {
    const nlohmann::json v = lookup(result, columns[i].second);
    row += i ? "," : "";
    if (v.is_string()) row += '"' + v.get<std::string>() + '"';
    else if (!v.is_null()) row += v.dump();
  }
  append_to_csv(path, header, row + "\n");
}

}  // namespace lethe::cli
