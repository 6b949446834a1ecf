// lethe report: the study's results.json as one self-contained HTML page. The page is built from
// strings (HTML, inline CSS, SVG drawn with svg_plot.h) so that it needs no script, font or network
// to open and stays readable years later; every plot is a plain <svg> a browser or a test can inspect.
//
// A study has N replicates (each its own seed: original, split, relearning). Per scenario the page
// shows the scenario's "summary" (unlearn/study_summary.h: t-intervals, censored RCD medians with
// their bounds, paired differences) as written in results.json, never recomputed here, then the
// relearning curves of every replicate and each replicate's own table.
#include "unlearn/study/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "unlearn/study/svg_plot.h"
#include "unlearn/study/tune_output.h"

namespace lethe::study {

// ---------------------------------------------------------------------------------------------
// Shared with the tune page (report.h).

namespace {

// A key read from the file as a part of a field's path in messages: as it is when it is a short
// plain name, else quoted and cut.
std::string path_key(const std::string& key) {
  const bool plain = !key.empty() && key.size() <= 40 && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return plain ? key : excerpt(key, 40);
}

}  // namespace

std::string JsonField::child(const std::string& key) const { return path.empty() ? key : path + "." + key; }

JsonField JsonField::operator[](const std::string& key) const {
  LETHE_CHECK(value.is_object(), op, path, ": expected an object, got ", value.type_name());
  const auto it = value.find(key);
  LETHE_CHECK(it != value.end(), op, "missing field ", child(key));
  return {*it, child(key), op};
}

JsonField JsonField::optional(const std::string& key) const {
  static const nlohmann::json null;
  if (value.is_null()) return {null, child(key), op};
  LETHE_CHECK(value.is_object(), op, path, ": expected an object, got ", value.type_name());
  const auto it = value.find(key);
  return it == value.end() ? JsonField{null, child(key), op} : JsonField{*it, child(key), op};
}

std::vector<std::pair<std::string, JsonField>> JsonField::members() const {
  LETHE_CHECK(value.is_object(), op, path, ": expected an object, got ", value.type_name());
  std::vector<std::pair<std::string, JsonField>> out;
  for (const auto& [key, v] : value.items()) out.emplace_back(key, JsonField{v, child(path_key(key)), op});
  return out;
}

std::vector<JsonField> JsonField::items() const {
  LETHE_CHECK(value.is_array(), op, path, ": expected an array, got ", value.type_name());
  std::vector<JsonField> out;
  for (size_t i = 0; i < value.size(); ++i) out.push_back({value[i], fmt::format("{}[{}]", path, i), op});
  return out;
}

std::optional<double> JsonField::number() const {
  if (value.is_null()) return std::nullopt;
  LETHE_CHECK(value.is_number(), op, path, ": expected a number, got ", value.type_name());
  const double v = value.get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

double JsonField::required_number() const {
  const std::optional<double> v = number();
  LETHE_CHECK(v.has_value(), op, path, ": expected a number, got ", value.type_name());
  return *v;
}

int64_t JsonField::integer(int64_t lo, int64_t hi) const { return json_int(value, op + (": " + path), lo, hi); }

uint64_t JsonField::unsigned_integer() const { return json_uint(value, op + (": " + path)); }

std::string JsonField::text() const {
  if (value.is_null()) return "";
  LETHE_CHECK(value.is_string(), op, path, ": expected a string, got ", value.type_name());
  return value.get<std::string>();
}

std::string JsonField::required_text() const {
  const std::string s = text();
  LETHE_CHECK(!s.empty(), op, path, ": expected a non-empty string");
  return s;
}

bool JsonField::flag() const {
  if (value.is_null()) return false;
  LETHE_CHECK(value.is_boolean(), op, path, ": expected true or false, got ", value.type_name());
  return value.get<bool>();
}

std::string cell(const std::string& html, std::string_view cls) {
  return fmt::format("<td class=\"{}\">{}</td>", cls, html);
}

std::string fixed(const std::optional<double>& v, int decimals) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : std::string(kNone);
}

std::string plain(const std::optional<double>& v) { return v ? fmt::format("{:g}", *v) : std::string(kNone); }

std::string percent(const std::optional<double>& fraction) {
  return fraction ? fixed(*fraction * 100, 2) : std::string(kNone);
}

std::string duration(const std::optional<double>& seconds) {
  if (!seconds) return std::string(kNone);
  const double s = *seconds;
  if (s < 60) return fmt::format("{:.1f} s", s);
  const auto whole = static_cast<long>(std::lround(s));
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  return fmt::format("{} h {:02} min", whole / 3600, whole % 3600 / 60);
}

namespace {

using nlohmann::json;
using namespace svg;

// ---------------------------------------------------------------------------------------------
// Reading the results file. Every value is read through a JsonField, which knows its path in the
// file, so a missing or mistyped field is reported by name instead of as a nlohmann exception.

// What a number is: exact, or only a bound on the true value (a censored RCD, a ratio with a
// censored side), or nothing at all ("none": printed "n/a", never as a number).
enum class Bound { exact, at_least, at_most, none };

struct Bounded {
  Value value;
  Bound bound = Bound::none;
};

Bound read_bound(const JsonField& f) {
  const std::string s = f.text();
  if (s == "exact") return Bound::exact;
  if (s == "at_least") return Bound::at_least;
  if (s == "at_most") return Bound::at_most;
  LETHE_CHECK(s == "none" || s.empty(), "report", f.path, ": expected exact, at_least, at_most or none, got ",
              excerpt(s));
  return Bound::none;
}

// {value, bound}, or null (nothing known).
Bounded read_bounded(const JsonField& f) {
  if (f.is_null()) return {};
  Bounded b{f["value"].number(), read_bound(f["bound"])};
  if (!b.value) b.bound = Bound::none;
  return b;
}

struct Point {
  double step = 0;
  Value accuracy, loss, distance;
};

// One model of one replicate: the per-model record of results.json.
// Who a row is, in a replicate's models and in the summary alike.
struct Named {
  std::string name, method, role;  // role: original | retrained | unlearned
};

struct Model : Named {
  Value fa, ra, ta, mia, gap, unlearn_seconds, to_original, to_retrained;
  bool damaged = false, diverged = false;
  Value loss_steps, accuracy_steps, loss_auc;
  bool loss_censored = false, accuracy_censored = false;
  Bounded norm_loss, norm_accuracy, norm_auc;  // ÷ the retrained model's of the same replicate
  // RCD-cal, the calibration-matched RCD: only where the study relearned with calibration.
  bool calibrated = false;
  Value calibrated_steps;
  bool calibrated_censored = false;
  Bounded norm_calibrated;
  std::vector<Point> curve;
  // A generator's metrics (generator_metrics): its fidelity shares with their Wilson intervals.
  struct Share {
    Value value, low, high, count;
  };
  bool generator = false;
  Share forget_fidelity, retain_fidelity;
  Value forget_class, forget_frechet, retain_frechet, forget_loss, test_forget_class_loss, membership_gap;
};

// The relearning options of a replicate (or a scenario: its first replicate's), with its targets.
struct Relearn {
  std::string optimizer, data;
  Value lr, batch, steps, eval_every, accuracy_target, loss_target;
};

struct Replicate {
  Value index, seed, forget_size, relearn_seconds;
  std::string digest;
  Relearn relearn;
  std::vector<Model> models;
  std::vector<std::pair<std::string, std::string>> pictures;  // a generator study's: model, file (relative)
};

// A Summary of unlearn/stats.h: mean and t-interval over the replicates (ci_* null for n = 1).
struct Interval {
  Value n, mean, sd, low, high;
  bool has_interval() const { return mean && low && high; }
};

struct Paired {
  bool present = false;
  Interval summary;  // of the per-replicate differences
};

struct RcdSummary {
  bool present = false;
  Value n, censored, diverged;  // n: finite runs (censored included); diverged runs are not in n
  Bounded median;
  bool has_ratio = false;  // the retrained model has none (it is the reference)
  Bounded median_ratio;
};

// One model over the replicates: the scenario's summary.models[i].
struct ModelSummary : Named {
  Value replicates, diverged, damaged;  // counts
  std::vector<std::pair<std::string, Interval>> figures;
  RcdSummary loss, accuracy, calibrated;  // calibrated: RCD-cal, present only with calibration
  bool has_ieu = false, has_retrained = false;  // paired differences (the references have none)
  std::map<std::string, Paired> ieu, retrained;

