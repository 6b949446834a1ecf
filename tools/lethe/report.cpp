// lethe report: the study's results.json as one self-contained HTML page. The page is built from
// strings (HTML, inline CSS, SVG drawn here) so that it needs no script, font or network to open
// and stays readable years later; every plot is a plain <svg> a browser or a test can inspect.
#include "report.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"

namespace lethe::cli {

namespace {

using nlohmann::json;
using Value = std::optional<double>;  // null (unknown) or not finite: shown as "—"

// ---------------------------------------------------------------------------------------------
// Reading the results file. Every value is read through Field, which knows its path in the file,
// so a missing or mistyped field is reported by name instead of as a nlohmann exception.

struct Field {
  const json& value;
  std::string path;

  Field operator[](const char* key) const {
    LETHE_CHECK(value.is_object(), "report", path, ": expected an object, got ", value.type_name());
    const std::string at = path.empty() ? key : path + "." + key;
    const auto it = value.find(key);
    LETHE_CHECK(it != value.end(), "report", "missing field ", at);
    return {*it, at};
  }
  std::vector<Field> items() const {
    LETHE_CHECK(value.is_array(), "report", path, ": expected an array, got ", value.type_name());
    std::vector<Field> out;
    for (size_t i = 0; i < value.size(); ++i) out.push_back({value[i], fmt::format("{}[{}]", path, i)});
    return out;
  }
  // A number, or nothing for null (unknown) and NaN/infinity (which a producer may hold in memory).
  Value number() const {
    if (value.is_null()) return std::nullopt;
    LETHE_CHECK(value.is_number(), "report", path, ": expected a number, got ", value.type_name());
    const double v = value.get<double>();
    return std::isfinite(v) ? Value(v) : std::nullopt;
  }
  double required_number() const {
    const Value v = number();
    LETHE_CHECK(v.has_value(), "report", path, ": expected a number, got ", value.type_name());
    return *v;
  }
  std::string text() const {
    if (value.is_null()) return "";
    LETHE_CHECK(value.is_string(), "report", path, ": expected a string, got ", value.type_name());
    return value.get<std::string>();
  }
  std::string required_text() const {
    const std::string s = text();
    LETHE_CHECK(!s.empty(), "report", path, ": expected a non-empty string");
    return s;
  }
  bool flag() const {
    if (value.is_null()) return false;
    LETHE_CHECK(value.is_boolean(), "report", path, ": expected true or false, got ", value.type_name());
    return value.get<bool>();
  }
};

struct Point {
  double step = 0;
  Value accuracy, loss, distance;
};

struct Model {
  std::string name, method, role;  // role: original | retrained | unlearned
  Value fa, ra, ta, mia, gap, unlearn_seconds, to_original, to_retrained;
  bool damaged = false;
  Value loss_steps, accuracy_steps, loss_auc, norm_loss, norm_accuracy, norm_auc;
  bool loss_censored = false, accuracy_censored = false;
  std::vector<Point> curve;
};

struct Scenario {
  std::string name, digest, optimizer, data;
  Value split_seed, forget_size, lr, batch, steps, eval_every, accuracy_target, loss_target;
  std::vector<Model> models;
};

struct Study {
  std::string name, version, created, config;  // config: pretty-printed JSON
  std::vector<std::pair<std::string, Value>> timings;
  Value total_seconds, margin;
  std::vector<Scenario> scenarios;
};

Point read_point(const Field& f) {
  return {f["step"].required_number(), f["forget_accuracy"].number(), f["forget_loss"].number(),
          f["distance"].number()};
}

Model read_model(const Field& f) {
  Model m;
  m.name = f["name"].required_text();
  m.method = f["method"].text();
  m.role = f["role"].required_text();
  LETHE_CHECK(m.role == "original" || m.role == "retrained" || m.role == "unlearned", "report", f.path,
              ".role: expected original, retrained or unlearned, got \"", m.role, "\"");
  const Field metrics = f["metrics"];
  m.fa = metrics["fa"].number();
  m.ra = metrics["ra"].number();
  m.ta = metrics["ta"].number();
  m.mia = metrics["mia"].number();
  m.gap = f["gap"].number();
  m.unlearn_seconds = f["unlearn_seconds"].number();
  m.damaged = f["damaged"].flag();
  m.to_original = f["distance"]["original"].number();
  m.to_retrained = f["distance"]["retrained"].number();
  const Field rcd = f["rcd"];
  m.loss_steps = rcd["loss_steps"].number();
  m.accuracy_steps = rcd["accuracy_steps"].number();
  m.loss_auc = rcd["loss_auc"].number();
  m.loss_censored = rcd["loss_censored"].flag();
  m.accuracy_censored = rcd["accuracy_censored"].flag();
  m.norm_loss = rcd["normalized"]["loss"].number();
  m.norm_accuracy = rcd["normalized"]["accuracy"].number();
  m.norm_auc = rcd["normalized"]["loss_auc"].number();
  for (const Field& p : f["curve"].items()) m.curve.push_back(read_point(p));
  return m;
}

Scenario read_scenario(const Field& f) {
  Scenario s;
  s.name = f["scenario"].required_text();
  s.split_seed = f["split_seed"].number();
  s.digest = f["split_digest"].text();
  s.forget_size = f["forget_size"].number();
  const Field r = f["relearn"];
  s.optimizer = r["optimizer"].text();
  s.lr = r["lr"].number();
  s.batch = r["batch"].number();
  s.steps = r["steps"].number();
  s.eval_every = r["eval_every"].number();
  s.accuracy_target = r["accuracy_target"].number();
  s.loss_target = r["loss_target"].number();
  s.data = r["data"].text();
  for (const Field& m : f["models"].items()) s.models.push_back(read_model(m));
  return s;
}

Study read_study(const json& results) {
  const Field root{results, ""};
  Study s;
  s.name = root["study"].text();
  s.version = root["lethe_version"].text();
  s.created = root["created"].text();
  s.config = root["config"].value.dump(2, ' ', false, json::error_handler_t::replace);
  for (const Field& t : root["timings"].items()) s.timings.emplace_back(t["phase"].text(), t["seconds"].number());
  s.total_seconds = root["total_seconds"].number();
  s.margin = root["margin"].number();
  for (const Field& sc : root["scenarios"].items()) s.scenarios.push_back(read_scenario(sc));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Text.

constexpr std::string_view kNone = "—";  // unknown values; never "nan"

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(const Value& v, int decimals) {
  return v ? fmt::format("{:.{}f}", *v, decimals) : std::string(kNone);
}

// About three significant digits without exponents: 187, 12.3, 3.21, 0.0113.
std::string significant(const Value& v) {
  if (!v) return std::string(kNone);
  const double a = std::abs(*v);
  const int decimals = a == 0 ? 0 : std::clamp(2 - static_cast<int>(std::floor(std::log10(a))), 0, 4);
  return fixed(v, decimals);
}

// Settings as written (0.05, 128, 0.21), and "—" when unknown.
std::string plain(const Value& v) { return v ? fmt::format("{:g}", *v) : std::string(kNone); }

std::string percent(const Value& fraction) { return fraction ? fixed(*fraction * 100, 2) : std::string(kNone); }

// A censored value is the cap (or a ratio of it): the true one is at least that.
std::string at_least(const std::string& s, bool censored) {
  return censored && s != kNone ? "≥ " + s : s;
}

std::string duration(const Value& seconds) {
  if (!seconds) return std::string(kNone);
  const double s = *seconds;
  if (s < 60) return fmt::format("{:.1f} s", s);
  const auto whole = static_cast<long>(std::lround(s));
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  return fmt::format("{} h {:02} min", whole / 3600, whole % 3600 / 60);
}

// ---------------------------------------------------------------------------------------------
// SVG primitives.

// How a model's line looks, the same in every plot of a scenario and in the table's swatch.
struct Style {
  std::string colour, dash;  // dash: an SVG stroke-dasharray, empty for solid
  double width = 2;
};

Style style_of(const Model& m, int unlearned_index) {
  // Tableau 10 without its grey (grey is the original's); dashes keep lines apart where colours
  // are hard to tell apart (colour blindness, print).
  static constexpr std::string_view palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                 "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"};
  static constexpr std::string_view dashes[] = {"", "7 3", "2 3"};
  if (m.role == "retrained") return {"#000000", "", 3.5};
  if (m.role == "original") return {"#8c8c8c", "", 2.5};
  const auto i = static_cast<size_t>(unlearned_index);
  return {std::string(palette[i % std::size(palette)]), std::string(dashes[i % std::size(dashes)]), 2};
}

std::vector<Style> styles_of(const Scenario& s) {
  std::vector<Style> styles;
  int unlearned = 0;
  for (const Model& m : s.models) styles.push_back(style_of(m, m.role == "unlearned" ? unlearned++ : 0));
  return styles;
}

std::string stroke(const Style& st) {
  std::string s = fmt::format("stroke=\"{}\" stroke-width=\"{}\"", st.colour, st.width);
  if (!st.dash.empty()) s += fmt::format(" stroke-dasharray=\"{}\"", st.dash);
  return s;
}

std::string text(double x, double y, std::string_view content, std::string_view attributes = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" {}>{}</text>\n", x, y, attributes, escape(content));
}

std::string line(double x1, double y1, double x2, double y2, std::string_view attributes) {
  return fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" {}/>\n", x1, y1, x2, y2,
                     attributes);
}

