#include "nn/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
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

// The bytes of a file, plain or gzip-compressed (the gzip magic 1f 8b tells them apart, as zlib's
// gzread does), read as one stream: gzip members one after another are one stream, as with gunzip.
class IdxBytes {
 public:
  IdxBytes(std::string_view bytes, const std::string& origin) : bytes_(bytes), origin_(origin) {
    gzip_ = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
    if (gzip_) {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
      z_.avail_in = 0;  // handed over in chunks of at most 1 GiB (avail_in is 32-bit)
      const int r = inflateInit2(&z_, 16 + MAX_WBITS);  // gzip only
      if (r != Z_OK) fail("zlib error: ", r == Z_MEM_ERROR ? "out of memory" : "cannot start inflating");
    }
  }
  ~IdxBytes() {
    if (gzip_) inflateEnd(&z_);
  }
  IdxBytes(const IdxBytes&) = delete;
  IdxBytes& operator=(const IdxBytes&) = delete;

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    LETHE_FAIL("idx", "'", origin_, "': ", std::forward<Args>(args)...);
  }

  bool gzip() const { return gzip_; }
  // Plain bytes not read yet (for gzip input: unknown until inflated).
  int64_t plain_left() const { return static_cast<int64_t>(bytes_.size() - consumed_); }

  // Reads up to n bytes into dst; fewer only where the data ends.
  int64_t read(void* dst, int64_t n) {
    if (!gzip_) {
      const int64_t got = std::min(n, plain_left());
      if (got > 0) std::memcpy(dst, bytes_.data() + consumed_, static_cast<size_t>(got));
      consumed_ += static_cast<size_t>(got);
      return got;
    }
    int64_t got = 0;
    while (got < n && !ended_) {
      const auto chunk = static_cast<uInt>(std::min<int64_t>(n - got, int64_t{1} << 30));
      z_.next_out = static_cast<Bytef*>(dst) + got;
      z_.avail_out = chunk;
      if (z_.avail_in == 0) feed();
      const int r = inflate(&z_, Z_NO_FLUSH);
      got += chunk - z_.avail_out;
      if (r == Z_STREAM_END) {
        next_member();
      } else if (r == Z_DATA_ERROR) {
        fail("corrupt gzip stream: ", z_.msg != nullptr ? z_.msg : "invalid data");
      } else if (r == Z_MEM_ERROR) {
        fail("zlib error: out of memory");
      } else if (r == Z_OK || r == Z_BUF_ERROR) {
        // Output space left but no input: the compressed bytes end before the stream does.
        if (z_.avail_out > 0 && z_.avail_in == 0 && left_in() == 0) cut_ = ended_ = true;
        else if (r == Z_BUF_ERROR && z_.avail_in > 0) fail("zlib error: inflate makes no progress");
      } else {
        fail("zlib error ", r);
      }
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

  // Said after a short read: the gzip stream stops mid-way.
  std::string ending() const { return cut_ ? " (the gzip stream ends early)" : ""; }

  // After the data: a gzip stream must end properly, and nothing but gzip members may follow it.
  void check_end() const {
    if (cut_) fail("the gzip stream ends early (it is cut in its trailer)");
    if (garbage_ > 0) fail("trailing garbage: ", garbage_, " bytes after the end of the gzip stream");
  }

 private:
  size_t left_in() const { return bytes_.size() - consumed_; }
  // Hands zlib the next chunk of the compressed bytes.
  void feed() {
    const size_t chunk = std::min<size_t>(left_in(), size_t{1} << 30);
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data() + consumed_));
    z_.avail_in = static_cast<uInt>(chunk);
    consumed_ += chunk;
  }
  // At the end of a gzip member: another one may follow; anything else is garbage.
  void next_member() {
    const size_t unread = z_.avail_in + left_in();
    if (unread == 0) {
      ended_ = true;
    } else if (unread >= 2 && starts_member(unread)) {
      inflateReset(&z_);
    } else {
      garbage_ = static_cast<int64_t>(unread);
      ended_ = true;
    }
  }
  // The gzip magic at the next unread byte (zlib's input is a window of bytes_, so the unread bytes
  // are its last `unread`).
  bool starts_member(size_t unread) const {
    const size_t first = bytes_.size() - unread;
    return static_cast<uint8_t>(bytes_[first]) == 0x1f && static_cast<uint8_t>(bytes_[first + 1]) == 0x8b;
  }

  std::string_view bytes_;
  std::string origin_;
  bool gzip_ = false;
  size_t consumed_ = 0;  // bytes handed to zlib (gzip) or read (plain)
  z_stream z_{};
  bool ended_ = false, cut_ = false;
  int64_t garbage_ = 0;
};

// The uint8 elements of the IDX bytes, whose magic must be `magic`, in their shape.
Tensor parse_idx_u8(std::string_view bytes, const std::string& origin, uint32_t magic) {
  IdxBytes file(bytes, origin);
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
  // Plain data that is too short is known before the tensor is allocated.
  if (!file.gzip() && file.plain_left() < numel)
    file.fail("truncated data: shape ", shape.str(), " needs ", numel, " bytes after the header, found ",
              file.plain_left());

  Tensor out = Tensor::empty(shape, DType::u8);
  got = file.read(out.data<uint8_t>(), numel);
  if (got < numel)
    file.fail("truncated data: shape ", shape.str(), " needs ", numel, " bytes after the header, found ", got,
              file.ending());
  if (const int64_t extra = file.remaining(); extra > 0)
    file.fail("trailing garbage: ", extra, " bytes after the ", numel, " bytes of shape ", shape.str());
  file.check_end();
  return out;
}

// Every byte of the file at `path`, with the errors of this reader.
std::string read_bytes(const std::string& path) {
  const auto fail = [&](const char* what, int err) {
    LETHE_FAIL("idx", "'", path, "': ", what, ": ", std::strerror(err));
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail("cannot open", errno);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const size_t n = std::fread(buf, 1, sizeof buf, f);
    out.append(buf, n);
    if (n < sizeof buf) break;
  }
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) fail("read error", err);
  return out;
}

}  // namespace

Tensor parse_idx_images(std::string_view bytes, const std::string& origin) {
  return parse_idx_u8(bytes, origin, kImagesMagic);
}

Tensor read_idx_images(const std::string& path) { return parse_idx_images(read_bytes(path), path); }

Tensor read_idx_labels(const std::string& path, int64_t num_classes) {
  return parse_idx_labels(read_bytes(path), path, num_classes);
}

Tensor parse_idx_labels(std::string_view bytes, const std::string& path, int64_t num_classes) {
  const Tensor raw = parse_idx_u8(bytes, path, kLabelsMagic);
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
