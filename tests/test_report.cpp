// The study report (unlearn/study/report.cpp): the HTML page made from a results.json, checked on
// tests/data/study_results.json (a real tiny study: mlp, random:0.1, ft and IEU, 2 replicates of 4
// models each, relearned with calibration: 500 held-out images) and on edited copies of it. An edit of a replicate's records is summarised again
// with unlearn/study_summary.h, as `lethe run` does, so the page sees a consistent file.
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"
#include "tests/temp_dir.h"
#include "tests/text_search.h"
#include "unlearn/study/report.h"
#include "unlearn/study_summary.h"

using nlohmann::json;
using lethe::study::render_report;

namespace {

json fixture() { return json::parse(lethe::read_file(LETHE_TEST_DATA_DIR "/study_results.json")); }

using lethe::test::contains, lethe::test::count;

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

// The table row of class `cls` (summary-model, paired-model, model) of the model called `name`.
std::string_view row(std::string_view html, std::string_view cls, const std::string& name) {
  const std::string open = "<tr class=\"" + std::string(cls) + " ";
  for (size_t at = html.find(open); at != std::string_view::npos; at = html.find(open, at + 1)) {
    const size_t tag_end = html.find('>', at);
    if (contains(html.substr(at, tag_end - at), "data-model=\"" + name + "\""))
      return html.substr(at, html.find("</tr>", at) - at);
  }
  FAIL("no ", cls, " row for ", name);
  return {};
}

// Replicate r's <details> (its table) in a scenario's section.
std::string_view replicate(std::string_view section, size_t r) {
  return between(section, "<details class=\"replicate\" data-replicate=\"" + std::to_string(r) + "\"", "</details>");
}

// The cells of a table row, their tags stripped.
std::vector<std::string> cells(std::string_view tr) {
  std::vector<std::string> out;
  for (size_t at = tr.find("<td"); at != std::string_view::npos; at = tr.find("<td", at + 1)) {
    const size_t begin = tr.find('>', at) + 1, end = tr.find("</td>", begin);
    const std::string inner(tr.substr(begin, end - begin));
    out.push_back(std::regex_replace(inner, std::regex("<[^>]*>"), ""));
  }
  return out;
}

// "nan" or "inf" as a word: a non-finite number printed as it is.
bool mentions_non_finite(const std::string& html) {
  return std::regex_search(html, std::regex("\\b(nan|inf|infinity)\\b", std::regex::icase));
}

// Replicate r's record of model `name`.
json& model(json& results, size_t r, const std::string& name) {
  json& models = results["scenarios"][0]["replicates"][r]["models"];
  const auto it = std::find_if(models.begin(), models.end(), [&](const json& m) { return m["name"] == name; });
  REQUIRE(it != models.end());
  return *it;
}

json& summary_of(json& results, const std::string& name) {
  json& models = results["scenarios"][0]["summary"]["models"];
  const auto it = std::find_if(models.begin(), models.end(), [&](const json& m) { return m["name"] == name; });
  REQUIRE(it != models.end());
  return *it;
}

// Each scenario's summary made again from its replicates' records (after an edit), as lethe run does.
void resummarize(json& results) {
  for (json& sc : results["scenarios"]) {
    std::vector<json> models;
    for (const json& rep : sc["replicates"]) models.push_back(rep["models"]);
    sc["summary"] = lethe::unlearn::summarize_replicates(models, results["confidence"].get<double>());
  }
}

// A run that never met the loss target within the cap of 20 steps.
void censor_loss(json& m, double retrained_steps) {
  m["rcd"]["loss_steps"] = 20;
  m["rcd"]["loss_censored"] = true;
  m["rcd"]["normalized"]["loss"] = 20 / retrained_steps;
  m["rcd"]["bound"]["loss"] = "at_least";
}

// A run whose forget loss stopped being finite: no steps, no ratios.
void diverge(json& m) {
  json& rcd = m["rcd"];
  rcd["diverged"] = true;
  rcd["loss_steps"] = nullptr;
  rcd["accuracy_steps"] = nullptr;
  rcd["loss_auc"] = nullptr;
  for (const char* k : {"loss", "accuracy", "loss_auc"}) {
    rcd["normalized"][k] = nullptr;
    rcd["bound"][k] = "none";
  }
  m["curve"].back()["forget_loss"] = nullptr;
}

}  // namespace

