#include "unlearn/study/dynamics_report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "unlearn/relearn.h"
#include "unlearn/study/report.h"
#include "unlearn/study/svg_plot.h"

namespace lethe::study {

namespace {

using Points = std::vector<std::pair<double, svg::Value>>;

constexpr svg::Frame kFrame{680, 380, 80, 660, 40, 320};

std::optional<double> number(const nlohmann::json& j) {
  if (!j.is_number()) return std::nullopt;
  const double v = j.get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::string sci(const nlohmann::json& j, int digits = 3) {
  const auto v = number(j);
  return v ? fmt::format("{:.{}g}", *v, digits) : std::string(kNone);
}

struct Series {
  std::string label;
  Points points;
  svg::Style style;
};

// Positive values only: the plots are logarithmic in y.
Points series(const nlohmann::json& steps, const nlohmann::json& values) {
  Points p;
  if (!values.is_array()) return p;
  for (size_t i = 0; i < values.size() && i < steps.size(); ++i) {
    const auto v = number(values[i]);
    p.emplace_back(steps[i].get<double>(), v && *v > 0 ? v : std::nullopt);
  }
  return p;
}

// The legend goes top right, or bottom right (`legend_low`) for curves that rise.
std::string log_plot(std::string_view kind, std::string_view title, std::string_view x_title, std::string_view y_title,
                     const std::vector<Series>& all, bool legend_low = false) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const Series& s : all) {
    for (const auto& [x, y] : s.points) {
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      if (y) {
        y_lo = std::min(y_lo, *y);
        y_hi = std::max(y_hi, *y);
      }
    }
  }
  if (!(y_lo < y_hi)) return "<p>(nothing to plot: " + svg::escape(title) + ")</p>\n";
  const svg::Scale x = svg::linear_scale(x_lo, x_hi, kFrame.left, kFrame.right);
  const svg::Scale y = svg::log_scale(y_lo, y_hi, kFrame.bottom, kFrame.top);
  std::string out = svg::svg_open(kFrame, kind, title) + svg::axes(kFrame, x, y, x_title, y_title);
  double legend_y = legend_low ? kFrame.bottom - 16 * static_cast<double>(all.size()) : kFrame.top + 14;
  for (const Series& s : all) {
    out += svg::curve_path(s.points, x, y, s.style, fmt::format("class=\"series\" data-series=\"{}\"", svg::escape(s.label)));
    out += svg::legend_entry(kFrame.right - 230, legend_y, s.style, s.label);
    legend_y += 16;
  }
  return out + "</svg>\n";
}

std::string rcd_plot(const nlohmann::json& points) {
  struct Point {
    double x, y;
    bool censored;
  };
  std::vector<Point> xy;
  for (const auto& p : points) {
    const auto d = number(p["distance_to_retrained"]);
    const auto steps = number(p["rcd"]["loss_steps"]);
    if (d && steps) xy.push_back({*d, *steps, p["rcd"].value("loss_censored", false)});
  }
  if (xy.size() < 2) return "<p>(too few relearning points to plot)</p>\n";
  double x_hi = 0, y_hi = 0;
  for (const Point& p : xy) {
    x_hi = std::max(x_hi, p.x);
    y_hi = std::max(y_hi, p.y);
  }
  const svg::Scale x = svg::linear_scale(0, x_hi, kFrame.left, kFrame.right);
  const svg::Scale y = svg::linear_scale(0, y_hi, kFrame.bottom, kFrame.top);
  std::string out = svg::svg_open(kFrame, "rcd-distance", "Relearning steps against the distance to θ*_r") +
                    svg::axes(kFrame, x, y, "‖θ − θ*_r‖₂ at the start of relearning", "steps to the original's forget loss");
  // A censored point (not relearned within the cap: the steps are a lower bound) is hollow.
  for (const Point& p : xy)
    out += fmt::format("<circle class=\"point\" data-censored=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" stroke=\"#4e79a7\" "
                       "stroke-width=\"2\" fill=\"{}\"/>\n",
                       p.censored, x(p.x), y(p.y), p.censored ? "none" : "#4e79a7");
  out += svg::text(kFrame.left + 10, kFrame.top + 14, "hollow: not back within the step cap (a lower bound)", "class=\"note\"");
  return out + "</svg>\n";
}

}  // namespace

