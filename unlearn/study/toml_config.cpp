#include "unlearn/study/toml_config.h"

#include <CLI/CLI.hpp>

#include <fmt/core.h>
#include <toml++/toml.h>

#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"

namespace lethe::study {

namespace {

// A scalar TOML value as the text CLI11 would have seen on the command line.
std::string scalar_text(const toml::node& node, const std::string& path, const std::string& key) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) return fmt::format("{}", f->get());  // shortest round trip
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  throw CLI::ConfigError(fmt::format("{}: key {}: only strings, numbers, booleans and arrays of them are options",
                                     path, excerpt(key, 80, '\'')));
}

void apply(CLI::App& cmd, const std::string& path) {
  std::string text;
  try {
    text = read_file(path, "config");
  } catch (const Error& e) {
    throw CLI::FileError(e.what());
  }
  if (const auto unsafe = toml_unsafe_text(text)) throw CLI::FileError(fmt::format("{}: TOML error at {}", path, *unsafe));
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw CLI::FileError(fmt::format("{}: TOML error at line {}, column {}: {}", path, e.source().begin.line,
                                     e.source().begin.column, e.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    CLI::Option* opt = cmd.get_option_no_throw("--" + name);
    if (opt == nullptr || name == "config" || name == "help")
      throw CLI::ConfigError(
          fmt::format("{}: {} is not an option of `{}` (see --help)", path, excerpt(name, 80, '\''), cmd.get_name()));
    std::vector<std::string> values;
    if (const auto* array = node.as_array())
      for (const auto& element : *array) values.push_back(scalar_text(element, path, name));
    else
      values.push_back(scalar_text(node, path, name));
    if (opt->count() == 0) opt->add_result(values);  // the command line wins
  }
}

}  // namespace

std::optional<std::string> toml_unsafe_text(std::string_view text) {
  // A small TOML lexer: where strings and comments are (non-ASCII text is allowed there and only
  // there), and the cases above. Outside strings it follows what toml++ expects next: a key (at the
  // start of a line or of an inline table's entry) or a value. In a value, a bare token (a number,
  // a date, a boolean or a bad one) runs to the next whitespace, ',', ']', '}' or '#', and toml++
  // checks each of its characters, quotes included ("1'''x" or "0.\"x\"" hold no string); in a key,
  // a quote starts a string only where a key or one of its dotted parts starts.
  enum class In { outside, comment, basic, multi_basic, literal, multi_literal } in = In::outside;
  bool key = true, token = false;
  unsigned last = '\n';          // in a key: the last character that is not a space or tab
  std::vector<char> open;        // the arrays ('[') and inline tables ('{') of the value being read
  size_t line = 1, line_start = 0;
  const auto at = [&](size_t i, const char* what) {
    size_t column = 1;  // in characters, as toml++ counts
    for (size_t k = line_start; k < i; ++k) column += (static_cast<unsigned char>(text[k]) & 0xc0) != 0x80;
    return fmt::format("line {}, column {}: {}", line, column, what);
  };
  const auto byte = [&](size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  const auto quotes = [&](size_t i, char q) {  // the length of the run of `q` at i
    size_t n = 0;
    while (i + n < text.size() && text[i + n] == q) ++n;
    return n;
  };
  const auto blank = [](unsigned c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  size_t i = text.substr(0, 3) == "\xef\xbb\xbf" ? 3 : 0;  // a byte-order mark, which toml++ skips
  while (i < text.size()) {
    const unsigned c = byte(i);
    if (c == '\n') line += 1, line_start = i + 1;
    switch (in) {
      case In::outside: {
        if (c >= 0x80) return at(i, "a non-ASCII character outside a string or comment (TOML allows none there)");
        const bool terminator = blank(c) || c == ',' || c == ']' || c == '}' || c == '#';
        if (token && !terminator) break;  // a character of a bare value token
        token = false;
        const bool quote = c == '"' || c == '\'';
        const bool string_starts =
            quote && (!key || last == '\n' || last == '[' || last == '{' || last == ',' || last == '.');
        if (string_starts) {
          const size_t n = quotes(i, static_cast<char>(c));
          const bool multi = n >= 3;
          in = c == '"' ? (multi ? In::multi_basic : In::basic) : (multi ? In::multi_literal : In::literal);
          if (n == 2) in = In::outside;  // an empty string
          last = c;
          i += multi ? 3 : n;
          continue;
        }
        if (c == '#') {
          in = In::comment;
        } else if (c == '\n') {
          if (open.empty()) key = true;
          last = c;
        } else if (c == '=') {
          key = false;
        } else if (c == '[') {
          if (!key) open.push_back('[');  // in a key: a table header's
          last = c;
        } else if (c == '{') {
          open.push_back('{');
          key = true;
          last = c;
        } else if (c == ']' || c == '}') {
          if (!open.empty() && open.back() == (c == ']' ? '[' : '{')) open.pop_back();
          if (!open.empty() || c == '}') key = false;
        } else if (c == ',') {
          key = !open.empty() && open.back() == '{';
          last = c;
        } else if (!blank(c)) {
          if (key)
            last = c;
          else
            token = true;
        }
        break;
      }
      case In::comment:
        if (c == '\n') {
          in = In::outside;
          if (open.empty()) key = true;
          last = c;
        }
        break;
      case In::literal:
      case In::basic:
        if (c == '\n' || c == (in == In::basic ? '"' : '\'')) {
          if (c == '\n' && open.empty()) key = true;
          in = In::outside;
          last = c;
        }
        if (in == In::basic && c == '\\') {
          if (byte(i + 1) >= 0x80) return at(i + 1, "a non-ASCII character after a backslash (no escape starts so)");
          if (byte(i + 1) != '\n') ++i;  // the escaped character (a newline ends the string: toml++ says so)
        }
        break;
      case In::multi_basic:
      case In::multi_literal: {
        const char q = in == In::multi_basic ? '"' : '\'';
        if (c == static_cast<unsigned char>(q) && quotes(i, q) >= 3) {  // up to 2 more are the string's own
          i += quotes(i, q);
          in = In::outside;
          last = c;
          continue;
        }
        if (in == In::multi_basic && c == '\\') {
          if (byte(i + 1) >= 0x80) return at(i + 1, "a non-ASCII character after a backslash (no escape starts so)");
          if (!blank(byte(i + 1))) {
            ++i;  // the escaped character
            break;
          }
          // A line-ending backslash: the whitespace and newlines after it are skipped, and toml++
          // asks whether the next character is whitespace too.
          size_t k = i + 1;
          for (; k < text.size() && blank(byte(k)); ++k)
            if (text[k] == '\n') line += 1, line_start = k + 1;
          if (byte(k) >= 0x80)
            return at(k, "a non-ASCII character right after a line-ending backslash (toml++ 3.3 misreads it: "
                         "start the line with another character)");
          i = k;
          continue;
        }
        break;
      }
    }
    ++i;
  }
  return std::nullopt;
}

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

}  // namespace lethe::study
