// Hyper-parameter search spaces (unlearn/search_space.h): the default spaces, the seeded draw of a
// trial's values and their flag text, a study's ranges and their errors, the criterion and the pick.
#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <type_traits>
#include <variant>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "unlearn/study/option_range.h"
#include "unlearn/method.h"
#include "unlearn/scenario.h"
#include "unlearn/search_space.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

using Ranges = std::map<std::string, std::pair<double, double>>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

const nn::OptionSpec<MethodOptions>& spec_of(const std::string& name) {
  const auto& table = method_options();
  const auto it = std::find_if(table.begin(), table.end(), [&](const auto& spec) { return spec.name == name; });
  REQUIRE(it != table.end());
  return *it;
}

// The significant digits of a number's text ("0.01230" → 3, "1.5e-05" → 2, "300" → 1).
int significant_digits(const std::string& text) {
  std::string digits;
  for (const char c : text.substr(0, text.find('e')))
    if (c >= '0' && c <= '9') digits += c;
  const size_t first = digits.find_first_not_of('0'), last = digits.find_last_not_of('0');
  return first == std::string::npos ? 0 : static_cast<int>(last - first + 1);
}

// Every axis at the middle of its range (integers rounded down): a trial 0 for any space.
std::map<std::string, double> middles(const SearchSpace& space) {
  std::map<std::string, double> d;
  for (const SearchAxis& a : space.axes) d[a.name] = std::floor((a.lo + a.hi) / 2);
  return d;
}

TrialValues trial(const SearchSpace& space, int64_t k, uint64_t seed = 0, int64_t budget = 300) {
  return trial_values(space, seed, k, budget, middles(space));
}

double value_of(const TrialValues& t, const std::string& name) {
  const auto it = std::find_if(t.values.begin(), t.values.end(), [&](const auto& v) { return v.first == name; });
  REQUIRE(it != t.values.end());
  return it->second;
}

std::vector<std::string> axis_names(const SearchSpace& space) {
  std::vector<std::string> names;
  for (const SearchAxis& a : space.axes) names.push_back(a.name);
  return names;
}

size_t characters(const std::string& utf8) {
  return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) { return (c & 0xc0) != 0x80; }));
}

}  // namespace

TEST_CASE("search space: every method but retrain has a default space of options it reads, in methods() order") {
  std::vector<std::string> tuned;
  for (const std::string& m : method_names())
    if (m != "retrain") tuned.push_back(m);
  std::vector<std::string> spaces;
  for (const SearchSpace& s : default_search_spaces()) spaces.push_back(s.method);
  CHECK(spaces == tuned);
  for (const std::string& m : tuned) {
    CAPTURE(m);
    const SearchSpace& space = default_search_space(m);
    CHECK(space.method == m);
    CHECK_NOTHROW(check_search_space(space, "defaults"));
    std::set<std::string> names;
    for (const SearchAxis& a : space.axes) {
      CAPTURE(a.name);
      CHECK(names.insert(a.name).second);
      CHECK(a.lo <= a.hi);
      CHECK((a.scale != SearchAxis::Scale::log || a.lo > 0));
      // with_ranges accepts exactly the options the method reads, in their own ranges.
      const SearchSpace same = with_ranges(space, {{a.name, {a.lo, a.hi}}}, "defaults");
      CHECK(to_json(same) == to_json(space));
    }
    const SearchAxis& steps = space.axes.back();
    CHECK(steps.name == "steps");
    CHECK(steps.scale == SearchAxis::Scale::integer);
    CHECK(steps.lo == 100);
    CHECK(steps.hi == 300);
  }
  // The ablations search IEU's axes but the one their term switches off.
  CHECK(axis_names(default_search_space("ieu")) == std::vector<std::string>{"lr", "alpha", "ieu-decay", "sigma", "steps"});
  CHECK(axis_names(default_search_space("ieu-no-noise")) == std::vector<std::string>{"lr", "alpha", "ieu-decay", "steps"});
  CHECK(axis_names(default_search_space("ieu-no-decay")) == std::vector<std::string>{"lr", "alpha", "sigma", "steps"});
  CHECK(axis_names(default_search_space("ieu-no-ascent")) == std::vector<std::string>{"lr", "ieu-decay", "sigma", "steps"});
  CHECK_THROWS_WITH_AS(default_search_space("retrain"), doctest::Contains("tune: retrain is the reference"), Error);
  CHECK_THROWS_WITH_AS(default_search_space("sgd"), doctest::Contains("unknown method 'sgd'"), Error);
}

