// lethe: train small vision models, unlearn a forget set, and measure how truly it is gone.
//
// The one error boundary: whatever a subcommand throws ends here as one line on stderr and an exit
// code, never an abort. 0: done; 1: the command failed (bad input, a file problem, a diverged run,
// out of memory); 2: the command line or a config file is wrong (usage).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <exception>
#include <new>
#include <string>
#include <string_view>

#include "commands.h"
#include "engine/error.h"

namespace {

constexpr int kFailed = 1;
constexpr int kUsage = 2;

// `message` on one line, at most a few kB: readers quote excerpts of what they reject, and this is
// the last guard for a message that still carries too much.
std::string one_line(std::string_view message) {
  constexpr size_t kMax = 2000;
  std::string out;
  for (const char c : message.substr(0, kMax)) {
    if (c == '\n' || c == '\r')
      out += " | ";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else
      out += c;
  }
  if (message.size() > kMax) out += fmt::format("... ({} more bytes)", message.size() - kMax);
  return out;
}

int fail(std::string_view message, int code) {
  fmt::print(stderr, "lethe: {}\n", one_line(message));
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lethe: train small vision models, unlearn a forget set, measure how truly it is gone"};
  app.require_subcommand(1);
  try {
    lethe::cli::add_commands(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return fail(std::string(e.what()) + " (see --help)", kUsage);
  } catch (const lethe::Error& e) {
    return fail(e.what(), kFailed);
  } catch (const std::bad_alloc&) {
    return fail("out of memory", kFailed);
  } catch (const std::exception& e) {
    // Not one of lethe's own messages (the standard library, the file system, a JSON or TOML
    // library): say so, so that it reads as the bug or unchecked input it is.
    return fail(std::string(e.what()) + " (an unchecked error: please report it)", kFailed);
  } catch (...) {
    return fail("an unknown exception (please report it)", kFailed);
  }
  return 0;
}
