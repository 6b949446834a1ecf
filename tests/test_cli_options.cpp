// The CLI's numeric options (unlearn/study/option_range.h): each one, in every subcommand, checks its
// text against a stated range before CLI11 converts it, so no value wraps, truncates, overflows a
// cast or slips through as NaN; and the validators themselves. The declared options
// (nn/option_table.h): the flags, JSON keys and error names made from each declaration.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "nn/option_json.h"
#include "nn/train.h"
#include "tools/lethe/commands.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/option_range.h"
#include "unlearn/method_options.h"
#include "unlearn/relearn_options.h"

namespace {

using lethe::study::kRangeValidator;

// The message the range check gives `text` ("" when it accepts it).
std::string verdict(const lethe::nn::OptionRange& range, std::string text) { return lethe::study::range_check(range)(text); }

}  // namespace

TEST_CASE("every numeric option of every subcommand has a range check") {
  CLI::App app;
  lethe::cli::add_commands(app);
  const std::set<std::string> numeric = {"INT", "UINT", "FLOAT", "NUMBER"};
  int checked = 0;
  std::vector<std::string> missing;
  for (CLI::App* cmd : app.get_subcommands([](CLI::App*) { return true; })) {
    for (CLI::Option* opt : cmd->get_options()) {
      const std::string type = opt->get_type_name();  // "INT", or "INT:" and the validators' descriptions
      if (!numeric.count(type.substr(0, type.find(':')))) continue;
      ++checked;
      try {
        opt->get_validator(kRangeValidator);
      } catch (const CLI::OptionNotFound&) {
        missing.push_back(cmd->get_name() + " " + opt->get_name());
      }
    }
  }
  std::string list;
  for (const std::string& m : missing) list += " " + m;
  INFO("numeric options without a range check:", list);
  CHECK(missing.empty());
  CHECK(checked > 50);  // the walk saw the options (train, unlearn and relearn have dozens)
}

TEST_CASE("range validators refuse what a conversion would wrap, truncate or let through") {
  using namespace lethe::cli;
  CHECK(verdict(integer_in(1, 1024), "4") == "");
  CHECK(verdict(integer_in(1, 1024), "+4") == "");
  CHECK(verdict(integer_in(1, 1024), "0").find("[1, 1024]") != std::string::npos);
  CHECK(verdict(integer_in(1, 1024), "4294967297") != "");           // would truncate to 1 in an int
  CHECK(verdict(integer_in(1, 1024), "99999999999999999999999") != "");  // beyond int64
  CHECK(verdict(integer_in(0, 100), "1e3") != "");                   // no exponent for integers
  CHECK(verdict(integer_in(0, 100), "0x10") != "");                  // no hex
  CHECK(verdict(integer_in(0, 100), "") != "");
  CHECK(verdict(integer_in(0, 100), " 5") != "");

  CHECK(verdict(seed_range(), "18446744073709551615") == "");
  CHECK(verdict(seed_range(), "-1").find("[0, 18446744073709551615]") != std::string::npos);  // would wrap
  CHECK(verdict(seed_range(), "18446744073709551616") != "");

  CHECK(verdict(real_in(0, 1), "0.5") == "");
  CHECK(verdict(real_in(0, 1), "nan") != "");
  CHECK(verdict(real_in(0, 1), "-nan") != "");
  CHECK(verdict(real_in(0, 1), "inf") != "");
  CHECK(verdict(real_in(0, 1), "1.0000001") != "");
  CHECK(verdict(real_in(0, 1), "0.5x") != "");
  CHECK(verdict(unit_open(), "1") != "");
  CHECK(verdict(unit_open(), "0.999") == "");
  CHECK(verdict(positive_up_to(1), "0") != "");
  CHECK(verdict(positive_up_to(std::numeric_limits<double>::infinity()), "inf") == "");  // IEU's --cap inf
  CHECK(verdict(real_in(0, kMaxCount), "1e30").find("2147483648") != std::string::npos);  // would overflow a count

  // The text quoted back is cut short.
  CHECK(verdict(integer_in(0, 1), std::string(100000, '7')).size() < 200);
}

