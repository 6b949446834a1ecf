// What `lethe tune` writes from its record (tools/lethe/tune_output.h), checked on
// tests/data/tune_results.json: a hand-made record of 2 scenarios (random:0.1, class:0) × 3 methods
// (ft, ga, ieu) × 3 trials with rcd_weight 0.1, so every trial that ran has an RCD (random:0.1's
// ieu trial 1, the chosen one, censored at 300); class:0's ga trial 2 failed; class:0's criteria
// span three decades (a log axis), random:0.1's one.
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"
#include "tests/temp_dir.h"
#include "tests/text_search.h"
#include "unlearn/study/study_config.h"
#include "unlearn/study/svg_plot.h"
#include "unlearn/study/tune_output.h"

using nlohmann::json;
namespace study = lethe::study;

namespace {

json fixture() { return json::parse(lethe::read_file(LETHE_TEST_DATA_DIR "/tune_results.json")); }

using lethe::test::contains, lethe::test::count;

// A CSV text's records, each its fields unquoted (RFC 4180: "" in a quoted field is one ").
std::vector<std::vector<std::string>> csv_records(const std::string& text) {
  std::vector<std::vector<std::string>> records(1, std::vector<std::string>(1));
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
      records.back().back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == ',') {
      records.back().emplace_back();
    } else if (!quoted && c == '\n') {
      records.emplace_back(1);
    } else {
      records.back().back() += c;
    }
  }
  REQUIRE(records.back() == std::vector<std::string>(1));  // the text ends with a newline
  records.pop_back();
  return records;
}

// The text from the first `open` to the first `close` after it.
std::string_view between(std::string_view text, std::string_view open, std::string_view close) {
  const size_t begin = text.find(open);
  REQUIRE(begin != std::string_view::npos);
  const size_t end = text.find(close, begin);
  REQUIRE(end != std::string_view::npos);
  return text.substr(begin, end + close.size() - begin);
}

std::string_view panel(std::string_view svg, const std::string& scenario) {
  return between(svg, "<g class=\"panel\" data-scenario=\"" + scenario + "\"", "</g>");
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

json& method(json& tune, size_t scenario, const std::string& name) {
  for (json& m : tune["scenarios"][scenario]["methods"])
    if (m["method"] == name) return m;
  FAIL("no method ", name);
  return tune;
}

// A method's chosen trial.
json& chosen(json& tune, size_t scenario, const std::string& name) {
  json& m = method(tune, scenario, name);
  return m["trials"][m["chosen"].get<size_t>()];
}

std::vector<std::string> flags(const json& trial) { return trial["flags"].get<std::vector<std::string>>(); }

// Every output made from the record, for the checks that each reads it whole first.
const std::vector<std::pair<const char*, std::function<void(const json&)>>>& outputs() {
  static const std::vector<std::pair<const char*, std::function<void(const json&)>>> all = {
      {"csv", [](const json& t) { study::tune_trials_csv(t); }},
      {"toml", [](const json& t) { study::tuned_toml(t, 0); }},
      {"svg", [](const json& t) { study::tune_plot_svg(t); }},
      {"html", [](const json& t) { study::tune_report_html(t); }},
  };
  return all;
}

void check_error(const json& tune, const std::string& message) {
  for (const auto& [name, output] : outputs()) {
    const std::string format = name;  // clang 14 captures no structured binding (CAPTURE's lambda)
    CAPTURE(format);
    CHECK_THROWS_WITH_AS(output(tune), message.c_str(), lethe::Error);
  }
}

}  // namespace

