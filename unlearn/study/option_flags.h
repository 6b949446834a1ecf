#pragma once
// The flags of a declared options struct (nn/option_table.h): each declaration becomes --NAME, with
// its help text, its range check on the text (option_range.h) or its allowed values, and its
// default shown in --help where it declares one. TOML configs and study tables reach the same
// options through these flags (toml_config.h), so their keys are the names too.
#include <CLI/CLI.hpp>

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "nn/option_table.h"
#include "unlearn/study/option_range.h"

namespace lethe::study {

// Adds a flag to `cmd` for each option of `table`, in its order, setting that field of `target`
// (which must outlive `cmd`'s parsing); returns them.
template <class S>
std::vector<CLI::Option*> add_option_flags(CLI::App& cmd, S& target, const nn::OptionTable<S>& table) {
  std::vector<CLI::Option*> added;
  for (const nn::OptionSpec<S>& spec : table) {
    const std::string flag = std::string("--") + spec.name;
    CLI::Option* opt = std::visit(
        [&](auto field) {
          if constexpr (std::is_same_v<std::decay_t<decltype(target.*field)>, bool>)
            if (spec.initial == nn::Initial::flag) return cmd.add_flag(flag, target.*field, spec.help);
          return cmd.add_option(flag, target.*field, spec.help);
        },
        spec.field);
    if (spec.range.kind != nn::OptionRange::Kind::any) opt->check(range_check(spec.range));
    if (!spec.choices.empty()) opt->check(CLI::IsMember(spec.choices));
    if (spec.initial == nn::Initial::shown) opt->capture_default_str();
    added.push_back(opt);
  }
  return added;
}

// Parses `flags` (like "--lr=0.1") into the options of `cmd`; `where` names their source in errors.
void parse_flags(CLI::App& cmd, const std::vector<std::string>& flags, const std::string& where);

}  // namespace lethe::study
