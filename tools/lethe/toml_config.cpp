#include "toml_config.h"

#include <fmt/core.h>
#include <toml++/toml.h>

#include <string>
#include <vector>

namespace lethe::cli {

namespace {

// A scalar TOML value as the text CLI11 would have seen on the command line.
std::string scalar_text(const toml::node& node, const std::string& path, const std::string& key) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return fmt::format("{}", f->get());  // shortest round trip
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  throw CLI::ConfigError(fmt::format("{}: key '{}': only strings, numbers, booleans and arrays of them are options",
                                     path, key));
}

void apply(CLI::App& cmd, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw CLI::FileError(fmt::format("{}: TOML error at line {}, column {}: {}", path, e.source().begin.line,
                                     e.source().begin.column, e.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    CLI::Option* opt = cmd.get_option_no_throw("--" + name);
    if (opt == nullptr || name == "config" || name == "help")
      throw CLI::ConfigError(fmt::format("{}: '{}' is not an option of `{}` (see --help)", path, name, cmd.get_name()));
    std::vector<std::string> values;
    if (const auto* array = node.as_array())
      for (const auto& element : *array) values.push_back(scalar_text(element, path, name));
    else
      values.push_back(scalar_text(node, path, name));
    if (opt->count() == 0) opt->add_result(values);  // the command line wins
  }
}

}  // namespace

std::vector<std::string> table_flags(const toml::table& table, const std::string& where) {
  std::vector<std::string> out;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (const auto* array = node.as_array()) {
      for (const auto& element : *array) out.push_back("--" + name + "=" + scalar_text(element, where, name));
    } else {
      out.push_back("--" + name + "=" + scalar_text(node, where, name));
    }
  }
  return out;
}

void add_toml_config(CLI::App& cmd) {
  CLI::App* app = &cmd;
  cmd.add_option_function<std::string>(
      "--config", [app](const std::string& path) { apply(*app, path); },
      "TOML file whose keys are this command's flag names (flags given here override it)");
}

}  // namespace lethe::cli
