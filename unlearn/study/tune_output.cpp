// lethe tune's outputs from its record (tune.json): trials.csv, the tuned TOML fragments and the
// HTML page, and the "Tuning" section of the study report. Everything is made from the record as
// read_tune reads it, every field checked, so a malformed file stops before anything is written.
#include "unlearn/study/tune_output.h"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "engine/error.h"
#include "engine/file.h"
#include "nn/option_table.h"
#include "unlearn/study/report.h"
#include "unlearn/study/svg_plot.h"

namespace lethe::study {

namespace {

using nlohmann::json;
using namespace svg;

// ---------------------------------------------------------------------------------------------
// Reading.

// A flag as "--name=value": its name and value.
std::pair<std::string, std::string> flag_parts(const std::string& flag) {
  const size_t eq = flag.find('=');
  return {flag.substr(2, eq - 2), flag.substr(eq + 1)};
}

std::string read_flag(const JsonField& f) {
  const std::string flag = f.required_text();
  const size_t eq = flag.find('=');
  LETHE_CHECK(flag.rfind("--", 0) == 0 && eq != std::string::npos && eq > 2, f.op, f.path,
              ": expected --name=value, got ", excerpt(flag));
  return flag;
}

// `trials`: the record's trials per method, which numbers them 0 to trials − 1.
TuneTrial read_trial(const JsonField& f, int64_t trials) {
  TuneTrial t;
  t.trial = f["trial"].integer(0, trials - 1);
  for (const auto& [name, v] : f["values"].members()) t.values.emplace_back(name, v.required_number());
  std::set<std::string> names;  // a key twice would make the TOML fragment unreadable
  for (const JsonField& f_flag : f["flags"].items()) {
    t.flags.push_back(read_flag(f_flag));
    const std::string name = flag_parts(t.flags.back()).first;
    LETHE_CHECK(names.insert(name).second, f.op, f_flag.path, ": flag ", excerpt("--" + name), " is given twice");
  }
  t.fa = f["fa"].number();
  t.ra = f["ra"].number();
  t.va = f["va"].number();
  t.mia = f["mia"].number();
  t.gap = f["gap"].number();
  t.rcd = f["rcd"].number();
  t.rcd_censored = f["rcd_censored"].flag();
  t.criterion = f["criterion"].number();
  t.seconds = f["seconds"].number();
  t.error = f["error"].text();
  return t;
}

TuneMethod read_method(const JsonField& f, int64_t trials) {
  TuneMethod m;
  m.method = f["method"].required_text();
  for (const JsonField& a : f["space"].items()) {
    TuneAxis axis{a["name"].required_text(), a["scale"].required_text(), a["lo"].required_number(),
                  a["hi"].required_number()};
    LETHE_CHECK(axis.scale == "log" || axis.scale == "linear" || axis.scale == "integer", f.op, a.path,
                ".scale: expected log, linear or integer, got ", excerpt(axis.scale));
    m.space.push_back(axis);
  }
  for (const JsonField& t : f["trials"].items()) m.trials.push_back(read_trial(t, trials));
  LETHE_CHECK(!m.trials.empty(), f.op, f.path, ".trials: no trial");
  const JsonField chosen = f["chosen"];
  if (!chosen.is_null()) {
    const int64_t trial = chosen.integer(0, trials - 1);
    const auto it = std::find_if(m.trials.begin(), m.trials.end(), [&](const TuneTrial& t) { return t.trial == trial; });
    LETHE_CHECK(it != m.trials.end(), f.op, chosen.path, ": trial ", trial, " is not among the trials");
    LETHE_CHECK(!it->failed(), f.op, chosen.path, ": trial ", trial, " failed, and a failed trial is never chosen");
    m.chosen = static_cast<size_t>(it - m.trials.begin());
  }
  return m;
}

TuneScenario read_scenario(const JsonField& f, int64_t trials) {
  TuneScenario s;
  s.scenario = f["scenario"].required_text();
  s.forget = f["forget"].number();
  s.retain = f["retain"].number();
  s.validation = f["validation"].number();
  const JsonField r = f["retrained"];
  s.fa = r["fa"].number();
  s.ra = r["ra"].number();
  s.va = r["va"].number();
  s.mia = r["mia"].number();
  s.rcd = r.optional("rcd").number();
  s.rcd_censored = r.optional("rcd_censored").flag();
  for (const JsonField& m : f["methods"].items()) s.methods.push_back(read_method(m, trials));
  LETHE_CHECK(!s.methods.empty(), f.op, f.path, ".methods: no method");
  return s;
}

TuneRecord read_root(const json& tune) { return read_tune(JsonField{tune, "", "tune"}); }

// ---------------------------------------------------------------------------------------------
// Text shared by the outputs.

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? std::string(separator) : "") + parts[i];
  return out;
}