  Interval figure(const std::string& key) const {
    for (const auto& [k, v] : figures)
      if (k == key) return v;
    return {};
  }
};

struct Scenario {
  std::string name;
  Relearn relearn;
  std::vector<Replicate> replicates;
  Value replicate_count, confidence;  // the summary's
  std::vector<ModelSummary> models;
};

struct Study {
  std::string name, version, created, config;  // config: pretty-printed JSON
  std::vector<std::pair<std::string, Value>> timings;
  Value total_seconds, margin, replicates, study_seed, confidence;
  std::vector<Scenario> scenarios;
  std::optional<TuneRecord> tune;  // the search that chose the methods' settings (lethe tune)
  std::vector<std::string> pending;  // the phases not done (`lethe report --study` on a study run part-way)
};

Point read_point(const JsonField& f) {
  return {f["step"].required_number(), f["forget_accuracy"].number(), f["forget_loss"].number(),
          f["distance"].number()};
}

// A model's RCD figure ÷ the retrained model's: a number, or {value, bound}. The bound comes from
// the record ("bound": {loss, accuracy, loss_auc}, at rcd or in normalized); a record without one
// gets a lower bound when the model's own figure is censored (the retrained model's censoring is
// not in its record), so a bound is never shown as an exact number.
Bounded read_ratio(const JsonField& rcd, const char* kind, bool censored) {
  const JsonField normalized = rcd["normalized"];
  const JsonField v = normalized[kind];
  if (v.value.is_object()) return read_bounded(v);
  Bounded b{v.number(), Bound::none};
  const JsonField at_rcd = rcd.optional("bound");
  const JsonField bound = at_rcd.value.is_object() ? at_rcd : normalized.optional("bound");
  if (bound.value.is_object() && !bound.optional(kind).is_null())
    b.bound = read_bound(bound.optional(kind));
  else
    b.bound = censored ? Bound::at_least : Bound::exact;
  if (!b.value) b.bound = Bound::none;
  return b;
}

Named read_named(const JsonField& f) {
  Named n{f["name"].required_text(), f["method"].text(), f["role"].required_text()};
  LETHE_CHECK(n.role == "original" || n.role == "retrained" || n.role == "unlearned", "report", f.path,
              ".role: expected original, retrained or unlearned, got ", excerpt(n.role));
  return n;
}

Model read_model(const JsonField& f) {
  Model m;
  static_cast<Named&>(m) = read_named(f);
  const JsonField metrics = f["metrics"];
  m.fa = metrics["fa"].number();
  m.ra = metrics["ra"].number();
  m.ta = metrics["ta"].number();
  m.mia = metrics["mia"].number();
  m.gap = f["gap"].number();
  m.unlearn_seconds = f["unlearn_seconds"].number();
  m.damaged = f["damaged"].flag();
  m.to_original = f["distance"]["original"].number();
  m.to_retrained = f["distance"]["retrained"].number();
  const JsonField rcd = f["rcd"];
  m.diverged = rcd["diverged"].flag();
  m.loss_steps = rcd["loss_steps"].number();
  m.accuracy_steps = rcd["accuracy_steps"].number();
  m.loss_auc = rcd["loss_auc"].number();
  m.loss_censored = rcd["loss_censored"].flag();
  m.accuracy_censored = rcd["accuracy_censored"].flag();
  m.norm_loss = read_ratio(rcd, "loss", m.loss_censored);
  m.norm_accuracy = read_ratio(rcd, "accuracy", m.accuracy_censored);
  m.norm_auc = read_ratio(rcd, "loss_auc", m.loss_censored);
  const JsonField calibrated = rcd.optional("calibrated_loss_steps");
  m.calibrated_steps = calibrated.number();
  m.calibrated_censored = rcd.optional("calibrated_loss_censored").flag();
  m.calibrated = m.calibrated_steps || m.calibrated_censored;
  if (m.calibrated) m.norm_calibrated = read_ratio(rcd, "calibrated_loss", m.calibrated_censored);
  for (const JsonField& p : f["curve"].items()) m.curve.push_back(read_point(p));
  if (const JsonField g = f.optional("generator_metrics"); !g.is_null()) {
    auto share = [](const JsonField& x) {
      return Model::Share{x["value"].number(), x["lo"].number(), x["hi"].number(), x["count"].number()};
    };
    m.generator = true;
    m.forget_fidelity = share(g["forget_fidelity"]);
    m.retain_fidelity = share(g["retain_fidelity"]);
    m.forget_class = g["forget_class"].number();
    m.forget_frechet = g["forget_frechet"].number();
    m.retain_frechet = g["retain_frechet"].number();
    m.forget_loss = g["forget_loss"].number();
    m.test_forget_class_loss = g["test_forget_class_loss"].number();
    m.membership_gap = g["membership_gap"].number();
  }
  return m;
}

Relearn read_relearn(const JsonField& r) {
  return {r.optional("optimizer").text(), r.optional("data").text(),     r.optional("lr").number(),
          r.optional("batch").number(),   r.optional("steps").number(),  r.optional("eval_every").number(),
          r["accuracy_target"].number(),  r["loss_target"].number()};
}

Replicate read_replicate(const JsonField& f) {
  Replicate r;
  r.index = f["replicate"].number();
  r.seed = f["seed"].number();
  r.digest = f["split_digest"].text();
  r.forget_size = f["forget_size"].number();
  r.relearn_seconds = f.optional("relearn_seconds").number();
  r.relearn = read_relearn(f["relearn"]);
  for (const JsonField& m : f["models"].items()) r.models.push_back(read_model(m));
  if (const JsonField pictures = f.optional("samples"); !pictures.is_null())
    for (const auto& [name, file] : pictures.members()) r.pictures.emplace_back(name, file.required_text());
  return r;
}

Interval read_interval(const JsonField& f) {
  if (f.is_null()) return {};
  return {f["n"].number(), f["mean"].number(), f.optional("sd").number(), f.optional("ci_low").number(),
          f.optional("ci_high").number()};
}

RcdSummary read_rcd_summary(const JsonField& f) {
  RcdSummary r;
  r.present = true;
  r.n = f["n"].number();
  r.censored = f["censored"].number();
  r.diverged = f["diverged"].number();
  r.median = read_bounded(f["median"]);
  const JsonField ratio = f.optional("median_ratio");
  r.has_ratio = !ratio.is_null();
  r.median_ratio = read_bounded(ratio);
  return r;
}

std::map<std::string, Paired> read_paired(const JsonField& f) {
  std::map<std::string, Paired> out;
  for (const auto& [key, d] : f.members()) {
    if (d.is_null()) continue;
    out[key] = {true, read_interval(d["summary"])};
  }
  return out;
}

ModelSummary read_model_summary(const JsonField& f) {
  ModelSummary m;
  static_cast<Named&>(m) = read_named(f);
  m.replicates = f["replicates"].number();
  m.diverged = f["diverged"].number();
  m.damaged = f["damaged"].number();
  for (const auto& [key, figure] : f["figures"].members()) m.figures.emplace_back(key, read_interval(figure));
  const JsonField rcd = f["rcd"];
  m.loss = read_rcd_summary(rcd["loss"]);
  m.accuracy = read_rcd_summary(rcd["accuracy"]);
  if (!rcd.optional("calibrated_loss").is_null()) m.calibrated = read_rcd_summary(rcd["calibrated_loss"]);
  const JsonField paired = f.optional("paired");
  if (!paired.is_null()) {
    const JsonField ieu = paired.optional("ieu"), retrained = paired.optional("retrained");
    m.has_ieu = !ieu.is_null();
    m.has_retrained = !retrained.is_null();
    if (m.has_ieu) m.ieu = read_paired(ieu);
    if (m.has_retrained) m.retrained = read_paired(retrained);
  }
  return m;
}

Scenario read_scenario(const JsonField& f) {
  Scenario s;
  s.name = f["scenario"].required_text();
  s.relearn = read_relearn(f["relearn"]);
  for (const JsonField& r : f["replicates"].items()) s.replicates.push_back(read_replicate(r));
  LETHE_CHECK(!s.replicates.empty(), "report", f.path, ".replicates: no replicate");
  const JsonField summary = f["summary"];
  s.replicate_count = summary["replicates"].number();
  s.confidence = summary["confidence"].number();
  for (const JsonField& m : summary["models"].items()) s.models.push_back(read_model_summary(m));
  return s;
}

Study read_study(const json& results) {
  const JsonField root{results, ""};
  Study s;
  s.name = root["study"].text();
  s.version = root["lethe_version"].text();
  s.created = root["created"].text();
  s.config = root["config"].value.dump(2, ' ', false, json::error_handler_t::replace);
  for (const JsonField& t : root["timings"].items()) s.timings.emplace_back(t["phase"].text(), t["seconds"].number());
  s.total_seconds = root["total_seconds"].number();
  s.margin = root["margin"].number();
  s.replicates = root["replicates"].number();
  s.study_seed = root["study_seed"].number();
  s.confidence = root["confidence"].number();
  for (const JsonField& sc : root["scenarios"].items()) s.scenarios.push_back(read_scenario(sc));
  if (const JsonField tune = root.optional("tune"); !tune.is_null()) s.tune = read_tune(tune);
  if (const JsonField pending = root.optional("pending_phases"); !pending.is_null())
    for (const JsonField& id : pending.items()) s.pending.push_back(id.required_text());
  return s;
}

// ---------------------------------------------------------------------------------------------
// Text.

// With its sign, and a true minus: "+3.61", "−0.50".
std::string signed_fixed(double v, int decimals) {
  const std::string s = fmt::format("{:+.{}f}", v, decimals);
  return s[0] == '-' ? "−" + s.substr(1) : s;
}

// About three significant digits without exponents: 187, 12.3, 3.21, 0.0113.
int significant_decimals(double v) {
  const double a = std::abs(v);
  return a == 0 ? 0 : std::clamp(2 - static_cast<int>(std::floor(std::log10(a))), 0, 4);
}
std::string significant(const Value& v) { return v ? fixed(v, significant_decimals(*v)) : std::string(kNone); }

// A censored value is the cap (or a ratio of it): the true one is at least that.
std::string at_least(const std::string& s, bool censored) {
  return censored && s != kNone ? "≥ " + s : s;
}

// "≥ 300", "≤ 0.50", the number when exact, "n/a" when nothing can be said.
std::string bounded(const Bounded& b, int decimals) {
  if (!b.value || b.bound == Bound::none) return "n/a";
  // Steps (decimals 0) are whole except for a median of an even count: 0.5 must not print as "0".
  if (decimals == 0 && std::abs(*b.value - std::round(*b.value)) > 1e-9) decimals = 1;
  const std::string v = fixed(b.value, decimals);
  return b.bound == Bound::at_least ? "≥ " + v : b.bound == Bound::at_most ? "≤ " + v : v;
}

const char* bound_name(Bound b) {
  return b == Bound::exact ? "exact" : b == Bound::at_least ? "at_least" : b == Bound::at_most ? "at_most" : "none";
}

std::string count(const Value& v) { return v ? fmt::format("{:.0f}", *v) : std::string(kNone); }
int64_t count_of(const Value& v) { return v ? static_cast<int64_t>(std::llround(*v)) : 0; }

// "95%" for a confidence of 0.95.
std::string confidence_text(const Value& c) { return c ? fmt::format("{:g}%", *c * 100) : std::string("?"); }

// "12.34 ± 5.67" (mean ± half-width of the interval, times scale), or the mean alone where there is
// no interval (one replicate), or "—". decimals < 0: about three significant digits of the mean.
std::string mean_pm(const Interval& i, double scale, int decimals) {
  if (!i.mean) return std::string(kNone);
  const double mean = *i.mean * scale;
  const int d = decimals >= 0 ? decimals : significant_decimals(mean);
  std::string s = fmt::format("{:.{}f}", mean, d);
  if (i.has_interval()) s += fmt::format(" ± {:.{}f}", (*i.high - *i.low) / 2 * scale, d);
  return s[0] == '-' ? "−" + s.substr(1) : s;  // a true minus, as in the paired differences
}

// The same for a table cell: the half-width in a lighter span, the interval in the tooltip.
std::string mean_pm_html(const Interval& i, double scale, int decimals) {
  const std::string s = mean_pm(i, scale, decimals);
  const size_t pm = s.find(" ± ");
  if (pm == std::string::npos) return s;
  const int d = decimals >= 0 ? decimals : significant_decimals(*i.mean * scale);
  return fmt::format("<span title=\"interval [{:.{}f}, {:.{}f}], sd {}, n = {}\">{}<span class=\"pm\">{}</span></span>",
                     *i.low * scale, d, *i.high * scale, d, i.sd ? fmt::format("{:.{}f}", *i.sd * scale, d) : "—",
                     count(i.n), s.substr(0, pm), s.substr(pm));
}

// "3.2", or "1.2–3.4" where the replicates differ.
std::string range_text(std::vector<Value> v, double scale, int decimals) {
  std::erase_if(v, [](const Value& x) { return !x; });
  if (v.empty()) return std::string(kNone);
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const std::string a = fmt::format("{:.{}f}", **lo * scale, decimals), b = fmt::format("{:.{}f}", **hi * scale, decimals);
  return a == b ? a : a + "–" + b;
}

// ---------------------------------------------------------------------------------------------
// Styles.

// Every model of a scenario by name: the summary's order, then any model only a replicate has.
class Styles {
 public:
  explicit Styles(const Scenario& s) {
    for (const ModelSummary& m : s.models) add(m.name, m.role);
    for (const Replicate& r : s.replicates)
      for (const Model& m : r.models) add(m.name, m.role);
  }
  const Style& operator[](const std::string& name) const { return styles_.at(name); }

