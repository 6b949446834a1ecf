#include "engine/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace lethe {

namespace {

[[noreturn]] void fail_errno(const char* op, const std::string& path, const std::string& what, int err) {
  LETHE_FAIL(op, path, ": ", what, ": ", std::strerror(err));
}

// Opens a new file beside the target, named after it, that no other writer (thread or process)
// picks: O_EXCL refuses a name already taken and the next number is tried. Mode 0666 lets the
// umask decide permissions, as for any newly created file.
int create_temp(const std::string& dir, const std::string& name, std::string& tmp, const char* op,
                const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    tmp = (std::filesystem::path(dir) / detail::concat(".", name, ".tmp-", ::getpid(), "-", counter++)).string();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST || attempt == 100) fail_errno(op, path, "cannot create a temporary file in " + dir, errno);
  }
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view bytes, const char* op) {
  const std::filesystem::path target(path);
  LETHE_CHECK(target.has_filename(), op, path, ": not a file name");
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  std::string tmp;
  int fd = create_temp(dir, target.filename().string(), tmp, op, path);

  // Every failure from here on removes the temporary file; the target is untouched until rename.
  const auto fail = [&](const std::string& what) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail_errno(op, path, what, err);
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(detail::concat("cannot write ", tmp, " (", done, " of ", bytes.size(), " bytes written)"));
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("cannot fsync " + tmp);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("cannot close " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename " + tmp + " over it");

  // The rename is durable only once the directory entry is on disk.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) fail_errno(op, path, "written, but cannot open its directory to fsync it", errno);
  const int synced = ::fsync(dir_fd);
  const int err = errno;
  ::close(dir_fd);
  if (synced != 0) fail_errno(op, path, "written, but cannot fsync its directory", err);
}

std::string read_file(const std::string& path, const char* op) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(op, path, "cannot open", errno);
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  // One byte beyond the size seen, so the final read that finds the end needs no growth.
  std::string out(regular ? static_cast<size_t>(st.st_size) + 1 : 1 << 16, '\0');
  size_t size = 0;
  for (;;) {
    if (size == out.size()) out.resize(2 * out.size());
    const ssize_t n = ::read(fd, out.data() + size, out.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail_errno(op, path, "read error", err);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(size);
  return out;
}

}  // namespace lethe