// The criterion of trial 0, the untuned setting; none when it failed (or is missing).
Value untuned_criterion(const TuneMethod& m) {
  for (const TuneTrial& t : m.trials)
    if (t.trial == 0 && !t.failed()) return t.criterion;
  return std::nullopt;
}

// "lr = 0.003162, steps = 187"
std::string values_text(const TuneTrial& t) {
  std::vector<std::string> parts;
  for (const auto& [name, v] : t.values) parts.push_back(fmt::format("{} = {:g}", name, v));
  return parts.empty() ? std::string(kNone) : join(parts, ", ");
}

std::string scenario_names(const TuneRecord& r) {
  std::vector<std::string> names;
  for (const TuneScenario& s : r.scenarios) names.push_back(s.scenario);
  return join(names, ", ");
}

// What a trial is ranked by, in words; `formula`: with the shortfall's definition.
std::string criterion_text(const TuneRecord& r, bool formula) {
  if (!r.rcd_weight || *r.rcd_weight <= 0) return "the validation average gap to the retrained model";
  return fmt::format("the validation average gap to the retrained model + {:g} × the relearning shortfall{}",
                     *r.rcd_weight, formula ? " max(0, 1 − RCD ÷ the retrained model's RCD)" : "");
}

// The search's setting as HTML: study, scenarios, trials, seed, budget, validation split, criterion, time.
std::string setting_html(const TuneRecord& r) {
  const std::string pool = r.subset && *r.subset > 0 ? fmt::format("a seeded subset of {:.0f} samples", *r.subset)
                                                      : std::string("the whole training set");
  return fmt::format(
      "study <b>{}</b>{} · scenario{} {} · <b>{} trials per method</b> (trial 0: the study's untuned setting; the "
      "others drawn with seed {}) · step budget {} · validation split: {} samples, {}% of the training pool ({}), "
      "pool seed {}; {} left to train on · criterion: {} (rcd_weight {}) · search time {}{}",
      escape(r.study.empty() ? "(unnamed)" : r.study),
      r.model.empty() ? "" : escape(" (" + r.model + (r.dataset.empty() ? "" : " on " + r.dataset) + ")"),
      r.scenarios.size() == 1 ? "" : "s", escape(scenario_names(r)), r.trials, r.seed, plain(r.step_budget),
      fixed(r.validation_size, 0), plain(r.validation_fraction ? Value(*r.validation_fraction * 100) : std::nullopt),
      pool, plain(r.pool_seed), fixed(r.training, 0), escape(criterion_text(r, true)), plain(r.rcd_weight),
      duration(r.search_seconds), r.wall_seconds ? " (wall " + duration(r.wall_seconds) + ")" : "");
}

// The file name of a scenario's TOML fragment: "random:0.1" → tuned-random-0.1.toml.
std::string toml_file_name(const std::string& scenario) {
  std::string name = "tuned-";
  for (const char c : scenario)
    name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '-';
  return name + ".toml";
}

// ---------------------------------------------------------------------------------------------
// trials.csv

std::string csv_text(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? "\"\"" : std::string(1, c);
  return out + "\"";
}

std::string csv_number(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; }

