#pragma once
// The relearning options as flags, shared by `lethe relearn` and the [relearn] table of
// `lethe run` configs (which are parsed through the same flags, so both accept the same keys).
#include <CLI/CLI.hpp>

#include "unlearn/relearn.h"

namespace lethe::cli {

void add_relearn_options(CLI::App& cmd, unlearn::RelearnOptions& o);

}  // namespace lethe::cli