TEST_CASE("tune output: trials.csv has the header and one row per trial, the chosen ones marked") {
  json tune = fixture();
  const auto records = csv_records(study::tune_trials_csv(tune));
  REQUIRE(records.size() == 1 + 2 * 3 * 3);
  CHECK(records[0] == std::vector<std::string>{"scenario", "method", "trial", "chosen", "criterion", "gap", "fa", "ra",
                                               "va", "mia", "rcd", "rcd_censored", "seconds", "error", "flags"});
  CHECK(records[8] == std::vector<std::string>{"random:0.1", "ieu", "1", "true", "0.008", "0.008", "0.9", "0.93", "0.9",
                                               "0.25", "300", "true", "4.4", "", "--alpha=0.2 --sigma=2.5e-05 --steps=250"});
  CHECK(records[15] == std::vector<std::string>{"class:0", "ga", "2", "false", "", "", "", "", "", "", "", "false", "0.4",
                                                "unlearn: the loss at step 31 is not finite (nan)",
                                                "--ga-lr=0.002 --steps=120"});
  for (size_t s = 0; s < 2; ++s)
    for (const json& m : tune["scenarios"][s]["methods"]) {
      const std::string name = m["method"];
      CAPTURE(name);
      size_t marked = 0;
      for (const auto& r : records)
        if (r[0] == tune["scenarios"][s]["scenario"].get<std::string>() && r[1] == name && r[3] == "true") {
          ++marked;
          CHECK(r[2] == std::to_string(m["chosen"].get<int>()));
        }
      CHECK(marked == 1);
    }
  // Text with quotes, commas and newlines stays one field.
  tune["scenarios"][1]["methods"][1]["trials"][2]["error"] = "a \"b\", c\nd";
  CHECK(csv_records(study::tune_trials_csv(tune))[15][13] == "a \"b\", c\nd");
}

TEST_CASE("tune output: the tuned TOML parses as a study's tables into the chosen trials' flags") {
  json tune = fixture();
  for (size_t s = 0; s < 2; ++s) {
    CAPTURE(s);
    const std::string toml = study::tuned_toml(tune, s);
    const study::Study study = study::parse_study(toml, "tuned.toml");
    CHECK(study.method_flags.size() == 3);
    for (const char* m : {"ft", "ga", "ieu"}) {
      CAPTURE(m);
      REQUIRE(study.method_flags.count(m) == 1);
      CHECK(sorted(study.method_flags.at(m)) == sorted(flags(chosen(tune, s, m))));  // a table's keys come sorted
    }
    CHECK(contains(toml, "\"tiny\""));
    CHECK(contains(toml, tune["scenarios"][s]["scenario"].dump()));
    CHECK(contains(toml, "of 3 trials"));
    CHECK(contains(toml, "seed 7"));
    CHECK(contains(toml, "+ 0.1 × the relearning shortfall"));
  }
  CHECK(contains(study::tuned_toml(tune, 0), "\n[unlearn.ieu]\n# trial 1 of 3: criterion 0.80 points (trial 0: 2.08 points)\n"
                                           "alpha = 0.2\nsigma = 2.5e-05\nsteps = 250\n"));

  // A value whose number would read back as other text stays a string, so the flag is the one that ran.
  chosen(tune, 0, "ieu")["flags"] = {"--lr=1e-3", "--alpha=0.50", "--alpha-schedule=cosine", "--steps=300"};
  std::string toml = study::tuned_toml(tune, 0);
  CHECK(contains(toml, "lr = \"1e-3\"\nalpha = \"0.50\"\nalpha-schedule = \"cosine\"\nsteps = 300\n"));
  CHECK(sorted(study::parse_study(toml, "tuned.toml").method_flags.at("ieu")) == sorted(flags(chosen(tune, 0, "ieu"))));

  // Names from the file cannot end the comment they are quoted in and add tables.
  tune["study"] = "x\n[study]\nname = \"evil\"";
  tune["scenarios"][0]["scenario"] = "y\n[unlearn.ga]\nsteps = 1";
  toml = study::tuned_toml(tune, 0);
  const study::Study study = study::parse_study(toml, "tuned.toml");
  CHECK(study.name == "default");
  CHECK(sorted(study.method_flags.at("ga")) == sorted(flags(chosen(tune, 0, "ga"))));

  // A method whose every trial failed gets a comment, no table.
  json& ga = method(tune, 1, "ga");
  for (json& t : ga["trials"]) t["criterion"] = nullptr;
  ga["chosen"] = nullptr;
  toml = study::tuned_toml(tune, 1);
  CHECK(contains(toml, "# \"ga\": every trial failed; no setting chosen\n"));
  CHECK(study::parse_study(toml, "tuned.toml").method_flags.count("ga") == 0);
  CHECK_THROWS_WITH_AS(study::tuned_toml(tune, 2), "tune: no scenario 2 (the record has 2)", lethe::Error);
}

