#include "unlearn/study_summary.h"

#include <cmath>
#include <map>
#include <optional>

#include "engine/error.h"
#include "unlearn/stats.h"

namespace lethe::unlearn {

namespace {

constexpr const char* kOp = "study summary";
constexpr const char* kRcdKinds[] = {"loss", "accuracy", "calibrated_loss"};

std::optional<double> number_at(const nlohmann::json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || !j.at(key).is_number()) return std::nullopt;
  const double v = j.at(key).get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

// Every number a model's record holds, flattened to "metrics.fa", "gap", "distance.original", ...:
// the figures with a mean (RCD steps are not among them: they can be censored).
std::map<std::string, double> numbers_of(const nlohmann::json& m) {
  std::map<std::string, double> out;
  for (const char* group : {"metrics", "distance", "controls", "generative"})
    if (m.contains(group) && m.at(group).is_object())
      for (const auto& [key, value] : m.at(group).items())
        if (auto v = number_at(m.at(group), key)) out[std::string(group) + "." + key] = *v;
  for (const char* key : {"gap", "unlearn_seconds"})
    if (auto v = number_at(m, key)) out[key] = *v;
  return out;
}

bool diverged(const nlohmann::json& m) {
  const nlohmann::json& r = m.at("rcd");
  return r.contains("diverged") && r.at("diverged").is_boolean() && r.at("diverged").get<bool>();
}

// One RCD figure of a model as a censored observation; NaN (diverged) when the run diverged
// before meeting the target.
stats::CensoredValue rcd_value(const nlohmann::json& m, const std::string& kind) {
  const nlohmann::json& r = m.at("rcd");
  const std::string steps = kind + "_steps", censored = kind + "_censored";
  LETHE_CHECK(r.contains(steps) && r.contains(censored), kOp, "model '", m.at("name").get<std::string>(),
              "' has no rcd.", steps, " / rcd.", censored);
  if (diverged(m) || !r.at(steps).is_number()) return {std::nan(""), false};
  return {r.at(steps).get<double>(), r.at(censored).get<bool>()};
}

// Whether the runs measured an RCD figure at all (the calibrated one only exists with calibration).
bool measured(const std::vector<const nlohmann::json*>& runs, const std::string& kind) {
  for (const nlohmann::json* m : runs)
    if (m != nullptr && m->at("rcd").contains(kind + "_steps") &&
        (m->at("rcd").at(kind + "_steps").is_number() || m->at("rcd").value(kind + "_censored", false)))
      return true;
  return false;
}

// The loss AUC is an area up to the crossing, or up to the cap when the loss target was not met:
// then it is a lower bound, censored like the loss RCD.
stats::CensoredValue auc_value(const nlohmann::json& m) {
  const nlohmann::json& r = m.at("rcd");
  if (diverged(m) || !r.contains("loss_auc") || !r.at("loss_auc").is_number()) return {std::nan(""), false};
  return {r.at("loss_auc").get<double>(), r.at("loss_censored").get<bool>()};
}

struct Row {
  std::string name, method, role;
  std::vector<const nlohmann::json*> runs;  // per replicate; null where the replicate lacks the model
};

nlohmann::json summaries_of(const std::vector<const nlohmann::json*>& runs, double confidence) {
  std::map<std::string, std::vector<double>> values;
  for (const nlohmann::json* m : runs)
    if (m != nullptr)
      for (const auto& [key, v] : numbers_of(*m)) values[key].push_back(v);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, v] : values) out[key] = stats::to_json(stats::summarize(v, confidence));
  return out;
}

nlohmann::json rcd_of(const std::vector<const nlohmann::json*>& runs, const Row* retrained) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string kind : {"loss", "accuracy", "loss_auc", "calibrated_loss"}) {
    if (kind == "calibrated_loss" && !measured(runs, kind)) continue;
    auto value_of = [&](const nlohmann::json& m) { return kind == "loss_auc" ? auc_value(m) : rcd_value(m, kind); };
    std::vector<stats::CensoredValue> x, d;   // this model's; the retrained model's
    std::vector<stats::BoundedValue> ratios;  // ÷ the retrained model of the same replicate
    for (size_t r = 0; r < runs.size(); ++r) {
      const bool theirs = retrained != nullptr && retrained->runs[r] != nullptr;
      if (theirs) d.push_back(value_of(*retrained->runs[r]));
      if (runs[r] == nullptr) continue;
      x.push_back(value_of(*runs[r]));
      if (theirs) ratios.push_back(stats::ratio_bound(x.back(), d.back()));
    }
    const stats::CensoredSummary num = stats::summarize_censored(x);
    nlohmann::json k = stats::to_json(num);
    // The ratio of the medians, bounded as its parts are (a censored median is a lower bound).
    if (retrained != nullptr && kind != "loss_auc") {
      const stats::CensoredSummary den = stats::summarize_censored(d);
      auto as_value = [](const stats::BoundedValue& b) {
        return stats::CensoredValue{b.bound == stats::Bound::none ? std::nan("") : b.value,
                                    b.bound == stats::Bound::at_least};
      };
      k["median_ratio"] = stats::to_json(stats::ratio_bound(as_value(num.median), as_value(den.median)));
    }
    nlohmann::json per = nlohmann::json::array();
    for (const stats::BoundedValue& b : ratios) per.push_back(stats::to_json(b));
    k["ratios"] = per;
    out[kind] = k;
  }
  return out;
}

