#include "subcommand.h"

#include <fmt/core.h>

#include <cstdio>

#include "unlearn/study/option_range.h"

namespace lethe::cli {

CommandRun::CommandRun(const char* command, const RunOptions& run)
    : command_(command), run_(run), start_(std::chrono::steady_clock::now()), device_(start(run)) {}

double CommandRun::wall_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

nlohmann::json CommandRun::result() const {
  return {{"command", command_}, {"schema_version", kOutputSchemaVersion}};
}

void CommandRun::print(const nlohmann::json& result, const std::string& text) const {
  if (run_.json)
    fmt::print("{}\n", result.dump());
  else
    fmt::print("{}", text);
  std::fflush(stdout);
}

void add_trajectory_options(CLI::App& cmd, std::string& path, int64_t& every, const std::string& path_help,
                            const std::string& every_help) {
  CLI::Option* trajectory = cmd.add_option("--trajectory", path, path_help);
  cmd.add_option("--trajectory-every", every, every_help)
      ->check(range_check(integer_in(1, kMaxCount)))
      ->capture_default_str()
      ->needs(trajectory);
}

}  // namespace lethe::cli