TEST_CASE("report: per scenario the summary, plots with error bars, every replicate's curves and tables") {
  const json results = fixture();
  const std::string html = render_report(results);
  REQUIRE(results["scenarios"].size() == 1);
  const json& sc = results["scenarios"][0];
  REQUIRE(sc["replicates"].size() == 2);
  const json& models = sc["summary"]["models"];
  REQUIRE(models.size() == 4);
  const std::string_view section = scenario(html, 0);
  CHECK(contains(section, "2 replicates (seeds 0–1)"));

  // Eight plots: the gap with its interval, the gap against IEU's, three of RCD medians (loss,
  // accuracy, calibrated), three of curves.
  CHECK(count(html, "<svg") == 8);
  for (const char* kind :
       {"gap", "paired-ieu", "rcd-loss", "rcd-accuracy", "rcd-calibrated", "loss", "accuracy", "distance"}) {
    CAPTURE(kind);
    CHECK(!plot(section, kind).empty());
  }
  // The error bars: a mean and its interval per model but the retrained one (its gap is 0 by
  // definition), and per model compared with IEU.
  const std::string_view gap = plot(section, "gap");
  CHECK(count(gap, "<g class=\"errorbar\"") == 3);
  CHECK(count(gap, "<circle class=\"mean\"") == 3);
  CHECK(count(gap, "<circle class=\"replicate-point\"") == 6);  // each replicate's own gap
  CHECK(count(gap, "data-model=\"retrained\"") == 0);
  CHECK(count(plot(section, "paired-ieu"), "<g class=\"errorbar\"") == 3);  // original, retrained, ft
  for (const char* kind : {"rcd-loss", "rcd-accuracy", "rcd-calibrated"}) {
    CAPTURE(kind);
    CHECK(count(plot(section, kind), "<g class=\"rcd-row\"") == 4);
    CHECK(count(plot(section, kind), "<g class=\"median\" data-bound=\"exact\"") == 4);
  }

  // The curves of every replicate: a line per model and replicate, replicate 0's bold.
  for (const char* kind : {"loss", "accuracy", "distance"}) {
    CAPTURE(kind);
    const std::string_view svg = plot(section, kind);
    CHECK(count(svg, "<path class=\"curve\"") == 8);
    for (const json& m : models) {
      const std::string name = m["name"];
      CHECK(count(svg, "data-model=\"" + name + "\" data-replicate=\"0\"") == 1);
      CHECK(count(svg, "data-model=\"" + name + "\" data-replicate=\"1\"") == 1);
    }
    CHECK(count(svg, "stroke-opacity=\"0.45\" d=") == 4);  // replicate 1's, thin and pale
    CHECK(contains(svg, "thin: replicate 1"));
  }
  CHECK(count(plot(section, "loss"), "class=\"target\"") == 2);  // one dashed target per replicate
  CHECK(count(plot(section, "accuracy"), "class=\"target\"") == 2);

  // The tables: the summary and the paired differences, a row per model; each replicate's own
  // table, folded in a <details>.
  CHECK(count(section, "<tr class=\"summary-model") == 4);
  CHECK(count(section, "<tr class=\"paired-model") == 4);
  CHECK(count(section, "<details class=\"replicate\"") == 2);
  for (size_t r = 0; r < 2; ++r) {
    CAPTURE(r);
    const std::string_view details = replicate(section, r);
    CHECK(count(details, "<tr class=\"model") == 4);
    CHECK(!contains(between(details, "<details", ">"), " open"));  // folded with several replicates
  }
  CHECK(contains(section, "mean ± 95% interval (%)"));
  CHECK(!mentions_non_finite(html));
}

