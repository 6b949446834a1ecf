#include "engine/json.h"

#include <set>
#include <vector>

#include "engine/error.h"

namespace lethe {

namespace {

using json = nlohmann::json;

// The longest part of nlohmann's own message that an error keeps.
constexpr size_t kMaxDetail = 240;

// `s` cut to at most `max` bytes at a UTF-8 character boundary.
std::string cut(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;
  return s.substr(0, end) + "\u2026 (" + std::to_string(s.size()) + " bytes)";
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, with the token it
// quotes ("last read: '...'", as long as the input's longest string) bounded.
std::string describe(const json::exception& e) {
  std::string m = e.what();
  if (m.rfind("[json.exception.", 0) == 0)
    if (const size_t end = m.find("] "); end != std::string::npos) m.erase(0, end + 2);
  static constexpr std::string_view kLastRead = "; last read: '";
  if (const size_t at = m.find(kLastRead); at != std::string::npos) {
    const size_t begin = at + kLastRead.size();
    // The token ends before "'; expected ..." (which holds no such text itself) or the final quote.
    size_t end = m.rfind("'; expected ");
    if (end == std::string::npos || end < begin) end = !m.empty() && m.back() == '\'' ? m.size() - 1 : m.size();
    const std::string token = m.substr(begin, end - begin);
    const std::string tail = end < m.size() ? m.substr(end + 1) : "";
    m = m.substr(0, at) + "; last read: " + excerpt(token, 40, '\'') + tail;
  }
  return cut(m, kMaxDetail);
}

// Refuses NUL bytes and nesting deeper than `max_depth`, in one pass over the text: outside strings
// every '[' and '{' opens a level and every ']' and '}' closes one. For text the parser accepts
// this is exactly its nesting; other text fails in the parser.
void check_structure(std::string_view text, const std::string& what, int max_depth) {
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    throw Error(detail::concat(what, " is not valid JSON: NUL byte at offset ", nul, " (JSON has none)"));
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character, a quote included
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw Error(detail::concat(what, " nests arrays and objects deeper than ", max_depth, " levels (at byte ", i,
                                   ")"));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

json parse_json(std::string_view text, const std::string& what, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    throw Error(detail::concat(what, " is ", text.size(), " bytes, above the limit of ", limits.max_bytes, " bytes"));
  check_structure(text, what, limits.max_depth);
  try {
    if (!limits.refuse_duplicate_keys) return json::parse(text.begin(), text.end());
    // The keys seen so far in each object being parsed (the depth check bounds how many).
    std::vector<std::set<std::string>> open_objects;
    const json::parser_callback_t refuse_duplicates = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) open_objects.emplace_back();
      if (event == json::parse_event_t::object_end) open_objects.pop_back();
      if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second)
        throw Error(detail::concat(what, " has a duplicate key ", excerpt(parsed.get<std::string>(), 80, '\'')));
      return true;
    };
    return json::parse(text.begin(), text.end(), refuse_duplicates);
  } catch (const json::exception& e) {
    throw Error(detail::concat(what, " is not valid JSON: ", describe(e)));
  }
}

std::string json_excerpt(const json& value, size_t max) {
  return cut(value.dump(-1, ' ', true, json::error_handler_t::replace), max);
}

int64_t json_int(const json& value, const std::string& what, int64_t lo, int64_t hi) {
  bool ok = false;
  int64_t v = 0;
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    ok = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    v = ok ? static_cast<int64_t>(u) : 0;
  } else if (value.is_number_integer()) {
    v = value.get<int64_t>();
    ok = true;
  }
  if (!ok || v < lo || v > hi)
    throw Error(detail::concat(what, " must be an integer in [", lo, ", ", hi, "], got ", json_excerpt(value)));
  return v;
}

uint64_t json_uint(const json& value, const std::string& what, uint64_t hi) {
  const bool ok = value.is_number_unsigned() ||
                  (value.is_number_integer() && value.get<int64_t>() >= 0);  // nlohmann types small ints signed
  if (!ok || value.get<uint64_t>() > hi)
    throw Error(detail::concat(what, " must be an integer in [0, ", hi, "], got ", json_excerpt(value)));
  return value.get<uint64_t>();
}

}  // namespace lethe
