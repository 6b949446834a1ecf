#include "unlearn/study/processes.h"

#include <fmt/core.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/error.h"

extern char** environ;

namespace lethe::study {

namespace {

// The children running now, for the signal handler: slots of 0 are free. Plain atomics, as a
// handler may read them.
constexpr size_t kMaxChildren = 1024;
std::array<std::atomic<pid_t>, kMaxChildren> children{};

const char* interrupt_message = "";

void on_interrupt(int) {
  for (std::atomic<pid_t>& c : children) {
    const pid_t pid = c.load();
    if (pid > 0) kill(pid, SIGTERM);
  }
  if (write(2, interrupt_message, std::strlen(interrupt_message)) < 0) {
  }
  _exit(130);
}

void track(pid_t pid, bool running) {
  for (std::atomic<pid_t>& c : children) {
    pid_t expected = running ? 0 : pid;
    if (c.compare_exchange_strong(expected, running ? pid : 0)) return;
  }
}

// `args` as execve takes them: pointers into the strings, then a null one.
std::vector<char*> argv_of(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

pid_t spawn(std::vector<std::string> args, const std::filesystem::path& log, const char* op) {
  std::error_code ignored;
  std::filesystem::create_directories(log.parent_path(), ignored);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  args.insert(args.begin(), "lethe");
  std::vector<char*> argv = argv_of(args);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  LETHE_CHECK(rc == 0, op, "cannot start a process: ", std::strerror(rc));
  track(pid, true);
  return pid;
}

}  // namespace

void stop_on_interrupt(const char* message) {
  interrupt_message = message;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
}

void run_processes(const std::vector<ProcessJob>& jobs, int64_t parallel, const std::function<void(size_t)>& done,
                   const char* op) {
  LETHE_CHECK(parallel >= 1 && static_cast<size_t>(parallel) <= kMaxChildren, op, "cannot run ", parallel,
              " processes at once: [1, ", kMaxChildren, "]");
  std::vector<int> state(jobs.size(), 0);  // 0 waiting, 1 running, 2 done
  std::map<pid_t, size_t> running;
  std::string failure;
  auto ready = [&](size_t i) {
    for (size_t a : jobs[i].after)
      if (state.at(a) != 2) return false;
    return true;
  };
  for (;;) {
    for (size_t i = 0; i < jobs.size() && failure.empty() && static_cast<int64_t>(running.size()) < parallel; ++i)
      if (state[i] == 0 && ready(i)) {
        running[spawn(jobs[i].args, jobs[i].log, op)] = i;
        state[i] = 1;
      }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    LETHE_CHECK(pid > 0, op, "waiting for a process: ", std::strerror(errno));
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const size_t i = it->second;
    running.erase(it);
    track(pid, false);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      state[i] = 2;
      done(i);
    } else if (failure.empty()) {
      failure = fmt::format("{} failed ({}); its output: {}", jobs[i].name,
                            WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                              : fmt::format("signal {}", WTERMSIG(status)),
                            jobs[i].log.string());
    }
  }
  LETHE_CHECK(failure.empty(), op, failure);
  for (size_t i = 0; i < jobs.size(); ++i)
    LETHE_CHECK(state[i] == 2, op, jobs[i].name, " never became ready: a job it waits for is not among the jobs");
}

CommandResult run_capture(const std::vector<std::string>& argv, const char* op) {
  // Both outputs go to files, not pipes: a command that fills one pipe while we read the other
  // cannot block.
  char out_name[] = "/tmp/lethe-capture-XXXXXX", err_name[] = "/tmp/lethe-capture-XXXXXX";
  const int out_fd = mkstemp(out_name), err_fd = mkstemp(err_name);
  LETHE_CHECK(out_fd >= 0 && err_fd >= 0, op, "cannot make a temporary file: ", std::strerror(errno));
  unlink(out_name);
  unlink(err_name);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  std::vector<char*> args = argv_of(argv);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args.front(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  auto slurp = [](int fd) {
    std::string text;
    char buffer[4096];
    lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<size_t>(n));
    close(fd);
    return text;
  };
  if (rc != 0) {
    close(out_fd);
    close(err_fd);
    LETHE_FAIL(op, "cannot run ", argv.front(), ": ", std::strerror(rc));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(out_fd), slurp(err_fd)};
}

}  // namespace lethe::study