TEST_CASE("report: the summary shows the file's means with the half-width of their interval") {
  json results = fixture();
  const std::string html = render_report(results);
  const std::string_view section = scenario(html, 0);
  for (const char* name : {"original", "retrained", "ft", "ieu"}) {
    CAPTURE(name);
    const json& f = summary_of(results, name)["figures"];
    const std::vector<std::string> c = cells(row(section, "summary-model", name));
    REQUIRE(c.size() == 14);  // model, n, FA, RA, TA, MIA, gap, RCD loss, accuracy and cal. ×2, seconds
    CHECK(c[1] == "2");
    const char* keys[] = {"metrics.fa", "metrics.ra", "metrics.ta", "metrics.mia", "gap"};
    for (size_t k = 0; k < 5; ++k) {
      const json& s = f[keys[k]];
      const double mean = s["mean"].get<double>() * 100,
                   half = (s["ci_high"].get<double>() - s["ci_low"].get<double>()) / 2 * 100;
      CHECK(c[2 + k] == fmt::format("{:.2f} ± {:.2f}", mean, half));
    }
  }
  // RCD: medians as written, with the ratio to the retrained model's median; the retrained model is
  // the reference. IEU's median of 0 and 1 steps is 0.5, never printed as "0".
  const std::vector<std::string> ieu = cells(row(section, "summary-model", "ieu"));
  CHECK(ieu[7] == "0.5");
  CHECK(ieu[8] == "0.17");
  CHECK(cells(row(section, "summary-model", "retrained"))[8] == "1 (ref.)");
  CHECK(ieu[11] == "1.5");   // RCD-cal: 1 and 2 steps
  CHECK(ieu[12] == "0.43");  // ÷ the retrained model's 3.5
  CHECK(contains(section, "two-sided 95% Student-t interval over the 2 replicates"));
}

TEST_CASE("report: a difference whose interval holds 0 is greyed and marked n.s.") {
  json results = fixture();
  std::string html = render_report(results);
  std::string_view section = scenario(html, 0);
  // ft − IEU: +3.61 ± 55.63 points of gap, the interval holds 0.
  std::vector<std::string> ft = cells(row(section, "paired-model", "ft"));
  REQUIRE(ft.size() == 9);  // model, then gap, RCD loss, accuracy, cal. minus IEU and minus retrained
  CHECK(ft[1] == "+3.61 ± 55.63n.s.");
  CHECK(contains(row(section, "paired-model", "ft"), "<td class=\"num ns\""));
  // ft − retrained in RCD loss: −3 in both replicates, an interval of width 0 that excludes 0.
  CHECK(ft[6] == "−3.0 ± 0.0");
  CHECK(cells(row(section, "paired-model", "ieu"))[1] == "ref.");
  CHECK(count(plot(section, "paired-ieu"), "<g class=\"interval-row muted\"") == 3);

  // An interval clear of 0 is neither greyed nor marked, in the table and in the plot.
  json& d = summary_of(results, "ft")["paired"]["ieu"]["gap"];
  d["summary"]["mean"] = 0.03;
  d["summary"]["ci_low"] = 0.01;
  d["summary"]["ci_high"] = 0.05;
  d["significant"] = true;
  html = render_report(results);
  section = scenario(html, 0);
  ft = cells(row(section, "paired-model", "ft"));
  CHECK(ft[1] == "+3.00 ± 2.00");
  CHECK(contains(row(section, "paired-model", "ft"), "<td class=\"num sig\""));
  CHECK(count(plot(section, "paired-ieu"), "<g class=\"interval-row muted\"") == 2);
  CHECK(count(plot(section, "paired-ieu"), "<g class=\"interval-row\" data-model=\"ft\"") == 1);
}