std::string trials_csv(const TuneRecord& r) {
  std::string csv = "scenario,method,trial,chosen,criterion,gap,fa,ra,va,mia,rcd,rcd_censored,seconds,error,flags\n";
  for (const TuneScenario& s : r.scenarios)
    for (const TuneMethod& m : s.methods)
      for (size_t i = 0; i < m.trials.size(); ++i) {
        const TuneTrial& t = m.trials[i];
        csv += join({csv_text(s.scenario), csv_text(m.method), std::to_string(t.trial),
                     m.chosen == i ? "true" : "false", csv_number(t.criterion), csv_number(t.gap), csv_number(t.fa),
                     csv_number(t.ra), csv_number(t.va), csv_number(t.mia), csv_number(t.rcd),
                     t.rcd_censored ? "true" : "false", csv_number(t.seconds),
                     t.error.empty() ? "" : csv_text(t.error), csv_text(join(t.flags, " "))},
                    ",") + "\n";
      }
  return csv;
}

// ---------------------------------------------------------------------------------------------
// tuned-SCENARIO.toml

// A TOML basic string.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += {'\\', c};
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7f) out += fmt::format("\\u{:04X}", u);
    else out += c;
  }
  return out + "\"";
}

// A key: bare where TOML allows it, else quoted.
std::string toml_key(const std::string& key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? key : toml_string(key);
}

// A flag's value: a bare number where reading it back gives the same text (the study reader
// prints integers and the shortest round trip of floats), else a string, so that the flag that ran
// is the flag the study gets.
std::string toml_value(const std::string& text) {
  const char* end = text.data() + text.size();
  int64_t i = 0;
  if (const auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end &&
                                                                   std::to_string(i) == text)
    return text;
  double d = 0;
  if (const auto [p, ec] = std::from_chars(text.data(), end, d); ec == std::errc() && p == end && std::isfinite(d) &&
                                                                  fmt::format("{}", d) == text &&
                                                                  text.find_first_of(".e") != std::string::npos)
    return text;
  return toml_string(text);
}

// Untrusted text in a comment: quoted, escaped and ASCII (a newline would end the comment).
std::string comment_text(const std::string& s) { return json(s).dump(-1, ' ', true, json::error_handler_t::replace); }

std::string criterion_points(const Value& c) { return c ? percent(c) + " points" : "none"; }

