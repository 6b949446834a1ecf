#include "unlearn/search_space.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "kernels/common/philox.h"
#include "unlearn/method.h"
#include "unlearn/method_options.h"

namespace lethe::unlearn {

namespace {

constexpr const char* kOp = "tune";
using Scale = SearchAxis::Scale;
using Names = std::vector<std::string>;

// A method's default axes and the options it reads (what a study's [tune.space.METHOD] may name),
// the latter from its source in unlearn/methods/.
struct Tunable {
  std::string method;
  Names reads;
  std::vector<SearchAxis> axes;
};

SearchAxis log_axis(const char* name, double lo, double hi) { return {name, Scale::log, lo, hi}; }
SearchAxis linear_axis(const char* name, double lo, double hi) { return {name, Scale::linear, lo, hi}; }
SearchAxis integer_axis(const char* name, double lo, double hi) { return {name, Scale::integer, lo, hi}; }

Names plus(Names names, const Names& more) {
  names.insert(names.end(), more.begin(), more.end());
  return names;
}

// The default spaces, in methods() order. Each contains the method's untuned setting (for every
// scenario kind), which trial 0 runs. Every method searches `steps` over [100, 300], capped at the
// study's step budget: a method may do best stopping early, and no trial spends more than the budget.
// Rates and weights are log-uniform (they matter by orders of magnitude); fractions uniform.
//   ft         lr [1e-3, 1e-1]: two decades around the shared 0.01
//   ga         ga-lr [1e-5, 1e-2] around its 1e-4, up to the others' rate, where its ascent diverges
//              (method_options.h; a trial that fails is never chosen)
//   neggrad+   lr [1e-3, 1e-1]; β [0.9, 0.9999]: forget weight 1 − β from 1e-4 to 0.1 (default 1e-3)
//   rl         lr [1e-4, 3e-2]: reaching lower than ft's
//   l1-sparse  lr [1e-3, 1e-1]; l1 [1e-5, 1e-3] around its 5e-4
//   salun      lr [1e-4, 3e-2] as rl (it runs rl's loss); saliency [0.1, 0.9] around its 0.5
//   scrub      lr [1e-3, 1e-1]; scrub-alpha [1e-4, 0.1] around its 1e-3; scrub-msteps 1 to 3 of its 3 epochs
//   ieu        lr [3e-3, 3e-2]; α [0.05, 1], λ [5e-3, 0.1], σ [1e-4, 3e-3]: each around both scenario
//              defaults (α 0.5 | 0.1, λ 0.05 | 0.02, σ 1e-3 | 3e-4)
//   ieu-no-*   ieu's axes but the term the ablation switches off
const std::vector<Tunable>& tunables() {
  // The SGD baselines (sgd_steps): the step count, the batches and their order (seed), SGD's momentum
  // and weight decay; each adds its own below.
  const Names sgd = {"steps", "batch", "seed", "momentum", "weight-decay"};
  // IEU (run_ieu): no SGD; its own momentum, the cap, and three terms, each with its schedule.
  const Names ieu_base = {"steps", "batch", "seed", "lr", "cap", "ieu-momentum", "single-pass"};
  const SearchAxis steps = integer_axis("steps", 100, 300);
  struct Term {
    const char* option;
    const char* schedule;
    SearchAxis axis;
  };
  const std::vector<Term> terms = {{"alpha", "alpha-schedule", log_axis("alpha", 0.05, 1)},
                                   {"ieu-decay", "decay-schedule", log_axis("ieu-decay", 5e-3, 0.1)},
                                   {"sigma", "sigma-schedule", log_axis("sigma", 1e-4, 3e-3)}};
  // IEU with the term `off` switched off ("": none), which then reads neither it nor its schedule
  // (run_ieu_without sets it to 0 whatever was given).
  auto ieu = [&](const char* method, const std::string& off) {
    Tunable t{method, ieu_base, {log_axis("lr", 3e-3, 3e-2)}};
    for (const Term& term : terms)
      if (term.option != off) {
        t.reads.insert(t.reads.end(), {term.option, term.schedule});
        t.axes.push_back(term.axis);
      }
    t.axes.push_back(steps);
    return t;
  };
  static const std::vector<Tunable> all = {
      {"ft", plus(sgd, {"lr"}), {log_axis("lr", 1e-3, 1e-1), steps}},
      {"ga", plus(sgd, {"ga-lr", "ascent-clip"}), {log_axis("ga-lr", 1e-5, 1e-2), steps}},
      {"neggrad+", plus(sgd, {"lr", "ascent-clip", "neggrad-beta"}),
       {log_axis("lr", 1e-3, 1e-1), linear_axis("neggrad-beta", 0.9, 0.9999), steps}},
      {"rl", plus(sgd, {"lr"}), {log_axis("lr", 1e-4, 3e-2), steps}},
      {"l1-sparse", plus(sgd, {"lr", "l1"}), {log_axis("lr", 1e-3, 1e-1), log_axis("l1", 1e-5, 1e-3), steps}},
      {"salun", plus(sgd, {"lr", "saliency", "mask"}),
       {log_axis("lr", 1e-4, 3e-2), linear_axis("saliency", 0.1, 0.9), steps}},
      {"scrub",
       plus(sgd, {"lr", "ascent-clip", "scrub-epochs", "scrub-msteps", "scrub-alpha", "scrub-gamma",
                  "scrub-temperature"}),
       {log_axis("lr", 1e-3, 1e-1), log_axis("scrub-alpha", 1e-4, 1e-1), integer_axis("scrub-msteps", 1, 3), steps}},
      ieu("ieu", ""),
      ieu("ieu-no-noise", "sigma"),
      ieu("ieu-no-decay", "ieu-decay"),
      ieu("ieu-no-ascent", "alpha"),
  };
  return all;
}

const Tunable& tunable(const std::string& method) {
  for (const Tunable& t : tunables())
    if (t.method == method) return t;
  find_method(method);  // an unknown method: its error lists the methods
  LETHE_FAIL(kOp, method, " is the reference every method is measured against: it has no search space");
}

using Spec = nn::OptionSpec<MethodOptions>;

const Spec* find_spec(const std::string& name) {
  for (const Spec& spec : method_options())
    if (spec.name == name) return &spec;
  return nullptr;
}

// A search varies numbers: not the string options (mask, schedules), the flag or the seed.
bool searchable(const Spec& spec) {
  return spec.range.kind == nn::OptionRange::Kind::integer || spec.range.kind == nn::OptionRange::Kind::real;
}

std::string joined(const Names& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The shortest text that reads back as `v`.
std::string shortest(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  return {buf, std::to_chars(buf, buf + sizeof buf, v).ptr};
}

std::string range_text(double lo, double hi) { return "[" + shortest(lo) + ", " + shortest(hi) + "]"; }

std::string option_range_text(const nn::OptionRange& r) {
  if (r.kind == nn::OptionRange::Kind::integer)
    return "an integer in " + range_text(static_cast<double>(r.lo), static_cast<double>(r.hi));
  return std::string("a number in ") + (r.lo_open ? "(" : "[") + shortest(r.real_lo) + ", " + shortest(r.real_hi) +
         (r.hi_open ? ")" : "]");
}

bool in_option_range(const nn::OptionRange& r, double v) {
  if (r.kind == nn::OptionRange::Kind::integer)
    return v == std::floor(v) && v >= static_cast<double>(r.lo) && v <= static_cast<double>(r.hi);
  return (r.lo_open ? v > r.real_lo : v >= r.real_lo) && (r.hi_open ? v < r.real_hi : v <= r.real_hi);  // NaN: false
}

// FNV-1a (64-bit) of the bytes: a key that is the same on every platform.
uint64_t fnv1a(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// Uniform in [0, 1) for (seed, method, option, trial): the Philox stream is the method and the
// option's name, so an axis draws the same values whichever other axes a space has and in which order.
double uniform(uint64_t seed, const std::string& method, const std::string& option, int64_t trial) {
  const philox::Block b = philox::random4(seed, fnv1a(method + '\0' + option), static_cast<uint64_t>(trial));
  return philox::uniform_double(b.v[0], b.v[1]);
}

// A value of an axis from u in [0, 1), inside [lo, hi]. The log scale uses the C library's exp and
// log: an ulp of difference between libraries changes the 4-digit text written for a draw only when the
// draw lies within an ulp of a rounding boundary (about 1e-12 of draws).
double draw(const SearchAxis& axis, double u) {
  if (!(axis.lo <= axis.hi) || (axis.scale == Scale::log && !(axis.lo > 0)))  // with_ranges makes none
    throw std::logic_error("search space: the axis --" + axis.name + " = " + range_text(axis.lo, axis.hi) +
                           " is no " + scale_name(axis.scale) + " range");
  switch (axis.scale) {
    case Scale::integer: {
      const double n = axis.hi - axis.lo + 1;
      return axis.lo + std::min(std::floor(u * n), n - 1);  // u·n may round up to n
    }
    case Scale::log: return std::clamp(axis.lo * std::exp(u * std::log(axis.hi / axis.lo)), axis.lo, axis.hi);
    case Scale::linear: return std::clamp(axis.lo + u * (axis.hi - axis.lo), axis.lo, axis.hi);
  }
  throw std::logic_error("search space: an axis without a scale");
}

// `v` (in [lo, hi]) with 4 significant digits, more only where 4 would leave [lo, hi] (a bound with
// more digits, a pinned axis): the text and the value it reads back as, which is the value that runs.
std::pair<std::string, double> four_digits(double v, double lo, double hi) {
  for (int digits = 4;; ++digits) {
    char buf[32];
    const std::string text(buf, std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, digits).ptr);
    double back = 0;
    std::from_chars(text.data(), text.data() + text.size(), back);
    if ((back >= lo && back <= hi) || digits >= 17) return {text, back};  // 17 digits read back as v
  }
}

// `text` cut to `width` characters, "..." ending one that was cut (UTF-8: a character is the
// bytes from one lead byte to the next).
std::string cut(const std::string& text, size_t width) {
  const auto starts = [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; };
  if (static_cast<size_t>(std::count_if(text.begin(), text.end(), starts)) <= width) return text;
  size_t kept = 0, end = 0;
  for (; end < text.size(); ++end)
    if (starts(text[end]) && kept++ == width - 3) break;
  return text.substr(0, end) + "...";
}

// A help text without the methods it begins by naming ("ieu: noise ..." → "noise ..."): the
// listing's rows are a method's already.
std::string unprefixed(const std::string& help) {
  const size_t colon = help.find(": ");
  return colon != std::string::npos && help.find(' ') > colon ? help.substr(colon + 2) : help;
}

std::string integer_text(double v) { return std::to_string(static_cast<int64_t>(v)); }

}  // namespace

const char* scale_name(SearchAxis::Scale s) {
  switch (s) {
    case Scale::log: return "log";
    case Scale::linear: return "linear";
    case Scale::integer: return "integer";
  }
  return "?";
}

const std::vector<SearchSpace>& default_search_spaces() {
  static const std::vector<SearchSpace> spaces = [] {
    std::vector<SearchSpace> out;
    for (const Tunable& t : tunables()) out.push_back({t.method, t.axes});
    return out;
  }();
  return spaces;
}

const SearchSpace& default_search_space(const std::string& method) {
  const Tunable& t = tunable(method);
  return default_search_spaces()[static_cast<size_t>(&t - tunables().data())];
}

SearchSpace with_ranges(SearchSpace space, const std::map<std::string, std::pair<double, double>>& ranges,
                        const std::string& origin) {
  const Tunable& method = tunable(space.method);
  Names can_vary;
  for (const std::string& name : method.reads)
    if (searchable(*find_spec(name))) can_vary.push_back(name);
  for (const auto& [name, bounds] : ranges) {
    const auto [lo, hi] = bounds;
    const Spec* spec = find_spec(name);
    if (spec == nullptr) {
      Names all;
      for (const Spec& s : method_options()) all.emplace_back(s.name);
      LETHE_FAIL(origin, excerpt(name), " is no option of the methods (the options: ", joined(all), ")");
    }
    const std::string what = "the options of " + space.method + " a search can vary: " + joined(can_vary);
    LETHE_CHECK(std::count(method.reads.begin(), method.reads.end(), name) > 0, origin, space.method,
                " does not read ", name, " (", what, ")");
    LETHE_CHECK(searchable(*spec), origin, name, " cannot be searched: it is not a number (", what, ")");
    const std::string given = name + " = " + range_text(lo, hi) + ": ";
    LETHE_CHECK(in_option_range(spec->range, lo) && in_option_range(spec->range, hi), origin, given,
                "both bounds must be ", option_range_text(spec->range));
    LETHE_CHECK(lo <= hi, origin, given, "the lower bound is above the upper");
    LETHE_CHECK(std::isfinite(lo) && std::isfinite(hi), origin, given, "the bounds must be finite");
    const std::string& option = name;  // a structured binding, which clang's lambdas cannot capture
    auto axis = std::find_if(space.axes.begin(), space.axes.end(), [&](const SearchAxis& a) { return a.name == option; });
    if (axis == space.axes.end()) {
      // A new axis: integer options on integers; a positive range log-uniformly (rates and weights
      // span orders of magnitude); one from 0 uniformly.
      const Scale scale = spec->range.kind == nn::OptionRange::Kind::integer ? Scale::integer
                          : lo > 0                                           ? Scale::log
                                                                             : Scale::linear;
      space.axes.push_back({name, scale, lo, hi});
    } else {
      LETHE_CHECK(axis->scale != Scale::log || lo > 0, origin, given, "a log axis needs a lower bound above 0");
      axis->lo = lo;
      axis->hi = hi;
    }
  }
  return space;
}

void check_search_space(const SearchSpace& space, const std::string& origin) {
  LETHE_CHECK(!space.axes.empty(), origin, "the search space of ", space.method,
              " is empty: give [tune.space.", space.method, "] at least one option's range, as [lo, hi]");
}

TrialValues trial_values(const SearchSpace& space, uint64_t seed, int64_t trial, int64_t step_budget,
                         const std::map<std::string, double>& defaults) {
  LETHE_CHECK(trial >= 0, kOp, "trial ", trial, " must be >= 0");
  LETHE_CHECK(step_budget >= 1, kOp, "the step budget ", step_budget, " must be >= 1");
  TrialValues out;
  for (const SearchAxis& given : space.axes) {
    SearchAxis axis = given;
    std::string text;
    double value = 0;
    if (trial == 0) {
      const auto it = defaults.find(axis.name);
      if (it == defaults.end()) throw std::logic_error("trial_values: no default for --" + axis.name);
      value = it->second;
      if (axis.scale == Scale::integer && value != std::floor(value))
        throw std::logic_error("trial_values: the default of --" + axis.name + " is not an integer");
      text = axis.scale == Scale::integer ? integer_text(value) : shortest(value);
    } else {
      if (axis.name == "steps") {
        axis.hi = std::min(axis.hi, static_cast<double>(step_budget));
        axis.lo = std::min(axis.lo, axis.hi);
      }
      value = draw(axis, uniform(seed, space.method, axis.name, trial));
      if (axis.scale == Scale::integer)
        text = integer_text(value);
      else
        std::tie(text, value) = four_digits(value, axis.lo, axis.hi);
    }
    out.values.emplace_back(axis.name, value);
    out.flags.push_back("--" + axis.name + "=" + text);
  }
  return out;
}

double tuning_criterion(double validation_gap, double rcd_weight, double rcd, double rcd_retrained) {
  LETHE_CHECK(rcd_weight >= 0 && std::isfinite(rcd_weight), kOp, "the rcd weight ", rcd_weight,
              " must be finite and >= 0");
  if (rcd_weight == 0) return validation_gap;
  // 0 when rcd ≥ rcd_retrained (so also for a retrained rcd of 0); NaN when either is NaN.
  const double shortfall = rcd >= rcd_retrained ? 0 : 1 - rcd / rcd_retrained;
  return validation_gap + rcd_weight * shortfall;
}

int64_t best_trial(const std::vector<double>& criteria) {
  int64_t best = -1;
  for (size_t i = 0; i < criteria.size(); ++i)
    if (std::isfinite(criteria[i]) && (best < 0 || criteria[i] < criteria[static_cast<size_t>(best)]))
      best = static_cast<int64_t>(i);
  LETHE_CHECK(best >= 0, kOp, "none of the ", criteria.size(),
              " trials has a finite criterion (each failed or diverged): nothing to choose");
  return best;
}

nlohmann::json to_json(const SearchSpace& space) {
  nlohmann::json axes = nlohmann::json::array();
  for (const SearchAxis& a : space.axes) {
    nlohmann::json j = {{"name", a.name}, {"scale", scale_name(a.scale)}};
    if (a.scale == Scale::integer) {
      j["lo"] = static_cast<int64_t>(a.lo);
      j["hi"] = static_cast<int64_t>(a.hi);
    } else {
      j["lo"] = a.lo;
      j["hi"] = a.hi;
    }
    axes.push_back(std::move(j));
  }
  return axes;
}

std::string search_spaces_text(const std::vector<SearchSpace>& spaces) {
  constexpr size_t kWidth = 100;  // the help is cut to end the line here
  const auto range_of = [](const SearchAxis& a) {
    return a.scale == Scale::integer ? "[" + integer_text(a.lo) + ", " + integer_text(a.hi) + "]"
                                     : range_text(a.lo, a.hi);
  };
  std::vector<std::vector<std::string>> rows = {{"method", "option", "scale", "range", "what it is"}};
  for (const SearchSpace& space : spaces)
    for (size_t i = 0; i < space.axes.size(); ++i) {
      const SearchAxis& a = space.axes[i];
      const Spec* spec = find_spec(a.name);
      rows.push_back({i == 0 ? space.method : "", a.name, scale_name(a.scale), range_of(a),
                      spec ? unprefixed(spec->help) : ""});
    }
  // Every column but the help is ASCII: bytes are columns.
  size_t widths[4] = {};
  for (const auto& row : rows)
    for (size_t c = 0; c < 4; ++c) widths[c] = std::max(widths[c], row[c].size());
  const size_t help_at = widths[0] + widths[1] + widths[2] + widths[3] + 8;
  const size_t help_width = kWidth > help_at + 20 ? kWidth - help_at : 20;
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < 4; ++c) line += row[c] + std::string(widths[c] - row[c].size() + 2, ' ');
    line += cut(row[4], help_width);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "(steps is capped at the step budget; trial 0 runs each method's untuned setting)\n";
  return out;
}

}  // namespace lethe::unlearn