TEST_CASE("report: a censored median prints as a bound, and so does a ratio with it") {
  json results = fixture();
  // IEU never meets the loss target within the cap of 20 steps, in either replicate.
  for (size_t r = 0; r < 2; ++r) censor_loss(model(results, r, "ieu"), 3);
  resummarize(results);
  std::string html = render_report(results);
  std::string_view section = scenario(html, 0);
  std::vector<std::string> ieu = cells(row(section, "summary-model", "ieu"));
  CHECK(ieu[7] == "≥ 20" "2 of 2 censored");
  CHECK(ieu[8] == "≥ 6.67");  // the median ÷ the retrained model's 3: a lower bound too
  const std::string_view rcd = between(plot(section, "rcd-loss"), "data-model=\"ieu\"", "</text>\n</g>");
  CHECK(contains(rcd, "<g class=\"median\" data-bound=\"at_least\""));  // an open marker with an arrow
  CHECK(count(rcd, "<path class=\"replicate-censored\"") == 2);
  CHECK(contains(rcd, "≥ 20 (2 of 2 censored)"));
  for (size_t r = 0; r < 2; ++r) {
    const std::vector<std::string> c = cells(row(replicate(section, r), "model", "ieu"));
    CHECK(c[7] == "≥ 20");
    CHECK(c[11] == "≥ 6.67");
  }
  // Paired RCD differences leave the censored runs out: none are left.
  CHECK(cells(row(section, "paired-model", "ft"))[2] == "—");

  // The retrained model censored instead: its median is a lower bound, every ratio to it an upper
  // bound (or n/a where both are censored), never a number that looks exact.
  results = fixture();
  for (size_t r = 0; r < 2; ++r) {
    censor_loss(model(results, r, "retrained"), 20);
    model(results, r, "ieu")["rcd"]["normalized"]["loss"] = 1.0 / 20;
    model(results, r, "ieu")["rcd"]["bound"]["loss"] = "at_most";
  }
  resummarize(results);
  html = render_report(results);
  section = scenario(html, 0);
  CHECK(cells(row(section, "summary-model", "retrained"))[7] == "≥ 20" "2 of 2 censored");
  ieu = cells(row(section, "summary-model", "ieu"));
  CHECK(ieu[8].rfind("≤ ", 0) == 0);
  CHECK(cells(row(replicate(section, 1), "model", "ieu"))[11] == "≤ 0.05");
  CHECK(contains(plot(section, "rcd-loss"), "retrained ≥ 20") == false);  // at the cap: the cap line says it
}

TEST_CASE("report: the retrained model's line near the cap's has its label a line higher, clear of the cap's") {
  // The y of the label `text` in the RCD (loss) plot of scenario 1.
  auto label_y = [](const std::string& html, const std::string& text) {
    const std::string svg(plot(scenario(html, 0), "rcd-loss"));
    std::smatch m;
    REQUIRE(std::regex_search(svg, m, std::regex("<text x=\"[0-9.]+\" y=\"([0-9.]+)\" [^>]*>" + text + "</text>")));
    return std::stod(m[1]);
  };
  // The fixture: the retrained model relearns in 3 steps, far from the cap of 20: one line of labels.
  json results = fixture();
  std::string html = render_report(results);
  CHECK(label_y(html, "retrained 3") == label_y(html, "cap 20"));
  // In 19: both labels read leftwards from their lines, 20 px apart, and would overlap.
  for (size_t r = 0; r < 2; ++r) model(results, r, "retrained")["rcd"]["loss_steps"] = 19;
  resummarize(results);
  html = render_report(results);
  CHECK(label_y(html, "retrained 19") < label_y(html, "cap 20") - 10);
}

TEST_CASE("report: a diverged run prints \"diverged\", never a number of steps") {
  json results = fixture();
  diverge(model(results, 1, "ieu"));
  resummarize(results);
  std::string html = render_report(results);
  std::string_view section = scenario(html, 0);
  const std::vector<std::string> c = cells(row(replicate(section, 1), "model", "ieu"));
  CHECK(c[0] == "ieudiverged");  // the name and its flag
  CHECK(c[7] == "diverged");
  CHECK(c[8] == "diverged");
  CHECK(c[9] == "—");  // no AUC
  CHECK(c[10] == "diverged");  // RCD-cal
  for (size_t k = 11; k < 15; ++k) CHECK(c[k] == "—");  // no ratio
  CHECK(contains(replicate(section, 1), "<b>diverged</b>: the forget loss stopped being finite"));
  CHECK(!contains(replicate(section, 0), "diverged"));
  // Over the replicates: the median of the one that did not diverge, the other counted apart.
  std::vector<std::string> summary = cells(row(section, "summary-model", "ieu"));
  CHECK(summary[0] == "ieudiverged 1 of 2");
  CHECK(summary[7] == "01 diverged");
  CHECK(contains(between(plot(section, "rcd-loss"), "data-model=\"ieu\"", "</text>\n</g>"), "0, 1 diverged"));
  CHECK(!mentions_non_finite(html));

  // Steps met before it diverged still print "diverged": the summary leaves the run out too.
  model(results, 1, "ieu")["rcd"]["loss_steps"] = 1;
  model(results, 1, "ieu")["rcd"]["accuracy_steps"] = 1;
  html = render_report(results);
  CHECK(cells(row(replicate(scenario(html, 0), 1), "model", "ieu"))[7] == "diverged");

  // Every run diverged: no median at all.
  diverge(model(results, 0, "ieu"));
  resummarize(results);
  html = render_report(results);
  section = scenario(html, 0);
  summary = cells(row(section, "summary-model", "ieu"));
  CHECK(summary[7] == "diverged2 diverged");
  CHECK(summary[8] == "n/a");
  CHECK(count(between(plot(section, "rcd-loss"), "data-model=\"ieu\"", "</text>\n</g>"), "class=\"median\"") == 0);
}

