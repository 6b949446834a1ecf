#pragma once
// A fresh folder under the system's temp dir for tests that write files, removed with
// everything in it.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp
#include <sys/resource.h>

#include <csignal>
#include <functional>

#include <filesystem>
#include <set>
#include <string>

namespace lethe::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lethe-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  // The names in the folder: a leftover temporary file shows up here.
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.insert(e.path().filename().string());
    return out;
  }
};

// A full disk, as a file size limit (which binds root too): runs `write` with files limited to
// `limit` bytes (a write past it fails with EFBIG) and returns the message of the lethe::Error it
// throws, "" when none.
template <class ErrorType>
std::string error_under_file_limit(rlim_t limit, const std::function<void()>& write) {
  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = limit;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    write();
  } catch (const ErrorType& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  return message;
}

}  // namespace lethe::test
