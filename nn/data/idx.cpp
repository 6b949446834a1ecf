#include "nn/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "engine/error.h"

namespace lethe::data {

namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // uint8, 3 dims
constexpr uint32_t kLabelsMagic = 0x00000801;  // uint8, 1 dim
// Far above any data set this reader is for: a larger header is corrupt, not big data.
constexpr int64_t kMaxElements = 100'000'000;

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// What a magic number announces, for error messages.
std::string describe_magic(uint32_t magic) {
  if (magic >> 16 != 0) return "not an IDX file";
  const char* type = "unknown element type";
  switch ((magic >> 8) & 0xff) {
    case 0x08: type = "uint8"; break;
    case 0x09: type = "int8"; break;
    case 0x0b: type = "int16"; break;
    case 0x0c: type = "int32"; break;
    case 0x0d: type = "float32"; break;
    case 0x0e: type = "float64"; break;
  }
  return detail::concat(type, ", ", magic & 0xff, "-d");
}

uint32_t big_endian(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// An open file read through zlib, which inflates gzip files and passes other files through.
class ZFile {
 public:
  explicit ZFile(const std::string& path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) fail("cannot open: ", errno != 0 ? std::strerror(errno) : "out of memory");
  }
  ~ZFile() { gzclose(file_); }
  ZFile(const ZFile&) = delete;
  ZFile& operator=(const ZFile&) = delete;

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    LETHE_FAIL("idx", "'", path_, "': ", std::forward<Args>(args)...);
  }

  // Reads up to n bytes into dst; fewer only where the data ends.
  int64_t read(void* dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(n - got, int64_t{1} << 30));
      const int r = gzread(file_, static_cast<char*>(dst) + got, chunk);
      if (r < 0) fail(zlib_error());
      if (r == 0) break;
      got += r;
    }
    return got;
  }

  // How many bytes are left before the end of the (inflated) data.
  int64_t remaining() {
    char buf[4096];
    int64_t total = 0;
    while (const int64_t r = read(buf, sizeof buf)) total += r;
    return total;
  }

  // Said after a short read: zlib flags a gzip stream that stops mid-way.
  std::string ending() const {
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    return errnum == Z_BUF_ERROR ? " (the gzip stream ends early)" : "";
  }

 private:
  // zlib's message for a failed read, without the path it prefixes its messages with.
  std::string zlib_error() const {
    int errnum = Z_OK;
    std::string msg = gzerror(file_, &errnum);
    if (msg.rfind(path_ + ": ", 0) == 0) msg.erase(0, path_.size() + 2);
    if (errnum == Z_ERRNO) return "read error: " + msg;
    if (errnum == Z_DATA_ERROR) return "corrupt gzip stream: " + msg;
    return "zlib error: " + msg;
  }

  std::string path_;
  gzFile file_ = nullptr;
};

// The uint8 elements of the IDX file at `path`, whose magic must be `magic`, in its shape.
Tensor read_idx_u8(const std::string& path, uint32_t magic) {
  ZFile file(path);
  uint8_t word[4];
  int64_t got = file.read(word, 4);
  if (got < 4)
    file.fail("truncated header: ", got, " bytes where a 4-byte magic number should be", file.ending());
  const uint32_t found = big_endian(word);
  if (found != magic)
    file.fail("wrong magic ", hex(found), " (", describe_magic(found), "), expected ", hex(magic), " (",
              describe_magic(magic), ")");

  const int rank = static_cast<int>(magic & 0xff);
  Shape shape;
  for (int d = 0; d < rank; ++d) {
    got = file.read(word, 4);
    if (got < 4)
      file.fail("truncated header: it ends in the size of dim ", d, " of ", rank, file.ending());
    shape.push_back(big_endian(word));
  }
  int64_t numel = 1;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 0) file.fail("dim ", d, " is zero in shape ", shape.str());
    if (shape[d] > kMaxElements / numel)
      file.fail("shape ", shape.str(), " has more than ", kMaxElements, " elements: a corrupt header?");
    numel *= shape[d];
  }

  Tensor out = Tensor::empty(shape, DType::u8);
  got = file.read(out.data<uint8_t>(), numel);
  if (got < numel)
    file.fail("truncated data: shape ", shape.str(), " needs ", numel, " bytes after the header, found ", got,
              file.ending());
  if (const int64_t extra = file.remaining(); extra > 0)
    file.fail("trailing garbage: ", extra, " bytes after the ", numel, " bytes of shape ", shape.str());
  return out;
}

}  // namespace

Tensor read_idx_images(const std::string& path) { return read_idx_u8(path, kImagesMagic); }

Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  const Tensor raw = read_idx_u8(path, kLabelsMagic);
  if (num_classes > 0) {
    const uint8_t* p = raw.data<uint8_t>();
    for (int64_t i = 0; i < raw.numel(); ++i)
      LETHE_CHECK(p[i] < num_classes, "idx", "'", path, "': label ", int{p[i]}, " at index ", i,
                  " is not below the number of classes, ", num_classes);
  }
  return raw.to(DType::i64);
}

Dataset read_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t num_classes) {
  Dataset d{read_idx_images(images_path), read_idx_labels(labels_path, num_classes)};
  LETHE_CHECK(d.images.size(0) == d.labels.size(0), "idx", "'", images_path, "' holds ", d.images.size(0),
              " images but '", labels_path, "' holds ", d.labels.size(0), " labels");
  return d;
}

}  // namespace lethe::data
