#include "unlearn/study/svg_plot.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace lethe::study::svg {

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

Style style_of(const std::string& role, int unlearned_index) {
  // Tableau 10 without its grey (grey is the original's); dashes keep lines apart where colours
  // are hard to tell apart (colour blindness, print).
  static constexpr std::string_view palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                 "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"};
  static constexpr std::string_view dashes[] = {"", "7 3", "2 3"};
  if (role == "retrained") return {"#000000", "", 3.5};
  if (role == "original") return {"#8c8c8c", "", 2.5};
  const auto i = static_cast<size_t>(unlearned_index);
  return {std::string(palette[i % std::size(palette)]), std::string(dashes[i % std::size(dashes)]), 2};
}

std::string stroke(const Style& st) {
  std::string s = fmt::format("stroke=\"{}\" stroke-width=\"{}\"", st.colour, st.width);
  if (!st.dash.empty()) s += fmt::format(" stroke-dasharray=\"{}\"", st.dash);
  if (st.opacity < 1) s += fmt::format(" stroke-opacity=\"{}\"", st.opacity);
  return s;
}

std::string swatch_html(const Style& st) {
  const char* pattern = st.dash.empty() ? "solid" : st.dash == "2 3" ? "dotted" : "dashed";
  return fmt::format("<span class=\"swatch\" style=\"border-top-color:{};border-top-style:{}\"></span>", st.colour,
                     pattern);
}

std::string text(double x, double y, std::string_view content, std::string_view attributes) {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" {}>{}</text>\n", x, y, attributes, escape(content));
}

std::string line(double x1, double y1, double x2, double y2, std::string_view attributes) {
  return fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" {}/>\n", x1, y1, x2, y2,
                     attributes);
}

namespace {

// Heckbert's nice numbers: 1, 2, 5 or 10 times a power of ten, near x (rounded) or above it.
double nice(double x, bool round) {
  const double e = std::pow(10, std::floor(std::log10(x)));
  const double f = x / e;
  if (round) return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
}

}  // namespace

double Scale::operator()(double v) const {
  const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  return from + t * (to - from);
}

Scale linear_scale(double lo, double hi, double from, double to, int count) {
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

std::string svg_open(const Frame& f, std::string_view kind, std::string_view title) {
  return fmt::format(
      "<svg class=\"plot\" data-plot=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\">\n",
      kind, f.width, f.height, escape(title)) + text(f.left, 22, title, "class=\"title\"");
}

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

std::string curve_path(const std::vector<std::pair<double, Value>>& points, const Scale& x, const Scale& y,
                       const Style& st, std::string_view attributes) {
  std::string d;
  bool pen_down = false;
  for (const auto& [px, v] : points) {
    if (!v || (y.log && *v <= 0)) {
      pen_down = false;
      continue;
    }
    d += fmt::format("{}{:.1f} {:.1f} ", pen_down ? "L" : "M", x(px), y(*v));
    pen_down = true;
  }
  return fmt::format("<path {} fill=\"none\" {} d=\"{}\"/>\n", attributes, stroke(st), d);
}

std::string legend_entry(double x, double y, const Style& st, std::string_view label) {
  return line(x, y, x + 26, y, stroke(st)) + text(x + 32, y + 4, label, "class=\"legend\"");
}

}  // namespace lethe::study::svg