TEST_CASE("report: one replicate reads well: values without empty interval columns") {
  json results = fixture();
  json& sc = results["scenarios"][0];
  sc["replicates"].erase(1);
  results["replicates"] = 1;
  resummarize(results);
  const std::string html = render_report(results);
  const std::string_view section = scenario(html, 0);
  CHECK(contains(html, "1 replicate (seed 0)"));
  CHECK(contains(section, "value (one replicate) (%)"));
  CHECK(contains(section, "intervals, and any claim that two methods differ, need at least 2 replicates"));
  const std::string_view summary = between(section, "<table class=\"summary\"", "</table>");
  CHECK(!contains(summary, "±"));
  const json& ft = model(results, 0, "ft");
  const std::vector<std::string> c = cells(row(section, "summary-model", "ft"));
  CHECK(c[1] == "1");
  CHECK(c[2] == fmt::format("{:.2f}", ft["metrics"]["fa"].get<double>() * 100));
  CHECK(c[6] == fmt::format("{:.2f}", ft["gap"].get<double>() * 100));
  // Paired differences are the one replicate's, said to have no interval; no error bars anywhere.
  CHECK(contains(row(section, "paired-model", "ft"), "no CI"));
  CHECK(count(html, "class=\"errorbar\"") == 0);
  CHECK(count(plot(section, "gap"), "<circle class=\"mean\"") == 3);
  CHECK(contains(plot(section, "gap"), "one replicate: no interval"));
  CHECK(count(plot(section, "loss"), "<path class=\"curve\"") == 4);
  CHECK(!contains(plot(section, "loss"), "thin:"));
  CHECK(contains(between(replicate(section, 0), "<details", ">"), " open"));  // the only one: unfolded
  CHECK(!mentions_non_finite(html));
}

TEST_CASE("report: unknown and non-finite values show as a dash, never nan") {
  json results = fixture();
  json& ft = model(results, 0, "ft");
  ft["metrics"]["fa"] = nullptr;
  ft["metrics"]["ra"] = std::nan("");
  ft["distance"]["retrained"] = INFINITY;
  model(results, 0, "retrained")["curve"][1]["forget_loss"] = std::nan("");  // breaks its loss line
  summary_of(results, "ft")["figures"]["metrics.ta"] = nullptr;
  summary_of(results, "ft")["figures"]["metrics.mia"]["ci_low"] = nullptr;  // no interval: the mean alone
  const std::string html = render_report(results);
  CHECK(!mentions_non_finite(html));
  const std::string_view section = scenario(html, 0);
  const std::vector<std::string> r0 = cells(row(replicate(section, 0), "model", "ft"));
  CHECK(r0[2] == "—");
  CHECK(r0[3] == "—");
  CHECK(r0[17] == "—");
  const std::vector<std::string> s = cells(row(section, "summary-model", "ft"));
  CHECK(s[4] == "—");
  CHECK(s[5].find("±") == std::string::npos);
  const json& seconds = summary_of(results, "ft")["figures"]["unlearn_seconds"];
  CHECK(s[13] == fmt::format("{:.1f} ± {:.1f}", seconds["mean"].get<double>(),
                             (seconds["ci_high"].get<double>() - seconds["ci_low"].get<double>()) / 2));
  const std::string_view loss = plot(section, "loss");
  const std::string_view path = between(loss, "data-model=\"retrained\" data-replicate=\"0\"", "/>");
  CHECK(count(path, "M") == 2);
}

