// The study report (tools/lethe/report.cpp): the HTML page made from a results.json, checked on
// tests/data/study_results.json (two scenarios of ten models) and on edited copies of it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <string>
#include <string_view>

#include "engine/error.h"
#include "engine/file.h"
#include "tests/temp_dir.h"
#include "tools/lethe/report.h"

using nlohmann::json;
using lethe::cli::render_report;

namespace {

json fixture() { return json::parse(lethe::read_file(LETHE_TEST_DATA_DIR "/study_results.json")); }

size_t count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// The text from the first `open` to the `close` after it (empty when `open` is absent).
std::string_view between(std::string_view html, std::string_view open, std::string_view close) {
  const size_t begin = html.find(open);
  if (begin == std::string_view::npos) return {};
  const size_t end = html.find(close, begin);
  REQUIRE(end != std::string_view::npos);
  return html.substr(begin, end + close.size() - begin);
}

std::string_view scenario(std::string_view html, size_t i) {
  return between(html, "<section id=\"scenario-" + std::to_string(i + 1) + "\"", "</section>");
}

std::string_view plot(std::string_view section, std::string_view kind) {
  return between(section, "data-plot=\"" + std::string(kind) + "\"", "</svg>");
}

// The table row of the model called `name` (its name cell follows the colour swatch).
std::string_view row(std::string_view section, const std::string& name) {
  const size_t at = section.find("></span>" + name);
  REQUIRE(at != std::string_view::npos);
  const size_t begin = section.rfind("<tr", at);
  return section.substr(begin, section.find("</tr>", at) - begin);
}

// "nan" or "inf" as a word: a non-finite number printed as it is.
bool mentions_non_finite(const std::string& html) {
  return std::regex_search(html, std::regex("\\b(nan|inf|infinity)\\b", std::regex::icase));
}

json& model(json& results, size_t scenario_index, const std::string& name) {
  json& models = results["scenarios"][scenario_index]["models"];
  const auto it = std::find_if(models.begin(), models.end(), [&](const json& m) { return m["name"] == name; });
  REQUIRE(it != models.end());
  return *it;
}

}  // namespace

TEST_CASE("report: four plots per scenario, a curve, a row and a bar per model") {
  const json results = fixture();
  const std::string html = render_report(results);
  REQUIRE(results["scenarios"].size() == 2);
  CHECK(count(html, "<svg") == 8);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    const std::string_view section = scenario(html, i);
    const json& models = results["scenarios"][i]["models"];
    REQUIRE(models.size() == 10);
    CHECK(count(section, "<svg") == 4);
    for (const char* kind : {"loss", "accuracy", "distance"}) {
      CAPTURE(kind);
      const std::string_view svg = plot(section, kind);
      CHECK(count(svg, "<path class=\"curve\"") == models.size());
      for (const json& m : models)
        CHECK(count(svg, "data-model=\"" + m["name"].get<std::string>() + "\"") == 1);
    }
    CHECK(count(plot(section, "loss"), "class=\"target\"") == 1);  // the dashed loss target
    CHECK(count(plot(section, "accuracy"), "class=\"target\"") == 1);
    CHECK(count(plot(section, "rcd"), "<rect class=\"bar\"") == models.size());
    CHECK(count(section, "<tr class=\"model") == models.size());
  }
  CHECK(!mentions_non_finite(html));
}

TEST_CASE("report: damaged models are flagged, with a footnote") {
  json results = fixture();
  std::string html = render_report(results);
  for (size_t i = 0; i < 2; ++i) {
    const std::string_view section = scenario(html, i);
    CHECK(count(section, "class=\"flag\"") == 1);  // ga in both scenarios of the fixture
    CHECK(row(section, "ga").find("damaged*") != std::string_view::npos);
    CHECK(count(section, "<b>damaged*</b>: RA or TA more than 2.0 percentage points") == 1);
  }
  for (json& m : results["scenarios"][0]["models"]) m["damaged"] = false;
  html = render_report(results);
  CHECK(count(scenario(html, 0), "damaged*") == 0);  // neither flag nor footnote
}

