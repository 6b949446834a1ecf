// IDX files (Fashion-MNIST's format), plain and gzipped: loading, malformed, truncated and corrupt
// files refused with their reason, normalization, and the installed data set where present.
#include <doctest/doctest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/ops.h"
#include "harness.h"
#include "nn/data/fashion_mnist.h"
#include "nn/data/idx.h"
#include "temp_dir.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

using test::TempDir;

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out;
  put_be32(out, magic);
  for (uint32_t d : dims) put_be32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  CHECK(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_plain(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The start of every message about the file at `path`, followed by `what`.
doctest::Contains says(const std::string& path, const std::string& what) {
  return doctest::Contains(("idx: '" + path + "': " + what).c_str());
}

// 3 images of 2×4 pixels with distinct values, and their labels.
const Bytes kPixels = {0, 1, 2, 3, 4, 5, 6, 7, 250, 251, 252, 253, 254, 255, 9, 8, 100, 0, 200, 1, 17, 34, 51, 68};
const Bytes kLabels = {3, 0, 9};
const Bytes kImagesFile = idx_bytes(0x803, {3, 2, 4}, kPixels);
const Bytes kLabelsFile = idx_bytes(0x801, {3}, kLabels);

}  // namespace

TEST_CASE("idx: a small images/labels pair loads, plain and gzipped") {
  TempDir dir;
  for (bool gzip : {false, true}) {
    CAPTURE(gzip);
    const std::string images = dir.file(gzip ? "images.gz" : "images"), labels = dir.file(gzip ? "labels.gz" : "labels");
    (gzip ? write_gzip : write_plain)(images, kImagesFile);
    (gzip ? write_gzip : write_plain)(labels, kLabelsFile);
    const data::Dataset d = data::read_idx_dataset(images, labels, 10);
    CHECK(d.size() == 3);
    CHECK(d.images.str() == "uint8[3,2,4] on cpu");
    CHECK(d.labels.str() == "int64[3] on cpu");
    CHECK(d.images.to_vector<uint8_t>() == kPixels);
    CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 0, 9});
  }
}

TEST_CASE("idx: truncated header, wrong magic, bad dims") {
  TempDir dir;
  const std::string f = dir.file("bad");
  write_plain(f, {0, 0});
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "truncated header: 2 bytes where a 4-byte magic number should be"), Error);
  write_plain(f, idx_bytes(0x803, {3, 2}, {}));
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "truncated header: it ends in the size of dim 2 of 3"), Error);
  write_plain(f, kLabelsFile);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "wrong magic 0x00000801 (uint8, 1-d), expected 0x00000803 (uint8, 3-d)"), Error);
  write_plain(f, Bytes{'G', 'I', 'F', '8', '9', 'a'});
  CHECK_THROWS_WITH_AS(data::read_idx_labels(f), says(f, "wrong magic 0x47494638 (not an IDX file), expected 0x00000801"), Error);
  write_plain(f, idx_bytes(0x803, {3, 0, 4}, {}));
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "dim 1 is zero in shape [3,0,4]"), Error);
  write_plain(f, idx_bytes(0x803, {60000, 28000, 28000}, {}));
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "shape [60000,28000,28000] has more than 100000000 elements"), Error);
}

TEST_CASE("idx: truncated data and trailing garbage") {
  TempDir dir;
  const std::string f = dir.file("images");
  const Bytes cut(kImagesFile.begin(), kImagesFile.end() - 5);
  write_plain(f, cut);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "truncated data: shape [3,2,4] needs 24 bytes after the header, found 19"), Error);
  write_gzip(f, cut);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "truncated data: shape [3,2,4] needs 24 bytes after the header, found 19"), Error);

  Bytes longer = kImagesFile;
  longer.insert(longer.end(), {1, 2, 3});
  write_plain(f, longer);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "trailing garbage: 3 bytes after the 24 bytes of shape [3,2,4]"), Error);
  write_gzip(f, longer);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "trailing garbage: 3 bytes"), Error);
}

TEST_CASE("idx: corrupt and cut gzip streams") {
  TempDir dir;
  const std::string f = dir.file("images.gz");
  // A valid gzip header (magic, deflate, no flags, mtime, xfl, OS) then a block of invalid type.
  write_plain(f, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "corrupt gzip stream: invalid block type"), Error);

  // A real gzip file cut mid-way: zlib reports the early end.
  Bytes noise(100 * 28 * 28);  // hardly compressible, so half the gzip file is half the data
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 2654435761u >> 24);
  write_gzip(f, idx_bytes(0x803, {100, 28, 28}, noise));
  Bytes gz = read_plain(f);
  gz.resize(gz.size() / 2);
  write_plain(f, gz);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "truncated data"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), doctest::Contains("(the gzip stream ends early)"), Error);

  // A wrong CRC in the gzip trailer is found once all data has been inflated.
  write_gzip(f, kImagesFile);
  gz = read_plain(f);
  gz[gz.size() - 8] ^= 1;
  write_plain(f, gz);
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "corrupt gzip stream: incorrect data check"), Error);
}

