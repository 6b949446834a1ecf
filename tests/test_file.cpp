// engine/file.h's output safety: targets that are not regular files, stale temporary files of
// killed writers, the checked appender, and outputs that name inputs. (The atomic write itself:
// tests/test_safetensors.cpp.)
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "engine/error.h"
#include "engine/file.h"
#include "harness.h"
#include "temp_dir.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

void put(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The PID of a process that has exited and been reaped: no process has it (until the PID wraps).
pid_t dead_pid() {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return pid;
}

}  // namespace

TEST_CASE("file: outputs that are not regular files are refused and left alone") {
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0644) == 0);
  // A FIFO: renaming over it would replace it, opening it for writing would block.
  CHECK_THROWS_WITH_AS(write_file_atomically(fifo, "new"),
                       doctest::Contains(("file: " + fifo + ": exists and is a FIFO, not a regular file; refusing to "
                                          "replace it").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(AppendFile(fifo, "csv"), doctest::Contains("exists and is a FIFO, not a regular file"), Error);
  CHECK_THROWS_WITH_AS(check_output_path(fifo, "unlearn"), doctest::Contains(("unlearn: " + fifo + ": exists and is a FIFO").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(check_output_path(fifo, "unlearn", true), doctest::Contains("exists and is a FIFO"), Error);
  struct stat st {};
  REQUIRE(stat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(dir.names() == std::set<std::string>{"fifo"});

  // A symbolic link is followed: a link to a FIFO is a FIFO.
  fs::create_symlink(fifo, dir.file("link"));
  CHECK_THROWS_WITH_AS(write_file_atomically(dir.file("link"), "new"), doctest::Contains("exists and is a FIFO"), Error);
  CHECK(fs::is_symlink(dir.file("link")));

  // A character device like /dev/full (made here, never the real one: root may create it).
  const std::string device = dir.file("full");
  if (mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0) {
    CHECK_THROWS_WITH_AS(write_file_atomically(device, "new"), doctest::Contains("exists and is a character device"),
                         Error);
    CHECK_THROWS_WITH_AS(AppendFile(device, "train"), doctest::Contains("exists and is a character device"), Error);
    REQUIRE(stat(device.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  } else {
    test::record_skip("the character-device check: mknod needs root");
  }

  // A directory, for the checks made before a command writes anything.
  CHECK_THROWS_WITH_AS(check_output_path(dir.path.string(), "eval", true), doctest::Contains("exists and is a directory"),
                       Error);
  CHECK_THROWS_WITH_AS(check_output_path(dir.file("no-such-dir/x.csv"), "eval"),
                       doctest::Contains(("its folder " + dir.file("no-such-dir") + " cannot be used: No such file").c_str()), Error);
  check_output_path(dir.file("new.csv"), "eval", true);  // a new file in an existing folder: fine, nothing created
  CHECK(!fs::exists(dir.file("new.csv")));
}

TEST_CASE("file: a write removes the temporary files of killed writers of the same target, only those") {
  TempDir dir;
  const pid_t dead = dead_pid();
  const std::string stale = dir.file(".ck.tmp-" + std::to_string(dead) + "-0");
  const std::string live = dir.file(".ck.tmp-" + std::to_string(getppid()) + "-3");  // a live process's
  const std::string mine = dir.file(".ck.tmp-" + std::to_string(getpid()) + "-99");  // this process's
  const std::string other = dir.file(".other.tmp-" + std::to_string(dead) + "-0");  // another target's
  const std::string odd = dir.file(".ck.tmp-" + std::to_string(dead) + "-0x");      // not lethe's pattern
  for (const std::string& f : {stale, live, mine, other, odd}) put(f, "partial");
  write_file_atomically(dir.file("ck"), "new");
  const auto tmp = [](const std::string& f) { return fs::path(f).filename().string(); };
  CHECK(dir.names() == std::set<std::string>{"ck", tmp(live), tmp(mine), tmp(other), tmp(odd)});
  CHECK(remove_stale_temporaries(dir.file("other")) == 1);
  CHECK(remove_stale_temporaries(dir.file("other")) == 0);
  CHECK(!fs::exists(other));
}

TEST_CASE("file: AppendFile appends, reports a new file, and cuts a part-written text back off") {
  TempDir dir;
  const std::string f = dir.file("log.csv");
  {
    AppendFile a(f, "csv");
    CHECK(a.was_empty());
    a.write("h\n");
    a.write("1\n");
    a.close();
    a.close();  // closing twice is harmless
    CHECK_THROWS_WITH_AS(a.write("x"), doctest::Contains("written after it was closed"), Error);
  }
  {
    AppendFile a(f, "csv");
    CHECK(!a.was_empty());
    a.write("2\n");
  }  // the destructor closes
  CHECK(read_file(f) == "h\n1\n2\n");
  {
    AppendFile a(f, "csv", true);  // truncating
    CHECK(a.was_empty());
    a.write("t\n");
  }
  CHECK(read_file(f) == "t\n");
  CHECK_THROWS_WITH_AS(AppendFile(dir.file("no-such-dir/x"), "trajectory"),
                       doctest::Contains("cannot open for writing: No such file or directory"), Error);

  // A full disk: 4 KiB fit, the text is 10,000 bytes.
  const std::string message = test::error_under_file_limit<Error>(4096, [&] {
    AppendFile a(f, "relearn");
    a.write(std::string(10000, 'n'));
  });
  CHECK(message == "relearn: " + f + ": cannot append (4094 of 10000 bytes written, cut back off): File too large");
  CHECK(read_file(f) == "t\n");
}

TEST_CASE("file: AppendFile writes to this process's standard streams, which are not regular files") {
  // ctest gives the test a pipe or a file as stdout: either is accepted by name.
  AppendFile out("/dev/stdout", "train");
  out.write("");
  out.close();
  check_output_path("/dev/stderr", "train", true);
}

TEST_CASE("file: an output that names an input is refused, however it is spelled") {
  TempDir dir;
  const std::string in = dir.file("in.st");
  put(in, "x");
  fs::create_directory(dir.file("sub"));
  fs::create_symlink(in, dir.file("alias.st"));
  CHECK(same_file(in, in));
  CHECK(same_file(in, dir.file("sub/../in.st")));
  CHECK(same_file(in, dir.file("alias.st")));
  CHECK(same_file(dir.file("new.st"), dir.file("sub/../new.st")));  // neither exists: the same path
  CHECK(!same_file(in, dir.file("new.st")));
  CHECK(!same_file(in, ""));
  CHECK_THROWS_WITH_AS(check_distinct_output({"--split-out", dir.file("sub/../in.st")}, {{"--retrained", ""}, {"--from", in}},
                                             "unlearn"),
                       doctest::Contains(("unlearn: --split-out " + dir.file("sub/../in.st") + " is the same file as --from " +
                                          in + ": an output may not overwrite an input")
                                             .c_str()),
                       Error);
  check_distinct_output({"--out", dir.file("out.st")}, {{"--from", in}, {"--split", ""}}, "unlearn");
}