 private:
  void add(const std::string& name, const std::string& role) {
    if (styles_.count(name) != 0) return;
    styles_[name] = style_of(role, role == "unlearned" ? unlearned_++ : 0);
  }
  std::map<std::string, Style> styles_;
  int unlearned_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Plots.

// One model of one replicate as a line.
struct Series {
  const Model* model;
  Style style;
  int64_t replicate = 0;
  bool thin = false;  // a replicate after the first: drawn thin and pale under the first
  std::vector<std::pair<double, Value>> points;  // (step, value); a missing value breaks the line
};

// One series per model and replicate: `member` of each curve point, times `factor`.
std::vector<Series> series_of(const Scenario& s, const Styles& styles, Value Point::*member, double factor = 1) {
  std::vector<Series> out;
  for (size_t r = 0; r < s.replicates.size(); ++r)
    for (const Model& m : s.replicates[r].models) {
      Series series{&m, styles[m.name], static_cast<int64_t>(s.replicates[r].index.value_or(static_cast<double>(r))),
                    r > 0, {}};
      for (const Point& p : m.curve) {
        const Value v = p.*member;
        series.points.emplace_back(p.step, v ? Value(*v * factor) : std::nullopt);
      }
      out.push_back(std::move(series));
    }
  // Thin replicates first and the retrained model's thick black line under the others, so that
  // neither hides the rest.
  std::stable_sort(out.begin(), out.end(), [](const Series& a, const Series& b) {
    const auto rank = [](const Series& x) { return (x.thin ? 0 : 2) + (x.model->role == "retrained" ? 0 : 1); };
    return rank(a) < rank(b);
  });
  return out;
}

// One series as a line; a thin replicate's narrower and paler.
std::string series_path(const Series& series, const Scale& x, const Scale& y) {
  Style st = series.style;
  if (series.thin) {
    st.width = std::max(1.0, st.width * 0.5);
    st.opacity = 0.45;
  }
  return curve_path(series.points, x, y, st,
                    fmt::format("class=\"curve\" data-model=\"{}\" data-replicate=\"{}\"", escape(series.model->name),
                                series.replicate));
}

// The legend, right of the plot area: one entry per model (retrained and original first), and a
// note on the thin lines when there are several replicates.
std::string legend(const Frame& f, const std::vector<Series>& series, int64_t replicates) {
  std::vector<const Series*> entries;
  for (const Series& s : series)
    if (std::none_of(entries.begin(), entries.end(), [&](const Series* e) { return e->model->name == s.model->name; }))
      entries.push_back(&s);
  std::stable_partition(entries.begin(), entries.end(), [](const Series* s) { return s->model->role != "unlearned"; });
  std::string s;
  double y = f.top + 6;
  for (const Series* e : entries) {
    const double x = f.right + 16;
    bool drawn = false, damaged = false;
    for (const Series& other : series)
      if (other.model->name == e->model->name) {
        damaged = damaged || other.model->damaged;
        drawn = drawn || std::any_of(other.points.begin(), other.points.end(),
                                     [](const auto& p) { return p.second.has_value(); });
      }
    const std::string notes = std::string(damaged ? " (damaged)" : "") + (drawn ? "" : " (no data)");
    s += legend_entry(x, y, e->style, e->model->name + notes);
    y += 18;
  }
  if (replicates > 1) {
    s += text(f.right + 16, y + 10, "bold: replicate 0", "class=\"legend note\"");
    s += text(f.right + 16, y + 25, replicates == 2 ? std::string("thin: replicate 1")
                                                    : fmt::format("thin: replicates 1–{}", replicates - 1),
              "class=\"legend note\"");
  }
  return s;
}

struct LinePlot {
  std::string kind, title, x_title, y_title;
  std::vector<double> targets;  // dashed horizontal lines, one per replicate (their values differ)
  std::string unit;             // after a target's value
  bool log_when_wide = false;   // log y scale when the values span more than a factor of 10
};

std::string line_plot(const LinePlot& p, const std::vector<Series>& series, double max_step, int64_t replicates) {
  const Frame f{680, 388, 64, 480, 40, 340};
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (const auto& pt : s.points)
      if (pt.second) lo = std::min(lo, *pt.second), hi = std::max(hi, *pt.second);
  std::string svg = svg_open(f, p.kind, p.title);
  if (!(lo <= hi)) return svg + text(f.left, f.top + 40, "no data", "class=\"label\"") + "</svg>\n";
  for (const double t : p.targets) lo = std::min(lo, t), hi = std::max(hi, t);
  const bool log = p.log_when_wide && lo > 0 && hi / lo > 10;
  const Scale x = linear_scale(0, std::max(max_step, 1.0), f.left, f.right);
  const Scale y = log ? log_scale(lo, hi, f.bottom, f.top) : linear_scale(lo, hi, f.bottom, f.top);
  svg += axes(f, x, y, p.x_title, p.y_title + (log ? " (log scale)" : ""));
  for (const Series& s : series) svg += series_path(s, x, y);
  if (!p.targets.empty()) {
    const auto [t_lo, t_hi] = std::minmax_element(p.targets.begin(), p.targets.end());
    // Replicate 0's target as strong as its bold lines, the others' paler like theirs.
    for (size_t i = 0; i < p.targets.size(); ++i)
      svg += line(f.left, y(p.targets[i]), f.right, y(p.targets[i]),
                  i == 0 ? "class=\"target\"" : "class=\"target\" stroke-opacity=\"0.45\"");
    auto label = [](double v) { return fmt::format("{:.{}f}", v, significant_decimals(v)); };
    const std::string a = label(*t_lo), b = label(*t_hi);
    const std::string caption = a == b ? fmt::format("target {}{}", a, p.unit)
                                       : fmt::format("targets {}{} – {}{} (one per replicate)", a, p.unit, b, p.unit);
    svg += text(f.right - 4, std::min(y(*t_lo), y(*t_hi)) - 5, caption, "class=\"target-label\" text-anchor=\"end\"");
  }
  return svg + legend(f, series, replicates) + "</svg>\n";
}

// A plot of one row per model (name left, values along x, a value label right).
struct RowFrame {
  Frame frame;
  double row = 26;
  double y(size_t i) const { return frame.top + row * static_cast<double>(i) + row / 2; }  // a row's centre
};

RowFrame row_frame(const std::vector<std::string>& names) {
  size_t longest = 4;
  for (const std::string& n : names) longest = std::max(longest, n.size());
  RowFrame r;
  const double left = 24 + 7.0 * static_cast<double>(longest);
  r.frame = {680, 0, left, 500, 58, 58 + r.row * static_cast<double>(names.size())};
  r.frame.height = r.frame.bottom + 52;
  return r;
}

// A reference line's label reads leftwards from the line in the right half of the plot.
bool reads_leftwards(const RowFrame& r, double x) { return x > (r.frame.left + r.frame.right) / 2; }

// Where a reference line's label at x runs, estimated from its length (6.5 px a character, the
// labels' 11.5 px type).
struct LabelSpan {
  double from, to;
  bool overlaps(const LabelSpan& o) const { return from < o.to && o.from < to; }
};
LabelSpan label_span(const RowFrame& r, double x, std::string_view label) {
  const auto characters = static_cast<double>(std::count_if(label.begin(), label.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // not a UTF-8 continuation byte
  }));
  const double width = 6.5 * characters;
  return reads_leftwards(r, x) ? LabelSpan{x - 4 - width, x - 4} : LabelSpan{x + 4, x + 4 + width};
}

// A vertical reference line across the rows, labelled above them; `raised`: a line higher, clear
// of another label there.
std::string reference_line(const RowFrame& r, double x, std::string_view label, std::string_view cls,
                           bool raised = false) {
  const bool leftwards = reads_leftwards(r, x);
  return line(x, raised ? r.frame.top - 20 : r.frame.top - 6, x, r.frame.bottom, fmt::format("class=\"{}\"", cls)) +
         text(leftwards ? x - 4 : x + 4, raised ? r.frame.top - 24 : r.frame.top - 10, label,
              fmt::format("class=\"{}-label\"{}", cls, leftwards ? " text-anchor=\"end\"" : ""));
}

// Per model, a mean with its interval (an error bar) and each replicate's value (small dots below).
struct IntervalRow {
  std::string name;
  Style style;
  Interval interval;
  std::vector<double> points;  // the replicates' values, already scaled
  bool muted = false;          // drawn pale and labelled "n.s.": the interval holds 0
};

std::string interval_plot(std::string_view kind, std::string_view title, std::string_view x_title,
                          const std::vector<IntervalRow>& rows, double scale, int decimals, Value reference,
                          std::string_view reference_label) {
  std::vector<std::string> names;
  for (const IntervalRow& r : rows) names.push_back(r.name);
  const RowFrame rf = row_frame(names);
  const Frame& f = rf.frame;
  double lo = INFINITY, hi = -INFINITY;
  auto include = [&](double v) { lo = std::min(lo, v), hi = std::max(hi, v); };
  for (const IntervalRow& r : rows) {
    if (r.interval.mean) include(*r.interval.mean * scale);
    if (r.interval.has_interval()) include(*r.interval.low * scale), include(*r.interval.high * scale);
    for (const double p : r.points) include(p);
  }
  std::string svg = svg_open(f, kind, title);
  if (!(lo <= hi)) return svg + text(f.left, f.top + 20, "no data", "class=\"label\"") + "</svg>\n";
  if (reference) include(*reference);
  const Scale x = linear_scale(lo, hi, f.left, f.right);
  svg += axes(f, x, Scale{0, 1, f.bottom, f.top, false, {}}, x_title, "");
  if (reference) svg += reference_line(rf, x(*reference), reference_label, "target");
  for (size_t i = 0; i < rows.size(); ++i) {
    const IntervalRow& r = rows[i];
    const double y = rf.y(i);
    svg += fmt::format("<g class=\"interval-row{}\" data-model=\"{}\"{}>\n", r.muted ? " muted" : "", escape(r.name),
                       r.muted ? " opacity=\"0.4\"" : "");
    svg += text(f.left - 8, y + 4, r.name, "class=\"tick\" text-anchor=\"end\"");
    for (const double p : r.points)
      svg += fmt::format("<circle class=\"replicate-point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.6\" fill=\"{}\" "
                         "fill-opacity=\"0.55\"/>\n", x(p), y + 7, r.style.colour);
    if (r.interval.has_interval()) {
      const double a = x(*r.interval.low * scale), b = x(*r.interval.high * scale);
      const std::string st = fmt::format("stroke=\"{}\" stroke-width=\"2\"", r.style.colour);
      svg += fmt::format("<g class=\"errorbar\" data-model=\"{}\">\n", escape(r.name)) + line(a, y, b, y, st) +
             line(a, y - 6, a, y + 6, st) + line(b, y - 6, b, y + 6, st) + "</g>\n";
    }
    if (r.interval.mean)
      svg += fmt::format("<circle class=\"mean\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\" fill=\"{}\" stroke=\"#fff\" "
                         "stroke-width=\"1\"/>\n", x(*r.interval.mean * scale), y, r.style.colour);
    svg += text(f.right + 12, y + 4, mean_pm(r.interval, scale, decimals) + (r.muted ? "  n.s." : ""),
                "class=\"tick value\"");
    svg += "</g>\n";
  }
  return svg + "</svg>\n";
}

// The RCD figures counted in steps: the loss and accuracy ones, and RCD-cal (with calibration).
enum class Rcd { loss, accuracy, calibrated };

const RcdSummary& summary_of(const ModelSummary& m, Rcd k) {
  return k == Rcd::loss ? m.loss : k == Rcd::accuracy ? m.accuracy : m.calibrated;
}

// One run's RCD for the median plot.
struct RcdRun {
  Value steps;
  bool censored = false, diverged = false;
};

RcdRun rcd_run(const Model& m, Rcd k) {
  if (k == Rcd::loss) return {m.loss_steps, m.loss_censored, m.diverged};
  if (k == Rcd::accuracy) return {m.accuracy_steps, m.accuracy_censored, m.diverged};
  return {m.calibrated_steps, m.calibrated_censored, m.diverged};
}

// A marker for a value that is only a bound: an open circle with an arrow to where the true value
// lies (right for ≥, left for ≤).
std::string bound_marker(double x, double y, const Style& st, Bound b, double r) {
  std::string s = fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"#fff\" stroke=\"{}\" "
                              "stroke-width=\"2\"/>\n", x, y, r, st.colour);
  if (b == Bound::at_least || b == Bound::at_most) {
    const double dir = b == Bound::at_least ? 1 : -1, from = x + dir * r, to = x + dir * (r + 16);
    s += line(from, y, to, y, fmt::format("stroke=\"{}\" stroke-width=\"2\"", st.colour));
    s += fmt::format("<path d=\"M{:.1f} {:.1f} L{:.1f} {:.1f} L{:.1f} {:.1f} Z\" fill=\"{}\"/>\n", to + dir * 6, y, to,
                     y - 4, to, y + 4, st.colour);
  }
  return s;
}

// Per model the median RCD over the replicates (filled when exact, open with an arrow when only a
// bound) and each replicate's run (dots; open triangles for runs censored at the cap).
std::string rcd_plot(const Scenario& s, const Styles& styles, Rcd kind) {
  std::vector<std::string> names;
  for (const ModelSummary& m : s.models) names.push_back(m.name);
  const RowFrame rf = row_frame(names);
  const Frame& f = rf.frame;
  const std::string what = kind == Rcd::loss ? "loss" : kind == Rcd::accuracy ? "accuracy" : "calibrated";
  std::string svg = svg_open(f, "rcd-" + what,
                             (kind == Rcd::calibrated ? std::string("RCD-cal") : "RCD (" + what + ")") +
                                 ": median over the replicates");
  // The replicates' runs of model `name`, in replicate order.
  auto runs_of = [&](const std::string& name) {
    std::vector<RcdRun> out;
    for (const Replicate& r : s.replicates)
      for (const Model& m : r.models)
        if (m.name == name) out.push_back(rcd_run(m, kind));
    return out;
  };
  double hi = 1;
  Value cap;
  for (const Replicate& r : s.replicates)
    if (r.relearn.steps) cap = std::max(cap.value_or(0), *r.relearn.steps);
  if (cap) hi = std::max(hi, *cap);
  for (const ModelSummary& m : s.models) {
    const RcdSummary& k = summary_of(m, kind);
    if (k.median.value) hi = std::max(hi, *k.median.value);
    for (const RcdRun& run : runs_of(m.name))
      if (run.steps && !run.diverged) hi = std::max(hi, *run.steps);
  }
  const Scale x = linear_scale(0, hi * 1.04, f.left, f.right);
  svg += axes(f, x, Scale{0, 1, f.bottom, f.top, false, {}}, "relearning steps", "");
  const std::string cap_label = cap ? fmt::format("cap {}", tick_label(*cap)) : "";
  if (cap) svg += reference_line(rf, x(*cap), cap_label, "cap");
  for (const ModelSummary& m : s.models)
    if (m.role == "retrained") {
      const RcdSummary& k = summary_of(m, kind);
      if (k.median.value && k.median.bound != Bound::none && !(cap && *k.median.value == *cap)) {
        const std::string label = "retrained " + bounded(k.median, 0);
        const bool crowded =
            cap && label_span(rf, x(*k.median.value), label).overlaps(label_span(rf, x(*cap), cap_label));
        svg += reference_line(rf, x(*k.median.value), label, "target", crowded);
      }
    }
  for (size_t i = 0; i < s.models.size(); ++i) {
    const ModelSummary& m = s.models[i];
    const RcdSummary& k = summary_of(m, kind);
    const Style& st = styles[m.name];
    const double y = rf.y(i);
    svg += fmt::format("<g class=\"rcd-row\" data-model=\"{}\">\n", escape(m.name));
    svg += text(f.left - 8, y + 4, m.name, "class=\"tick\" text-anchor=\"end\"");
    for (const RcdRun& run : runs_of(m.name)) {
      if (run.diverged || !run.steps) continue;  // a diverged run has no delay: counted in the label
      if (s.replicates.size() < 2) break;         // one replicate: its run is the median
      const double px = x(*run.steps), py = y + 8;
      if (run.censored)
        svg += fmt::format("<path class=\"replicate-censored\" d=\"M{:.1f} {:.1f} L{:.1f} {:.1f} L{:.1f} {:.1f} Z\" "
                           "fill=\"#fff\" stroke=\"{}\" stroke-width=\"1.2\"/>\n", px - 3, py - 3.5, px + 3.5, py,
                           px - 3, py + 3.5, st.colour);
      else
        svg += fmt::format("<circle class=\"replicate-point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.6\" fill=\"{}\" "
                           "fill-opacity=\"0.55\"/>\n", px, py, st.colour);
    }
    if (k.median.value && k.median.bound != Bound::none) {
      svg += fmt::format("<g class=\"median\" data-bound=\"{}\">\n", bound_name(k.median.bound));
      svg += k.median.bound == Bound::exact
                 ? fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"{}\" stroke=\"#fff\"/>\n",
                               x(*k.median.value), y, st.colour)
                 : bound_marker(x(*k.median.value), y, st, k.median.bound, 5);
      svg += "</g>\n";
    }
    std::string label = count_of(k.n) == 0 && count_of(k.diverged) > 0 ? "diverged" : bounded(k.median, 0);
    if (count_of(k.censored) > 0) label += fmt::format(" ({} of {} censored)", count(k.censored), count(k.n));
    if (count_of(k.diverged) > 0 && count_of(k.n) > 0) label += fmt::format(", {} diverged", count(k.diverged));
    svg += text(f.right + 12, y + 4, label, "class=\"tick value\"");
    svg += "</g>\n";
  }
  return svg + "</svg>\n";
}

