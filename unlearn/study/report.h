#pragma once
// The HTML report of an unlearning study, made from the results.json that `lethe run` writes:
// one self-contained page (inline CSS and hand-written SVG, nothing fetched, opens offline). Per
// scenario: the summary over the replicates (mean ± confidence interval of every metric, RCD as
// censored medians with their bounds, paired differences to IEU and to the retrained model, each
// difference whose interval holds 0 marked "n.s."), plots with error bars, the relearning curves of
// every replicate, and each replicate's own table (a generator study's also with its generator
// metrics and a picture of every model's samples); then the configuration and the timings.
// `lethe report` remakes it from a results file.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lethe::study {

// results.json's text as JSON (engine/json.h: nesting, NUL bytes, at most kMaxResultsBytes: a study's
// results are a few MB); `origin` names it in errors.
constexpr size_t kMaxResultsBytes = size_t{256} << 20;
nlohmann::json parse_results(std::string_view text, const std::string& origin);

// The page for `results` (the results.json schema of README, "lethe run"; unknown values are
// null). Throws lethe::Error naming the field ("report: missing field
// scenarios[0].replicates[1].models[3].rcd") when a field the report needs is absent or of the
// wrong type.
// A generator study's pictures (each replicate's "samples": PNG files relative to the study's
// folder) are read from `folder` and embedded as data: URLs; without a folder, or where a picture
// cannot be read (or is no PNG, or its path leaves the folder), the page says so in its place.
std::string render_report(const nlohmann::json& results, const std::filesystem::path& folder = {});

// Writes render_report(results, folder) to `html` atomically (temporary file, fsync, rename).
void write_report(const nlohmann::json& results, const std::filesystem::path& html,
                  const std::filesystem::path& folder = {});


// ---- Shared with the tune page (tune_output.h), which reads tune.json and is drawn alike.

// A value of a JSON record and its path in the record ("scenarios[0].summary.models[1]"). Every
// read checks presence and type, so a missing or mistyped field is a lethe::Error "<op>: missing
// field <path>" or "<op>: <path>: expected ..., got ...", never a nlohmann exception.
struct JsonField {
  const nlohmann::json& value;
  std::string path;
  const char* op = "report";

  std::string child(const std::string& key) const;
  // A field the record needs: present (its value may be null, "unknown").
  JsonField operator[](const std::string& key) const;
  // A field a record may lack (a newer or older producer): null when absent.
  JsonField optional(const std::string& key) const;
  // An object's members: each key (as read) with its field (the key shown short and plain in paths).
  std::vector<std::pair<std::string, JsonField>> members() const;
  bool is_null() const { return value.is_null(); }
  std::vector<JsonField> items() const;  // an array's elements
  // A number, or nothing for null (unknown) and NaN/infinity (which a producer may hold in memory).
  std::optional<double> number() const;
  double required_number() const;
  int64_t integer(int64_t lo, int64_t hi) const;  // a JSON integer in [lo, hi]
  uint64_t unsigned_integer() const;              // a JSON integer ≥ 0 (a seed)
  std::string text() const;                       // a string; null: ""
  std::string required_text() const;              // a non-empty string
  bool flag() const;                              // true or false; null: false
};

// The page's head (its title, the report's inline stylesheet and `extra_style`) up to <body>.
std::string page_open(std::string_view title, std::string_view extra_style = "");
inline constexpr std::string_view kPageClose = "</body>\n</html>\n";
// A table cell holding `html`; class "num": right-aligned numbers.
std::string cell(const std::string& html, std::string_view cls = "num");

// Numbers as the pages print them; an unknown value (null, NaN, infinity) as kNone, never "nan".
inline constexpr std::string_view kNone = "—";
std::string fixed(const std::optional<double>& v, int decimals);
std::string plain(const std::optional<double>& v);             // settings as written: 0.05, 128, 0.21
std::string percent(const std::optional<double>& fraction);    // 0.1234: "12.34"
std::string duration(const std::optional<double>& seconds);    // "12.3 s", "4 min 05 s", "1 h 02 min"

}  // namespace lethe::study
