#pragma once
// Whole-file reads and crash-safe writes. A write goes to a temporary file in the target's
// directory, is fsynced, renamed over the target and the directory is fsynced: after a crash the
// target holds either its old bytes or all of the new ones, never a mix.
// Errors are lethe::Error "<op>: <path>: <what>: <errno text>"; `op` lets callers such as the
// safetensors reader report file problems under their own name.
#include <string>
#include <string_view>
#include <vector>

namespace lethe {

// Replaces (or creates) `path` with `bytes`. On failure the temporary file is removed and the
// previous contents of `path` are left as they were. A target that exists and is not a regular
// file (a directory, a device such as /dev/full, a FIFO, a socket; symbolic links are followed) is
// refused before anything is created: a rename would replace the device node itself. Each write
// first removes the temporary files that earlier writes of the same target left behind when their
// process was killed (see remove_stale_temporaries).
void write_file_atomically(const std::string& path, std::string_view bytes, const char* op = "file");

// Removes the temporary files `.NAME.tmp-PID-N` beside `path` (the names write_file_atomically
// gives) whose writer process PID is no longer alive on this machine; returns how many. Files of
// live processes, this one's included, are kept. (PIDs are this machine's: a folder shared over
// the network with a writer on another machine is not a case this handles.)
size_t remove_stale_temporaries(const std::string& path);

// Appends to a file: logs and CSVs that grow as a command runs. Every write and the final close
// are checked and throw lethe::Error "<op>: <path>: <what>: <errno text>", so a full disk is an
// error, never a silently short file. write() hands the whole text to one write(2) (repeated only
// for the rest of a short write), and a text that fails part-way on a regular file is cut back off
// (the file is truncated to its length before it), so a caller that writes one whole line or row
// per call never leaves half of one. Nothing is buffered. The target must be a regular file (created, mode 0666 less the umask, when missing), or
// this process's own standard output or standard error (`--log /dev/stdout`); other devices,
// FIFOs and directories are refused before anything is opened.
class AppendFile {
 public:
  AppendFile(const std::string& path, const char* op = "file", bool truncate = false);
  ~AppendFile();  // closes without checking (after an error); call close() to check
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // True when the file held no bytes when it was opened (new, empty, or a stream): write a header.
  bool was_empty() const { return was_empty_; }
  void write(std::string_view bytes);
  // fsync (regular files) and close; errors that only show there (a full disk on some file
  // systems) throw. Later writes are errors.
  void close();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const char* op_;
  int fd_ = -1;
  bool regular_ = false, was_empty_ = false;
};

// Checks, before a command writes anything, that `path` can take an output: it has a file name,
// its folder exists, and it is not an existing directory, device, FIFO or socket (with `append`,
// this process's standard output or error is accepted too, as AppendFile does). Creates nothing.
void check_output_path(const std::string& path, const char* op, bool append = false);

// Whether two paths name the same file: the same device and inode when both exist, else the same
// path once made absolute, normalised and resolved through existing symbolic links.
bool same_file(const std::string& a, const std::string& b);

// A file a command reads or writes, named as the user gave it (a flag such as "--from").
struct NamedPath {
  std::string name, path;
};
// Refuses (lethe::Error) an output that is the same file as one of the inputs (empty paths are
// skipped): writing it would destroy the input, possibly before it is read.
void check_distinct_output(const NamedPath& output, const std::vector<NamedPath>& inputs, const char* op);

// Every byte of the file at `path`.
std::string read_file(const std::string& path, const char* op = "file");

}  // namespace lethe
