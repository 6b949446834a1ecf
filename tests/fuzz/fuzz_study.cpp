// libFuzzer harness: the study config reader of `lethe run` (unlearn/study/study_config.h,
// parse_study) on any text. lethe::Error and CLI11's errors (a value that is no flag) are the
// expected rejections; anything else is a finding.
#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/error.h"
#include "unlearn/study/study_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lethe::study::Study s = lethe::study::parse_study(text, "fuzz.toml");
    if (s.run.threads < 1 || s.replicates < 1 || s.scenarios.empty() || !s.config.is_object()) __builtin_trap();
  } catch (const lethe::Error&) {
  } catch (const CLI::Error&) {
  }
  return 0;
}