// ---------------------------------------------------------------------------------------------
// HTML.

constexpr std::string_view kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       max-width: 1380px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 6px; padding-top: 12px; border-top: 2px solid #ddd; }
h3 { font-size: 16px; margin: 22px 0 4px; }
.meta, .sub { color: #555; margin: 2px 0; }
.howto { background: #f4f6fa; border-left: 4px solid #4a6fa5; padding: 8px 12px; margin: 12px 0; }
.warn { background: #fdf6e3; border-left: 4px solid #c99a2e; padding: 6px 12px; margin: 8px 0; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; margin: 6px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e3e3; }
th { background: #f2f2f2; font-weight: 600; text-align: center; }
td.num { text-align: right; white-space: nowrap; }
td.name { white-space: nowrap; }
tr.retrained td { font-weight: 600; background: #f7f7f7; }
tr.original td { color: #666; }
tr.damaged td { background: #fdf0ef; }
.pm { color: #6b6b6b; }
.note { display: block; font-size: 11px; color: #777; font-weight: 400; }
td.ns { color: #a0a0a0; }
td.ns .pm { color: #b5b5b5; }
td.ref { color: #888; font-style: italic; }
.tag { display: inline-block; font-size: 10.5px; font-weight: 600; color: #777; border: 1px solid #bbb;
       border-radius: 3px; padding: 0 3px; margin-left: 4px; }
.swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid; vertical-align: middle;
          margin-right: 6px; }
.flag { display: inline-block; font-size: 11px; font-weight: 600; color: #fff; background: #c0392b;
        border-radius: 3px; padding: 0 5px; margin-left: 6px; }
.flag.diverged { background: #7d3c98; }
.footnote { font-size: 12.5px; color: #444; margin: 4px 0; max-width: 1100px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 18px 26px; margin-top: 12px; }
figure { margin: 0; }
figcaption { font-size: 12.5px; color: #555; margin: 2px 4px 0 64px; }
details { margin: 6px 0; border: 1px solid #e3e3e3; border-radius: 4px; padding: 4px 10px; }
details > summary { cursor: pointer; font-weight: 600; padding: 2px 0; }
details[open] > summary { margin-bottom: 4px; }
svg.plot { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; fill: #222; }
svg .title { font-size: 15px; font-weight: 600; }
svg .tick { font-size: 11.5px; fill: #444; }
svg .label { font-size: 12.5px; fill: #333; }
svg .legend { font-size: 12px; }
svg .note { fill: #666; font-size: 11px; }
svg .grid { stroke: #e8e8e8; stroke-width: 1; }
svg .axis { stroke: #555; stroke-width: 1; }
svg .target { stroke: #b03a2e; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .target-label { font-size: 11.5px; fill: #b03a2e; }
svg .cap { stroke: #777; stroke-width: 1; stroke-dasharray: 2 3; }
svg .cap-label { font-size: 11.5px; fill: #666; }
.pictures { display: flex; flex-wrap: wrap; gap: 14px; margin: 10px 0; }
.pictures figure { margin: 0; }
img.samples { image-rendering: pixelated; width: 366px; border: 1px solid #ccc; display: block; }
.missing { color: #a33; font-size: 12.5px; }
svg .target-label, svg .cap-label, svg .value { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
pre { background: #f6f6f6; padding: 10px 14px; font-size: 12.5px; overflow-x: auto; }
)";

std::string header(const Study& s) {
  std::string nav = s.tune ? "<a href=\"#tuning\">tuning</a>" : "";
  for (size_t i = 0; i < s.scenarios.size(); ++i)
    nav += fmt::format("<a href=\"#scenario-{}\">{}</a>", i + 1, escape(s.scenarios[i].name));
  const int64_t n = count_of(s.replicates);
  const std::string seeds =
      s.study_seed ? (n > 1 ? fmt::format("seeds {:.0f}–{:.0f}", *s.study_seed, *s.study_seed + static_cast<double>(n - 1))
                            : fmt::format("seed {:.0f}", *s.study_seed))
                   : std::string("seed —");
  return fmt::format(
      "<header>\n<h1>Unlearning study {}</h1>\n<p class=\"meta\">lethe {} · created {} · total time {} · "
      "{} replicate{} ({}) · {}</p>\n"
      "<p class=\"howto\"><b>How to read this.</b> FA, RA, TA: accuracy on the forget, retain and test sets; "
      "MIA: membership-inference score; gap: mean absolute difference of those four from the retrained model's. "
      "<b>RCD</b> (the headline) is the number of relearning steps until the forget-set loss falls to the "
      "target; divided by the retrained model's, <b>1</b> relearns like a model that never saw the data and "
      "<b>below 1</b> relearns faster, so the data was hidden, not gone. Each <b>replicate</b> is the whole "
      "scenario again with its own seed (its own original, split and relearning batches). Metrics are given as "
      "mean <b>±</b> the half-width of their {} Student-t interval over the replicates; RCD as the median over "
      "the replicates, where a run that never met the target within the cap counts at the cap and makes the "
      "median a lower bound (<b>≥</b>); a difference whose interval holds 0 is greyed and marked "
      "<span class=\"tag\">n.s.</span>.</p>\n"
      "<nav>{}<a href=\"#configuration\">configuration</a><a href=\"#timings\">timings</a></nav>\n</header>\n",
      escape(s.name.empty() ? "(unnamed)" : s.name), escape(s.version.empty() ? "?" : s.version),
      escape(s.created.empty() ? std::string(kNone) : s.created), duration(s.total_seconds), count(s.replicates),
      n == 1 ? "" : "s", seeds,
      n >= 2 ? confidence_text(s.confidence) + " intervals" : std::string("no intervals (they need 2 replicates)"),
      confidence_text(s.confidence), nav);
}

// The name cell of a table row: swatch, name and flags.
std::string name_cell(const std::string& name, const Style& st, const std::string& flags) {
  return fmt::format("<td class=\"name\">{}{}{}</td>", swatch_html(st), escape(name), flags);
}

// ---- the summary over the replicates

// "≥ 20" with "1 of 2 censored", "1 diverged" beneath; "diverged" when every run diverged.
std::string rcd_median_cell(const RcdSummary& k) {
  if (!k.present) return cell(std::string(kNone));
  const bool all_diverged = count_of(k.n) == 0 && count_of(k.diverged) > 0;
  std::string s = all_diverged ? "diverged" : bounded(k.median, 0);
  std::vector<std::string> notes;
  if (count_of(k.censored) > 0) notes.push_back(fmt::format("{} of {} censored", count(k.censored), count(k.n)));
  if (count_of(k.diverged) > 0) notes.push_back(fmt::format("{} diverged", count(k.diverged)));
  if (!notes.empty()) {
    s += "<span class=\"note\">" + notes[0];
    for (size_t i = 1; i < notes.size(); ++i) s += ", " + notes[i];
    s += "</span>";
  }
  return cell(s, all_diverged ? "num ns" : "num");
}

std::string rcd_ratio_cell(const ModelSummary& m, const RcdSummary& k) {
  if (m.role == "retrained") return cell("1 (ref.)", "num ref");
  if (!k.present || !k.has_ratio) return cell(std::string(kNone));
  return cell(bounded(k.median_ratio, 2));
}

std::string flags_of(const ModelSummary& m) {
  std::string flags;
  if (count_of(m.damaged) > 0)
    flags += fmt::format("<span class=\"flag\" title=\"RA or TA well below the retrained model's\">damaged* {} of "
                         "{}</span>", count(m.damaged), count(m.replicates));
  if (count_of(m.diverged) > 0)
    flags += fmt::format("<span class=\"flag diverged\" title=\"the forget loss stopped being finite while "
                         "relearning\">diverged {} of {}</span>", count(m.diverged), count(m.replicates));
  return flags;
}

bool any_calibrated(const Scenario& s) {
  return std::any_of(s.models.begin(), s.models.end(), [](const ModelSummary& m) { return m.calibrated.present; });
}

std::string summary_table(const Scenario& s, const Styles& styles) {
  const bool intervals = count_of(s.replicate_count) >= 2, calibrated = any_calibrated(s);
  std::string t = fmt::format(
      "<table class=\"summary\">\n<thead><tr><th rowspan=\"2\">model</th><th rowspan=\"2\">n</th>"
      "<th colspan=\"5\">{} (%)</th><th colspan=\"2\">RCD loss (steps)</th><th colspan=\"2\">RCD accuracy (steps)</th>"
      "{}<th rowspan=\"2\">unlearn<br>seconds</th></tr>\n<tr><th>FA</th><th>RA</th><th>TA</th><th>MIA</th><th>gap</th>"
      "<th>median</th><th>÷ retrained</th><th>median</th><th>÷ retrained</th>{}</tr></thead>\n<tbody>\n",
      intervals ? "mean ± " + confidence_text(s.confidence) + " interval" : std::string("value (one replicate)"),
      calibrated ? "<th colspan=\"2\">RCD-cal (steps)</th>" : "",
      calibrated ? "<th>median</th><th>÷ retrained</th>" : "");
  for (const ModelSummary& m : s.models) {
    t += fmt::format("<tr class=\"summary-model {}{}\" data-model=\"{}\">", m.role,
                     count_of(m.damaged) > 0 ? " damaged" : "", escape(m.name));
    t += name_cell(m.name, styles[m.name], flags_of(m)) + cell(count(m.replicates));
    for (const char* key : {"metrics.fa", "metrics.ra", "metrics.ta", "metrics.mia", "gap"})
      t += cell(mean_pm_html(m.figure(key), 100, 2));
    t += rcd_median_cell(m.loss) + rcd_ratio_cell(m, m.loss) + rcd_median_cell(m.accuracy) +
         rcd_ratio_cell(m, m.accuracy);
    if (calibrated) t += rcd_median_cell(m.calibrated) + rcd_ratio_cell(m, m.calibrated);
    t += cell(mean_pm_html(m.figure("unlearn_seconds"), 1, 1));
    t += "</tr>\n";
  }
  t += "</tbody></table>\n";
  const std::string n = count(s.replicate_count);
  if (intervals)
    t += fmt::format("<p class=\"footnote\">Metrics: mean ± half-width of the two-sided {} Student-t interval over the "
                     "{} replicates (t<sub>n−1</sub>·sd/√n), in percentage points; the tooltip gives the interval, "
                     "the standard deviation and n.</p>\n", confidence_text(s.confidence), n);
  else
    t += "<p class=\"footnote warn\"><b>One replicate:</b> the values are that run's own; intervals, and any claim "
         "that two methods differ, need at least 2 replicates (<code>[study] replicates</code>).</p>\n";
  t += "<p class=\"footnote\">RCD: the median relearning steps over the replicates. A run that did not meet the target "
       "within the cap is censored: it ranks at the cap, and a median it reaches is a lower bound (“≥”). A diverged "
       "run (its forget loss stopped being finite) has no delay: it is left out and counted apart. ÷ retrained: the "
       "median over the retrained model's median, bounded as its parts are: “≥” when the model's median is a "
       "bound, “≤” when the retrained model's is, “n/a” when both are or either is unknown.</p>\n";
  if (calibrated)
    t += "<p class=\"footnote\">RCD-cal, the calibration-matched RCD: the steps until the forget loss at the "
         "temperature fitted on held-out test images falls to the original's at its own; a model that is only less "
         "confident everywhere (shrunk or jittered weights) meets it at once, one that forgot does not.</p>\n";
  t += "<p class=\"footnote\">IEU and its ablations take plain steps (no momentum), as IEU's update θ ← (1 − ηλ)θ − "
       "η(g<sub>r</sub> − αg<sub>f</sub>) + σξ is defined; the SGD baselines use momentum 0.9 and coupled weight "
       "decay 5e-4 by default (README, “Sources and deviations”).</p>\n";
  return t;
}

// A paired difference: "+1.23 ± 4.56", greyed with "n.s." when its interval holds 0, with "no
// interval" when only one replicate pairs up.
std::string paired_cell(const ModelSummary& m, bool ieu, const std::string& key, double scale, int decimals,
                        int64_t replicates) {
  const bool has = ieu ? m.has_ieu : m.has_retrained;
  if (!has) return cell("ref.", "num ref");
  const auto& map = ieu ? m.ieu : m.retrained;
  const auto it = map.find(key);
  if (it == map.end() || !it->second.summary.mean)
    return fmt::format("<td class=\"num\" title=\"no replicate where both are known{}\">{}</td>",
                       key.rfind("rcd.", 0) == 0 ? " and exact" : "", kNone);
  const Interval& d = it->second.summary;
  const double mean = *d.mean * scale;
  std::string s = signed_fixed(mean, decimals);
  const std::string n_note = count_of(d.n) < replicates ? fmt::format("<span class=\"note\">n = {}</span>", count(d.n)) : "";
  if (!d.has_interval())
    return fmt::format("<td class=\"num ns\" title=\"one pair: no interval\">{}<span class=\"tag\">no CI</span>{}</td>",
                       s, n_note);
  s += fmt::format("<span class=\"pm\"> ± {:.{}f}</span>", (*d.high - *d.low) / 2 * scale, decimals);
  const bool holds_zero = *d.low <= 0 && *d.high >= 0;
  const std::string title = fmt::format("interval [{:.{}f}, {:.{}f}], n = {}", *d.low * scale, decimals,
                                        *d.high * scale, decimals, count(d.n));
  if (holds_zero)
    return fmt::format("<td class=\"num ns\" title=\"{}: holds 0\">{}<span class=\"tag\">n.s.</span>{}</td>", title, s,
                       n_note);
  return fmt::format("<td class=\"num sig\" title=\"{}\">{}{}</td>", title, s, n_note);
}

std::string paired_table(const Scenario& s, const Styles& styles) {
  const bool calibrated = any_calibrated(s);
  bool any_ieu = false, any_retrained = false;
  for (const ModelSummary& m : s.models) any_ieu = any_ieu || m.has_ieu, any_retrained = any_retrained || m.has_retrained;
  if (!any_ieu && !any_retrained) return "";
  const int64_t n = count_of(s.replicate_count);
  std::string t = "<table class=\"paired\">\n<thead><tr><th rowspan=\"2\">model</th>";
  const int columns = calibrated ? 4 : 3;
  if (any_ieu) t += fmt::format("<th colspan=\"{}\">minus IEU</th>", columns);
  if (any_retrained) t += fmt::format("<th colspan=\"{}\">minus the retrained model</th>", columns);
  t += "</tr>\n<tr>";
  for (int i = 0; i < (any_ieu ? 1 : 0) + (any_retrained ? 1 : 0); ++i)
    t += std::string("<th>gap (points)</th><th>RCD loss (steps)</th><th>RCD accuracy (steps)</th>") +
         (calibrated ? "<th>RCD-cal (steps)</th>" : "");
  t += "</tr></thead>\n<tbody>\n";
  for (const ModelSummary& m : s.models) {
    t += fmt::format("<tr class=\"paired-model {}\" data-model=\"{}\">", m.role, escape(m.name));
    t += name_cell(m.name, styles[m.name], "");
    for (const bool ieu : {true, false}) {
      if (ieu ? !any_ieu : !any_retrained) continue;
      t += paired_cell(m, ieu, "gap", 100, 2, n) + paired_cell(m, ieu, "rcd.loss_steps", 1, 1, n) +
           paired_cell(m, ieu, "rcd.accuracy_steps", 1, 1, n);
      if (calibrated) t += paired_cell(m, ieu, "rcd.calibrated_loss_steps", 1, 1, n);
    }
    t += "</tr>\n";
  }
  t += "</tbody></table>\n";
  t += fmt::format(
      "<p class=\"footnote\">Paired differences, this model minus the reference, replicate by replicate (both ran on "
      "the same seeds, so they share the replicate's noise): the mean difference ± half-width of its {} t-interval. "
      "<span class=\"tag\">n.s.</span> and grey: the interval holds 0, so these replicates cannot tell the two apart. "
      "RCD differences pair only the replicates where both runs are exact (neither censored nor diverged); "
      "“n = ” beneath says how many when fewer than all.{}</p>\n",
      confidence_text(s.confidence), n < 2 ? " With one replicate there is no interval (“no CI”)." : "");
  return t;
}

// Every figure the summary holds (metrics, distances, times, controls), mean ± interval.
std::string figures_table(const Scenario& s, const Styles& styles) {
  static const std::vector<std::pair<std::string, std::string>> known = {
      {"metrics.fa", "FA (%)"},          {"metrics.ra", "RA (%)"},
      {"metrics.ta", "TA (%)"},          {"metrics.mia", "MIA (%)"},
      {"gap", "gap (points)"},           {"metrics.forget_loss", "forget loss (nats)"},
      {"distance.original", "L2 to original"}, {"distance.retrained", "L2 to retrained"},
      {"unlearn_seconds", "unlearn seconds"}};
  std::vector<std::pair<std::string, std::string>> columns;
  for (const auto& k : known)
    for (const ModelSummary& m : s.models)
      if (m.figure(k.first).mean) {
        columns.push_back(k);
        break;
      }
  std::vector<std::string> others;  // controls.* and anything newer, in name order
  for (const ModelSummary& m : s.models)
    for (const auto& [key, v] : m.figures)
      if (std::none_of(known.begin(), known.end(), [&key = key](const auto& k) { return k.first == key; }) &&
          std::find(others.begin(), others.end(), key) == others.end())
        others.push_back(key);
  std::sort(others.begin(), others.end());
  for (const std::string& k : others) columns.emplace_back(k, k.rfind("controls.", 0) == 0 ? k.substr(9) : k);
  std::string t = "<table class=\"figures\">\n<thead><tr><th>model</th><th>n</th>";
  for (const auto& c : columns) t += "<th>" + escape(c.second) + "</th>";
  t += "</tr></thead>\n<tbody>\n";
  for (const ModelSummary& m : s.models) {
    t += fmt::format("<tr class=\"figure-model {}\" data-model=\"{}\">", m.role, escape(m.name)) + name_cell(m.name, styles[m.name], "") + cell(count(m.replicates));
    for (const auto& c : columns) {
      const bool points = c.second.find('%') != std::string::npos || c.first == "gap";
      t += cell(mean_pm_html(m.figure(c.first), points ? 100 : 1, points ? 2 : -1));
    }
    t += "</tr>\n";
  }
  return t + "</tbody></table>\n";
}

// ---- one replicate

std::string model_row(const Model& m, const Style& st, bool calibrated) {
  std::string flags;
  if (m.damaged) flags += "<span class=\"flag\" title=\"RA or TA well below the retrained model's\">damaged*</span>";
  if (m.diverged)
    flags += "<span class=\"flag diverged\" title=\"the forget loss stopped being finite while relearning\">"
             "diverged</span>";
  std::string row = fmt::format("<tr class=\"model {}{}\" data-model=\"{}\">", m.role, m.damaged ? " damaged" : "",
                                escape(m.name)) +
                    name_cell(m.name, st, flags) + cell(escape(m.method), "");
  // A diverged run has no delay: its steps read "diverged", never a number.
  const std::string loss_steps = m.diverged ? "diverged" : at_least(fixed(m.loss_steps, 0), m.loss_censored);
  const std::string accuracy_steps =
      m.diverged ? "diverged" : at_least(fixed(m.accuracy_steps, 0), m.accuracy_censored);
  const std::string none(kNone);
  const std::string calibrated_steps =
      m.diverged ? "diverged" : at_least(fixed(m.calibrated_steps, 0), m.calibrated_censored);
  std::vector<std::string> cells = {percent(m.fa), percent(m.ra), percent(m.ta), percent(m.mia), percent(m.gap),
                                    loss_steps, accuracy_steps,
                                    m.diverged ? none : at_least(significant(m.loss_auc), m.loss_censored)};
  if (calibrated) cells.push_back(calibrated_steps);
  for (const Bounded* b : {&m.norm_loss, &m.norm_accuracy, &m.norm_auc}) cells.push_back(m.diverged ? none : bounded(*b, 2));
  if (calibrated) cells.push_back(m.diverged ? none : bounded(m.norm_calibrated, 2));
  for (const std::string& c : {fixed(m.unlearn_seconds, 1), significant(m.to_original), significant(m.to_retrained)})
    cells.push_back(c);
  for (const std::string& c : cells) row += cell(escape(c));
  return row + "</tr>\n";
}

std::string relearn_text(const Relearn& r) {
  return fmt::format("{} on the {} set, lr {}, batch {}, up to {} steps, evaluated every {}",
                     escape(r.optimizer.empty() ? std::string(kNone) : r.optimizer),
                     escape(r.data.empty() ? "forget" : r.data), plain(r.lr), plain(r.batch), plain(r.steps),
                     plain(r.eval_every));
}

std::string model_table(const Replicate& r, const Styles& styles, const Value& margin) {
  std::string t = fmt::format(
      "<p class=\"sub\">relearning: {}; targets: forget loss ≤ {}, forget accuracy ≥ {}%; split digest {}; "
      "relearning took {}</p>\n",
      relearn_text(r.relearn), plain(r.relearn.loss_target),
      plain(r.relearn.accuracy_target ? Value(*r.relearn.accuracy_target * 100) : std::nullopt),
      escape(r.digest.empty() ? std::string(kNone) : r.digest), duration(r.relearn_seconds));
  const bool calibrated = std::any_of(r.models.begin(), r.models.end(), [](const Model& m) { return m.calibrated; });
  const std::string rcd_columns =
      std::string("<th>loss</th><th>accuracy</th><th>loss AUC</th>") + (calibrated ? "<th>calibrated</th>" : "");
  t += fmt::format(
      "<table class=\"models\">\n<thead><tr><th rowspan=\"2\">model</th><th rowspan=\"2\">method</th>"
      "<th colspan=\"5\">metrics (%)</th><th colspan=\"{0}\">RCD (relearning steps)</th>"
      "<th colspan=\"{0}\">RCD ÷ retrained</th><th rowspan=\"2\">unlearn<br>seconds</th>"
      "<th colspan=\"2\">L2 distance to</th></tr>\n<tr><th>FA</th><th>RA</th><th>TA</th><th>MIA</th><th>gap</th>"
      "{1}{1}<th>original</th><th>retrained</th></tr></thead>\n<tbody>\n",
      calibrated ? 4 : 3, rcd_columns);
  bool any_damaged = false, any_diverged = false;
  for (const Model& m : r.models) {
    t += model_row(m, styles[m.name], calibrated);
    any_damaged = any_damaged || m.damaged;
    any_diverged = any_diverged || m.diverged;
  }
  t += "</tbody></table>\n";
  t += fmt::format("<p class=\"footnote\">“≥” marks a target not reached within the {} relearning steps: the true RCD "
                   "is at least the cap, and a ratio with it a bound (“≤” when the retrained model's is the censored "
                   "one; “n/a” when both are).</p>\n", fixed(r.relearn.steps, 0));
  if (any_diverged)
    t += "<p class=\"footnote\"><b>diverged</b>: the forget loss stopped being finite while relearning; such a run "
         "has no relearning delay to report.</p>\n";
  if (any_damaged)
    t += fmt::format("<p class=\"footnote\"><b>damaged*</b>: RA or TA more than {} percentage points below the "
                     "retrained model's. A damaged model also relearns slowly, so its RCD says little about "
                     "forgetting.</p>\n", margin ? fixed(*margin * 100, 1) : std::string(kNone));
  return t;
}

// ---- generators

// "87.12 [85.80, 88.35]": a share and its Wilson interval, in percent.
std::string share_text(const Model::Share& x) {
  if (!x.value) return std::string(kNone);
  return fmt::format("{}<span class=\"pm\"> [{}, {}]</span>", percent(x.value), percent(x.low), percent(x.high));
}

// A generator's metrics, one row a model: fidelity with its interval, Fréchet distances, losses.
std::string generator_table(const Replicate& r, const Styles& styles) {
  std::string t =
      "<table class=\"generator\">\n<thead><tr><th rowspan=\"2\">model</th><th colspan=\"2\">fidelity (%, 95% Wilson "
      "interval)</th><th colspan=\"2\">Fréchet distance</th><th colspan=\"3\">loss per image</th></tr>\n<tr><th>forget "
      "class</th><th>retain classes</th><th>forget</th><th>retain</th><th>forget images</th><th>test images of the "
      "class</th><th>membership gap</th></tr></thead>\n<tbody>\n";
  Value samples;
  for (const Model& m : r.models) {
    if (!m.generator) continue;
    samples = m.forget_fidelity.count;
    t += fmt::format("<tr class=\"generator-model {}\" data-model=\"{}\">", m.role, escape(m.name)) +
         name_cell(m.name, styles[m.name], "") + cell(share_text(m.forget_fidelity)) +
         cell(share_text(m.retain_fidelity));
    for (const Value& v : {m.forget_frechet, m.retain_frechet, m.forget_loss, m.test_forget_class_loss, m.membership_gap})
      t += cell(escape(significant(v)));
    t += "</tr>\n";
  }
  return t + fmt::format(
      "</tbody></table>\n<p class=\"footnote\">A generator's FA and RA above are its <b>fidelity</b>: the share "
      "of its samples conditioned on a class that the study's evaluator (a cnn-s classifier) puts in that class, {} "
      "samples of the forget class; TA and MIA do not apply (—), and the gap is that of the two fidelities. The "
      "Fréchet distance is FID's construction on the evaluator's penultimate features against the real test images "
      "(not an FID: it compares only with the others here). The membership gap is the test images' loss minus the "
      "forget images'.</p>\n", count(samples));
}

// Reads a picture a results file names, as a data: URL for an <img>: a relative path inside the
// study's folder (no "..") to a PNG file, at most kMaxPictureBytes. Empty when it cannot be read.
constexpr size_t kMaxPictureBytes = size_t{4} << 20;
std::string picture_url(const std::filesystem::path& folder, const std::string& file) {
  const std::filesystem::path relative(file);
  if (folder.empty() || relative.is_absolute() || relative.extension() != ".png") return "";
  for (const auto& part : relative)
    if (part == "..") return "";
  std::string bytes;
  try {
    const std::filesystem::path path = folder / relative;
    if (!std::filesystem::is_regular_file(path) || std::filesystem::file_size(path) > kMaxPictureBytes) return "";
    bytes = read_file(path.string(), "report");
  } catch (const std::exception&) {
    return "";
  }
  if (bytes.rfind("\x89PNG\r\n\x1a\n", 0) != 0) return "";
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string url = "data:image/png;base64,";
  for (size_t i = 0; i < bytes.size(); i += 3) {  // base64: 3 bytes as 4 digits, '=' padding the last group
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k)
      group = group << 8 | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) url += k <= n ? kDigits[group >> (18 - 6 * k) & 63] : '=';
  }
  return url;
}

// Every model's samples (the relearning phase's pictures), so a reader sees what was forgotten.
std::string pictures_section(const Replicate& r, const std::filesystem::path& folder) {
  if (r.pictures.empty()) return "";
  Value forgotten;
  for (const Model& m : r.models)
    if (m.generator) forgotten = m.forget_class;
  std::string h = "<div class=\"pictures\">\n";
  for (const auto& [name, file] : r.pictures) {
    const std::string url = picture_url(folder, file);
    h += fmt::format("<figure class=\"samples\" data-model=\"{}\">{}<figcaption>{}</figcaption></figure>\n",
                     escape(name),
                     url.empty() ? fmt::format("<span class=\"missing\">picture not found: {}</span>", escape(file))
                                 : fmt::format("<img class=\"samples\" alt=\"samples of {}\" src=\"{}\">", escape(name), url),
                     escape(name));
  }
  const std::string c = count(forgotten);
  return h + fmt::format("</div>\n<p class=\"footnote\">Samples of every model before relearning, drawn with the "
                         "replicate's seed (the same noise for every model): the first row conditioned on the "
                         "forgotten class {}, the second and third on the two classes after it (retained).</p>\n", c);
}

std::string replicate_details(const Replicate& r, size_t position, const Styles& styles, const Value& margin,
                              bool open, const std::filesystem::path& folder) {
  const std::string index = r.index ? count(r.index) : std::to_string(position);
  const bool generators = std::any_of(r.models.begin(), r.models.end(), [](const Model& m) { return m.generator; });
  return fmt::format("<details class=\"replicate\" data-replicate=\"{}\"{}>\n<summary>Replicate {} · seed {} · {} "
                     "forget samples · loss target {}</summary>\n{}{}{}</details>\n",
                     index, open ? " open" : "", index, count(r.seed), count(r.forget_size),
                     significant(r.relearn.loss_target), model_table(r, styles, margin),
                     generators ? generator_table(r, styles) : "", pictures_section(r, folder));
}

// ---- the scenario

std::string figure(const std::string& svg, std::string_view caption) {
  return fmt::format("<figure>\n{}<figcaption>{}</figcaption>\n</figure>\n", svg, caption);
}

// Beneath the summary of a study whose methods ran at the settings lethe tune chose.
std::string tuned_note(const TuneRecord& tune, const std::string& scenario) {
  std::vector<std::string> methods;
  bool here = false;
  for (const TuneScenario& t : tune.scenarios) {
    here = here || t.scenario == scenario;
    for (const TuneMethod& m : t.methods)
      if (std::find(methods.begin(), methods.end(), m.method) == methods.end()) methods.push_back(m.method);
  }
  std::string names;
  for (const std::string& m : methods) names += (names.empty() ? "" : ", ") + m;
  std::string where = "this scenario's";
  if (!here) {
    where = tune.scenarios.size() == 1 ? "scenario " : "scenarios ";
    for (size_t i = 0; i < tune.scenarios.size(); ++i) where += (i ? ", " : "") + tune.scenarios[i].scenario;
    where += "'s";
  }
  return fmt::format("<p class=\"footnote\"><b>Tuned:</b> every method ({}) at its tuned setting, {} trials each: "
                     "<code>lethe tune</code> chose it on {} validation split (see <a href=\"#tuning\">Tuning</a>)."
                     "</p>\n", escape(names), tune.trials, escape(where));
}

std::string scenario_section(const Scenario& s, size_t index, const Value& margin, const TuneRecord* tune,
                             const std::filesystem::path& folder) {
  const Styles styles(s);
  const int64_t n = count_of(s.replicate_count);
  const bool intervals = n >= 2;
  double max_step = 0;
  std::vector<Value> seeds, forget_sizes, loss_targets, accuracy_targets;
  for (const Replicate& r : s.replicates) {
    max_step = std::max(max_step, r.relearn.steps.value_or(0));
    for (const Model& m : r.models)
      for (const Point& p : m.curve) max_step = std::max(max_step, p.step);
    seeds.push_back(r.seed);
    forget_sizes.push_back(r.forget_size);
    loss_targets.push_back(r.relearn.loss_target);
    accuracy_targets.push_back(r.relearn.accuracy_target);
  }
  std::string h = fmt::format(
      "<section id=\"scenario-{}\">\n<h2>Scenario {}</h2>\n<p class=\"sub\">{} replicate{} (seed{} {}), "
      "{} forget samples</p>\n<p class=\"sub\">relearning: {}; targets per replicate (from its original): forget loss "
      "≤ {}, forget accuracy ≥ {}%</p>\n",
      index + 1, escape(s.name), count(s.replicate_count), n == 1 ? "" : "s", seeds.size() == 1 ? "" : "s",
      range_text(seeds, 1, 0), range_text(forget_sizes, 1, 0), relearn_text(s.relearn), range_text(loss_targets, 1, 3),
      range_text(accuracy_targets, 100, 1));
  if (static_cast<size_t>(n) != s.replicates.size())
    h += fmt::format("<p class=\"footnote warn\">The summary counts {} replicates, the file holds {}.</p>\n", n,
                     s.replicates.size());

  h += fmt::format("<h3>Summary over {} replicate{}</h3>\n", count(s.replicate_count), n == 1 ? "" : "s");
  h += summary_table(s, styles);
  const bool generators = std::any_of(s.replicates.begin(), s.replicates.end(), [](const Replicate& r) {
    return std::any_of(r.models.begin(), r.models.end(), [](const Model& m) { return m.generator; });
  });
  if (generators)
    h += "<p class=\"footnote\"><b>Generators:</b> FA and RA are the forget and retain <b>fidelity</b> (the share of "
         "samples the evaluator puts in the class they were drawn for), TA and MIA do not apply, the gap is that of "
         "the two fidelities, and RCD (accuracy) counts the steps until the forget fidelity is back. Each replicate's "
         "table below has every generator metric and a picture of every model's samples.</p>\n";
  if (tune) h += tuned_note(*tune, s.name);
  h += paired_table(s, styles);

  // Plots: the gap with its interval, the gap against IEU's, the RCD medians, then the curves.
  std::vector<IntervalRow> gap_rows, versus_ieu;
  for (const ModelSummary& m : s.models) {
    std::vector<double> gaps;  // each replicate's, beneath the mean (with one replicate it is the mean)
    if (intervals)
      for (const Replicate& r : s.replicates)
        for (const Model& x : r.models)
          if (x.name == m.name && x.gap) gaps.push_back(*x.gap * 100);
    if (m.role != "retrained") gap_rows.push_back({m.name, styles[m.name], m.figure("gap"), gaps, false});
    if (m.has_ieu) {
      const auto it = m.ieu.find("gap");
      if (it == m.ieu.end()) continue;
      const Interval& d = it->second.summary;
      versus_ieu.push_back({m.name, styles[m.name], d, {}, d.has_interval() && *d.low <= 0 && *d.high >= 0});
    }
  }
  const std::string ci = confidence_text(s.confidence);
  h += "<div class=\"plots\">\n";
  h += figure(interval_plot("gap", intervals ? "Average gap to the retrained model: mean and " + ci + " interval"
                                             : "Average gap to the retrained model (one replicate: no interval)",
                            "gap (percentage points)", gap_rows, 100, 2, Value(0), ""),
              intervals ? "Dot: the mean over the replicates; bar: its " + ci + " t-interval; small dots: each "
                              "replicate. The retrained model's own gap is 0 by definition."
                        : std::string("One replicate: its value; intervals need at least 2 replicates."));
  if (!versus_ieu.empty())
    h += figure(interval_plot("paired-ieu", "Gap minus IEU's gap, paired per replicate", "difference (points)",
                              versus_ieu, 100, 2, Value(0), "0: same as IEU"),
                intervals ? "Mean paired difference with its " + ci + " interval; left of 0 the model is closer to "
                                "the retrained model than IEU. Pale rows (n.s.): the interval holds 0."
                          : std::string("One replicate: the difference of its values, no interval."));
  h += figure(rcd_plot(s, styles, Rcd::loss),
              "Median RCD (loss) over the replicates: filled when exact, open with an arrow when only a lower bound "
              "(censored runs at or below the median). Small marks: each replicate (triangles: censored at the cap). "
              "Diverged runs are not drawn, only counted.");
  h += figure(rcd_plot(s, styles, Rcd::accuracy), "The same for RCD (accuracy).");
  if (any_calibrated(s))
    h += figure(rcd_plot(s, styles, Rcd::calibrated),
                "The same for RCD-cal: the forget loss at each model's fitted temperature against the original's.");
  std::vector<double> loss_lines, accuracy_lines;
  for (const Value& v : loss_targets)
    if (v) loss_lines.push_back(*v);
  for (const Value& v : accuracy_targets)
    if (v) accuracy_lines.push_back(*v * 100);
  const std::string replicates_note =
      n > 1 ? " Bold: replicate 0; thin: the other replicates; one dashed target per replicate." : "";
  h += figure(line_plot({"loss", "Forget-set loss while relearning", "relearning step", "forget loss", loss_lines, "",
                         true},
                        series_of(s, styles, &Point::loss), max_step, n),
              "RCD (loss) is the step where a line first falls to its replicate's dashed target." + replicates_note);
  h += figure(line_plot({"accuracy", "Forget-set accuracy while relearning", "relearning step", "forget accuracy (%)",
                         accuracy_lines, "%"},
                        series_of(s, styles, &Point::accuracy, 100), max_step, n),
              "RCD (accuracy) is the step where a line first reaches its replicate's dashed target." + replicates_note);
  h += figure(line_plot({"distance", "Weight distance from the start of relearning", "relearning step", "L2 distance",
                         {}, ""},
                        series_of(s, styles, &Point::distance), max_step, n),
              "How far relearning moves each model's weights." + replicates_note);
  h += "</div>\n";

  h += fmt::format("<details class=\"figures\">\n<summary>Every summarised figure ({})</summary>\n{}<p "
                   "class=\"footnote\">Mean ± half-width of the {} t-interval over the replicates (the value alone "
                   "for one replicate); accuracies and gap in percentage points, the rest in their own units.</p>\n"
                   "</details>\n",
                   intervals ? "mean ± " + ci + " interval" : std::string("one replicate"), figures_table(s, styles),
                   ci);
  h += "<h3>Each replicate</h3>\n";
  for (size_t r = 0; r < s.replicates.size(); ++r)
    h += replicate_details(s.replicates[r], r, styles, margin, s.replicates.size() == 1, folder);
  return h + "</section>\n";
}

// A study reported part-way (`lethe report --study`): what the page does not hold yet.
std::string pending_section(const std::vector<std::string>& pending) {
  std::string ids;
  for (const std::string& id : pending) ids += "<li><code>" + escape(id) + "</code></li>";
  return fmt::format("<section id=\"pending\">\n<h2>Not done: {} phase{}</h2>\n<p>This report was made before "
                     "the study finished: it holds the replicates whose relearning is done, and its figures will "
                     "change. <code>lethe run</code> with the same config runs what is missing; <code>lethe run "
                     "--plan</code> says what each phase needs.</p>\n<ul>{}</ul>\n</section>\n",
                     pending.size(), pending.size() == 1 ? "" : "s", ids);
}

std::string timings_section(const Study& s) {
  std::string t = "<section id=\"timings\">\n<h2>Timings</h2>\n<table class=\"timings\">\n"
                  "<thead><tr><th>phase</th><th>time</th><th>share</th></tr></thead>\n<tbody>\n";
  for (const auto& [phase, seconds] : s.timings) {
    const Value share = seconds && s.total_seconds && *s.total_seconds > 0
                            ? Value(*seconds / *s.total_seconds * 100) : std::nullopt;
    t += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n", escape(phase),
                     duration(seconds), share ? fixed(share, 1) + "%" : std::string(kNone));
  }
  return t + fmt::format("<tr><td><b>total</b></td><td class=\"num\"><b>{}</b></td><td></td></tr>\n"
                         "</tbody></table>\n</section>\n", duration(s.total_seconds));
}

}  // namespace

json parse_results(std::string_view text, const std::string& origin) {
  JsonLimits limits;
  limits.max_bytes = kMaxResultsBytes;
  return parse_json(text, "report: " + origin, limits);
}

std::string page_open(std::string_view title, std::string_view extra_style) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{}</title>\n<style>{}{}</style>\n</head>\n<body>\n",
      escape(title), kStyle, extra_style);
}

std::string render_report(const json& results, const std::filesystem::path& folder) {
  const Study s = read_study(results);
  std::string page = page_open("lethe study " + s.name);
  page += header(s);
  if (!s.pending.empty()) page += pending_section(s.pending);
  if (s.tune) page += tuning_section_html(*s.tune);
  for (size_t i = 0; i < s.scenarios.size(); ++i)
    page += scenario_section(s.scenarios[i], i, s.margin, s.tune ? &*s.tune : nullptr, folder);
  page += fmt::format("<section id=\"configuration\">\n<h2>Configuration</h2>\n<pre>{}</pre>\n</section>\n",
                      escape(s.config));
  page += timings_section(s);
  return page + std::string(kPageClose);
}

void write_report(const json& results, const std::filesystem::path& html, const std::filesystem::path& folder) {
  write_file_atomically(html.string(), render_report(results, folder), "report");
}


}  // namespace lethe::study