TEST_CASE("report: names and strings are HTML-escaped") {
  json results = fixture();
  const std::string name = "ieu <b>\"α=2\"</b> & co";
  for (size_t r = 0; r < 2; ++r) model(results, r, "ieu")["name"] = name;
  resummarize(results);
  results["study"] = "<script>alert(1)</script>";
  const std::string html = render_report(results);
  CHECK(html.find("<b>\"α=2\"") == std::string::npos);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  const std::string escaped = "ieu &lt;b&gt;&quot;α=2&quot;&lt;/b&gt; &amp; co";
  // Six curves (three plots, two replicates), the gap plot's row and error bar, three RCD rows, the
  // summary's, the paired table's, the figures' and both replicates' rows.
  CHECK(count(html, "data-model=\"" + escaped + "\"") == 16);
  CHECK(count(html, escaped) >= 20);  // and the names shown in tables, plots and legends
}

TEST_CASE("report: the loss plot goes logarithmic when losses span more than a factor of ten") {
  json results = fixture();
  CHECK(plot(scenario(render_report(results), 0), "loss").find("(log scale)") == std::string_view::npos);  // 1.2 … 1.4
  model(results, 1, "retrained")["curve"][0]["forget_loss"] = 14.0;
  CHECK(plot(scenario(render_report(results), 0), "loss").find("(log scale)") != std::string_view::npos);
}

TEST_CASE("report: the rcd record's other shapes: ratios as {value, bound}, no bounds, controls") {
  json results = fixture();
  // A ratio written as {value, bound} (a newer record) is read with its bound.
  model(results, 0, "ieu")["rcd"]["normalized"]["loss"] = {{"value", 6.5}, {"bound", "at_least"}};
  // A record without bounds (an older one): a censored figure's ratio is a lower bound.
  json& ft = model(results, 1, "ft");
  ft["rcd"].erase("bound");
  ft["rcd"]["loss_censored"] = true;
  ft["rcd"]["loss_steps"] = 20;
  ft["rcd"]["normalized"]["loss"] = 20.0 / 3;
  // Controls, summarised as figures of their own.
  for (size_t r = 0; r < 2; ++r)
    for (json& m : results["scenarios"][0]["replicates"][r]["models"])
      m["controls"] = {{"membership_gap", 0.01 * static_cast<double>(r + 1)}};
  resummarize(results);
  const std::string html = render_report(results);
  const std::string_view section = scenario(html, 0);
  CHECK(cells(row(replicate(section, 0), "model", "ieu"))[11] == "≥ 6.50");
  CHECK(cells(row(replicate(section, 1), "model", "ft"))[11] == "≥ 6.67");
  const std::string_view figures = between(section, "<table class=\"figures\"", "</table>");
  CHECK(contains(figures, "<th>membership_gap</th>"));
  const std::vector<std::string> c = cells(row(figures, "figure-model", "ft"));
  CHECK(std::any_of(c.begin(), c.end(), [](const std::string& x) { return x.rfind("0.0150 ± ", 0) == 0; }));  // 0.01, 0.02
}

TEST_CASE("report: RCD-cal has its columns and plot only where the study relearned with calibration") {
  json results = fixture();
  std::string html = render_report(results);
  CHECK(contains(scenario(html, 0), "<th colspan=\"2\">RCD-cal (steps)</th>"));
  CHECK(cells(row(replicate(scenario(html, 0), 1), "model", "retrained"))[10] == "5");
  // A study without calibration: the records' calibrated steps are null, the summary has none.
  for (size_t r = 0; r < 2; ++r)
    for (json& m : results["scenarios"][0]["replicates"][r]["models"]) {
      m["rcd"]["calibrated_loss_steps"] = nullptr;
      m["rcd"]["calibrated_loss_censored"] = false;
    }
  resummarize(results);
  REQUIRE(!summary_of(results, "ieu")["rcd"].contains("calibrated_loss"));
  html = render_report(results);
  const std::string_view section = scenario(html, 0);
  CHECK(!contains(section, "RCD-cal"));
  CHECK(plot(section, "rcd-calibrated").empty());
  CHECK(cells(row(section, "summary-model", "ieu")).size() == 12);
  CHECK(cells(row(section, "paired-model", "ft")).size() == 7);
  CHECK(cells(row(replicate(section, 0), "model", "ieu")).size() == 16);
  // An older record without the fields at all reads the same.
  for (json& m : results["scenarios"][0]["replicates"][0]["models"]) {
    m["rcd"].erase("calibrated_loss_steps");
    m["rcd"].erase("calibrated_loss_censored");
  }
  CHECK(cells(row(replicate(scenario(render_report(results), 0), 0), "model", "ieu")).size() == 16);
}