TEST_CASE("search space: every default space contains its method's untuned setting, in every scenario kind") {
  for (const char* scenario : {"random:0.1", "class:0", "mislabeled:0.1"}) {
    MethodOptions o;
    o.resolve(parse_scenario(scenario));
    for (const SearchSpace& space : default_search_spaces())
      for (const SearchAxis& a : space.axes) {
        CAPTURE(scenario);
        CAPTURE(space.method);
        CAPTURE(a.name);
        const double value = std::visit(
            [&](auto field) {
              if constexpr (std::is_arithmetic_v<std::remove_cvref_t<decltype(o.*field)>>)
                return static_cast<double>(o.*field);
              else
                return kNaN;
            },
            spec_of(a.name).field);
        CHECK(value >= a.lo);
        CHECK(value <= a.hi);
      }
  }
}

TEST_CASE("search space: trial 0 runs the defaults exactly, uncapped") {
  const SearchSpace& ft = default_search_space("ft");
  const TrialValues t = trial_values(ft, 3, 0, 50, {{"lr", 0.0123456789}, {"steps", 300}, {"momentum", 0.9}});
  CHECK(t.flags == std::vector<std::string>{"--lr=0.0123456789", "--steps=300"});
  CHECK(t.values == std::vector<std::pair<std::string, double>>{{"lr", 0.0123456789}, {"steps", 300}});
  CHECK(trial_values(ft, 3, 0, 300, {{"lr", 1e-5}, {"steps", 300}}).flags[0] == "--lr=1e-05");
  CHECK_THROWS_AS(trial_values(ft, 3, 0, 300, {{"lr", 0.01}}), std::logic_error);
  CHECK_THROWS_AS(trial_values(ft, 3, 0, 300, {{"lr", 0.01}, {"steps", 2.5}}), std::logic_error);
}

TEST_CASE("search space: draws are keyed by the seed, the method and the trial, and nothing else") {
  const SearchSpace& ieu = default_search_space("ieu");
  CHECK(trial(ieu, 3, 7).flags == trial(ieu, 3, 7).flags);
  CHECK(trial(ieu, 3, 7).flags != trial(ieu, 3, 8).flags);
  CHECK(trial(ieu, 3, 7).flags != trial(ieu, 4, 7).flags);
  // Two methods with the same axis draw different values.
  CHECK(value_of(trial(default_search_space("ft"), 3), "lr") != value_of(trial(default_search_space("l1-sparse"), 3), "lr"));
  // Trial 5 is trial 5 whichever trials were drawn before it, and in whatever order.
  const TrialValues alone = trial(ieu, 5, 11);
  for (int64_t k = 20; k >= 1; --k) trial(ieu, k, 11);
  CHECK(trial(ieu, 5, 11).flags == alone.flags);
  // An axis draws the same values whichever other axes its space has.
  const SearchSpace more = with_ranges(default_search_space("ft"), {{"momentum", {0.5, 0.95}}}, "t");
  for (int64_t k = 1; k <= 20; ++k)
    CHECK(value_of(trial(more, k), "lr") == value_of(trial(default_search_space("ft"), k), "lr"));
  CHECK_THROWS_WITH_AS(trial(ieu, -1), doctest::Contains("tune: trial -1 must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(trial(ieu, 1, 0, 0), doctest::Contains("tune: the step budget 0 must be >= 1"), Error);
}

TEST_CASE("search space: every drawn value lies in its axis, passes the option's range check and is its flag's text") {
  int reals = 0, four_digit_reals = 0;
  for (const SearchSpace& space : default_search_spaces()) {
    for (int64_t k = 1; k <= 200; ++k) {
      const TrialValues t = trial(space, k, 42);
      REQUIRE(t.values.size() == space.axes.size());
      REQUIRE(t.flags.size() == space.axes.size());
      for (size_t i = 0; i < space.axes.size(); ++i) {
        const SearchAxis& a = space.axes[i];
        const auto& [name, value] = t.values[i];
        CAPTURE(space.method);
        CAPTURE(t.flags[i]);
        CHECK(name == a.name);
        CHECK(value >= a.lo);
        CHECK(value <= a.hi);
        const std::string prefix = "--" + a.name + "=";
        REQUIRE(t.flags[i].rfind(prefix, 0) == 0);
        std::string text = t.flags[i].substr(prefix.size());
        CHECK(study::range_check(spec_of(a.name).range)(text) == "");
        double back = 0;
        const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), back);
        CHECK((err == std::errc() && end == text.data() + text.size()));
        CHECK(back == value);
        // 4 significant digits at most (the default bounds have no more); integers as integers.
        CHECK(significant_digits(text) <= 4);
        if (a.scale == SearchAxis::Scale::integer) {
          CHECK(text.find_first_of(".e") == std::string::npos);
        } else {
          ++reals;
          four_digit_reals += significant_digits(text) == 4;  // fewer only where the 4th digit is 0
        }
      }
    }
  }
  CHECK(four_digit_reals > reals * 8 / 10);
}

