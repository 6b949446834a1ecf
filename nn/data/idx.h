#pragma once
// Reader for IDX files, the format of MNIST and Fashion-MNIST: a big-endian magic number
// 0x0000TTDD (element type TT, DD dims), DD big-endian uint32 sizes, then the elements in
// row-major order. Files may be plain or gzip-compressed (the gzip magic tells them apart); a file
// is read whole and parsed in memory, and a gzip file must end with its stream (nothing but more
// gzip members may follow one).
// Only uint8 elements (type 0x08) are read: images (0x00000803) and labels (0x00000801).
// Every problem with a file throws lethe::Error naming the file and what is wrong.
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/tensor.h"
#include "nn/data/dataset.h"

namespace lethe::data {

// uint8 [N, rows, cols].
Tensor read_idx_images(const std::string& path);
// int64 [N]. With num_classes > 0, every label must be below it.
Tensor read_idx_labels(const std::string& path, int64_t num_classes = 0);
// The same from a file's bytes in memory (plain or gzip); `origin` names them in errors.
Tensor parse_idx_images(std::string_view bytes, const std::string& origin);
Tensor parse_idx_labels(std::string_view bytes, const std::string& origin, int64_t num_classes = 0);
// Both files of a labelled set; their counts must agree.
Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t num_classes = 0);

}  // namespace lethe::data
