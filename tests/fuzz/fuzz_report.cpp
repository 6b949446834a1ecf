// libFuzzer harness: the study report (unlearn/study/report.h) on any text as results.json: parsed
// with the report's limits (parse_results), then rendered (render_report reads and checks every
// field it needs). lethe::Error is the expected rejection; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/error.h"
#include "unlearn/study/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::string page = lethe::study::render_report(lethe::study::parse_results(text, "fuzz"));
    if (page.rfind("<!DOCTYPE html>", 0) != 0) __builtin_trap();
  } catch (const lethe::Error&) {
  }
  return 0;
}