TEST_CASE("search space: the axes of a trial are drawn independently") {
  // Where each value lies in its axis, from 0 (lo) to 1 (hi), on the axis's scale.
  auto position = [](const SearchAxis& a, double v) {
    return a.scale == SearchAxis::Scale::log ? std::log(v / a.lo) / std::log(a.hi / a.lo) : (v - a.lo) / (a.hi - a.lo);
  };
  const SearchSpace& ieu = default_search_space("ieu");
  double largest_difference = 0;
  for (int64_t k = 1; k <= 50; ++k) {
    const TrialValues t = trial(ieu, k);
    for (size_t i = 1; i < ieu.axes.size(); ++i)
      largest_difference = std::max(largest_difference, std::abs(position(ieu.axes[i], t.values[i].second) -
                                                                 position(ieu.axes[0], t.values[0].second)));
  }
  CHECK(largest_difference > 0.5);
  // An invalid axis (with_ranges makes none) is a bug.
  CHECK_THROWS_AS(trial(SearchSpace{"ft", {{"lr", SearchAxis::Scale::log, 0.1, 0.01}}}, 1), std::logic_error);
  CHECK_THROWS_AS(trial(SearchSpace{"ft", {{"lr", SearchAxis::Scale::log, 0, 0.01}}}, 1), std::logic_error);
  CHECK_THROWS_AS(trial(SearchSpace{"ft", {{"batch", SearchAxis::Scale::integer, 200, 100}}}, 1), std::logic_error);
}

TEST_CASE("search space: the scales: log-uniform, uniform, integers with both ends") {
  const SearchSpace space = with_ranges(default_search_space("salun"),
                                        {{"lr", {1e-5, 1e-1}}, {"saliency", {0.1, 0.9}}, {"steps", {100, 101}}}, "t");
  std::set<double> steps;
  int small_lr = 0, small_saliency = 0;
  const int n = 400;
  for (int64_t k = 1; k <= n; ++k) {
    const TrialValues t = trial(space, k);
    small_lr += value_of(t, "lr") < 1e-3;  // half the log range, 1% of the linear one
    small_saliency += value_of(t, "saliency") < 0.5;
    steps.insert(value_of(t, "steps"));
  }
  CHECK(small_lr > n * 0.4);
  CHECK(small_lr < n * 0.6);
  CHECK(small_saliency > n * 0.4);
  CHECK(small_saliency < n * 0.6);
  CHECK(steps == std::set<double>{100, 101});
  std::set<double> msteps;
  for (int64_t k = 1; k <= 100; ++k) msteps.insert(value_of(trial(default_search_space("scrub"), k), "scrub-msteps"));
  CHECK(msteps == std::set<double>{1, 2, 3});
}