// Heckbert's nice numbers: 1, 2, 5 or 10 times a power of ten, near x (rounded) or above it.
double nice(double x, bool round) {
  const double e = std::pow(10, std::floor(std::log10(x)));
  const double f = x / e;
  if (round) return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
}

// A data range mapped to pixels, linear or logarithmic, with the tick values to label.
struct Scale {
  double lo = 0, hi = 1, from = 0, to = 1;
  bool log = false;
  std::vector<double> ticks;

  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v - lo) / (hi - lo);
    return from + t * (to - from);
  }
};

// A linear scale over [lo, hi] widened to nice ticks, about `count` of them.
Scale linear_scale(double lo, double hi, double from, double to, int count = 6) {
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {  // one value: give it room
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = nice(nice(hi - lo, false) / (count - 1), true);
  Scale s{std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, from, to, false, {}};
  for (double v = s.lo; v <= s.hi + step * 1e-6; v += step) s.ticks.push_back(std::round(v / step) * step + 0.0);
  return s;
}

// A log scale over [lo, hi] (both > 0) from the 1-2-5 value below lo to the one above hi, ticked
// at the 1-2-5 values (only the powers of ten when that would be too many).
Scale log_scale(double lo, double hi, double from, double to) {
  std::vector<double> values;  // 1-2-5 values from below lo to above hi
  for (int e = static_cast<int>(std::floor(std::log10(lo))) - 1; e <= std::ceil(std::log10(hi)) + 1; ++e)
    for (const double m : {1.0, 2.0, 5.0}) values.push_back(m * std::pow(10, e));
  const auto first = std::upper_bound(values.begin(), values.end(), lo * (1 + 1e-9)) - 1;
  const auto last = std::lower_bound(values.begin(), values.end(), hi * (1 - 1e-9));
  Scale s{*first, *last, from, to, true, {first, last + 1}};
  if (s.ticks.size() > 8)
    std::erase_if(s.ticks, [](double v) { return std::abs(std::log10(v) - std::round(std::log10(v))) > 1e-9; });
  return s;
}

std::string tick_label(double v) { return fmt::format("{:g}", v); }

// The plot area: where data is drawn inside an SVG of size width × height.
struct Frame {
  double width, height, left, right, top, bottom;  // right, bottom: pixel coordinates of the edges
};

std::string svg_open(const Frame& f, std::string_view kind, std::string_view title) {
  return fmt::format(
      "<svg class=\"plot\" data-plot=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\">\n",
      kind, f.width, f.height, escape(title)) + text(f.left, 22, title, "class=\"title\"");
}

// Axes, grid lines and tick labels of both scales, and the axis titles.
std::string axes(const Frame& f, const Scale& x, const Scale& y, std::string_view x_title, std::string_view y_title) {
  std::string s;
  for (const double v : y.ticks) {
    s += line(f.left, y(v), f.right, y(v), "class=\"grid\"");
    s += text(f.left - 6, y(v) + 4, tick_label(v), "class=\"tick\" text-anchor=\"end\"");
  }
  for (const double v : x.ticks) {
    s += line(x(v), f.bottom, x(v), f.bottom + 5, "class=\"axis\"");
    s += text(x(v), f.bottom + 18, tick_label(v), "class=\"tick\" text-anchor=\"middle\"");
  }
  s += line(f.left, f.bottom, f.right, f.bottom, "class=\"axis\"");
  s += line(f.left, f.top, f.left, f.bottom, "class=\"axis\"");
  s += text((f.left + f.right) / 2, f.bottom + 38, x_title, "class=\"label\" text-anchor=\"middle\"");
  s += text(0, 0, y_title,
            fmt::format("class=\"label\" text-anchor=\"middle\" transform=\"translate(16 {:.1f}) rotate(-90)\"",
                        (f.top + f.bottom) / 2));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Plots.

struct Series {
  const Model* model;
  Style style;
  std::vector<std::pair<double, Value>> points;  // (step, value); a missing value breaks the line
};

// One series per model of the scenario: `member` of each curve point, times `factor`.
std::vector<Series> series_of(const Scenario& s, Value Point::*member, double factor = 1) {
  const std::vector<Style> styles = styles_of(s);
  std::vector<Series> out;
  for (size_t i = 0; i < s.models.size(); ++i) {
    Series series{&s.models[i], styles[i], {}};
    for (const Point& p : s.models[i].curve) {
      const Value v = p.*member;
      series.points.emplace_back(p.step, v ? Value(*v * factor) : std::nullopt);
    }
    out.push_back(std::move(series));
  }
  // Retrained first, so its thick black line lies under the others instead of hiding them.
  std::stable_partition(out.begin(), out.end(), [](const Series& r) { return r.model->role == "retrained"; });
  return out;
}

// An SVG path through the points, broken where a value is missing (or not drawable on a log scale).
std::string curve_path(const Series& series, const Scale& x, const Scale& y) {
  std::string d;
  bool pen_down = false;
  for (const auto& [step, v] : series.points) {
    if (!v || (y.log && *v <= 0)) {
      pen_down = false;
      continue;
    }
    d += fmt::format("{}{:.1f} {:.1f} ", pen_down ? "L" : "M", x(step), y(*v));
    pen_down = true;
  }
  return fmt::format("<path class=\"curve\" data-model=\"{}\" fill=\"none\" {} d=\"{}\"/>\n",
                     escape(series.model->name), stroke(series.style), d);
}

// The legend, right of the plot area: retrained and original first, then the methods in order.
std::string legend(const Frame& f, std::vector<const Series*> entries) {
  std::stable_partition(entries.begin(), entries.end(), [](const Series* s) { return s->model->role != "unlearned"; });
  std::string s;
  double y = f.top + 6;
  for (const Series* e : entries) {
    const double x = f.right + 16;
    s += line(x, y, x + 26, y, stroke(e->style));
    const bool drawn =
        std::any_of(e->points.begin(), e->points.end(), [](const auto& p) { return p.second.has_value(); });
    const std::string notes = std::string(e->model->damaged ? " (damaged)" : "") + (drawn ? "" : " (no data)");
    s += text(x + 32, y + 4, e->model->name + notes, "class=\"legend\"");
    y += 18;
  }
  return s;
}

struct LinePlot {
  std::string kind, title, x_title, y_title;
  Value target;      // a dashed horizontal line with its value, when known
  std::string unit;  // after the target's value
  bool log_when_wide = false;  // log y scale when the values span more than a factor of 10
};

std::string line_plot(const LinePlot& p, const std::vector<Series>& series, double max_step) {
  const Frame f{680, 388, 64, 480, 40, 340};
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : series)
    for (const auto& pt : s.points)
      if (pt.second) lo = std::min(lo, *pt.second), hi = std::max(hi, *pt.second);
  std::string svg = svg_open(f, p.kind, p.title);
  if (!(lo <= hi)) return svg + text(f.left, f.top + 40, "no data", "class=\"label\"") + "</svg>\n";
  if (p.target) lo = std::min(lo, *p.target), hi = std::max(hi, *p.target);
  const bool log = p.log_when_wide && lo > 0 && hi / lo > 10;
  const Scale x = linear_scale(0, std::max(max_step, 1.0), f.left, f.right);
  const Scale y = log ? log_scale(lo, hi, f.bottom, f.top) : linear_scale(lo, hi, f.bottom, f.top);
  svg += axes(f, x, y, p.x_title, p.y_title + (log ? " (log scale)" : ""));
  std::vector<const Series*> entries;
  for (const Series& s : series) {
    svg += curve_path(s, x, y);
    entries.push_back(&s);
  }
  if (p.target) {
    svg += line(f.left, y(*p.target), f.right, y(*p.target), "class=\"target\"");
    svg += text(f.right - 4, y(*p.target) - 5, fmt::format("target {}{}", tick_label(*p.target), p.unit),
                "class=\"target-label\" text-anchor=\"end\"");
  }
  return svg + legend(f, entries) + "</svg>\n";
}

// Horizontal bars of each model's normalised RCD (loss) with the retrained model's 1 marked.
std::string rcd_bars(const Scenario& s) {
  const std::vector<Style> styles = styles_of(s);
  size_t longest = 4;
  for (const Model& m : s.models) longest = std::max(longest, m.name.size());
  const double row = 24, left = 24 + 7.0 * static_cast<double>(longest);
  const Frame f{680, 0, left, 600, 52, 52 + row * static_cast<double>(s.models.size())};
  double hi = 1;
  for (const Model& m : s.models) hi = std::max(hi, m.norm_loss.value_or(0));
  const Scale x = linear_scale(0, hi * 1.08, f.left, f.right);
  Frame svg_frame = f;
  svg_frame.height = f.bottom + 50;
  std::string svg = svg_open(svg_frame, "rcd", "RCD (loss), normalised by the retrained model's");
  svg += axes(f, x, Scale{0, 1, f.bottom, f.top, false, {}}, "relearning steps ÷ retrained model's", "");
  for (size_t i = 0; i < s.models.size(); ++i) {
    const Model& m = s.models[i];
    const double y = f.top + row * static_cast<double>(i);
    svg += text(f.left - 8, y + row / 2 + 4, m.name, "class=\"tick\" text-anchor=\"end\"");
    const double end = m.norm_loss ? x(*m.norm_loss) : f.left;
    if (m.norm_loss)
      svg += fmt::format(
          "<rect class=\"bar\" data-model=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\"{}/>\n",
          escape(m.name), f.left, y + 4, end - f.left, row - 8, styles[i].colour,
          m.loss_censored ? " fill-opacity=\"0.55\"" : "");
    svg += text(end + 5, y + row / 2 + 4,
                at_least(fixed(m.norm_loss, 2), m.loss_censored) + (m.damaged ? " (damaged)" : ""),
                "class=\"tick value\"");
  }
  svg += line(x(1), f.top - 6, x(1), f.bottom, "class=\"target\"");
  svg += text(x(1) + 4, f.top - 8, "retrained = 1", "class=\"target-label\"");
  return svg + "</svg>\n";
}

// ---------------------------------------------------------------------------------------------
// HTML.

constexpr std::string_view kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1a1a1a;
       max-width: 1380px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 6px; padding-top: 12px; border-top: 2px solid #ddd; }
.meta, .sub { color: #555; margin: 2px 0; }
.howto { background: #f4f6fa; border-left: 4px solid #4a6fa5; padding: 8px 12px; margin: 12px 0; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; margin: 6px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e3e3e3; }
th { background: #f2f2f2; font-weight: 600; text-align: center; }
td.num { text-align: right; white-space: nowrap; }
td.name { white-space: nowrap; }
tr.retrained td { font-weight: 600; background: #f7f7f7; }
tr.original td { color: #666; }
tr.damaged td { background: #fdf0ef; }
.swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid; vertical-align: middle;
          margin-right: 6px; }
.flag { display: inline-block; font-size: 11px; font-weight: 600; color: #fff; background: #c0392b;
        border-radius: 3px; padding: 0 5px; margin-left: 6px; }
.footnote { font-size: 12.5px; color: #444; margin: 4px 0; max-width: 1100px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 18px 26px; margin-top: 12px; }
figure { margin: 0; }
figcaption { font-size: 12.5px; color: #555; margin: 2px 4px 0 64px; }
svg.plot { width: 100%; height: auto; display: block; }
svg text { font-family: inherit; fill: #222; }
svg .title { font-size: 15px; font-weight: 600; }
svg .tick { font-size: 11.5px; fill: #444; }
svg .label { font-size: 12.5px; fill: #333; }
svg .legend { font-size: 12px; }
svg .grid { stroke: #e8e8e8; stroke-width: 1; }
svg .axis { stroke: #555; stroke-width: 1; }
svg .target { stroke: #b03a2e; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .target-label { font-size: 11.5px; fill: #b03a2e; }
svg .target-label, svg .value { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
pre { background: #f6f6f6; padding: 10px 14px; font-size: 12.5px; overflow-x: auto; }
)";

std::string header(const Study& s) {
  std::string nav;
  for (size_t i = 0; i < s.scenarios.size(); ++i)
    nav += fmt::format("<a href=\"#scenario-{}\">{}</a>", i + 1, escape(s.scenarios[i].name));
  return fmt::format(
      "<header>\n<h1>Unlearning study {}</h1>\n<p class=\"meta\">lethe {} · created {} · total time {}</p>\n"
      "<p class=\"howto\"><b>How to read this.</b> FA, RA, TA: accuracy on the forget, retain and test sets; "
      "MIA: membership-inference score; gap: mean absolute difference of those four from the retrained model's. "
      "<b>RCD</b> (the headline) is the number of relearning steps until the forget-set loss falls to the "
      "target, normalised by the retrained model's: <b>1</b> relearns like a model that never saw the data; "
      "<b>below 1</b> relearns faster, so the data was hidden, not gone.</p>\n"
      "<nav>{}<a href=\"#configuration\">configuration</a><a href=\"#timings\">timings</a></nav>\n</header>\n",
      escape(s.name.empty() ? "(unnamed)" : s.name), escape(s.version.empty() ? "?" : s.version),
      escape(s.created.empty() ? std::string(kNone) : s.created), duration(s.total_seconds), nav);
}

std::string model_row(const Model& m, const Style& st) {
  const std::string flag =
      m.damaged ? "<span class=\"flag\" title=\"RA or TA well below the retrained model's\">damaged*</span>" : "";
  const char* swatch_line = st.dash.empty() ? "solid" : st.dash == "2 3" ? "dotted" : "dashed";
  std::string row = fmt::format(
      "<tr class=\"model {}{}\"><td class=\"name\"><span class=\"swatch\" style=\"border-top-color:{};"
      "border-top-style:{}\"></span>{}{}</td><td>{}</td>",
      m.role, m.damaged ? " damaged" : "", st.colour, swatch_line, escape(m.name), flag, escape(m.method));
  const std::string cells[] = {
      percent(m.fa), percent(m.ra), percent(m.ta), percent(m.mia), percent(m.gap),
      at_least(fixed(m.loss_steps, 0), m.loss_censored), at_least(fixed(m.accuracy_steps, 0), m.accuracy_censored),
      significant(m.loss_auc), at_least(fixed(m.norm_loss, 2), m.loss_censored),
      at_least(fixed(m.norm_accuracy, 2), m.accuracy_censored), fixed(m.norm_auc, 2),
      fixed(m.unlearn_seconds, 1), significant(m.to_original), significant(m.to_retrained)};
  for (const std::string& c : cells) row += fmt::format("<td class=\"num\">{}</td>", c);
  return row + "</tr>\n";
}

std::string model_table(const Scenario& s, const Value& margin) {
  std::string t =
      "<table class=\"models\">\n<thead><tr><th rowspan=\"2\">model</th><th rowspan=\"2\">method</th>"
      "<th colspan=\"5\">metrics (%)</th><th colspan=\"3\">RCD (relearning steps)</th>"
      "<th colspan=\"3\">RCD ÷ retrained</th><th rowspan=\"2\">unlearn<br>seconds</th>"
      "<th colspan=\"2\">L2 distance to</th></tr>\n<tr><th>FA</th><th>RA</th><th>TA</th><th>MIA</th><th>gap</th>"
      "<th>loss</th><th>accuracy</th><th>loss AUC</th><th>loss</th><th>accuracy</th><th>loss AUC</th>"
      "<th>original</th><th>retrained</th></tr></thead>\n<tbody>\n";
  const std::vector<Style> styles = styles_of(s);
  bool any_damaged = false;
  for (size_t i = 0; i < s.models.size(); ++i) {
    t += model_row(s.models[i], styles[i]);
    any_damaged = any_damaged || s.models[i].damaged;
  }
  t += "</tbody></table>\n";
  t += fmt::format("<p class=\"footnote\">“≥” marks a target not reached within the {} relearning steps: "
                   "the true RCD is at least the cap.</p>\n", fixed(s.steps, 0));
  if (any_damaged)
    t += fmt::format("<p class=\"footnote\"><b>damaged*</b>: RA or TA more than {} percentage points below the "
                     "retrained model's. A damaged model also relearns slowly, so its RCD says little about "
                     "forgetting.</p>\n", margin ? fixed(*margin * 100, 1) : std::string(kNone));
  return t;
}

std::string figure(const std::string& svg, std::string_view caption) {
  return fmt::format("<figure>\n{}<figcaption>{}</figcaption>\n</figure>\n", svg, caption);
}

std::string scenario_section(const Scenario& s, size_t index, const Value& margin) {
  double max_step = s.steps.value_or(0);
  for (const Model& m : s.models)
    for (const Point& p : m.curve) max_step = std::max(max_step, p.step);
  const std::string relearn = fmt::format(
      "relearning: {} on the {} set, lr {}, batch {}, up to {} steps, evaluated every {}; "
      "targets: forget loss ≤ {}, forget accuracy ≥ {}%",
      escape(s.optimizer.empty() ? std::string(kNone) : s.optimizer), escape(s.data.empty() ? "forget" : s.data),
      plain(s.lr), plain(s.batch), plain(s.steps), plain(s.eval_every), plain(s.loss_target),
      plain(s.accuracy_target ? Value(*s.accuracy_target * 100) : std::nullopt));
  std::string h = fmt::format(
      "<section id=\"scenario-{}\">\n<h2>Scenario {}</h2>\n<p class=\"sub\">split seed {}, digest {}, "
      "{} forget samples</p>\n<p class=\"sub\">{}</p>\n",
      index + 1, escape(s.name), fixed(s.split_seed, 0), escape(s.digest.empty() ? std::string(kNone) : s.digest),
      fixed(s.forget_size, 0), relearn);
  h += model_table(s, margin);
  h += "<div class=\"plots\">\n";
  h += figure(line_plot({"loss", "Forget-set loss while relearning", "relearning step", "forget loss",
                         s.loss_target, "", true},
                        series_of(s, &Point::loss), max_step),
              "RCD (loss) is the step where a line first falls to the dashed target.");
  h += figure(line_plot({"accuracy", "Forget-set accuracy while relearning", "relearning step",
                         "forget accuracy (%)", s.accuracy_target ? Value(*s.accuracy_target * 100) : std::nullopt,
                         "%"},
                        series_of(s, &Point::accuracy, 100), max_step),
              "RCD (accuracy) is the step where a line first reaches the dashed target.");
  h += figure(line_plot({"distance", "Weight distance from the start of relearning", "relearning step",
                         "L2 distance", std::nullopt, ""},
                        series_of(s, &Point::distance), max_step),
              "How far relearning moves each model's weights.");
  h += figure(rcd_bars(s), "Bars beyond the dashed line at 1 relearn more slowly than the retrained model; "
                           "pale bars are censored at the cap.");
  return h + "</div>\n</section>\n";
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

struct ReportOptions {
  std::string results, out;
};

void run_report(const ReportOptions& o) {
  const std::string bytes = read_file(o.results, "report");
  json results;
  try {
    results = json::parse(bytes);
  } catch (const json::parse_error& e) {
    LETHE_FAIL("report", o.results, ": not valid JSON: ", e.what());
  }
  const std::filesystem::path out =
      o.out.empty() ? std::filesystem::path(o.results).parent_path() / "report.html" : std::filesystem::path(o.out);
  write_report(results, out);
  fmt::print("report written to {}\n", out.string());
}

}  // namespace

std::string render_report(const json& results) {
  const Study s = read_study(results);
  std::string page = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>lethe study {}</title>\n<style>{}</style>\n</head>\n<body>\n",
      escape(s.name), kStyle);
  page += header(s);
  for (size_t i = 0; i < s.scenarios.size(); ++i) page += scenario_section(s.scenarios[i], i, s.margin);
  page += fmt::format("<section id=\"configuration\">\n<h2>Configuration</h2>\n<pre>{}</pre>\n</section>\n",
                      escape(s.config));
  page += timings_section(s);
  return page + "</body>\n</html>\n";
}

void write_report(const json& results, const std::filesystem::path& html) {
  write_file_atomically(html.string(), render_report(results), "report");
}

void add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "write the HTML report of a study's results.json (lethe run)");
  cmd->add_option("results", o->results, "results.json written by lethe run")->required();
  cmd->add_option("--out", o->out, "HTML file to write (default: report.html next to RESULTS)");
  cmd->callback([o] { run_report(*o); });
}

}  // namespace lethe::cli
