#include "unlearn/study/study_output.h"

#include <fmt/core.h>

#include <cmath>
#include <tuple>

#include "engine/error.h"
#include "engine/file.h"

namespace lethe::study {

namespace {

// A CSV cell: empty for null, the shortest exact text for a double.
std::string cell(const nlohmann::json& x) {
  if (x.is_null()) return {};
  if (x.is_string()) return x.get<std::string>();
  if (x.is_boolean()) return x.get<bool>() ? "true" : "false";
  return x.is_number_float() ? fmt::format("{:.17g}", x.get<double>()) : x.dump();
}

std::string row(const std::vector<std::string>& cells) {
  std::string out;
  for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
  return out + "\n";
}

const nlohmann::json& at_or_null(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null;
  return j.is_object() && j.contains(key) ? j.at(key) : null;
}

// "12.3 ± 0.4" in points (a fraction × 100), or "12.3" for one replicate, or "—".
std::string mean_ci(const nlohmann::json& s, double scale, int decimals) {
  if (!s.is_object() || !s.at("mean").is_number()) return "—";
  const double mean = scale * s.at("mean").get<double>();
  if (!s.at("ci_high").is_number()) return fmt::format("{:.{}f}", mean, decimals);
  return fmt::format("{:.{}f}±{:.{}f}", mean, decimals, scale * (s.at("ci_high").get<double>() - s.at("mean").get<double>()),
                     decimals);
}

// "≥300", "≤0.45", "n/a" (nothing can be said) or the number; "—" where there is no such figure.
// Steps (decimals 0) show a median between two steps as x.5.
std::string bounded(const nlohmann::json& b, int decimals) {
  if (!b.is_object()) return "—";
  if (!b.at("value").is_number()) return "n/a";
  const std::string bound = b.at("bound").get<std::string>();
  const double value = b.at("value").get<double>();
  const std::string v = fmt::format("{:.{}f}", value, decimals == 0 && value != std::floor(value) ? 1 : decimals);
  return bound == "at_least" ? "≥" + v : bound == "at_most" ? "≤" + v : bound == "none" ? "n/a" : v;
}

// Pads to `width` columns, counting "≥"/"≤"/"±"/"—" (several bytes) as one.
std::string pad(const std::string& v, size_t width) {
  size_t shown = 0;
  for (const unsigned char c : v) shown += (c & 0xC0) != 0x80 ? 1 : 0;
  return std::string(shown < width ? width - shown : 0, ' ') + v;
}

}  // namespace

void write_results_csv(const std::filesystem::path& path, const nlohmann::json& results) {
  std::string csv = row({"scenario", "replicate", "seed", "model", "method", "role", "fa", "ra", "ta", "mia",
                         "forget_loss", "retain_loss", "test_loss", "membership_gap", "gap", "damaged",
                         "rcd_loss_steps", "rcd_loss_censored", "rcd_accuracy_steps", "rcd_accuracy_censored",
                         "loss_auc", "diverged", "distance_original", "distance_retrained", "unlearn_seconds"});
  for (const nlohmann::json& sc : results.at("scenarios"))
    for (const nlohmann::json& rep : sc.at("replicates"))
      for (const nlohmann::json& m : rep.at("models")) {
        const nlohmann::json &x = m.at("metrics"), &r = m.at("rcd");
        const nlohmann::json& controls = at_or_null(m, "controls");
        auto control = [&](const char* key) { return cell(at_or_null(controls, key).is_null() ? at_or_null(x, key) : at_or_null(controls, key)); };
        csv += row({cell(sc.at("scenario")), cell(rep.at("replicate")), cell(rep.at("seed")), cell(m.at("name")),
                    cell(m.at("method")), cell(m.at("role")), cell(x.at("fa")), cell(x.at("ra")), cell(x.at("ta")),
                    cell(x.at("mia")), cell(at_or_null(x, "forget_loss")), control("retain_loss"), control("test_loss"),
                    control("membership_gap"), cell(m.at("gap")), cell(m.at("damaged")), cell(r.at("loss_steps")),
                    cell(r.at("loss_censored")), cell(r.at("accuracy_steps")), cell(r.at("accuracy_censored")),
                    cell(r.at("loss_auc")), cell(r.at("diverged")), cell(m.at("distance").at("original")),
                    cell(m.at("distance").at("retrained")), cell(m.at("unlearn_seconds"))});
      }
  write_file_atomically(path.string(), csv, "run");
}

void write_summary_csv(const std::filesystem::path& path, const nlohmann::json& results) {
  std::string csv = row({"scenario", "model", "method", "role", "figure", "n", "mean", "sd", "ci_low", "ci_high",
                         "median", "median_bound", "censored", "diverged", "ratio_to_retrained", "ratio_bound"});
  for (const nlohmann::json& sc : results.at("scenarios"))
    for (const nlohmann::json& m : sc.at("summary").at("models")) {
      const std::vector<std::string> who = {cell(sc.at("scenario")), cell(m.at("name")), cell(m.at("method")),
                                            cell(m.at("role"))};
      auto line = [&](const std::vector<std::string>& rest) {
        std::vector<std::string> cells = who;
        cells.insert(cells.end(), rest.begin(), rest.end());
        csv += row(cells);
      };
      for (const auto& [figure, s] : m.at("figures").items())
        line({figure, cell(s.at("n")), cell(s.at("mean")), cell(s.at("sd")), cell(s.at("ci_low")), cell(s.at("ci_high")),
              "", "", "", "", "", ""});
      for (const auto& [kind, c] : m.at("rcd").items()) {
        const nlohmann::json& ratio = at_or_null(c, "median_ratio");
        line({"rcd." + kind, cell(c.at("n")), "", "", "", "", cell(c.at("median").at("value")),
              cell(c.at("median").at("bound")), cell(c.at("censored")), cell(c.at("diverged")),
              cell(at_or_null(ratio, "value")), cell(at_or_null(ratio, "bound"))});
      }
    }
  write_file_atomically(path.string(), csv, "run");
}

std::string summary_table(const nlohmann::json& summary) {
  std::string s = fmt::format("  {:<14}{:>3}", "model", "n");
  for (const auto& [name, width] : std::vector<std::pair<const char*, size_t>>{
           {"FA", 12}, {"RA", 12}, {"TA", 12}, {"MIA", 12}, {"gap", 11}, {"memb. gap", 13}, {"  RCD loss", 11},
           {"÷retr", 8}, {"cens", 7}, {"  RCD cal", 11}, {"÷retr", 8}, {"cens", 7}, {"  RCD acc", 11}, {"÷retr", 8},
           {"cens", 7}, {"  gap − IEU's", 18}})
    s += pad(name, width);
  s += "\n";
  for (const nlohmann::json& m : summary.at("models")) {
    const nlohmann::json& f = m.at("figures");
    auto fig = [&](const char* key, double scale, int decimals) { return mean_ci(at_or_null(f, key), scale, decimals); };
    auto rcd = [&](const char* kind) {
      const nlohmann::json& c = m.at("rcd").at(kind);
      std::string cens = fmt::format("{}/{}", c.at("censored").get<int64_t>(), c.at("n").get<int64_t>());
      if (c.at("diverged").get<int64_t>() > 0) cens += fmt::format("+{}d", c.at("diverged").get<int64_t>());
      return std::make_tuple(bounded(c.at("median"), 0), bounded(at_or_null(c, "median_ratio"), 2), cens);
    };
    const auto [loss, loss_ratio, loss_cens] = rcd("loss");
    const auto [acc, acc_ratio, acc_cens] = rcd("accuracy");
    std::string cal = "—", cal_ratio = "—", cal_cens;
    if (m.at("rcd").contains("calibrated_loss")) std::tie(cal, cal_ratio, cal_cens) = rcd("calibrated_loss");
    std::string versus = "—";
    const nlohmann::json& d = at_or_null(at_or_null(at_or_null(m, "paired"), "ieu"), "gap");
    if (d.is_object()) versus = mean_ci(d.at("summary"), 100, 2) + (d.at("significant").get<bool>() ? "" : " n.s.");
    s += fmt::format("  {:<14}{:>3}", m.at("name").get<std::string>(), m.at("replicates").get<int64_t>()) + pad(fig("metrics.fa", 100, 2), 12) +
         pad(fig("metrics.ra", 100, 2), 12) + pad(fig("metrics.ta", 100, 2), 12) + pad(fig("metrics.mia", 100, 2), 12) +
         pad(fig("gap", 100, 2), 11) + pad(fig("controls.membership_gap", 1, 3), 13) + "  " + pad(loss, 9) +
         pad(loss_ratio, 8) + pad(loss_cens, 7) + "  " + pad(cal, 9) + pad(cal_ratio, 8) + pad(cal_cens, 7) + "  " +
         pad(acc, 9) + pad(acc_ratio, 8) + pad(acc_cens, 7) + "  " + pad(versus, 16) + "\n";
  }
  s += "  mean ± half-width of the 95% t-interval over replicates, in points; RCD: median relearning steps (≥: a bound, "
       "censored runs rank at the cap), ÷retr: median ÷ the retrained model's median (≥ / ≤ / n/a when a side is "
       "censored); cens: censored/n (+Nd: diverged, left out); memb. gap: mean unseen loss − mean forget loss at the "
       "start (nats; ≈ 0: never saw the forget set); RCD cal: steps until the forget loss at the temperature fitted "
       "on held-out data falls to the original's (— without [relearn] calibration-samples); gap − IEU's: paired "
       "difference, n.s. when its interval holds 0\n"
       "  IEU and its ablations take plain steps (no momentum), as IEU's update θ ← (1 − ηλ)θ − η(g_r − αg_f) + σξ is "
       "defined; the SGD baselines use momentum 0.9 and coupled weight decay 5e-4 by default\n";
  return s;
}

}  // namespace lethe::study