TEST_CASE("search space: trials >= 1 cap steps at the step budget") {
  const SearchSpace& ft = default_search_space("ft");
  std::set<double> seen;
  for (int64_t k = 1; k <= 100; ++k) {
    const double steps = value_of(trial(ft, k, 0, 150), "steps");
    CHECK(steps >= 100);
    CHECK(steps <= 150);
    seen.insert(steps);
    CHECK(value_of(trial(ft, k, 0, 50), "steps") == 50);  // below the axis: lo follows hi
  }
  CHECK(seen.size() > 20);
  // Only the steps axis: an integer axis of another name is not capped.
  const SearchSpace scrub = with_ranges(default_search_space("scrub"), {{"scrub-epochs", {500, 600}}}, "t");
  CHECK(value_of(trial(scrub, 1, 0, 10), "scrub-epochs") >= 500);
}

TEST_CASE("search space: pinned axes and bounds with more than 4 digits stay inside") {
  const SearchSpace space =
      with_ranges(default_search_space("neggrad+"), {{"lr", {0.0123456, 0.0123456}}, {"neggrad-beta", {0.99991, 0.99999}}}, "t");
  for (int64_t k = 1; k <= 50; ++k) {
    const TrialValues t = trial(space, k);
    CHECK(t.flags[0] == "--lr=0.0123456");
    CHECK(value_of(t, "lr") == 0.0123456);
    CHECK(value_of(t, "neggrad-beta") >= 0.99991);
    CHECK(value_of(t, "neggrad-beta") <= 0.99999);
  }
}

TEST_CASE("search space: a study's ranges replace or add axes") {
  const SearchSpace& ft = default_search_space("ft");
  const SearchSpace s =
      with_ranges(ft, {{"lr", {0.005, 0.05}}, {"momentum", {0.5, 0.95}}, {"weight-decay", {0, 1e-3}}, {"batch", {64, 256}}},
                  "study.toml [tune.space.ft]");
  CHECK(to_json(s) == nlohmann::json::parse(R"([
    {"name": "lr", "scale": "log", "lo": 0.005, "hi": 0.05},
    {"name": "steps", "scale": "integer", "lo": 100, "hi": 300},
    {"name": "batch", "scale": "integer", "lo": 64, "hi": 256},
    {"name": "momentum", "scale": "log", "lo": 0.5, "hi": 0.95},
    {"name": "weight-decay", "scale": "linear", "lo": 0, "hi": 0.001}])"));
  CHECK(to_json(s)[1]["lo"].is_number_integer());
  // A replaced axis keeps its scale.
  CHECK(with_ranges(default_search_space("salun"), {{"saliency", {0.2, 0.3}}}, "t").axes[1].scale ==
        SearchAxis::Scale::linear);
  CHECK(with_ranges(ft, {}, "t").axes.size() == 2);
}

TEST_CASE("search space: the options each method reads, as its source does, are those a study may range") {
  // The list that refusing an option the method does not read gives: its numeric options.
  const std::map<std::string, std::string> can_vary = {
      {"ft", "steps, batch, momentum, weight-decay, lr"},
      {"ga", "steps, batch, momentum, weight-decay, ga-lr, ascent-clip"},
      {"neggrad+", "steps, batch, momentum, weight-decay, lr, ascent-clip, neggrad-beta"},
      {"rl", "steps, batch, momentum, weight-decay, lr"},
      {"l1-sparse", "steps, batch, momentum, weight-decay, lr, l1"},
      {"salun", "steps, batch, momentum, weight-decay, lr, saliency"},
      {"scrub", "steps, batch, momentum, weight-decay, lr, ascent-clip, scrub-epochs, scrub-msteps, scrub-alpha, "
                "scrub-gamma, scrub-temperature"},
      {"ieu", "steps, batch, lr, cap, ieu-momentum, alpha, ieu-decay, sigma"},
      {"ieu-no-noise", "steps, batch, lr, cap, ieu-momentum, alpha, ieu-decay"},
      {"ieu-no-decay", "steps, batch, lr, cap, ieu-momentum, alpha, sigma"},
      {"ieu-no-ascent", "steps, batch, lr, cap, ieu-momentum, ieu-decay, sigma"}};
  for (const SearchSpace& space : default_search_spaces()) {
    CAPTURE(space.method);
    const std::string message = "the options of " + space.method + " a search can vary: " + can_vary.at(space.method) + ")";
    CHECK_THROWS_WITH_AS(with_ranges(space, {{"scrub-gamma", {1, 2}}, {"single-pass", {0, 1}}}, "t"),
                         doctest::Contains(message.c_str()), Error);
  }
}