TEST_CASE("report: a missing or mistyped field is a lethe::Error naming it") {
  json results = fixture();
  results["scenarios"][0]["replicates"][1]["models"][2].erase("rcd");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].replicates[1].models[2].rcd",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["replicates"][0]["models"][0]["name"] = 3;
  CHECK_THROWS_WITH_AS(render_report(results),
                       "report: scenarios[0].replicates[0].models[0].name: expected a string, got number", lethe::Error);

  results = fixture();
  results["scenarios"][0]["replicates"][1]["models"][1]["curve"][2].erase("step");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].replicates[1].models[1].curve[2].step",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["replicates"][0]["relearn"].erase("loss_target");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].replicates[0].relearn.loss_target",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["summary"]["models"][1]["rcd"]["loss"].erase("median");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].summary.models[1].rcd.loss.median",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["summary"]["models"][3]["rcd"]["accuracy"]["median"]["bound"] = "roughly";
  CHECK_THROWS_WITH_AS(render_report(results),
                       "report: scenarios[0].summary.models[3].rcd.accuracy.median.bound: expected exact, at_least, "
                       "at_most or none, got \"roughly\"",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0]["summary"]["models"][2]["figures"]["gap"].erase("mean");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].summary.models[2].figures.gap.mean",
                       lethe::Error);

  results = fixture();
  results["scenarios"][0].erase("summary");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field scenarios[0].summary", lethe::Error);

  results = fixture();
  results["scenarios"][0]["replicates"] = json::array();
  CHECK_THROWS_WITH_AS(render_report(results), "report: scenarios[0].replicates: no replicate", lethe::Error);

  results = fixture();
  results.erase("confidence");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field confidence", lethe::Error);

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
  lethe::study::write_report(results, path);
  CHECK(lethe::read_file(path) == render_report(results));
  json broken = results;
  broken.erase("timings");
  CHECK_THROWS_AS(lethe::study::write_report(broken, path), lethe::Error);
  CHECK(lethe::read_file(path) == render_report(results));  // a failed report leaves the old one
}

// A generator study's replicate: its models' generator metrics and pictures. A picture is embedded
// only from a relative path inside the folder that names a PNG; every other is said missing.
TEST_CASE("report: a generator study's metrics table and pictures") {
  json results = fixture();
  json& rep = results["scenarios"][0]["replicates"][0];
  const json share = {{"value", 0.25}, {"lo", 0.2}, {"hi", 0.31}, {"hits", 25}, {"count", 100}};
  for (json& m : rep["models"])
    m["generator_metrics"] = {{"forget_class", 0}, {"forget_fidelity", share}, {"retain_fidelity", share},
                              {"forget_frechet", 12.5}, {"retain_frechet", 3.25}, {"forget_loss", 250.0},
                              {"test_loss", 251.0}, {"test_forget_class_loss", 260.0}, {"membership_gap", 10.0}};
  lethe::test::TempDir dir;
  std::filesystem::create_directories(dir.file("samples"));
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "abcde";  // the signature is what is checked
  lethe::write_file_atomically(dir.file("samples/a.png"), png);
  lethe::write_file_atomically(dir.file("samples/b.png"), "not a png");
  lethe::write_file_atomically(dir.file("outside.png"), png);
  const std::vector<std::string> names = {rep["models"][0]["name"], rep["models"][1]["name"], rep["models"][2]["name"],
                                          rep["models"][3]["name"]};
  rep["samples"] = {{names[0], "samples/a.png"}, {names[1], "samples/b.png"}, {names[2], "samples/../outside.png"},
                    {names[3], dir.file("samples/a.png")}};
  const std::string html = render_report(results, dir.path);
  const std::string_view section = scenario(html, 0);
  CHECK(count(section, "<tr class=\"generator-model") == rep["models"].size());
  CHECK(contains(row(section, "generator-model", names[0]), "25.00<span class=\"pm\"> [20.00, 31.00]</span>"));
  CHECK(contains(row(section, "generator-model", names[0]), "<td class=\"num\">12.5</td>"));
  // Base64 of the 13 bytes: 4 digits per 3 bytes, the last byte's group padded with "==".
  CHECK(count(section, "<img class=\"samples\"") == 1);
  CHECK(contains(section, "src=\"data:image/png;base64,iVBORw0KGgphYmNkZQ==\""));
  CHECK(count(section, "picture not found") == 3);  // not a PNG, a path leaving the folder, an absolute path
  // Without a folder no file is read.
  CHECK(count(scenario(render_report(results), 0), "picture not found") == 4);
}

