#include "engine/device.h"

#include <charconv>

#include "engine/error.h"

namespace lethe {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    std::string_view num = text.substr(5);
    int index = -1;
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
    if (ec == std::errc() && end == num.data() + num.size() && index >= 0) return cuda(index);
  }
  LETHE_FAIL("device", "cannot parse '", text, "' (expected cpu, cuda or cuda:N)");
}

#if !defined(LETHE_WITH_CUDA)
bool cuda_available() { return false; }
int cuda_device_count() { return 0; }
#endif

}  // namespace lethe