TEST_CASE("tune output: the plot rings each chosen trial and draws failed trials as crosses on the top edge") {
  json tune = fixture();
  const std::string svg = study::tune_plot_svg(tune);
  CHECK(count(svg, "<svg") == 1);
  CHECK(contains(svg, "data-plot=\"tune\""));
  CHECK(count(svg, "<g class=\"panel\"") == 2);
  for (size_t s = 0; s < 2; ++s) {
    const std::string scenario = tune["scenarios"][s]["scenario"];
    CAPTURE(scenario);
    const std::string_view p = panel(svg, scenario);
    CHECK(count(p, "<circle class=\"chosen\"") == 3);
    CHECK(count(p, "<path class=\"trials-line\"") == 3);
    for (const char* m : {"ft", "ga", "ieu"}) {
      CAPTURE(m);
      CHECK(contains(p, fmt::format("<circle class=\"chosen\" data-method=\"{}\" data-trial=\"{}\"", m,
                                    method(tune, s, m)["chosen"].get<int>())));
    }
  }
  // One colour per method, the study report's for its unlearned models in the order of the methods.
  const std::string_view random = panel(svg, "random:0.1");
  for (int i = 0; i < 3; ++i) {
    const std::string m = tune["scenarios"][0]["methods"][i]["method"];
    CHECK(contains(between(random, "<circle class=\"chosen\" data-method=\"" + m + "\"", "/>"),
                   "stroke=\"" + study::svg::style_of("unlearned", i).colour + "\""));
  }
  // The failed trial: a cross, not a point, centred on the plot area's top edge (the y axis' top).
  const std::string_view classes = panel(svg, "class:0");
  CHECK(count(random, "<path class=\"failed\"") == 0);
  CHECK(count(classes, "<path class=\"failed\"") == 1);
  CHECK(count(classes, "<circle class=\"trial\"") == 8);
  CHECK(count(classes, "<circle class=\"trial\" data-method=\"ga\" data-trial=\"2\"") == 0);
  const std::string cross(between(classes, "<path class=\"failed\" data-method=\"ga\" data-trial=\"2\"", "</path>"));
  CHECK(contains(cross, "<title>ga trial 2 failed</title>"));  // its tooltip
  std::smatch axis, ends;
  const std::string panel_text(classes);
  const std::regex y_axis("<line x1=\"64.0\" y1=\"([0-9.]+)\" x2=\"64.0\" y2=\"[0-9.]+\" class=\"axis\"/>");
  REQUIRE(std::regex_search(panel_text, axis, y_axis));
  REQUIRE(std::regex_search(cross, ends, std::regex("d=\"M[0-9.]+ ([0-9.]+) L[0-9.]+ ([0-9.]+) ")));
  CHECK((std::stod(ends[1]) + std::stod(ends[2])) / 2 == doctest::Approx(std::stod(axis[1])));
  // class:0's criteria span 0.04 to 39.7 points: a log axis; random:0.1's 0.8 to 11.7: linear.
  CHECK(contains(classes, "criterion (points, log scale)"));
  CHECK(contains(random, ">criterion (points)<"));
}