std::string render_dynamics_report(const nlohmann::json& r) {
  const nlohmann::json& tr = r["trajectory"];
  const nlohmann::json& steps = tr["step"];
  const nlohmann::json& m = r["measured"];
  const nlohmann::json& pred = r["predicted"];
  const double q = pred["contraction_factor"].get<double>();

  // The predicted slope: q^t through the full-batch distance at the start of the fit window.
  Points slope;
  if (m["fit_window"].is_array()) {
    const double from = m["fit_window"][0].get<double>(), to = m["fit_window"][1].get<double>();
    const auto at = static_cast<size_t>(from);
    const double d0 = tr["clean_distance_to_fixed_point"][at].get<double>();
    for (double t = from; t <= to; t += std::max(1.0, (to - from) / 50)) slope.emplace_back(t, d0 * std::pow(q, t - from));
  }
  std::vector<Series> distance = {
      {"full batch, σ = 0", series(steps, tr["clean_distance_to_fixed_point"]), {"#000000", "", 2}},
      {"full batch, σ > 0", series(steps, tr["noisy_distance_to_fixed_point"]), {"#e15759", "", 1.5}},
      {"linearised at θ_fp", series(steps, tr["linearised_distance_to_fixed_point"]), {"#59a14f", "6 3", 2}},
      {fmt::format("predicted slope q = {:.6f}", q), slope, {"#f28e2b", "2 3", 2}},
  };
  if (tr.contains("minibatch_distance_to_fixed_point"))
    distance.insert(distance.begin() + 2, Series{"minibatch, σ > 0", series(steps, tr["minibatch_distance_to_fixed_point"]),
                                                 {"#4e79a7", "", 1.5}});
  const std::vector<Series> spread = {
      {"measured ‖θ_σ − θ_0‖²", series(steps, tr["noisy_spread"]), {"#e15759", "", 2}},
      {"predicted σ²Σ(1−a²ᵗ)/(1−a²)", series(steps, tr["predicted_spread"]), {"#000000", "6 3", 2}},
  };

  const nlohmann::json& ref = r["reference_points"];
  const nlohmann::json& h = r["hessian"];
  const nlohmann::json& ieu = r["ieu"];
  const nlohmann::json& prob = r["problem"];
  auto row = [](std::string_view name, const std::string& value, std::string_view note = "") {
    return fmt::format("<tr><th>{}</th>{}<td>{}</td></tr>\n", name, cell(value), note);
  };
  std::string html = page_open("lethe dynamics: IEU on a convex model");
  html += "<h1>IEU on a convex model: measured against the linear theory</h1>\n";
  html += fmt::format("<p>{} model ({} parameters, {}), {} retain and {} forget samples, L2 ρ = {}. IEU: η = {}, α = {}, "
                      "λ = {}, σ = {}, {} steps, no momentum.</p>\n",
                      svg::escape(prob["model"].get<std::string>()), prob["parameters"].get<int64_t>(),
                      svg::escape(prob["dtype"].get<std::string>()), prob["retain_samples"].get<int64_t>(),
                      prob["forget_samples"].get<int64_t>(), sci(prob["l2"]), sci(ieu["lr"]), sci(ieu["alpha"]),
                      sci(ieu["decay"]), sci(ieu["sigma"]), ieu["steps"].get<int64_t>());
  html += "<table class=\"constants\">\n<tr><th>quantity</th><th>value</th><th></th></tr>\n";
  html += row("‖∇‖ at θ*_o, θ*_r, θ_fp", sci(ref["original"]["gradient_norm"], 2) + ", " +
                                          sci(ref["retrained"]["gradient_norm"], 2) + ", " +
                                          sci(ref["fixed_point"]["gradient_norm"], 2),
              "L-BFGS, float64, to tolerance " + sci(prob["tolerance"], 2));
  html += row("μ, L of the retain Hessian at θ*_r", sci(h["retain_at_retrained"]["mu"], 4) + ", " + sci(h["retain_at_retrained"]["L"], 4),
              "LAPACK dsyevd, all eigenvalues");
  html += row("eigenvalues of ∇²G at θ_fp", sci(h["ieu_at_fixed_point"]["min"], 4) + " … " + sci(h["ieu_at_fixed_point"]["max"], 4));
  html += row("‖θ*_o − θ*_r‖, ‖θ_fp − θ*_r‖", sci(ref["distance_original_to_retrained"]) + ", " +
                                              sci(ref["distance_fixed_point_to_retrained"]));
  html += row("contraction factor q (predicted)", sci(pred["contraction_factor"], 8), "max|1 − η·h|: the slowest direction");
  html += row("fitted factor, full batch σ = 0", sci(m["rate_full_batch"], 8),
              m["fit_window"].is_array() ? fmt::format("steps {}–{}", sci(m["fit_window"][0], 6), sci(m["fit_window"][1], 6))
                                         : std::string("no window above the float floor"));
  html += row("fitted factor, linearised recursion", sci(m["rate_linearised"], 8), "same window");
  html += row("‖θ − θ_fp‖ of the run against the linearised one, largest relative gap",
              sci(m["linearisation_gap_first_half"], 3) + " (first half), " + sci(m["linearisation_gap_fit_window"], 3) + " (fit window)",
              "the loss's nonlinearity along the way");
  html += row("late spread: measured / predicted", sci(m["spread_ratio"], 4), "last quarter of the steps");
  if (m["minibatch"].is_object())
    html += row("minibatch: late ‖θ − θ_fp‖² / prediction without gradient noise", sci(m["minibatch"]["ratio"], 4));
  html += "</table>\n";
  html += "<h2>Distance to IEU's fixed point</h2>\n" +
          log_plot("distance", "‖θ_t − θ_fp‖₂ per step", "step", "distance to θ_fp", distance);
  html += "<h2>Noise spread around the noiseless run</h2>\n" +
          log_plot("spread", "‖θ_σ,t − θ_0,t‖² per step", "step", "squared distance", spread, true);
  html += "<h2>Relearning against distance to the retrained optimum</h2>\n" + rcd_plot(r["relearning"]["points"]);
  html += "<table class=\"rcd\">\n<tr><th>start</th><th>‖θ − θ*_r‖</th><th>forget loss</th><th>RCD (loss, steps)</th></tr>\n";
  for (const auto& p : r["relearning"]["points"]) {
    const std::string start = p["start"] == "retrained" ? "θ*_r (retrained)" : fmt::format("IEU step {}", p["step"].get<int64_t>());
    const std::string steps_text = unlearn::rcd_figure_text(p["rcd"], "loss");
    html += fmt::format("<tr><td>{}</td>{}{}{}</tr>\n", start, cell(sci(p["distance_to_retrained"])), cell(sci(p["forget_loss"], 4)),
                        cell(steps_text));
  }
  html += "</table>\n";
  return html + std::string(kPageClose);
}

}  // namespace lethe::study