// Paired differences of this row's figures minus the reference row's, replicate by replicate,
// over the replicates where both have the figure (RCD steps: where both are exact).
nlohmann::json paired_with(const Row& row, const Row& reference, double confidence) {
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> pairs;
  for (size_t r = 0; r < row.runs.size(); ++r) {
    if (row.runs[r] == nullptr || reference.runs[r] == nullptr) continue;
    const std::map<std::string, double> a = numbers_of(*row.runs[r]), b = numbers_of(*reference.runs[r]);
    for (const auto& [key, v] : a)
      if (b.count(key) != 0 && key != "unlearn_seconds") {
        pairs[key].first.push_back(v);
        pairs[key].second.push_back(b.at(key));
      }
    for (const char* kind : kRcdKinds) {
      const std::string steps = std::string(kind) + "_steps";
      if (!row.runs[r]->at("rcd").contains(steps) || !reference.runs[r]->at("rcd").contains(steps)) continue;
      const stats::CensoredValue x = rcd_value(*row.runs[r], kind), y = rcd_value(*reference.runs[r], kind);
      if (std::isfinite(x.value) && std::isfinite(y.value) && !x.censored && !y.censored) {
        pairs[std::string("rcd.") + kind + "_steps"].first.push_back(x.value);
        pairs[std::string("rcd.") + kind + "_steps"].second.push_back(y.value);
      }
    }
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, ab] : pairs) out[key] = stats::to_json(stats::paired_difference(ab.first, ab.second, confidence));
  return out;
}

}  // namespace

nlohmann::json summarize_replicates(const std::vector<nlohmann::json>& replicates, double confidence) {
  LETHE_CHECK(!replicates.empty(), kOp, "no replicates");
  std::vector<Row> rows;  // in the first replicate's order, then any model only later replicates have
  for (size_t r = 0; r < replicates.size(); ++r) {
    LETHE_CHECK(replicates[r].is_array(), kOp, "replicate ", r, ": models must be an array");
    for (const nlohmann::json& m : replicates[r]) {
      LETHE_CHECK(m.contains("name") && m.contains("rcd"), kOp, "replicate ", r, ": a model lacks name or rcd");
      const std::string name = m.at("name").get<std::string>();
      auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& x) { return x.name == name; });
      if (it == rows.end()) {
        rows.push_back({name, m.value("method", name), m.value("role", "unlearned"),
                        std::vector<const nlohmann::json*>(replicates.size(), nullptr)});
        it = rows.end() - 1;
      }
      it->runs[r] = &m;
    }
  }
  const Row* retrained = nullptr;
  const Row* ieu = nullptr;
  for (const Row& row : rows) {
    if (row.role == "retrained") retrained = &row;
    if (row.method == "ieu") ieu = &row;
  }
  nlohmann::json models = nlohmann::json::array();
  for (const Row& row : rows) {
    int64_t present = 0, diverged_runs = 0, damaged_runs = 0;
    for (const nlohmann::json* m : row.runs)
      if (m != nullptr) {
        ++present;
        diverged_runs += diverged(*m) ? 1 : 0;
        damaged_runs += m->value("damaged", false) ? 1 : 0;
      }
    nlohmann::json paired = nlohmann::json::object();
    if (ieu != nullptr && &row != ieu) paired["ieu"] = paired_with(row, *ieu, confidence);
    if (retrained != nullptr && &row != retrained) paired["retrained"] = paired_with(row, *retrained, confidence);
    models.push_back({{"name", row.name},
                      {"method", row.method},
                      {"role", row.role},
                      {"replicates", present},
                      {"diverged", diverged_runs},
                      {"damaged", damaged_runs},
                      {"figures", summaries_of(row.runs, confidence)},
                      {"rcd", rcd_of(row.runs, &row == retrained ? nullptr : retrained)},
                      {"paired", paired}});
  }
  return {{"replicates", replicates.size()}, {"confidence", confidence}, {"models", models}};
}

}  // namespace lethe::unlearn