std::string scenario_toml(const TuneRecord& r, const TuneScenario& s) {
  std::string t = fmt::format(
      "# lethe tune of study {}, scenario {}: per method, of {} trials (trial 0: the untuned\n"
      "# setting; the others drawn with seed {}), the one with the smallest criterion:\n# {}.\n"
      "# Paste into the study's TOML file: an [unlearn.METHOD] table sets flags of that method only.\n",
      comment_text(r.study), comment_text(s.scenario), r.trials, r.seed, criterion_text(r, false));
  for (const TuneMethod& m : s.methods) {
    if (!m.chosen) {
      t += fmt::format("\n# {}: every trial failed; no setting chosen\n", comment_text(m.method));
      continue;
    }
    const TuneTrial& c = m.trials[*m.chosen];
    t += fmt::format("\n[unlearn.{}]\n# trial {} of {}: criterion {} (trial 0: {})\n", toml_key(m.method), c.trial,
                     m.trials.size(), criterion_points(c.criterion), criterion_points(untuned_criterion(m)));
    for (const std::string& flag : c.flags) {
      const auto [name, value] = flag_parts(flag);
      t += toml_key(name) + " = " + toml_value(value) + "\n";
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// The plot: per scenario a panel of the criterion against the trial.

// Every method's style, in the order the methods first appear: the study report colours its
// unlearned models by the order of the study's methods, so the two agree.
std::map<std::string, Style> method_styles(const TuneRecord& r) {
  std::map<std::string, Style> styles;
  int next = 0;
  for (const TuneScenario& s : r.scenarios)
    for (const TuneMethod& m : s.methods)
      if (styles.count(m.method) == 0) styles[m.method] = style_of("unlearned", next++);
  return styles;
}

Value in_points(const TuneTrial& t) { return t.failed() ? std::nullopt : Value(*t.criterion * 100); }

constexpr double kWidth = 680, kPanelHeight = 300, kFirstPanel = 34;  // kFirstPanel: below the title

// The trials on x, a unit each, ticked at whole numbers (every 2nd, 5th, 10th… when there are many).
Scale trial_scale(int64_t trials, double from, double to) {
  int64_t step = 1;
  for (int i = 0; trials > 10 * step; ++i) step = i % 3 == 1 ? step / 2 * 5 : step * 2;  // 1, 2, 5, 10, 20, 50…
  Scale x{-0.5, static_cast<double>(trials) - 0.5, from, to, false, {}};
  for (int64_t t = 0; t < trials; t += step) x.ticks.push_back(static_cast<double>(t));
  return x;
}

std::string panel(const TuneScenario& s, const std::map<std::string, Style>& styles, double top) {
  const Frame f{kWidth, kPanelHeight, 64, 480, top + 36, top + kPanelHeight - 64};
  std::string g = fmt::format("<g class=\"panel\" data-scenario=\"{}\">\n", escape(s.scenario)) +
                  text(f.left, top + 12, "scenario " + s.scenario, "class=\"label\"");
  double lo = INFINITY, hi = -INFINITY;
  int64_t trials = 1;
  for (const TuneMethod& m : s.methods)
    for (const TuneTrial& t : m.trials) {
      trials = std::max(trials, t.trial + 1);
      if (const Value v = in_points(t)) lo = std::min(lo, *v), hi = std::max(hi, *v);
    }
  if (!(lo <= hi)) return g + text(f.left, f.top + 40, "no trial ran", "class=\"label\"") + "</g>\n";
  const bool log = lo > 0 && hi / lo > 100;  // more than two decades
  const Scale x = trial_scale(trials, f.left, f.right);
  const Scale y = log ? log_scale(lo, hi, f.bottom, f.top) : linear_scale(lo, hi, f.bottom, f.top);
  g += axes(f, x, y, "trial (0: the untuned setting)", log ? "criterion (points, log scale)" : "criterion (points)");
  double legend_y = f.top + 6;
  for (const TuneMethod& m : s.methods) {
    const Style& st = styles.at(m.method);
    const std::string method = fmt::format("data-method=\"{}\"", escape(m.method));
    std::vector<std::pair<double, Value>> points;
    for (const TuneTrial& t : m.trials) points.emplace_back(static_cast<double>(t.trial), in_points(t));
    std::sort(points.begin(), points.end());  // in trial order, whatever the record's
    Style faint = st;  // the line only says which points are one method's
    faint.width = 1.2;
    faint.opacity = 0.5;
    g += curve_path(points, x, y, faint, "class=\"trials-line\" " + method);
    for (const TuneTrial& t : m.trials) {
      const double px = x(static_cast<double>(t.trial));
      if (const Value v = in_points(t)) {
        g += fmt::format("<circle class=\"trial\" {} data-trial=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.2\" "
                         "fill=\"{}\"/>\n", method, t.trial, px, y(*v), st.colour);
        continue;
      }
      g += fmt::format("<path class=\"failed\" {} data-trial=\"{}\" d=\"M{:.1f} {:.1f} L{:.1f} {:.1f} M{:.1f} {:.1f} "
                       "L{:.1f} {:.1f}\" stroke=\"{}\" stroke-width=\"2\"><title>{} trial {} failed</title></path>\n",
                       method, t.trial, px - 4, f.top - 4, px + 4, f.top + 4, px - 4, f.top + 4, px + 4, f.top - 4,
                       st.colour, escape(m.method), t.trial);
    }
    std::string label = m.method + ": none chosen";
    if (m.chosen) {
      const TuneTrial& c = m.trials[*m.chosen];
      g += fmt::format("<circle class=\"chosen\" {} data-trial=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"7\" fill=\"none\" "
                       "stroke=\"{}\" stroke-width=\"2\"/>\n", method, c.trial, x(static_cast<double>(c.trial)),
                       y(*in_points(c)), st.colour);
      label = fmt::format("{}: trial {}", m.method, c.trial);
    }
    g += legend_entry(f.right + 16, legend_y, st, label);
    legend_y += 18;
  }
  g += text(f.right + 16, legend_y + 10, "ring: the chosen trial", "class=\"legend note\"");
  g += text(f.right + 16, legend_y + 25, "× at the top: a failed trial", "class=\"legend note\"");
  return g + "</g>\n";
}

// The panels of the scenarios at `which`, one under the other.
std::string plot_svg(const TuneRecord& r, const std::vector<size_t>& which) {
  const std::map<std::string, Style> styles = method_styles(r);
  const Frame whole{kWidth, kFirstPanel + kPanelHeight * static_cast<double>(which.size()), 64, 480, 0, 0};
  std::string svg = svg_open(whole, "tune", "Validation criterion per trial");
  for (size_t k = 0; k < which.size(); ++k)
    svg += panel(r.scenarios[which[k]], styles, kFirstPanel + kPanelHeight * static_cast<double>(k));
  return svg + "</svg>\n";
}

std::vector<size_t> every_scenario(const TuneRecord& r) {
  std::vector<size_t> all(r.scenarios.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return all;
}

constexpr std::string_view kPlotCaption =
    "Each trial's criterion in percentage points, lower is better. The ring marks each method's chosen trial (the "
    "lowest criterion); a cross at the top, a trial that failed (it is never chosen). Trial 0 is the study's "
    "untuned setting.";

// As wide as one of the study report's plots, not the page's whole width.
std::string figure(const std::string& svg) {
  return fmt::format("<figure style=\"max-width: 760px\">\n{}<figcaption>{}</figcaption>\n</figure>\n", svg,
                     kPlotCaption);
}

// ---------------------------------------------------------------------------------------------
// The page.

constexpr std::string_view kPageStyle = R"(tr.chosen td { background: #eaf4ea; font-weight: 600; }
tr.failed td { color: #a33; }
td.values { white-space: nowrap; }
)";

constexpr std::string_view kHowTo =
    "<b>How to read this.</b> Every method's hyper-parameters were searched with the same number of trials. Each "
    "trial unlearned with its values and was measured on a validation split held out of the training data, never "
    "on the test set: FA, RA and VA (accuracy on the forget, retain and validation sets), MIA, and the average gap "
    "of those four to the retrained model's. The criterion ranks the trials (lower is better); each method's chosen "
    "trial is the one with the smallest criterion, and a trial that failed (a diverged loss, say) is never chosen.";

// "≥ 300" for a censored RCD (the cap; the true one is at least that).
std::string rcd_text(const Value& rcd, bool censored) { return (rcd && censored ? "≥ " : "") + fixed(rcd, 0); }

std::string space_text(const TuneMethod& m) {
  std::vector<std::string> axes_text;
  for (const TuneAxis& a : m.space) axes_text.push_back(fmt::format("{} {} [{:g}, {:g}]", a.name, a.scale, a.lo, a.hi));
  return axes_text.empty() ? std::string(kNone) : join(axes_text, ", ");
}

std::string chosen_text(const TuneMethod& m) {
  if (!m.chosen) return "every trial failed: none chosen";
  const TuneTrial& c = m.trials[*m.chosen];
  return fmt::format("chosen: trial {}, criterion {} (trial 0: {})", c.trial, criterion_points(c.criterion),
                     criterion_points(untuned_criterion(m)));
}

std::string trials_table(const TuneMethod& m, bool rcd) {
  std::string t = fmt::format(
      "<table class=\"trials\" data-method=\"{}\">\n<thead><tr><th>trial</th><th>values</th><th>FA (%)</th>"
      "<th>RA (%)</th><th>VA (%)</th><th>MIA (%)</th><th>gap (points)</th><th>criterion (points)</th>{}"
      "<th>seconds</th><th>error</th></tr></thead>\n<tbody>\n",
      escape(m.method), rcd ? "<th>RCD (steps)</th>" : "");
  for (size_t i = 0; i < m.trials.size(); ++i) {
    const TuneTrial& tr = m.trials[i];
    const bool chosen = m.chosen == i;
    t += fmt::format("<tr class=\"trial{}{}\" data-trial=\"{}\">", chosen ? " chosen" : "",
                     tr.failed() ? " failed" : "", tr.trial);
    t += cell(std::to_string(tr.trial) + (chosen ? "<span class=\"tag\">chosen</span>" : "")) +
         cell(escape(values_text(tr)), "values");
    for (const Value& v : {tr.fa, tr.ra, tr.va, tr.mia, tr.gap, tr.criterion}) t += cell(percent(v));
    if (rcd) t += cell(rcd_text(tr.rcd, tr.rcd_censored));
    t += cell(fixed(tr.seconds, 1)) + cell(escape(tr.error), "error") + "</tr>\n";
  }
  return t + "</tbody></table>\n";
}

std::string scenario_section(const TuneRecord& r, size_t index, const std::map<std::string, Style>& styles) {
  const TuneScenario& s = r.scenarios[index];
  bool rcd = false;
  for (const TuneMethod& m : s.methods)
    for (const TuneTrial& t : m.trials) rcd = rcd || t.rcd || t.rcd_censored;
  std::string h = fmt::format(
      "<section id=\"scenario-{}\">\n<h2>Scenario {}</h2>\n<p class=\"sub\">{} forget, {} retain and {} validation "
      "samples; the retrained model on them: FA {}%, RA {}%, VA {}%, MIA {}%{}</p>\n",
      index + 1, escape(s.scenario), fixed(s.forget, 0), fixed(s.retain, 0), fixed(s.validation, 0),
      percent(s.fa), percent(s.ra), percent(s.va), percent(s.mia),
      s.rcd ? ", RCD " + rcd_text(s.rcd, s.rcd_censored) + " steps" : "");
  h += figure(plot_svg(r, {index}));
  for (const TuneMethod& m : s.methods) {
    h += fmt::format("<h3>{}{}</h3>\n<p class=\"sub\">searched: {}; {}</p>\n", swatch_html(styles.at(m.method)),
                     escape(m.method), escape(space_text(m)), escape(chosen_text(m)));
    h += trials_table(m, rcd);
  }
  h += fmt::format("<h3>Chosen settings</h3>\n<p class=\"sub\">{} beside this page; paste it into the study's TOML "
                   "file.</p>\n<pre class=\"toml\">{}</pre>\n</section>\n",
                   escape(toml_file_name(s.scenario)), escape(scenario_toml(r, s)));
  return h;
}

std::string report_html(const TuneRecord& r) {
  const std::map<std::string, Style> styles = method_styles(r);
  std::string nav;
  for (size_t i = 0; i < r.scenarios.size(); ++i)
    nav += fmt::format("<a href=\"#scenario-{}\">{}</a>", i + 1, escape(r.scenarios[i].scenario));
  std::string page = page_open("lethe tune " + r.study, kPageStyle);
  page += fmt::format(
      "<header>\n<h1>Tuning of study {}</h1>\n<p class=\"meta\">lethe {}</p>\n<p class=\"meta\">{}</p>\n"
      "<p class=\"howto\">{}</p>\n<nav>{}</nav>\n</header>\n",
      escape(r.study.empty() ? "(unnamed)" : r.study), escape(r.version.empty() ? "?" : r.version), setting_html(r),
      kHowTo, nav);
  for (size_t i = 0; i < r.scenarios.size(); ++i) page += scenario_section(r, i, styles);
  return page + std::string(kPageClose);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The record.

TuneRecord read_tune(const JsonField& f) {
  TuneRecord r;
  r.study = f["study"].text();
  r.model = f.optional("model").text();
  r.dataset = f.optional("dataset").text();
  r.version = f.optional("lethe_version").text();
  r.seed = f["seed"].unsigned_integer();
  r.trials = f["trials"].integer(1, nn::kMaxCount);
  r.step_budget = f["step_budget"].number();
  r.rcd_weight = f["rcd_weight"].number();
  r.search_seconds = f["search_seconds"].number();
  r.wall_seconds = f.optional("wall_seconds").number();
  const JsonField pool = f["pool"];
  r.subset = pool["subset"].number();
  r.validation_fraction = pool["validation"].number();
  r.pool_seed = pool["seed"].number();
  r.training = pool["training"].number();
  r.validation_size = pool["validation_size"].number();
  for (const JsonField& s : f["scenarios"].items()) r.scenarios.push_back(read_scenario(s, r.trials));
  LETHE_CHECK(!r.scenarios.empty(), f.op, f.child("scenarios"), ": no scenario");
  return r;
}

std::string tune_trials_csv(const json& tune) { return trials_csv(read_root(tune)); }

std::string tuned_toml(const json& tune, size_t index) {
  const TuneRecord r = read_root(tune);
  LETHE_CHECK(index < r.scenarios.size(), "tune", "no scenario ", index, " (the record has ", r.scenarios.size(), ")");
  return scenario_toml(r, r.scenarios[index]);
}

std::string tune_plot_svg(const json& tune) {
  const TuneRecord r = read_root(tune);
  return plot_svg(r, every_scenario(r));
}

std::string tune_report_html(const json& tune) { return report_html(read_root(tune)); }

std::string tuning_section_html(const TuneRecord& r) {
  const std::map<std::string, Style> styles = method_styles(r);
  std::string h =
      fmt::format("<section id=\"tuning\">\n<h2>Tuning</h2>\n<p class=\"sub\">{}</p>\n", setting_html(r));
  h += figure(plot_svg(r, every_scenario(r)));
  h += "<table class=\"tuned\">\n<thead><tr><th>scenario</th><th>method</th><th>trials</th><th>chosen trial</th>"
       "<th>criterion (points)</th><th>trial 0 (untuned)</th><th>chosen values</th></tr></thead>\n<tbody>\n";
  for (const TuneScenario& s : r.scenarios)
    for (const TuneMethod& m : s.methods) {
      const auto failed = std::count_if(m.trials.begin(), m.trials.end(), [](const TuneTrial& t) { return t.failed(); });
      const TuneTrial* c = m.chosen ? &m.trials[*m.chosen] : nullptr;
      h += fmt::format("<tr class=\"tuned-method\" data-scenario=\"{}\" data-method=\"{}\">", escape(s.scenario),
                       escape(m.method)) +
           cell(escape(s.scenario), "name") + cell(swatch_html(styles.at(m.method)) + escape(m.method), "name") +
           cell(failed ? fmt::format("{} ({} failed)", m.trials.size(), failed) : std::to_string(m.trials.size())) +
           cell(c ? std::to_string(c->trial) : "none") + cell(percent(c ? c->criterion : std::nullopt)) +
           cell(percent(untuned_criterion(m))) + cell(c ? escape(values_text(*c)) : "every trial failed", "values") +
           "</tr>\n";
    }
  return h + "</tbody></table>\n</section>\n";
}

void write_tune_outputs(const json& tune, const std::filesystem::path& dir) {
  const TuneRecord r = read_root(tune);
  std::vector<std::pair<std::string, std::string>> files = {{"trials.csv", trials_csv(r)}};
  for (const TuneScenario& s : r.scenarios) {
    const std::string name = toml_file_name(s.scenario);
    for (const auto& [other, text] : files)
      LETHE_CHECK(other != name, "tune", "two scenarios write ", name, " (", excerpt(s.scenario), " and another)");
    files.emplace_back(name, scenario_toml(r, s));
  }
  files.emplace_back("report.html", report_html(r));
  for (const auto& [name, text] : files) write_file_atomically((dir / name).string(), text, "tune");
}

}  // namespace lethe::study
