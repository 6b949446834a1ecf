#include "unlearn/study/option_flags.h"

#include "engine/error.h"

namespace lethe::study {

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

}  // namespace lethe::study
