// libFuzzer harness: the safetensors reader (engine/safetensors.h, parse_safetensors) on any bytes.
// lethe::Error is the expected rejection; anything else is a finding. A file it accepts must write
// back to a file it reads as the same tensors.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"
#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  lethe::SafetensorsFile file;
  try {
    file = lethe::parse_safetensors(bytes, "fuzz");
  } catch (const lethe::Error&) {
    return 0;
  }
  // Accepted: the round trip through the writer must be accepted too, with the same names and sizes.
  const lethe::SafetensorsFile again =
      lethe::parse_safetensors(lethe::serialize_safetensors(file.tensors, file.metadata, "fuzz"), "fuzz");
  if (again.tensors.size() != file.tensors.size() || again.metadata != file.metadata) __builtin_trap();
  for (size_t i = 0; i < file.tensors.size(); ++i)
    if (again.tensors[i].first != file.tensors[i].first ||
        again.tensors[i].second.nbytes() != file.tensors[i].second.nbytes())
      __builtin_trap();
  return 0;
}
