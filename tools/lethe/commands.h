#pragma once
// The subcommands of `lethe`; each adds itself to the app and runs from its callback.
#include "unlearn/study/cli_fwd.h"

#include <string>
#include <vector>

namespace lethe::study {}

namespace lethe::cli {

// The app is the study library's (unlearn/study/) command line: the library's names are its own.
using namespace lethe::study;

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_split_command(CLI::App& app);
void add_unlearn_command(CLI::App& app);
void add_relearn_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_tune_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_import_command(CLI::App& app);
void add_dynamics_command(CLI::App& app);
void add_sample_command(CLI::App& app);

// Every subcommand above.
void add_commands(CLI::App& app);

// Runs `lethe ARGS...` in this process (args[0] is the subcommand), as the shell would; a bad flag
// becomes a lethe::Error naming it.
void run_command(const std::vector<std::string>& args);

}  // namespace lethe::cli
