#include "commands.h"

#include "unlearn/study/option_flags.h"

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
  add_import_command(app);
  add_dynamics_command(app);
  add_sample_command(app);
}

void run_command(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  add_commands(app);
  parse_flags(app, args, "lethe " + (args.empty() ? std::string() : args.front()));
}

}  // namespace lethe::cli
