#pragma once
// TOML config files for the CLI, read with toml++ (real TOML, errors with line and column). A
// file's keys are the flag names of the subcommand; flags given on the command line win.
//
// CLI11 2.1 (Debian 12) reads config files for the top-level app only, so `--config` is an
// option of each subcommand whose callback (run first: it is the subcommand's first option)
// hands every key that was not given on the command line to its option as if it had been typed.
#include "unlearn/study/cli_fwd.h"
#include <toml++/toml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lethe::study {

// Adds `--config FILE` to `cmd`; call before adding any other option. Keys that name no option
// of `cmd`, tables and values other than strings, numbers, booleans or arrays of them are errors.
void add_toml_config(CLI::App& cmd);

// toml++ 3.3 (Debian 12's) reaches __builtin_unreachable(), undefined behaviour, when it asks whether
// some non-ASCII characters are whitespace (marzer/tomlplusplus#190 and #295, fixed after 3.3). It
// asks that of a character outside strings and comments (where TOML allows no non-ASCII character
// anyway), after a backslash in a basic string (no escape starts with one) and after a line-ending
// backslash of a multi-line string. Every TOML text lethe parses is checked here first: returns
// "line L, column C: ..." for the first such character, nothing for a text toml++ may read.
std::optional<std::string> toml_unsafe_text(std::string_view text);

// A table's keys as command-line flags ("--key=value", one per array element), for running a
// subcommand with them; `where` names the table in errors.
std::vector<std::string> table_flags(const toml::table& table, const std::string& where);

}  // namespace lethe::study