TEST_CASE("search space: a study's bad ranges are refused, naming where, the key and the range") {
  const std::string at = "study.toml [tune.space.ft]";
  const SearchSpace& ft = default_search_space("ft");
  auto refuses = [&](const SearchSpace& space, const Ranges& ranges, const std::string& message) {
    CAPTURE(message);
    CHECK_THROWS_WITH_AS(with_ranges(space, ranges, at), doctest::Contains((at + ": " + message).c_str()), Error);
  };
  refuses(ft, {{"learning-rate", {0.01, 0.1}}}, "\"learning-rate\" is no option of the methods (the options: steps, batch, lr,");
  refuses(ft, {{"l1", {1e-5, 1e-3}}},
          "ft does not read l1 (the options of ft a search can vary: steps, batch, momentum, weight-decay, lr)");
  refuses(default_search_space("ga"), {{"lr", {0.01, 0.1}}}, "ga does not read lr");
  refuses(default_search_space("ieu"), {{"momentum", {0.5, 0.9}}}, "ieu does not read momentum");
  refuses(default_search_space("ieu-no-noise"), {{"sigma", {1e-4, 1e-3}}}, "ieu-no-noise does not read sigma");
  refuses(default_search_space("ieu-no-decay"), {{"decay-schedule", {0, 1}}}, "ieu-no-decay does not read decay-schedule");
  refuses(default_search_space("ieu-no-ascent"), {{"alpha", {0.1, 1}}}, "ieu-no-ascent does not read alpha");
  refuses(default_search_space("salun"), {{"mask", {0, 1}}}, "mask cannot be searched: it is not a number");
  refuses(default_search_space("ieu"), {{"single-pass", {0, 1}}}, "single-pass cannot be searched");
  refuses(ft, {{"seed", {0, 10}}}, "seed cannot be searched");
  refuses(ft, {{"lr", {0.1, 0.01}}}, "lr = [0.1, 0.01]: the lower bound is above the upper");
  refuses(ft, {{"lr", {0, 0.1}}}, "lr = [0, 0.1]: a log axis needs a lower bound above 0");
  refuses(ft, {{"lr", {0.01, 200}}}, "lr = [0.01, 200]: both bounds must be a number in [0, 100]");
  refuses(ft, {{"lr", {kNaN, 0.1}}}, "lr = [nan, 0.1]: both bounds must be a number in [0, 100]");
  refuses(ft, {{"momentum", {0.5, 1}}}, "momentum = [0.5, 1]: both bounds must be a number in [0, 1)");
  refuses(ft, {{"steps", {0, 10}}}, "steps = [0, 10]: both bounds must be an integer in [1, 2147483648]");
  refuses(ft, {{"steps", {10, 20.5}}}, "steps = [10, 20.5]: both bounds must be an integer in [1, 2147483648]");
  refuses(default_search_space("ieu"), {{"cap", {1, kInf}}}, "cap = [1, inf]: the bounds must be finite");
  // A pinned axis is a range.
  CHECK(with_ranges(ft, {{"lr", {0.02, 0.02}}}, at).axes[0].hi == 0.02);
}