TEST_CASE("tune output: the page shows the setting, each method's trials with the chosen row marked, the TOML") {
  json tune = fixture();
  const std::string html = study::tune_report_html(tune);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  for (const char* setting : {"study <b>tiny</b>", "scenarios random:0.1, class:0", "<b>3 trials per method</b>",
                              "seed 7", "step budget 300", "validation split: 6000 samples", "rcd_weight 0.1",
                              "+ 0.1 × the relearning shortfall", "search time 20 min 35 s"}) {
    CAPTURE(setting);
    CHECK(contains(html, setting));
  }
  CHECK(count(html, "<svg") == 2);  // a plot per scenario
  CHECK(count(html, "<table class=\"trials\"") == 6);
  CHECK(count(html, "<tr class=\"trial") == 18);
  CHECK(count(html, "<tr class=\"trial chosen\"") == 6);
  const std::string_view section = between(html, "<section id=\"scenario-1\"", "</section>");
  const std::string_view ieu = between(section, "<table class=\"trials\" data-method=\"ieu\"", "</table>");
  const std::string_view row = between(ieu, "<tr class=\"trial chosen\"", "</tr>");
  CHECK(contains(row, "data-trial=\"1\""));
  CHECK(contains(row, "alpha = 0.2, sigma = 2.5e-05, steps = 250"));
  CHECK(contains(row, "<td class=\"num\">90.00</td>"));  // FA in %
  CHECK(contains(row, "<td class=\"num\">0.80</td>"));   // gap and criterion in points
  CHECK(contains(row, "≥ 300"));                         // a censored RCD
  const std::string_view failed =
      between(between(html, "<section id=\"scenario-2\"", "</section>"), "<tr class=\"trial failed\"", "</tr>");
  CHECK(contains(failed, "data-trial=\"2\""));
  CHECK(contains(failed, "unlearn: the loss at step 31 is not finite (nan)"));
  CHECK(contains(section, "<pre class=\"toml\">" + study::svg::escape(study::tuned_toml(tune, 0)) + "</pre>"));
  CHECK(contains(html, "<th>RCD (steps)</th>"));

  // Without RCD (rcd_weight 0) the column goes; names from the file are escaped.
  tune["rcd_weight"] = 0;
  for (json& s : tune["scenarios"])
    for (json& m : s["methods"])
      for (json& t : m["trials"]) t["rcd"] = nullptr, t["rcd_censored"] = false;
  tune["study"] = "<script>alert(1)</script>";
  const std::string plain = study::tune_report_html(tune);
  CHECK(!contains(plain, "RCD (steps)"));
  CHECK(!contains(plain, "relearning shortfall"));
  CHECK(!contains(plain, "<script>"));
  CHECK(contains(plain, "&lt;script&gt;alert(1)&lt;/script&gt;"));
}

TEST_CASE("tune output: a missing or mistyped field is a lethe::Error naming it") {
  json tune = fixture();
  tune["scenarios"][1]["methods"][2]["trials"][0].erase("criterion");
  check_error(tune, "tune: missing field scenarios[1].methods[2].trials[0].criterion");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["trials"][1]["gap"] = "small";
  check_error(tune, "tune: scenarios[0].methods[0].trials[1].gap: expected a number, got string");

  tune = fixture();
  tune["scenarios"][0]["methods"][1]["trials"][0]["values"] = json::array();
  check_error(tune, "tune: scenarios[0].methods[1].trials[0].values: expected an object, got array");

  tune = fixture();
  tune["scenarios"][0]["methods"][1]["trials"][0]["values"]["ga-lr"] = nullptr;
  check_error(tune, "tune: scenarios[0].methods[1].trials[0].values.ga-lr: expected a number, got null");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["trials"][2]["flags"][1] = "steps=95";
  check_error(tune, "tune: scenarios[0].methods[0].trials[2].flags[1]: expected --name=value, got \"steps=95\"");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["trials"][2]["flags"][1] = "--lr=0.2";
  check_error(tune, "tune: scenarios[0].methods[0].trials[2].flags[1]: flag \"--lr\" is given twice");

  tune = fixture();
  tune["scenarios"][0]["methods"][2]["space"][1]["scale"] = "cubic";
  check_error(tune, "tune: scenarios[0].methods[2].space[1].scale: expected log, linear or integer, got \"cubic\"");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["chosen"] = 3;
  check_error(tune, "tune: scenarios[0].methods[0].chosen must be an integer in [0, 2], got 3");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["chosen"] = 1.5;
  check_error(tune, "tune: scenarios[0].methods[0].chosen must be an integer in [0, 2], got 1.5");

  tune = fixture();
  tune["scenarios"][0]["methods"][0]["trials"].erase(1);
  tune["scenarios"][0]["methods"][0]["chosen"] = 1;
  check_error(tune, "tune: scenarios[0].methods[0].chosen: trial 1 is not among the trials");

  tune = fixture();
  tune["scenarios"][1]["methods"][2]["trials"][2]["trial"] = 3;  // trials are numbered 0 to trials − 1
  check_error(tune, "tune: scenarios[1].methods[2].trials[2].trial must be an integer in [0, 2], got 3");

  tune = fixture();
  tune["trials"] = 0;
  check_error(tune, "tune: trials must be an integer in [1, 2147483648], got 0");

  tune = fixture();
  method(tune, 1, "ga")["chosen"] = 2;
  check_error(tune, "tune: scenarios[1].methods[1].chosen: trial 2 failed, and a failed trial is never chosen");

  tune = fixture();
  tune["seed"] = -1;
  check_error(tune, "tune: seed must be an integer in [0, 18446744073709551615], got -1");

  tune = fixture();
  tune["pool"].erase("validation_size");
  check_error(tune, "tune: missing field pool.validation_size");

  tune = fixture();
  tune["scenarios"][1]["methods"][0]["trials"] = json::array();
  check_error(tune, "tune: scenarios[1].methods[0].trials: no trial");

  tune = fixture();
  tune["scenarios"][1]["methods"] = json::array();
  check_error(tune, "tune: scenarios[1].methods: no method");

  tune = fixture();
  tune["scenarios"] = json::array();
  check_error(tune, "tune: scenarios: no scenario");

  tune = fixture();
  tune["scenarios"][0]["retrained"] = 0.9;
  check_error(tune, "tune: scenarios[0].retrained: expected an object, got number");

  check_error(json::array(), "tune: : expected an object, got array");
}

