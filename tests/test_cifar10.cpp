#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "nn/data/cifar10.h"
#include "temp_dir.h"

using namespace lethe;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr int64_t kRecord = data::kCifar10RecordBytes;

// Record r of a crafted file: its label, then pixel k = (r·7 + k) mod 256.
Bytes records(const std::vector<uint8_t>& labels, int first = 0) {
  Bytes out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.push_back(labels[i]);
    for (int64_t k = 0; k < kRecord - 1; ++k) out.push_back(static_cast<uint8_t>(((first + i) * 7 + k) % 256));
  }
  return out;
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

doctest::Contains says(const std::string& path, const std::string& what) {
  return doctest::Contains(("cifar10: '" + path + "': " + what).c_str());
}

}  // namespace

TEST_CASE("cifar10: crafted batch files load, in file order, as [N,3,32,32] CHW") {
  test::TempDir dir;
  const std::string a = dir.file("a.bin"), b = dir.file("b.bin");
  write_file(a, records({3, 0, 9}));
  write_file(b, records({7}, 3));
  const data::Dataset d = data::read_cifar10({a, b});
  CHECK(d.size() == 4);
  CHECK(d.images.str() == "uint8[4,3,32,32] on cpu");
  CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 0, 9, 7});
  const std::vector<uint8_t> pixels = d.images.to_vector<uint8_t>();
  // Record bytes 1.. are the planes R, G, B, each row-major: pixel (r, c, y, x) is byte c·1024 + y·32 + x.
  for (int64_t r : {0, 2, 3})
    for (int64_t c : {0, 1, 2})
      for (int64_t y : {0, 5, 31})
        for (int64_t x : {0, 17, 31}) {
          const int64_t k = c * 1024 + y * 32 + x;
          CHECK(pixels[r * 3072 + k] == (r * 7 + k) % 256);
        }
}

TEST_CASE("cifar10: load_cifar10 reads data_batch_1..5.bin or test_batch.bin") {
  test::TempDir dir;
  for (int i = 1; i <= 5; ++i) write_file(dir.file("data_batch_" + std::to_string(i) + ".bin"), records({static_cast<uint8_t>(i)}, i));
  write_file(dir.file("test_batch.bin"), records({0, 1}));
  const data::Dataset train = data::load_cifar10(dir.path.string(), true);
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(train.images.str() == "uint8[5,3,32,32] on cpu");
  CHECK(data::load_cifar10(dir.path.string(), false).size() == 2);

  std::filesystem::remove(dir.file("data_batch_3.bin"));
  CHECK_THROWS_WITH_AS(data::load_cifar10(dir.path.string(), true),
                       says(dir.file("data_batch_3.bin"), "cannot open: No such file or directory"), Error);
}

TEST_CASE("cifar10: truncated, bad size, bad label, empty, missing") {
  test::TempDir dir;
  const std::string f = dir.file("data_batch_1.bin");
  Bytes cut = records({1, 2});
  cut.resize(cut.size() - 100);
  write_file(f, cut);
  CHECK_THROWS_WITH_AS(data::read_cifar10({f}),
                       says(f, "size 6046 bytes is not a multiple of the 3073-byte record (1 label byte + 3072 pixel "
                               "bytes): 2973 bytes over, or 100 short; truncated, or not a CIFAR-10 binary file"),
                       Error);
  Bytes longer = records({1});
  longer.insert(longer.end(), {1, 2, 3});
  write_file(f, longer);
  CHECK_THROWS_WITH_AS(data::read_cifar10({f}), says(f, "size 3076 bytes is not a multiple of the 3073-byte record"), Error);
  write_file(f, Bytes(100, 1));
  CHECK_THROWS_WITH_AS(data::read_cifar10({f}), says(f, "size 100 bytes is not a multiple"), Error);

  write_file(f, records({4, 10, 2}));
  CHECK_THROWS_WITH_AS(data::read_cifar10({f}), says(f, "label 10 in record 1 is not below the number of classes, 10"), Error);
  write_file(f, {});
  CHECK_THROWS_WITH_AS(data::read_cifar10({f}), says(f, "the file is empty, expected 3073-byte records"), Error);

  // The good first file does not hide a bad second one.
  const std::string good = dir.file("good.bin"), missing = dir.file("missing.bin");
  write_file(good, records({1}));
  CHECK_THROWS_WITH_AS(data::read_cifar10({good, missing}), says(missing, "cannot open: No such file or directory"), Error);
  CHECK_THROWS_WITH_AS(data::read_cifar10({dir.path.string()}), says(dir.path.string(), "read error: Is a directory"), Error);
}

TEST_CASE("cifar10: normalization constants") {
  const data::Normalization n = data::cifar10_normalization();
  CHECK(n.mean == std::vector<double>{0.4914, 0.4822, 0.4465});
  CHECK(n.std == std::vector<double>{0.2470, 0.2435, 0.2616});
}
