#pragma once
// TOML config files for the CLI, read with toml++ (real TOML, errors with line and column). A
// file's keys are the flag names of the subcommand; flags given on the command line win.
//
// CLI11 2.1 (Debian 12) reads config files for the top-level app only, so `--config` is an
// option of each subcommand whose callback (run first: it is the subcommand's first option)
// hands every key that was not given on the command line to its option as if it had been typed.
#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <string>
#include <vector>

namespace lethe::cli {

// Adds `--config FILE` to `cmd`; call before adding any other option. Keys that name no option
// of `cmd`, tables and values other than strings, numbers, booleans or arrays of them are errors.
void add_toml_config(CLI::App& cmd);

// A table's keys as command-line flags ("--key=value", one per array element), for running a
// subcommand with them; `where` names the table in errors.
std::vector<std::string> table_flags(const toml::table& table, const std::string& where);

}  // namespace lethe::cli
