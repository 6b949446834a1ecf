// lethe: train small vision models, unlearn a forget set, and measure how truly it is gone.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "commands.h"
#include "engine/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lethe: train small vision models, unlearn a forget set, measure how truly it is gone"};
  app.require_subcommand(1);
  lethe::cli::add_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lethe::Error& e) {
    fmt::print(stderr, "lethe: {}\n", e.what());
    return 1;
  }
  return 0;
}
