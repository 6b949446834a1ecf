#pragma once
// JSON read from files (safetensors headers, splits, checkpoints' metadata, a study's records and
// results.json) is parsed here, with limits, so that no file can make a reader use unbounded
// memory, recurse deeply or print itself whole in an error message.
//
// parse_json refuses, before building anything: text above a size limit, NUL bytes (nlohmann stops
// at one as at the end of a C string, so "{}\0garbage" would pass) and arrays/objects nested deeper
// than a limit (nlohmann parses iteratively, but copying, comparing and dumping a value recurse).
// Optionally it refuses a key that appears twice in one object (nlohmann keeps the last one
// silently). Every problem is a lethe::Error "<what> ...", whose quotes of the text are bounded.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace lethe {

struct JsonLimits {
  size_t max_bytes = size_t{64} << 20;  // 64 MiB: a split of millions of samples, a phase record
  int max_depth = 64;                   // arrays and objects inside each other
  bool refuse_duplicate_keys = false;
};

// `what` names the text in errors, as the subject of a sentence: "split: run/split.json",
// "safetensors: model.safetensors: header" ("... is not valid JSON: parse error at line 1, ...").
nlohmann::json parse_json(std::string_view text, const std::string& what, const JsonLimits& limits = {});

// A JSON value for an error message: compact, ASCII only, cut to about `max` characters with the
// length of the whole ([1,2,3,… (1234 bytes)).
std::string json_excerpt(const nlohmann::json& value, size_t max = 80);

// `value` as an integer in [lo, hi] (never a conversion of a fraction or of an out-of-range number,
// which nlohmann's get<> would do unchecked); anything else is a lethe::Error "<what> must be an
// integer in [lo, hi], got <value>".
int64_t json_int(const nlohmann::json& value, const std::string& what,
                 int64_t lo = std::numeric_limits<int64_t>::min(), int64_t hi = std::numeric_limits<int64_t>::max());
uint64_t json_uint(const nlohmann::json& value, const std::string& what,
                   uint64_t hi = std::numeric_limits<uint64_t>::max());

}  // namespace lethe
