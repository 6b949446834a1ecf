#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lethe {

enum class DeviceKind : uint8_t { cpu, cuda };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceKind::cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceKind::cuda, i}; }
  constexpr bool is_cuda() const { return kind == DeviceKind::cuda; }
  constexpr bool is_cpu() const { return kind == DeviceKind::cpu; }
  constexpr bool operator==(const Device&) const = default;

  std::string str() const { return is_cuda() ? "cuda:" + std::to_string(index) : "cpu"; }
  // Parses "cpu", "cuda" or "cuda:N"; throws lethe::Error otherwise.
  static Device parse(std::string_view text);
};

// True when lethe was built with CUDA and at least one device is visible at run time.
bool cuda_available();
int cuda_device_count();

}  // namespace lethe