TEST_CASE("idx: missing file, label range, count mismatch") {
  TempDir dir;
  const std::string missing = dir.file("no-such-file.gz");
  CHECK_THROWS_WITH_AS(data::read_idx_images(missing), says(missing, "cannot open: No such file or directory"), Error);
  CHECK_THROWS_WITH_AS(data::read_idx_images(dir.path.string()), says(dir.path.string(), "read error: Is a directory"), Error);

  const std::string images = dir.file("images"), labels = dir.file("labels");
  write_plain(images, kImagesFile);
  write_plain(labels, kLabelsFile);
  CHECK_THROWS_WITH_AS(data::read_idx_labels(labels, 5), says(labels, "label 9 at index 2 is not below the number of classes, 5"), Error);
  write_plain(labels, idx_bytes(0x801, {2}, {1, 2}));
  CHECK_THROWS_WITH_AS(data::read_idx_dataset(images, labels),
                       doctest::Contains(("idx: '" + images + "' holds 3 images but '" + labels + "' holds 2 labels").c_str()), Error);
}

TEST_CASE("fashion_mnist: normalize_images") {
  const Tensor u8 = Tensor::from_vector<uint8_t>({0, 73, 255}, {3});
  const std::vector<float> x = data::normalize_images(u8).to_vector<float>();
  REQUIRE(x.size() == 3);
  for (int i = 0; i < 3; ++i) {
    const double pixel = i == 0 ? 0 : i == 1 ? 73 : 255;
    CHECK(x[i] == doctest::Approx((pixel / 255 - 0.2860) / 0.3530).epsilon(1e-6));
  }
  CHECK_THROWS_WITH_AS(data::normalize_images(Tensor::zeros({3})), doctest::Contains("normalize_images: expects uint8 images, got float32[3] on cpu"), Error);
}

TEST_CASE("fashion_mnist: the installed test set") {
  if (!fs::exists(data::kFashionMnistDir)) {
    test::record_skip(std::string(data::kFashionMnistDir) + " is missing (tools/setup installs dataset-fashion-mnist)");
    return;
  }
  const data::Dataset test = data::load_fashion_mnist(data::kFashionMnistDir, false);
  CHECK(test.size() == 10000);
  CHECK(test.images.str() == "uint8[10000,1,28,28] on cpu");
  CHECK(test.labels.str() == "int64[10000] on cpu");
  std::vector<int> per_class(10);  // labels outside 0..9 would have thrown
  for (int64_t label : test.labels.to_vector<int64_t>()) ++per_class.at(label);
  CHECK(per_class == std::vector<int>(10, 1000));  // the test set is balanced
}

TEST_CASE("idx: a file of another element type is refused by its magic") {
  TempDir dir;
  const std::string f = dir.file("floats");
  write_plain(f, idx_bytes(0xd03, {1, 1, 1}, {0, 0, 128, 63}));  // one float32 1.0
  CHECK_THROWS_WITH_AS(data::read_idx_images(f), says(f, "wrong magic 0x00000d03 (float32, 3-d), expected 0x00000803 (uint8, 3-d)"), Error);
}

TEST_CASE("fashion_mnist: load_fashion_mnist on crafted files") {
  TempDir dir;
  Bytes pixels(2 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i % 251);
  write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), idx_bytes(0x803, {2, 28, 28}, pixels));
  write_gzip(dir.file("t10k-labels-idx1-ubyte.gz"), idx_bytes(0x801, {2}, {4, 9}));
  const data::Dataset test = data::load_fashion_mnist(dir.path.string(), false);
  CHECK(test.images.str() == "uint8[2,1,28,28] on cpu");
  CHECK(test.images.to_vector<uint8_t>() == pixels);
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{4, 9});

  const std::string images = dir.file("train-images-idx3-ubyte.gz");
  write_gzip(images, kImagesFile);  // 2×4 images
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), kLabelsFile);
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist(dir.path.string(), true),
                       doctest::Contains(("fashion_mnist: '" + images + "' holds images of shape [3,2,4], expected [N,28,28]").c_str()), Error);
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), idx_bytes(0x801, {3}, {1, 10, 2}));
  CHECK_THROWS_WITH_AS(data::load_fashion_mnist(dir.path.string(), true),
                       doctest::Contains("label 10 at index 1 is not below the number of classes, 10"), Error);
}

TEST_CASE("fashion_mnist: normalization constants") {
  const data::Normalization n = data::fashion_mnist_normalization();
  CHECK(n.mean == std::vector<double>{data::kFashionMnistMean});
  CHECK(n.std == std::vector<double>{data::kFashionMnistStd});
}
