#pragma once
// Whole-file reads and crash-safe writes. A write goes to a temporary file in the target's
// directory, is fsynced, renamed over the target and the directory is fsynced: after a crash the
// target holds either its old bytes or all of the new ones, never a mix.
// Errors are lethe::Error "<op>: <path>: <what>: <errno text>"; `op` lets callers such as the
// safetensors reader report file problems under their own name.
#include <string>
#include <string_view>

namespace lethe {

// Replaces (or creates) `path` with `bytes`. On failure the temporary file is removed and the
// previous contents of `path` are left as they were.
void write_file_atomically(const std::string& path, std::string_view bytes, const char* op = "file");

// Every byte of the file at `path`.
std::string read_file(const std::string& path, const char* op = "file");

}  // namespace lethe
