// libFuzzer harness: the IDX reader (nn/data/idx.h) on any bytes, plain or gzip-compressed, as an
// images file and as a labels file. lethe::Error is the expected rejection; anything else (another
// exception, a crash, a sanitizer report, a timeout, more than the memory limit) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/error.h"
#include "engine/storage.h"
#include "nn/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const lethe::Tensor images = lethe::data::parse_idx_images(bytes, "fuzz");
    if (images.numel() != images.size(0) * images.size(1) * images.size(2)) __builtin_trap();
  } catch (const lethe::Error&) {
  }
  try {
    const lethe::Tensor labels = lethe::data::parse_idx_labels(bytes, "fuzz", 10);
    const int64_t* p = labels.data<int64_t>();
    for (int64_t i = 0; i < labels.numel(); ++i)
      if (p[i] < 0 || p[i] >= 10) __builtin_trap();  // every label is below num_classes
  } catch (const lethe::Error&) {
  }
  // The host cache keeps freed blocks by exact size, up to 1 GiB (engine/storage.cpp): gzip inputs
  // decompress to tensors of many sizes, and the cached blocks would reach libFuzzer's RSS limit
  // (-rss_limit_mb=1024), a finding that is no leak. Each input starts with the cache empty.
  lethe::cpu_empty_cache();
  return 0;
}
