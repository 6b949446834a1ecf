#pragma once
// The unlearning metrics of a model under a split, next to the original's and the retrained
// model's when their checkpoints are given: what `lethe unlearn` prints after a method and
// `lethe eval --split/--scenario` prints for any checkpoint. JSON, a text table, and a CSV row.
#include <nlohmann/json.hpp>

#include <string>

#include "commands.h"
#include "unlearn/study/common.h"
#include "nn/models.h"
#include "unlearn/scenario.h"

namespace lethe::cli {

struct ReportInputs {
  const DataSource& source;
  const unlearn::Split& split;
  Device device;
  std::string original;   // checkpoint paths; empty: not compared
  std::string retrained;
  ModelFlags plain;       // the model of plain state dicts among them
};

struct UnlearningReport {
  nlohmann::json json;  // "metrics", "comparison"
  std::string text;
};
UnlearningReport unlearning_report(nn::Model& model, const ReportInputs& in);

// Appends one row (a header first when the file is new or empty) to a CSV file.
void append_csv(const std::string& path, const nlohmann::json& result);

}  // namespace lethe::cli
