// The CLI's numeric options (tools/lethe/option_range.h): each one, in every subcommand, checks its
// text against a stated range before CLI11 converts it, so no value wraps, truncates, overflows a
// cast or slips through as NaN; and the validators themselves.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tools/lethe/commands.h"
#include "tools/lethe/option_range.h"

namespace {

using lethe::cli::kRangeValidator;

// The message a validator gives `text` ("" when it accepts it).
std::string verdict(CLI::Validator v, std::string text) { return v(text); }

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