TEST_CASE("search space: an empty space is refused") {
  CHECK_THROWS_WITH_AS(check_search_space(SearchSpace{"ft", {}}, "study.toml"),
                       doctest::Contains("study.toml: the search space of ft is empty"), Error);
  CHECK_NOTHROW(check_search_space(default_search_space("ft"), "study.toml"));
}

TEST_CASE("search space: best_trial takes the smallest finite criterion, the first on ties") {
  CHECK(best_trial({0.3, 0.1, 0.2}) == 1);
  CHECK(best_trial({0.3, 0.1, 0.1}) == 1);
  CHECK(best_trial({kNaN, 0.2, -kInf, kInf, 0.25}) == 1);
  CHECK(best_trial({0.2, kNaN, 0.1}) == 2);
  CHECK(best_trial({kNaN, 0.0}) == 1);
  CHECK_THROWS_WITH_AS(best_trial({kNaN, kInf}), doctest::Contains("tune: none of the 2 trials has a finite criterion"), Error);
  CHECK_THROWS_AS(best_trial({}), Error);
}

TEST_CASE("search space: the criterion is the gap plus the weighted relearning shortfall") {
  CHECK(tuning_criterion(0.03, 0, kNaN, 200) == 0.03);
  CHECK(tuning_criterion(0.03, 0, 10, 200) == 0.03);
  CHECK(tuning_criterion(0.03, 0.5, 100, 200) == doctest::Approx(0.03 + 0.5 * 0.5));
  CHECK(tuning_criterion(0.03, 0.5, 0, 200) == doctest::Approx(0.53));
  CHECK(tuning_criterion(0.03, 0.5, 300, 200) == 0.03);  // slower than the retrained model: no shortfall
  // Censored at the cap (300): a lower bound, so the shortfall is an upper bound; 0 once the cap
  // reaches the retrained model's delay.
  CHECK(tuning_criterion(0.03, 2, 300, 400) == doctest::Approx(0.03 + 2 * 0.25));
  CHECK(tuning_criterion(0.03, 2, 300, 300) == 0.03);
  CHECK(tuning_criterion(0.03, 2, 5, 0) == 0.03);  // the retrained model relearns at once
  CHECK(std::isnan(tuning_criterion(0.03, 0.5, kNaN, 200)));  // not measured: never chosen
  CHECK(std::isnan(tuning_criterion(0.03, 0.5, 100, kNaN)));
  CHECK_THROWS_WITH_AS(tuning_criterion(0.03, -1, 5, 10), doctest::Contains("tune: the rcd weight -1"), Error);
  CHECK_THROWS_AS(tuning_criterion(0.03, kNaN, 5, 10), Error);
}

TEST_CASE("search space: the listing has every space, one row per axis, within 100 columns") {
  const std::string text = search_spaces_text(default_search_spaces());
  std::vector<std::string> lines;
  for (size_t at = 0, end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) lines.push_back(text.substr(at, end - at));
  size_t rows = 0;
  for (const SearchSpace& s : default_search_spaces()) rows += s.axes.size();
  CHECK(lines.size() == rows + 2);  // a header and a note
  CHECK(lines[0].rfind("method", 0) == 0);
  CHECK(lines[1].rfind("ft ", 0) == 0);
  CHECK(lines[1].find(" lr ") != std::string::npos);
  CHECK(lines[1].find("[0.001, 0.1]") != std::string::npos);
  CHECK(lines[1].find("learning rate η") != std::string::npos);
  CHECK(lines[2].find("[100, 300]") != std::string::npos);
  CHECK(text.find("ieu: ") == std::string::npos);  // the row names the method: its help need not
  const size_t range_at = lines[0].find("range");
  for (size_t i = 1; i + 1 < lines.size(); ++i) CHECK(lines[i].substr(range_at, 1) == "[");
  for (const SearchSpace& s : default_search_spaces())
    CHECK(text.find("\n" + s.method + " ") != std::string::npos);
  bool cut = false;
  for (const std::string& line : lines) {
    CAPTURE(line);
    CHECK(characters(line) <= 100);
    cut = cut || line.ends_with("...");
  }
  CHECK(cut);  // some help is longer than its column
}
