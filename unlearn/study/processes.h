#pragma once
// `lethe` commands run in child processes, side by side (`lethe run --jobs`, `lethe tune --jobs`),
// and the interrupt that stops them: Ctrl-C or SIGTERM ends the parent and every child it runs,
// each child leaving the phases it finished done.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lethe::study {

// Ctrl-C (SIGINT) and SIGTERM end the process at once with exit code 130, after `message` (a
// string literal) on stderr, and send SIGTERM to the children run_processes is running: every
// finished phase is on disk, and the same command resumes.
void stop_on_interrupt(const char* message);

// One `lethe` command to run in a child process: its arguments (after the program's name), the
// file its stdout and stderr go to, and the indices of the jobs it must wait for.
struct ProcessJob {
  std::string name;  // what messages call it: "phase r0/original", "ft trial 2"
  std::vector<std::string> args;
  std::filesystem::path log;
  std::vector<size_t> after;
};

// Runs the jobs, up to `parallel` at once, each when every job of its `after` has exited with 0,
// in the order given among those ready; `done(i)` runs once job i has. A job that fails starts no
// new one: once the running jobs end, a lethe::Error from `op` names it, how it ended and its log.
void run_processes(const std::vector<ProcessJob>& jobs, int64_t parallel, const std::function<void(size_t)>& done,
                   const char* op);

// What a command printed and how it ended: the exit code, or 128 + the signal that ended it.
struct CommandResult {
  int status = 0;
  std::string out, err;
};
// Runs `argv` (argv[0] found on PATH) to its end and returns what it printed; a program that cannot
// be started is a lethe::Error from `op` naming it.
CommandResult run_capture(const std::vector<std::string>& argv, const char* op);

}  // namespace lethe::study