// A study run at the settings `lethe tune` chose: results.json holds the search's record (tune.json's
// schema) under "tune", here tests/data/tune_results.json (scenarios random:0.1 and class:0; ft, ga
// and ieu with 3 trials each, one failed).
TEST_CASE("report: a tune record adds the Tuning section and, beneath each summary, that the methods were tuned") {
  json results = fixture();
  const std::string untuned = render_report(results);
  CHECK(!contains(untuned, "id=\"tuning\""));
  CHECK(!contains(untuned, "Tuned:"));
  results["tune"] = json::parse(lethe::read_file(LETHE_TEST_DATA_DIR "/tune_results.json"));
  const std::string html = render_report(results);
  const std::string_view tuning = between(html, "<section id=\"tuning\">", "</section>");
  CHECK(html.find("<section id=\"tuning\">") < html.find("<section id=\"scenario-1\""));
  CHECK(contains(between(html, "<nav>", "</nav>"), "<a href=\"#tuning\">tuning</a>"));
  // The setting, the plot (a panel per scenario, each method's chosen trial ringed), and per
  // scenario and method the trials and the chosen values.
  CHECK(contains(tuning, "<b>3 trials per method</b>"));
  CHECK(contains(tuning, "step budget 300"));
  CHECK(contains(tuning, "rcd_weight 0.1"));
  CHECK(count(tuning, "<svg") == 1);
  CHECK(count(plot(tuning, "tune"), "<g class=\"panel\"") == 2);
  CHECK(count(plot(tuning, "tune"), "<circle class=\"chosen\"") == 6);
  CHECK(count(tuning, "<tr class=\"tuned-method\"") == 6);
  const auto tuned_row = [&](const char* scenario_name, const char* method) {
    return cells(between(tuning, fmt::format("<tr class=\"tuned-method\" data-scenario=\"{}\" data-method=\"{}\">",
                                             scenario_name, method), "</tr>"));
  };
  CHECK(tuned_row("random:0.1", "ieu") == std::vector<std::string>{"random:0.1", "ieu", "3", "1", "0.80", "2.08",
                                                                   "alpha = 0.2, sigma = 2.5e-05, steps = 250"});
  CHECK(tuned_row("class:0", "ga")[2] == "3 (1 failed)");
  // The summary says so; the study's scenario random:0.1 was one the search ran on.
  const std::string_view section = scenario(html, 0);
  CHECK(contains(section, "<b>Tuned:</b> every method (ft, ga, ieu) at its tuned setting, 3 trials each: "
                          "<code>lethe tune</code> chose it on this scenario&#39;s validation split"));
  // Everything else as without the record.
  std::string rest = html;
  for (const std::string_view added : {between(html, "<section id=\"tuning\">", "</section>\n"),
                                       between(html, "<p class=\"footnote\"><b>Tuned:</b>", "</p>\n"),
                                       std::string_view("<a href=\"#tuning\">tuning</a>")})
    rest.erase(rest.find(added), added.size());
  CHECK(rest == untuned);
  results["tune"]["scenarios"].erase(0);
  CHECK(contains(scenario(render_report(results), 0), "chose it on scenario class:0&#39;s validation split"));
  // A malformed record is named by its path in results.json.
  results["tune"]["scenarios"][0]["methods"][1].erase("chosen");
  CHECK_THROWS_WITH_AS(render_report(results), "report: missing field tune.scenarios[0].methods[1].chosen", lethe::Error);
}
