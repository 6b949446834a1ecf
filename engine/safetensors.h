#pragma once
// The safetensors format (github.com/huggingface/safetensors), as PyTorch and the Hugging Face
// tools read and write it: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then the tensors' bytes, row-major and little-endian,
// at offsets counted from the end of the header. lethe reads and writes the dtypes it has:
// F32, F64, I32, I64, U8; it also reads BF16 (PyTorch's bfloat16), as F32, exactly.
//
// Writing is deterministic: the same tensors and metadata give the same bytes. The header is
// compact JSON, "__metadata__" first (when not empty, keys sorted), then the tensors in the
// order given, whose data follows in that same order.
// Reading validates everything the reference implementation does (header length bounds, a JSON
// object, exactly dtype/shape/data_offsets per tensor, sizes matching shapes, ranges that tile
// the data section with no overlap, hole or trailing bytes) and also rejects duplicate keys.
// Every problem is a lethe::Error "safetensors: <path>: <what>".
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lethe {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;  // on the CPU, in the order of their data in the file
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> widened;  // tensors read as F32 from another dtype: name -> "BF16"
};

// Tensors may be on any device and have any strides; they are written as contiguous row-major.
// The file is written atomically (engine/file.h).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

// The same in memory; `origin` names the bytes in error messages.
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata,
                                  const std::string& origin = "<memory>");
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& origin);

}  // namespace lethe
