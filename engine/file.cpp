#include "engine/file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "engine/error.h"

namespace lethe {

namespace {

[[noreturn]] void fail_errno(const char* op, const std::string& path, const std::string& what, int err) {
  LETHE_FAIL(op, path, ": ", what, ": ", std::strerror(err));
}

// The temporary files of a target NAME are `.NAME.tmp-PID-N`: this is their name up to PID.
std::string temp_prefix(const std::string& name) { return "." + name + ".tmp-"; }

// Opens a new file beside the target, named after it, that no other writer (thread or process)
// picks: O_EXCL refuses a name already taken and the next number is tried. Mode 0666 lets the
// umask decide permissions, as for any newly created file.
int create_temp(const std::string& dir, const std::string& name, std::string& tmp, const char* op,
                const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0;; ++attempt) {
    tmp = (std::filesystem::path(dir) / detail::concat(temp_prefix(name), ::getpid(), "-", counter++)).string();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST || attempt == 100) fail_errno(op, path, "cannot create a temporary file in " + dir, errno);
  }
}

// What a file that is not a regular one is, for messages.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Whether `st` is this process's standard output or standard error (e.g. `/dev/stdout`).
bool is_standard_stream(const struct stat& st) {
  for (const int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    struct stat s {};
    if (::fstat(fd, &s) == 0 && s.st_dev == st.st_dev && s.st_ino == st.st_ino) return true;
  }
  return false;
}

// Refuses a target that exists and is not a regular file (or, when `stream_ok`, one of this
// process's standard streams). Symbolic links are followed: a link to /dev/full is /dev/full.
void check_target_type(const std::string& path, const char* op, bool stream_ok) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
  if (stream_ok && !S_ISDIR(st.st_mode) && is_standard_stream(st)) return;
  LETHE_FAIL(op, path, ": exists and is ", file_kind(st.st_mode), ", not a regular file; refusing to ",
             stream_ok ? "write to" : "replace", " it (give a file path)");
}

std::string folder_of(const std::string& path) {
  const std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

}  // namespace

size_t remove_stale_temporaries(const std::string& path) {
  const std::filesystem::path target(path);
  if (!target.has_filename()) return 0;
  const std::string prefix = temp_prefix(target.filename().string());
  std::error_code ec;
  std::filesystem::directory_iterator it(folder_of(path), ec);
  size_t removed = 0;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // The rest must be exactly PID-N, both decimal.
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    const auto digits = [](const std::string& t) {
      return !t.empty() && t.size() < 20 && t.find_first_not_of("0123456789") == std::string::npos;
    };
    if (dash == std::string::npos || !digits(rest.substr(0, dash)) || !digits(rest.substr(dash + 1))) continue;
    const long long pid = std::stoll(rest.substr(0, dash));
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max() || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

void write_file_atomically(const std::string& path, std::string_view bytes, const char* op) {
  const std::filesystem::path target(path);
  LETHE_CHECK(target.has_filename(), op, path, ": not a file name");
  const std::string dir = folder_of(path);
  check_target_type(path, op, false);
  remove_stale_temporaries(path);
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

AppendFile::AppendFile(const std::string& path, const char* op, bool truncate) : path_(path), op_(op) {
  LETHE_CHECK(!path.empty(), op, "no file name given");
  check_target_type(path, op, true);  // before open(): opening a FIFO for writing would block
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0666);
  if (fd_ < 0) fail_errno(op, path, "cannot open for writing", errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail_errno(op, path, "cannot stat", err);
  }
  regular_ = S_ISREG(st.st_mode);
  if (!regular_ && !is_standard_stream(st)) {  // it changed between the check and open()
    ::close(fd_);
    fd_ = -1;
    LETHE_FAIL(op, path, ": is ", file_kind(st.st_mode), ", not a regular file; refusing to write to it");
  }
  was_empty_ = !regular_ || st.st_size == 0;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

AppendFile::AppendFile(AppendFile&& other) noexcept
    : path_(std::move(other.path_)), op_(other.op_), fd_(other.fd_), regular_(other.regular_), was_empty_(other.was_empty_) {
  other.fd_ = -1;
}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    op_ = other.op_;
    fd_ = other.fd_;
    regular_ = other.regular_;
    was_empty_ = other.was_empty_;
    other.fd_ = -1;
  }
  return *this;
}

void AppendFile::write(std::string_view bytes) {
  LETHE_CHECK(fd_ >= 0, op_, path_, ": written after it was closed");
  struct stat st {};
  const off_t before = regular_ && ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    const int err = n == 0 ? EIO : errno;
    // Cut a part-written text back off, unless another writer appended meanwhile (then the file
    // no longer ends with exactly our bytes, and truncating would cut theirs).
    bool cut = false;
    if (done > 0 && before >= 0 && ::fstat(fd_, &st) == 0 && st.st_size == before + static_cast<off_t>(done))
      cut = ::ftruncate(fd_, before) == 0;
    fail_errno(op_, path_,
               detail::concat("cannot append (", done, " of ", bytes.size(), " bytes written",
                              done > 0 ? (cut ? ", cut back off" : ", left in the file") : "", ")"),
               err);
  }
}

void AppendFile::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  if (regular_ && ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail_errno(op_, path_, "cannot fsync", err);
  }
  if (::close(fd) != 0) fail_errno(op_, path_, "cannot close", errno);
}

void check_output_path(const std::string& path, const char* op, bool append) {
  LETHE_CHECK(!path.empty(), op, "an output path is empty");
  const std::filesystem::path p(path);
  LETHE_CHECK(p.has_filename(), op, path, ": not a file name");
  check_target_type(path, op, append);
  struct stat st {};
  if (append && ::stat(path.c_str(), &st) == 0) {  // appending to an existing file needs only the file
    if (S_ISREG(st.st_mode) && ::access(path.c_str(), W_OK) != 0) fail_errno(op, path, "cannot append to it", errno);
    return;
  }
  const std::string dir = folder_of(path);
  if (::stat(dir.c_str(), &st) != 0) fail_errno(op, path, "its folder " + dir + " cannot be used", errno);
  LETHE_CHECK(S_ISDIR(st.st_mode), op, path, ": ", dir, " is not a folder");
  // Creating a file (the temporary one, or a new log) needs the folder writable.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) fail_errno(op, path, "cannot create files in " + dir, errno);
}

bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  struct stat sa {}, sb {};
  const bool has_a = ::stat(a.c_str(), &sa) == 0, has_b = ::stat(b.c_str(), &sb) == 0;
  if (has_a && has_b) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (has_a != has_b) return false;
  std::error_code ea, eb;
  const std::filesystem::path ca = std::filesystem::weakly_canonical(std::filesystem::absolute(a), ea);
  const std::filesystem::path cb = std::filesystem::weakly_canonical(std::filesystem::absolute(b), eb);
  if (ea || eb) return std::filesystem::absolute(a).lexically_normal() == std::filesystem::absolute(b).lexically_normal();
  return ca == cb;
}

void check_distinct_output(const NamedPath& output, const std::vector<NamedPath>& inputs, const char* op) {
  for (const NamedPath& input : inputs)
    LETHE_CHECK(!same_file(output.path, input.path), op, output.name, " ", output.path, " is the same file as ",
                input.name, " ", input.path, ": an output may not overwrite an input (write it to another path)");
}

}  // namespace lethe