TEST_CASE("tune output: any field removed or of another type is a lethe::Error, never another exception") {
  // Every value of the record in turn, removed and then replaced by values of each other type.
  std::vector<json::json_pointer> pointers;
  const json flat = fixture().flatten();  // leaves only: add their parents too
  for (const auto& [key, value] : flat.items())
    for (json::json_pointer p(key); !p.empty(); p = p.parent_pointer())
      if (std::find(pointers.begin(), pointers.end(), p) == pointers.end()) pointers.push_back(p);
  const std::vector<json> others = {nullptr, true, -3, 2.5, "x", json::array(), json::object()};
  size_t errors = 0;
  for (const json::json_pointer& p : pointers) {
    std::vector<json> variants;
    json erased = fixture();
    json& parent = erased[p.parent_pointer()];
    if (parent.is_object()) parent.erase(p.back()); else parent.erase(std::stoul(p.back()));
    variants.push_back(erased);
    for (const json& other : others) {
      json changed = fixture();
      changed[p] = other;
      variants.push_back(changed);
    }
    for (const json& variant : variants)
      for (const auto& [name, output] : outputs()) {
        try {
          output(variant);
        } catch (const lethe::Error&) {
          ++errors;
        } catch (const std::exception& e) {
          FAIL_CHECK(name, " at ", p.to_string(), ": ", e.what());
        }
      }
  }
  CHECK(errors > pointers.size());  // most changes are errors (an optional field's are not)
}

TEST_CASE("tune output: write_tune_outputs writes every file whole, and none from a malformed record") {
  lethe::test::TempDir dir;
  json tune = fixture();
  study::write_tune_outputs(tune, dir.path);
  CHECK(dir.names() == std::set<std::string>{"trials.csv", "tuned-random-0.1.toml", "tuned-class-0.toml", "report.html"});
  CHECK(lethe::read_file(dir.file("trials.csv")) == study::tune_trials_csv(tune));
  CHECK(lethe::read_file(dir.file("tuned-random-0.1.toml")) == study::tuned_toml(tune, 0));
  CHECK(lethe::read_file(dir.file("tuned-class-0.toml")) == study::tuned_toml(tune, 1));
  CHECK(lethe::read_file(dir.file("report.html")) == study::tune_report_html(tune));

  // A scenario's name cannot lead the file out of the folder.
  lethe::test::TempDir other;
  tune["scenarios"][1]["scenario"] = "../x/y z";
  study::write_tune_outputs(tune, other.path);
  CHECK(other.names().count("tuned-..-x-y-z.toml") == 1);

  // Two names that give one file, and a malformed record: nothing written.
  lethe::test::TempDir none;
  tune["scenarios"][0]["scenario"] = "a:b";
  tune["scenarios"][1]["scenario"] = "a,b";
  CHECK_THROWS_WITH_AS(study::write_tune_outputs(tune, none.path),
                       "tune: two scenarios write tuned-a-b.toml (\"a,b\" and another)", lethe::Error);
  tune = fixture();
  tune["scenarios"][1]["methods"][0].erase("chosen");
  CHECK_THROWS_AS(study::write_tune_outputs(tune, none.path), lethe::Error);
  CHECK(none.names().empty());
}
