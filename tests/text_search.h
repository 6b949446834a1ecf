#pragma once
// Searching the text a test renders (HTML pages, SVG plots, CSV): what the report tests share.
#include <cstddef>
#include <string_view>

namespace lethe::test {

// How many times `needle` occurs in `haystack`, overlapping occurrences included.
inline size_t count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace lethe::test
