#pragma once
// The HTML report of an unlearning study, made from the results.json that `lethe run` writes:
// one self-contained page (inline CSS and hand-written SVG, nothing fetched, opens offline). Per
// scenario: the summary over the replicates (mean ± confidence interval of every metric, RCD as
// censored medians with their bounds, paired differences to IEU and to the retrained model, each
// difference whose interval holds 0 marked "n.s."), plots with error bars, the relearning curves of
// every replicate, and each replicate's own table; then the configuration and the timings.
// `lethe report` remakes it from a results file.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <cstddef>
#include <string>
#include <string_view>

namespace CLI {
class App;
}

namespace lethe::cli {

// results.json's text as JSON (engine/json.h: nesting, NUL bytes, at most kMaxResultsBytes: a study's
// results are a few MB); `origin` names it in errors.
constexpr size_t kMaxResultsBytes = size_t{256} << 20;
nlohmann::json parse_results(std::string_view text, const std::string& origin);

// The page for `results` (the results.json schema of README, "lethe run"; unknown values are
// null). Throws lethe::Error naming the field ("report: missing field
// scenarios[0].replicates[1].models[3].rcd") when a field the report needs is absent or of the
// wrong type.
std::string render_report(const nlohmann::json& results);

// Writes render_report(results) to `html` atomically (temporary file, fsync, rename).
void write_report(const nlohmann::json& results, const std::filesystem::path& html);

// `lethe report RESULTS.json [--out report.html]`.
void add_report_command(CLI::App& app);

}  // namespace lethe::cli
