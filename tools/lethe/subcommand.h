#pragma once
// The frame of the subcommands that run on a data set (train, eval, split, unlearn, relearn):
// registered with --config first and the run options next, then their own options; run with the
// wall clock started, the threads set and the device checked; finished by printing one result,
// named by the command and stamped with the output schema's version.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/device.h"
#include "unlearn/study/toml_config.h"

namespace lethe::cli {

// Adds subcommand `name` to `app` with --config, the run options of `Options::run`, then what
// `add_options` adds; the subcommand runs `run` on the options parsed.
template <class Options>
void add_data_command(CLI::App& app, const char* name, const char* description,
                      const std::function<void(CLI::App&, Options&)>& add_options,
                      std::function<void(const Options&)> run) {
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(name, description);
  add_toml_config(*cmd);
  add_run_options(*cmd, options->run);
  add_options(*cmd, *options);
  cmd->callback([options, run = std::move(run)] { run(*options); });
}

// One run of a subcommand, from its start (the wall clock, start(): threads and device) to the
// printed result.
class CommandRun {
 public:
  CommandRun(const char* command, const RunOptions& run);
  Device device() const { return device_; }
  double wall_seconds() const;
  // The command's result object to fill: its "command" and "schema_version".
  nlohmann::json result() const;
  // Prints `result`: one JSON object on stdout with --json, `text` otherwise.
  void print(const nlohmann::json& result, const std::string& text) const;

 private:
  std::string command_;
  const RunOptions& run_;
  std::chrono::steady_clock::time_point start_;
  Device device_;
};

// --trajectory FILE and --trajectory-every K (which needs it), as unlearn and relearn have them.
void add_trajectory_options(CLI::App& cmd, std::string& path, int64_t& every, const std::string& path_help,
                            const std::string& every_help);

}  // namespace lethe::cli
