#pragma once
// A study's tables besides the HTML report (README, "lethe run"): results.csv (one row per
// replicate, scenario and model), summary.csv (one row per scenario, model and figure: mean and
// t-interval, or for RCD the censored median with its bound) and the text summary printed at the
// end of a replicated run.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace lethe::study {

void write_results_csv(const std::filesystem::path& path, const nlohmann::json& results);
void write_summary_csv(const std::filesystem::path& path, const nlohmann::json& results);

// A fixed-width table of one scenario's "summary": per model mean ± half-width of the interval,
// the RCD medians with their bounds (≥: censored runs; how many of n were censored or diverged),
// and the paired difference of the average gap to IEU's, marked "n.s." when its interval holds 0.
std::string summary_table(const nlohmann::json& summary);

}  // namespace lethe::study
