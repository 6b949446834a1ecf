#include "engine/safetensors.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"

namespace lethe {

// The data section is copied byte for byte: the host must store numbers as the format does.
static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeName {
  DType dtype;
  const char* name;
};
constexpr DTypeName kDTypeNames[] = {
    {DType::f32, "F32"}, {DType::f64, "F64"}, {DType::i32, "I32"}, {DType::i64, "I64"}, {DType::u8, "U8"}};
// BF16, which PyTorch users save: read as F32, exactly (a bfloat16 is a float32's upper 16 bits).
constexpr const char* kBf16 = "BF16";
// The format's other dtypes, which lethe has no tensors for.
constexpr const char* kOtherDTypes[] = {"BOOL", "I8", "I16", "U16", "U32", "U64", "F16", "C64",
                                        "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"};

const char* safetensors_name(DType dtype) {
  for (const DTypeName& d : kDTypeNames)
    if (d.dtype == dtype) return d.name;
  LETHE_FAIL("safetensors", "no safetensors name for ", dtype_name(dtype));
}

template <class... Args>
[[noreturn]] void fail(const std::string& origin, Args&&... args) {
  LETHE_FAIL("safetensors", origin, ": ", std::forward<Args>(args)...);
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_message(const json::exception& e) {
  const std::string what = e.what();
  const size_t end = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

// Parses the header, refusing a key that appears twice in one object (nlohmann would keep the
// last silently; a file that names a tensor twice is corrupt).
json parse_header(const std::string& text, const std::string& origin) {
  JsonLimits limits;
  limits.max_bytes = kMaxHeaderBytes;
  limits.refuse_duplicate_keys = true;
  return parse_json(text, detail::concat("safetensors: ", origin, ": header"), limits);
}

// One tensor's header entry, checked on its own (before the ranges are checked together).
struct Entry {
  std::string name;
  DType dtype;  // the tensor's; f32 for a BF16 entry
  bool bf16;    // stored as BF16: 2 bytes per element
  Shape shape;
  uint64_t begin, end;
};

// A tensor's name (from the file) for an error message.
std::string quoted_tensor(const std::string& name) { return "tensor " + excerpt(name, 80, '\''); }

// The tensor's dtype, and whether the file stores it as BF16 (then f32).
std::pair<DType, bool> parse_dtype(const json& value, const std::string& name, const std::string& origin) {
  if (!value.is_string()) fail(origin, quoted_tensor(name), ": dtype must be a string, got ", json_excerpt(value));
  const std::string s = value.get<std::string>();
  for (const DTypeName& d : kDTypeNames)
    if (s == d.name) return {d.dtype, false};
  if (s == kBf16) return {DType::f32, true};
  for (const char* other : kOtherDTypes)
    if (s == other)
      fail(origin, quoted_tensor(name), ": unsupported dtype ", s, " (lethe reads F32, F64, BF16, I32, I64, U8)");
  fail(origin, quoted_tensor(name), ": unknown dtype ", excerpt(s, 80, '\''));
}

Shape parse_shape(const json& value, const std::string& name, const std::string& origin) {
  if (!value.is_array()) fail(origin, quoted_tensor(name), ": shape must be an array, got ", json_excerpt(value));
  if (value.size() > static_cast<size_t>(kMaxDims))
    fail(origin, quoted_tensor(name), ": shape ", json_excerpt(value), " has ", value.size(), " dims, lethe tensors have at most ",
         kMaxDims);
  Shape shape;
  for (const json& dim : value) {
    if (dim.is_number_integer() && !dim.is_number_unsigned())
      fail(origin, quoted_tensor(name), ": negative dim in shape ", json_excerpt(value));
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail(origin, quoted_tensor(name), ": shape ", json_excerpt(value), " must hold non-negative integers below 2^63");
    shape.push_back(dim.get<int64_t>());
  }
  return shape;
}

Entry parse_entry(const std::string& name, const json& value, uint64_t data_size, const std::string& origin) {
  if (!value.is_object()) fail(origin, quoted_tensor(name), ": entry must be an object, got ", json_excerpt(value));
  for (const auto& [key, unused] : value.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(origin, quoted_tensor(name), ": unexpected key ", excerpt(key, 80, '\''), " (expected dtype, shape, data_offsets)");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!value.contains(key)) fail(origin, quoted_tensor(name), ": missing key '", key, "'");

  const auto [dtype, bf16] = parse_dtype(value["dtype"], name, origin);
  Entry e{name, dtype, bf16, parse_shape(value["shape"], name, origin), 0, 0};
  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    fail(origin, quoted_tensor(name), ": data_offsets must be [begin, end] with non-negative integers, got ",
         json_excerpt(offsets));
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end) fail(origin, quoted_tensor(name), ": data_offsets ", offsets.dump(), " end before they begin");
  if (e.end > data_size)
    fail(origin, quoted_tensor(name), ": data_offsets ", offsets.dump(), " reach past the end of the ", data_size,
         "-byte data section (truncated file or wrong offsets)");

  // The bytes the shape needs; a shape too large to count cannot match any range.
  const uint64_t range = e.end - e.begin;
  uint64_t needed = e.bf16 ? 2 : dtype_size(e.dtype);
  bool overflow = false;
  for (int64_t dim : e.shape) overflow |= __builtin_mul_overflow(needed, static_cast<uint64_t>(dim), &needed);
  if (std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end()) needed = 0, overflow = false;
  if (overflow || needed != range)
    fail(origin, quoted_tensor(name), ": shape ", e.shape.str(), " of ", e.bf16 ? kBf16 : safetensors_name(e.dtype),
         " needs ",
         overflow ? "more than 2^64" : std::to_string(needed), " bytes but data_offsets ", offsets.dump(), " hold ",
         range);
  return e;
}

}  // namespace

std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                                  const std::string& origin) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::vector<Tensor> host;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) fail(origin, "a tensor cannot be named ", kMetadataKey);
    if (!names.insert(name).second) fail(origin, "duplicate tensor name '", name, "'");
    if (!tensor.defined()) fail(origin, "tensor '", name, "' is undefined");
    host.push_back(tensor.detach().to(Device::cpu()).contiguous());
    const uint64_t end = offset + host.back().nbytes();
    header[name] = {{"dtype", safetensors_name(tensor.dtype())},
                    {"shape", std::vector<int64_t>(tensor.shape().begin(), tensor.shape().end())},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    fail(origin, "cannot write the header (names and metadata must be UTF-8): ", json_message(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header to 8-byte alignment

  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(static_cast<uint64_t>(text.size()) >> (8 * i)));
  out += text;
  for (const Tensor& t : host)
    if (t.nbytes() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return out;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin) {
  if (bytes.size() < 8)
    fail(origin, "truncated: ", bytes.size(), " bytes, too short for the 8-byte header length");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  if (header_size < 2) fail(origin, "header length ", header_size, " is too small for a JSON object");
  if (header_size > kMaxHeaderBytes)
    fail(origin, "header length ", header_size, " is above the limit of ", kMaxHeaderBytes, " bytes");
  if (header_size > bytes.size() - 8)
    fail(origin, "header length ", header_size, " runs past the end of the file (", bytes.size() - 8,
         " bytes follow the length)");
  const std::string text = bytes.substr(8, header_size);
  if (text[0] != '{') {
    const auto first = static_cast<unsigned char>(text[0]);
    fail(origin, "header is not a JSON object: it starts with ",
         std::isprint(first) ? detail::concat("'", text[0], "'") : detail::concat("byte ", int{first}));
  }
  // Valid JSON that starts with '{' is an object (parse_json refuses NUL bytes, nesting deeper than
  // 64 levels and duplicate keys).
  const json header = parse_header(text, origin);

  const uint64_t data_size = bytes.size() - 8 - header_size;
  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key != kMetadataKey) {
      entries.push_back(parse_entry(key, value, data_size, origin));
      continue;
    }
    if (!value.is_object()) fail(origin, kMetadataKey, " must be an object, got ", json_excerpt(value));
    for (const auto& [name, v] : value.items()) {
      if (!v.is_string())
        fail(origin, kMetadataKey, " value of ", excerpt(name, 80, '\''), " must be a string, got ", json_excerpt(v));
      file.metadata[name] = v.get<std::string>();
    }
  }

  // Together the ranges must tile the data section exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      fail(origin, "tensors ", excerpt(entries[i - 1].name, 80, '\''), " [", entries[i - 1].begin, ",",
           entries[i - 1].end, "] and ", excerpt(e.name, 80, '\''), " [", e.begin, ",", e.end, "] overlap");
    if (e.begin > covered)
      fail(origin, "hole in the data: bytes [", covered, ",", e.begin, ") belong to no tensor");
    covered = e.end;
  }
  if (covered != data_size)
    fail(origin, "trailing bytes: ", data_size - covered, " bytes after the last tensor's data");

  const char* data = bytes.data() + 8 + header_size;
  for (const Entry& e : entries) {
    const auto n = static_cast<size_t>(e.shape.numel());
    if (!e.bf16) {
      file.tensors.emplace_back(e.name, Tensor::from_host(data + e.begin, n, e.dtype, e.shape));
      continue;
    }
    std::vector<float> widened(n);
    for (size_t i = 0; i < n; ++i) {
      const auto* p = reinterpret_cast<const uint8_t*>(data + e.begin + 2 * i);
      const uint32_t bits = (uint32_t{p[0]} | uint32_t{p[1]} << 8) << 16;  // little-endian, upper half
      widened[i] = std::bit_cast<float>(bits);
    }
    file.tensors.emplace_back(e.name, Tensor::from_host(widened.data(), n, DType::f32, e.shape));
    file.widened[e.name] = kBf16;
  }
  return file;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomically(path, serialize_safetensors(tensors, metadata, path), "safetensors");
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path, "safetensors"), path);
}

}  // namespace lethe
