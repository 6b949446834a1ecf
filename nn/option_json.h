#pragma once
// An options struct as JSON, from its declarations (nn/option_table.h): written for output JSON and
// checkpoint metadata, read back from checkpoint metadata.
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <variant>

#include "engine/error.h"
#include "engine/json.h"
#include "nn/option_table.h"

namespace lethe::nn {

// Output JSON (what the commands print, results.json) names an option NAME with '_' for '-'
// ("weight_decay"), as every other key there. Checkpoint metadata keeps the flag's name
// ("weight-decay"): its format predates the output schema, and a checkpoint's bytes must not change.
enum class JsonKeys { snake, flag };

inline std::string json_key(const char* name, JsonKeys keys) {
  std::string key = name;
  if (keys == JsonKeys::snake)
    for (char& c : key)
      if (c == '-') c = '_';
  return key;
}

// A real as JSON, which has no NaN or infinity: NaN (an unset option) is null, ±inf "inf"/"-inf".
inline nlohmann::json json_real(double v) {
  if (std::isnan(v)) return nullptr;
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

template <class S>
nlohmann::json options_json(const S& options, const OptionTable<S>& table, JsonKeys keys) {
  nlohmann::json j = nlohmann::json::object();
  for (const OptionSpec<S>& spec : table)
    std::visit(
        [&](auto field) {
          const auto& value = options.*field;
          if constexpr (std::is_same_v<std::decay_t<decltype(value)>, double>)
            j[json_key(spec.name, keys)] = json_real(value);
          else
            j[json_key(spec.name, keys)] = value;
        },
        spec.field);
  return j;
}

// Sets the fields whose keys `j` holds, each checked to be of its field's type (integers in its
// range: nlohmann's get<> would convert fractions and out-of-range numbers unchecked); `what`
// names the object in errors ("recipe").
template <class S>
void read_options_json(const nlohmann::json& j, S& options, const OptionTable<S>& table, JsonKeys keys,
                       const char* what) {
  LETHE_CHECK(j.is_object(), what, "expected a JSON object, got ", json_excerpt(j));
  for (const OptionSpec<S>& spec : table) {
    const std::string key = json_key(spec.name, keys);
    if (!j.contains(key)) continue;
    const nlohmann::json& value = j.at(key);
    std::visit(
        [&](auto field) {
          auto& out = options.*field;
          using T = std::decay_t<decltype(out)>;
          if constexpr (std::is_same_v<T, bool>) {
            LETHE_CHECK(value.is_boolean(), what, key, " must be true or false, got ", json_excerpt(value));
            out = value.get<bool>();
          } else if constexpr (std::is_unsigned_v<T>) {
            out = json_uint(value, std::string(what) + ": " + key);
          } else if constexpr (std::is_integral_v<T>) {
            out = static_cast<T>(json_int(value, std::string(what) + ": " + key, std::numeric_limits<T>::min(),
                                          std::numeric_limits<T>::max()));
          } else if constexpr (std::is_floating_point_v<T>) {
            LETHE_CHECK(value.is_number(), what, key, " must be a number, got ", json_excerpt(value));
            out = value.get<T>();
          } else {
            LETHE_CHECK(value.is_string(), what, key, " must be a string, got ", json_excerpt(value));
            out = value.get<std::string>();
          }
        },
        spec.field);
  }
}

}  // namespace lethe::nn
