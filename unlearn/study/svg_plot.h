#pragma once
// The plotting kit of lethe's HTML pages (the study report, the tune page): plots drawn as plain
// <svg> text, which needs no script or font to open and which a test can read. The classes used
// here (title, tick, label, legend, note, grid, axis) are styled by the pages' stylesheet.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lethe::study::svg {

using Value = std::optional<double>;  // null (unknown) or not finite: not drawn

// Text for HTML and SVG content and attribute values: & < > " ' escaped.
std::string escape(std::string_view s);

// How a series' line looks, the same in every plot of a page and in its tables' swatches.
struct Style {
  std::string colour, dash;  // dash: an SVG stroke-dasharray, empty for solid
  double width = 2;
  double opacity = 1;  // below 1: a stroke-opacity
};
// The retrained model black, the original grey, unlearned models (methods) by their index in
// Tableau 10's colours, with dashes to tell apart what colour alone does not.
Style style_of(const std::string& role, int unlearned_index);
// The stroke attributes of a style.
std::string stroke(const Style& st);
// A short line in a style, for a table cell.
std::string swatch_html(const Style& st);

std::string text(double x, double y, std::string_view content, std::string_view attributes = "");
std::string line(double x1, double y1, double x2, double y2, std::string_view attributes);

// A data range mapped to pixels, linear or logarithmic, with the tick values to label.
struct Scale {
  double lo = 0, hi = 1, from = 0, to = 1;
  bool log = false;
  std::vector<double> ticks;

  double operator()(double v) const;
};
// A linear scale over [lo, hi] widened to nice ticks, about `count` of them.
Scale linear_scale(double lo, double hi, double from, double to, int count = 6);
// A log scale over [lo, hi] (both > 0) from the 1-2-5 value below lo to the one above hi, ticked
// at the 1-2-5 values (only the powers of ten when that would be too many).
Scale log_scale(double lo, double hi, double from, double to);
std::string tick_label(double v);

// The plot area: where data is drawn inside an SVG of size width × height.
struct Frame {
  double width, height, left, right, top, bottom;  // right, bottom: pixel coordinates of the edges
};
// The <svg> element (data-plot="kind") and its title.
std::string svg_open(const Frame& f, std::string_view kind, std::string_view title);
// Axes, grid lines and tick labels of both scales, and the axis titles.
std::string axes(const Frame& f, const Scale& x, const Scale& y, std::string_view x_title, std::string_view y_title);

// A <path> through the (x, y) points, broken where y is missing (or not drawable on a log scale);
// `attributes`: its class and data-* attributes.
std::string curve_path(const std::vector<std::pair<double, Value>>& points, const Scale& x, const Scale& y,
                       const Style& st, std::string_view attributes);
// A legend entry at (x, y): a short line in the style, then the label.
std::string legend_entry(double x, double y, const Style& st, std::string_view label);

}  // namespace lethe::study::svg