namespace {

// Every declaration of `table`: a flag name (lower case, words joined by '-') used once, registered
// as --NAME with its help text, its range check where it declares a range and its values where it
// lists them; the JSON keys are the names, in snake case for output JSON.
template <class S>
void check_declarations(const lethe::nn::OptionTable<S>& table) {
  S target;
  CLI::App app;
  lethe::study::add_option_flags(app, target, table);
  const nlohmann::json output = lethe::nn::options_json(target, table, lethe::nn::JsonKeys::snake);
  const nlohmann::json metadata = lethe::nn::options_json(target, table, lethe::nn::JsonKeys::flag);
  CHECK(output.size() == table.size());
  std::set<std::string> names;
  for (const lethe::nn::OptionSpec<S>& spec : table) {
    const std::string name = spec.name;
    CAPTURE(name);
    CHECK(names.insert(name).second);
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos);
    CLI::Option* opt = app.get_option("--" + name);
    CHECK(opt->get_description() == spec.help);
    bool ranged = true;
    try {
      opt->get_validator(lethe::study::kRangeValidator);
    } catch (const CLI::OptionNotFound&) {
      ranged = false;
    }
    CHECK(ranged == (spec.range.kind != lethe::nn::OptionRange::Kind::any));
    std::string values;  // as CLI11 shows an IsMember check: {a,b,c}
    for (const std::string& v : spec.choices) values += (values.empty() ? "{" : ",") + v;
    if (!values.empty()) values += "}";
    const std::string type = opt->get_type_name();
    if (values.empty())
      CHECK(type.find('{') == std::string::npos);
    else
      CHECK(type.find(values) != std::string::npos);
    std::string snake = name;
    for (char& c : snake)
      if (c == '-') c = '_';
    CHECK(output.contains(snake));
    CHECK(metadata.contains(name));
  }
}

}  // namespace

TEST_CASE("declared options: each makes its flag, help, range check, values and JSON keys") {
  check_declarations(lethe::nn::recipe_options());
  check_declarations(lethe::unlearn::method_options());
  check_declarations(lethe::unlearn::relearn_options());
}

TEST_CASE("declared options: checkpoint metadata reads back what it wrote, and errors name the flag") {
  using lethe::nn::Recipe;
  Recipe r;
  r.limit = 77;
  r.optimizer = "adamw";
  r.weight_decay = 0.25;
  r.nesterov = true;
  r.crop_padding = 3;
  r.schedule = "step";
  const nlohmann::json j = r;  // checkpoint metadata: the flags' names
  CHECK(j.at("weight-decay") == 0.25);
  CHECK(j.at("crop-padding") == 3);
  Recipe back = j.get<Recipe>();
  CHECK(nlohmann::json(back) == j);
  nlohmann::json bad = j;
  bad["crop-padding"] = 1.5;  // an integer field: no fraction converted
  CHECK_THROWS_WITH_AS(bad.get<Recipe>(), doctest::Contains("recipe: crop-padding"), lethe::Error);

  r.warmup_steps = -1;
  CHECK_THROWS_WITH_AS(r.validate(), "recipe: warmup-steps = -1: must be non-negative", lethe::Error);
  lethe::unlearn::MethodOptions m;
  m.ieu_momentum = 1;
  CHECK_THROWS_WITH_AS(m.resolve(lethe::unlearn::parse_scenario("random:0.1")),
                       "unlearn: --ieu-momentum = 1: must be in [0, 1)", lethe::Error);
  lethe::unlearn::RelearnOptions o;
  o.eval_batch = -2;
  CHECK_THROWS_WITH_AS(o.resolve(lethe::unlearn::parse_scenario("random:0.1")),
                       "relearn: --eval-batch = -2: must be positive", lethe::Error);
  // Output JSON: snake case, unset reals null, infinities as text.
  lethe::unlearn::MethodOptions unresolved;
  unresolved.cap = INFINITY;
  const nlohmann::json options = unresolved;
  CHECK(options.at("ieu_momentum") == 0.0);
  CHECK(options.at("cap") == "inf");
  CHECK(options.at("alpha").is_null());
}
