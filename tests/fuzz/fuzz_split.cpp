// libFuzzer harness: the split reader (unlearn/scenario.h, parse_split: what load_split reads) on
// any text. lethe::Error is the expected rejection; anything else is a finding. A split it accepts
// holds what the file format promises.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/error.h"
#include "unlearn/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const lethe::unlearn::Split s = lethe::unlearn::parse_split(text, "fuzz");
    const bool ok = s.train_size == static_cast<int64_t>(s.forget.size() + s.retain.size()) &&
                    std::is_sorted(s.forget.begin(), s.forget.end()) && s.forget.front() >= 0 &&
                    s.forget.back() < s.train_size;
    if (!ok) __builtin_trap();
  } catch (const lethe::Error&) {
  }
  return 0;
}
