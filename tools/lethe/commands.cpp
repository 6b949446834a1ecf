#include "commands.h"

#include <algorithm>

#include "engine/error.h"

namespace lethe::cli {

void add_commands(CLI::App& app) {
  add_train_command(app);
  add_eval_command(app);
  add_split_command(app);
  add_unlearn_command(app);
  add_relearn_command(app);
  add_run_command(app);
  add_tune_command(app);
  add_report_command(app);
}

void parse_flags(CLI::App& cmd, const std::vector<std::string>& flags, const std::string& where) {
  std::vector<std::string> reversed(flags.rbegin(), flags.rend());  // CLI11 takes them last first
  try {
    cmd.parse(reversed);
  } catch (const CLI::ParseError& e) {
    std::string joined;
    for (const std::string& f : flags) joined += " " + f;
    LETHE_FAIL("run", where, ": ", e.what(), " (in:", joined, ")");
  }
}

void run_command(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  add_commands(app);
  parse_flags(app, args, "lethe " + (args.empty() ? std::string() : args.front()));
}

}  // namespace lethe::cli
