#pragma once
// The summary of a replicated study's scenario: per model, over the replicates (each its own
// training, split and relearning seed), the mean, standard deviation and 95% Student-t interval of
// every metric; the RCD figures as censored values (median and Kaplan–Meier, with the count
// censored and diverged, never a mean of capped steps); and per method the paired per-replicate
// differences to IEU and to the retrained model, each with its interval and whether it excludes 0.
//
// It reads the "models" arrays of results.json (README, "lethe run"), one per replicate, and writes
// the scenario's "summary" object (schema in README). Models are matched across replicates by name.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lethe::unlearn {

// `replicates[r]` is replicate r's "models" array. Throws lethe::Error when it is empty or a
// model's record lacks a field the summary needs.
nlohmann::json summarize_replicates(const std::vector<nlohmann::json>& replicates, double confidence = 0.95);

}  // namespace lethe::unlearn
