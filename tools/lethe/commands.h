#pragma once
// The subcommands of `lethe`; each adds itself to the app and runs from its callback.
#include <CLI/CLI.hpp>

namespace lethe::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_split_command(CLI::App& app);
void add_unlearn_command(CLI::App& app);

}  // namespace lethe::cli