TEST_CASE("report: RCD censored at the cap shows as a lower bound") {
  const std::string html = render_report(fixture());
  // ieu never reaches the loss target of random:0.1 within 300 steps (3× the retrained model's 100).
  const std::string_view ieu = row(scenario(html, 0), "ieu");
  CHECK(ieu.find("≥ 300") != std::string_view::npos);
  CHECK(ieu.find("≥ 3.00") != std::string_view::npos);
  CHECK(plot(scenario(html, 0), "rcd").find("≥ 3.00") != std::string_view::npos);
  CHECK(row(scenario(html, 0), "retrain").find("≥") == std::string_view::npos);
}

TEST_CASE("report: unknown and non-finite values show as a dash, never nan") {
  json results = fixture();
  json& ft = model(results, 0, "ft");
  ft["metrics"]["fa"] = nullptr;
  ft["metrics"]["ra"] = std::nan("");
  ft["rcd"]["normalized"]["loss"] = nullptr;
  ft["distance"]["retrained"] = INFINITY;
  ft["curve"][3]["forget_loss"] = std::nan("");  // breaks its loss line: a second segment
  const std::string html = render_report(results);
  CHECK(!mentions_non_finite(html));
  const std::string_view section = scenario(html, 0);
  CHECK(count(row(section, "ft"), ">—<") == 4);
  CHECK(count(row(section, "scrub"), ">—<") == 2);  // the fixture's MIA and gap of scrub are null
  const std::string_view loss = plot(section, "loss");
  const std::string_view ft_path = between(loss, "data-model=\"ft\"", "/>");
  CHECK(count(ft_path, "M") == 2);
  CHECK(count(plot(section, "rcd"), "<rect class=\"bar\"") == 9);  // no bar without a value
}

TEST_CASE("report: names and strings are HTML-escaped") {
  json results = fixture();
  model(results, 0, "ieu")["name"] = "ieu <b>\"α=2\"</b> & co";
  results["study"] = "<script>alert(1)</script>";
  const std::string html = render_report(results);
  CHECK(html.find("<b>\"α=2\"") == std::string::npos);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  const std::string escaped = "ieu &lt;b&gt;&quot;α=2&quot;&lt;/b&gt; &amp; co";
  CHECK(count(html, "data-model=\"" + escaped + "\"") == 4);  // three curves and a bar
  CHECK(count(html, escaped) >= 6);                            // and the table and legends
}

TEST_CASE("report: the loss plot goes logarithmic when losses span more than a factor of ten") {
  const std::string html = render_report(fixture());
  CHECK(plot(scenario(html, 0), "loss").find("(log scale)") == std::string_view::npos);  // 0.17 … 1.4
  CHECK(plot(scenario(html, 1), "loss").find("(log scale)") != std::string_view::npos);  // 0.3 … 14
}

TEST_CASE("report: a missing or mistyped field is a lethe::Error naming it") {
  json results = fixture();
  results["scenarios"][0]["models"][2].erase("rcd");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].models[2].rcd", lethe::Error);

  results = fixture();
  results["scenarios"][1]["models"][0]["name"] = 3;
  CHECK_THROWS_WITH_AS(render_report(results), "report: scenarios[1].models[0].name: expected a string, got number",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["models"][4]["curve"][7].erase("step");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].models[4].curve[7].step",
                       lethe::Error);

  results = fixture();
  results.erase("scenarios");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios", lethe::Error);
  CHECK_THROWS_AS(render_report(json::array()), lethe::Error);
}

TEST_CASE("report: write_report replaces the file whole") {
  lethe::test::TempDir dir;
  const std::string path = dir.file("report.html");
  lethe::write_file_atomically(path, "old");
  const json results = fixture();
  lethe::cli::write_report(results, path);
  CHECK(lethe::read_file(path) == render_report(results));
  json broken = results;
  broken.erase("timings");
  CHECK_THROWS_AS(lethe::cli::write_report(broken, path), lethe::Error);
  CHECK(lethe::read_file(path) == render_report(results));  // a failed report leaves the old one
}
