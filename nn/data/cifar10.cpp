#include "nn/data/cifar10.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "engine/error.h"

namespace lethe::data {

namespace {

constexpr int64_t kImageBytes = kCifar10RecordBytes - 1;

template <class... Args>
[[noreturn]] void fail(const std::string& path, Args&&... args) {
  LETHE_FAIL("cifar10", "'", path, "': ", std::forward<Args>(args)...);
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  errno = 0;
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) fail(path, "cannot open: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  while (const size_t got = std::fread(chunk, 1, sizeof chunk, file.get())) bytes.insert(bytes.end(), chunk, chunk + got);
  if (std::ferror(file.get())) fail(path, "read error: ", std::strerror(errno));
  return bytes;
}

// The bytes of one batch file, checked: whole records, every label a class.
std::vector<uint8_t> read_records(const std::string& path) {
  std::vector<uint8_t> bytes = read_bytes(path);
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0) fail(path, "the file is empty, expected ", kCifar10RecordBytes, "-byte records");
  if (size % kCifar10RecordBytes != 0)
    fail(path, "size ", size, " bytes is not a multiple of the ", kCifar10RecordBytes, "-byte record (1 label byte + ",
         kImageBytes, " pixel bytes): ", size % kCifar10RecordBytes, " bytes over, or ",
         kCifar10RecordBytes - size % kCifar10RecordBytes, " short; truncated, or not a CIFAR-10 binary file");
  for (int64_t r = 0; r < size / kCifar10RecordBytes; ++r) {
    const int label = bytes[r * kCifar10RecordBytes];
    if (label >= kCifar10Classes)
      fail(path, "label ", label, " in record ", r, " is not below the number of classes, ", kCifar10Classes,
           "; not a CIFAR-10 binary file?");
  }
  return bytes;
}

}  // namespace

Normalization cifar10_normalization() {
  return {{std::begin(kCifar10Mean), std::end(kCifar10Mean)}, {std::begin(kCifar10Std), std::end(kCifar10Std)}};
}

Dataset read_cifar10(const std::vector<std::string>& paths) {
  std::vector<std::vector<uint8_t>> files;
  int64_t n = 0;
  for (const std::string& path : paths) {
    files.push_back(read_records(path));
    n += static_cast<int64_t>(files.back().size()) / kCifar10RecordBytes;
  }
  Dataset d{Tensor::empty({n, kCifar10Channels, kCifar10Size, kCifar10Size}, DType::u8),
            Tensor::empty({n}, DType::i64)};
  uint8_t* images = d.images.data<uint8_t>();
  int64_t* labels = d.labels.data<int64_t>();
  for (const std::vector<uint8_t>& bytes : files) {
    for (size_t at = 0; at < bytes.size(); at += kCifar10RecordBytes, images += kImageBytes) {
      *labels++ = bytes[at];
      std::memcpy(images, &bytes[at + 1], kImageBytes);
    }
  }
  return d;
}

Dataset load_cifar10(const std::string& dir, bool train) {
  if (!train) return read_cifar10({dir + "/test_batch.bin"});
  std::vector<std::string> paths;
  for (int i = 1; i <= 5; ++i) paths.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
  return read_cifar10(paths);
}

}  // namespace lethe::data
