#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "engine/error.h"
#include "harness.h"
#include "kernels/common/philox.h"
#include "nn/data/cifar10.h"
#include "nn/data/fashion_mnist.h"
#include "nn/data/loader.h"

using namespace lethe;

namespace {

using DatasetPtr = std::shared_ptr<const data::Dataset>;

// n images [n,c,h,w] of Philox-random pixels; label of sample i is i mod 10.
DatasetPtr make_dataset(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed = 7) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n * c * h * w));
  for (size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<uint8_t>(philox::random_u32(seed, 0, k));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 10;
  return std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(pixels, {n, c, h, w}), Tensor::from_vector(labels, {n})});
}

data::LoaderOptions options(int64_t batch_size, uint64_t seed = 0) {
  data::LoaderOptions o;
  o.batch_size = batch_size;
  o.seed = seed;
  return o;
}

// The base indices of every batch of an epoch, concatenated.
std::vector<int64_t> epoch_indices(data::DataLoader& loader, int64_t epoch) {
  std::vector<int64_t> all;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    const std::vector<int64_t> b = loader.batch(epoch, i).indices;
    all.insert(all.end(), b.begin(), b.end());
  }
  return all;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// float64 reference of one pixel.
double normalized(int v, double mean, double std) { return (v / 255.0 - mean) / std; }

// Every pixel of `batch` against float64 references: pixel(b, index, c, y, x) gives the uint8 value
// the output should show (−1 for the zero padding), channel statistics from `norm`.
template <class Pixel>
void expect_batch(const data::Batch& batch, const data::Dataset& base, const data::Normalization& norm, Pixel pixel) {
  const Tensor& img = batch.images;
  REQUIRE(img.dim() == 4);
  const int64_t c = img.size(1), h = img.size(2), w = img.size(3);
  std::vector<double> expected;
  for (size_t b = 0; b < batch.indices.size(); ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const size_t s = norm.mean.size() == 1 ? 0 : static_cast<size_t>(ch);
          expected.push_back(normalized(pixel(static_cast<int64_t>(b), batch.indices[b], ch, y, x), norm.mean[s], norm.std[s]));
        }
  test::expect_close(img, expected, 1e-6, 1e-6);
  std::vector<int64_t> labels;
  for (int64_t index : batch.indices) labels.push_back(base.labels.to_vector<int64_t>()[index]);
  CHECK(batch.labels.to_vector<int64_t>() == labels);
}

}  // namespace

TEST_CASE("data: subsets view the base data set without copying") {
  const DatasetPtr base = make_dataset(20, 1, 2, 3);
  const void* pixels = base->images.data_ptr();
  const data::Subset all = data::Subset::all(base);
  CHECK(all.size() == 20);
  CHECK(all.indices.front() == 0);
  CHECK(all.indices.back() == 19);
  const data::Subset forget{base, {17, 3, 5}};
  CHECK(forget.base.get() == base.get());
  CHECK(base.use_count() == 3);

  data::DataLoader loader(forget, options(2));
  CHECK(loader.subset().base.get() == base.get());
  CHECK(loader.subset().base->images.data_ptr() == pixels);
  CHECK(loader.size() == 3);
  CHECK(sorted(epoch_indices(loader, 0)) == std::vector<int64_t>{3, 5, 17});
  CHECK(data::Subset::all(nullptr).size() == 0);
}

TEST_CASE("data: each epoch is a Philox Fisher-Yates permutation of the subset, fixed by (seed, epoch)") {
  const DatasetPtr base = make_dataset(120, 1, 2, 2);
  std::vector<int64_t> odd;  // a subset in no particular order
  for (int64_t i = 119; i >= 0; i -= 2) odd.push_back(i);
  data::DataLoader a({base, odd}, options(16, 5)), b({base, odd}, options(16, 5)), other_seed({base, odd}, options(16, 6));

  std::set<std::vector<int64_t>> orders;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    CAPTURE(epoch);
    const std::vector<int64_t> order = epoch_indices(a, epoch);
    CHECK(sorted(order) == sorted(odd));
    CHECK(epoch_indices(b, epoch) == order);
    CHECK(epoch_indices(other_seed, epoch) != order);
    orders.insert(order);
    // A Philox Fisher–Yates shuffle of the positions 0..n−1 (stream 1000 + epoch), read through the subset.
    std::vector<int64_t> p(odd.size());
    std::iota(p.begin(), p.end(), int64_t{0});
    for (int64_t i = static_cast<int64_t>(p.size()) - 1; i > 0; --i) {
      const uint64_t r = philox::random_u32(5, 1000 + static_cast<uint64_t>(epoch), static_cast<uint64_t>(i));
      std::swap(p[i], p[(r * static_cast<uint64_t>(i + 1)) >> 32]);
    }
    for (size_t k = 0; k < p.size(); ++k) CHECK(order[k] == odd[p[k]]);
  }
  CHECK(orders.size() == 3);  // the epochs differ

  // Same (seed, epoch, i): the same batch, bit for bit.
  const data::Batch x = a.batch(2, 1), y = b.batch(2, 1);
  CHECK(x.indices == y.indices);
  CHECK(x.images.to_vector<float>() == y.images.to_vector<float>());
  CHECK(x.labels.to_vector<int64_t>() == y.labels.to_vector<int64_t>());

  data::LoaderOptions in_order = options(16);
  in_order.shuffle = false;
  data::DataLoader unshuffled({base, odd}, in_order);
  CHECK(epoch_indices(unshuffled, 0) == odd);
  CHECK(epoch_indices(unshuffled, 4) == odd);
}

TEST_CASE("data: drop_last and keep-last batch counts") {
  const DatasetPtr base = make_dataset(10, 1, 1, 1);
  struct Case {
    int64_t n, batch;
    bool drop_last;
    std::vector<int64_t> sizes;
  };
  for (const Case& c : {Case{10, 4, false, {4, 4, 2}}, Case{10, 4, true, {4, 4}}, Case{8, 4, false, {4, 4}},
                        Case{8, 4, true, {4, 4}}, Case{3, 4, false, {3}}, Case{3, 4, true, {}}, Case{0, 4, false, {}},
                        Case{10, 1, true, std::vector<int64_t>(10, 1)}}) {
    CAPTURE(c.n);
    CAPTURE(c.batch);
    CAPTURE(c.drop_last);
    data::Subset s = data::Subset::all(base);
    s.indices.resize(static_cast<size_t>(c.n));
    data::LoaderOptions o = options(c.batch);
    o.drop_last = c.drop_last;
    data::DataLoader loader(s, o);
    REQUIRE(loader.batches_per_epoch() == static_cast<int64_t>(c.sizes.size()));
    std::vector<int64_t> sizes;
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
      const data::Batch b = loader.batch(0, i);
      sizes.push_back(b.images.size(0));
      CHECK(b.labels.numel() == b.images.size(0));
      CHECK(static_cast<int64_t>(b.indices.size()) == b.images.size(0));
    }
    CHECK(sizes == c.sizes);
  }
  data::LoaderOptions o = options(4);
  o.drop_last = true;
  data::DataLoader loader(data::Subset::all(base), o);
  CHECK_THROWS_WITH_AS(loader.batch(0, 2), doctest::Contains("DataLoader: no batch 2: an epoch has 2 batches (10 samples, batch size 4, drop_last)"), Error);
  CHECK_THROWS_WITH_AS(loader.batch(-1, 0), doctest::Contains("DataLoader: epoch -1 is negative"), Error);
}

TEST_CASE("data: batch(e, i) read in any order equals reading in order") {
  const DatasetPtr base = make_dataset(70, 3, 4, 4);
  data::LoaderOptions o = options(8, 3);
  o.normalization = data::cifar10_normalization();
  o.augmentation = {2, true};
  data::DataLoader sequential(data::Subset::all(base), o), random_access(data::Subset::all(base), o);
  std::vector<std::vector<float>> images;
  for (int64_t e = 0; e < 2; ++e)
    for (int64_t i = 0; i < sequential.batches_per_epoch(); ++i) images.push_back(sequential.batch(e, i).images.to_vector<float>());
  const int64_t per_epoch = sequential.batches_per_epoch();
  for (int64_t k : {13, 2, 17, 0, 8, 9, 1, 16}) {
    CAPTURE(k);
    CHECK(random_access.batch(k / per_epoch, k % per_epoch).images.to_vector<float>() == images[k]);
  }
}

TEST_CASE("data: normalisation against a float64 reference") {
  // 256 pixels per channel: every uint8 value.
  std::vector<uint8_t> pixels(3 * 256);
  for (size_t k = 0; k < pixels.size(); ++k) pixels[k] = static_cast<uint8_t>(k * 37 % 256);
  const auto base = std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(pixels, {4, 3, 8, 8}), Tensor::from_vector<int64_t>({1, 2, 3, 4}, {4})});
  const auto pixel = [&](int64_t, int64_t index, int64_t c, int64_t y, int64_t x) {
    return int{pixels[static_cast<size_t>(((index * 3 + c) * 8 + y) * 8 + x)]};
  };
  for (const data::Normalization& norm :
       {data::cifar10_normalization(), data::Normalization{{0.5}, {0.25}}, data::Normalization{{0.0}, {1.0}}}) {
    data::LoaderOptions o = options(3);
    o.normalization = norm;
    data::DataLoader loader(data::Subset::all(base), o);
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) expect_batch(loader.batch(1, i), *base, norm, pixel);
  }
  // No statistics: the [0, 1] scale.
  data::DataLoader plain(data::Subset::all(base), options(4));
  expect_batch(plain.batch(0, 0), *base, data::Normalization{{0.0}, {1.0}}, pixel);

  // Fashion-MNIST's statistics give normalize_images' bits.
  const DatasetPtr gray = make_dataset(50, 1, 28, 28);
  data::DataLoader fashion = data::evaluation_loader(data::Subset::all(gray), 50, data::fashion_mnist_normalization());
  CHECK(fashion.batch(0, 0).images.to_vector<float>() == data::normalize_images(gray->images).to_vector<float>());

  auto fails = [&](const data::Normalization& norm, const char* what) {
    data::LoaderOptions o = options(4);
    o.normalization = norm;
    CHECK_THROWS_WITH_AS(data::DataLoader(data::Subset::all(base), o), doctest::Contains(what), Error);
  };
  fails({{0.1, 0.2}, {0.3, 0.4}}, "DataLoader: normalization has 2 values per statistic for images of 3 channels");
  fails({{0.1}, {}}, "DataLoader: normalization has 1 means but 0 standard deviations");
  fails({{0.1, 0.2, 0.3}, {0.3, 0.0, 0.4}}, "DataLoader: normalization of channel 1 has mean 0.2 and std 0; needs a finite mean and a positive std");
}

TEST_CASE("data: random crop with zero padding and horizontal flip against a naive reference") {
  const int64_t n = 200, c = 3, h = 5, w = 7, pad = 2;
  const DatasetPtr base = make_dataset(n, c, h, w);
  const std::vector<uint8_t> pixels = base->images.to_vector<uint8_t>();
  const data::Normalization norm = data::cifar10_normalization();
  data::LoaderOptions o = options(64, 11);
  o.normalization = norm;
  o.augmentation = {static_cast<int>(pad), true};
  data::DataLoader loader(data::Subset::all(base), o);

  std::set<int> dys, dxs, flips;
  for (int64_t epoch = 0; epoch < 2; ++epoch)
    for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
      const data::Batch batch = loader.batch(epoch, i);
      // torchvision: pad with zeros to (h+2p)×(w+2p), crop h×w at (top, left), then mirror.
      expect_batch(batch, *base, norm, [&](int64_t, int64_t index, int64_t ch, int64_t y, int64_t x) {
        const Crop crop = loader.crop(epoch, index);
        REQUIRE(std::abs(crop.dy) <= pad);
        REQUIRE(std::abs(crop.dx) <= pad);
        const int64_t top = crop.dy + pad, left = crop.dx + pad;
        std::vector<int> padded(static_cast<size_t>((h + 2 * pad) * (w + 2 * pad)), 0);
        for (int64_t py = 0; py < h; ++py)
          for (int64_t px = 0; px < w; ++px)
            padded[(py + pad) * (w + 2 * pad) + px + pad] = pixels[static_cast<size_t>(((index * c + ch) * h + py) * w + px)];
        const int64_t cx = crop.flip ? w - 1 - x : x;  // the mirror of the cropped image
        return padded[(y + top) * (w + 2 * pad) + cx + left];
      });
      for (int64_t index : batch.indices) {
        const Crop crop = loader.crop(epoch, index);
        dys.insert(crop.dy);
        dxs.insert(crop.dx);
        flips.insert(crop.flip);
      }
    }
  CHECK(dys == std::set<int>{-2, -1, 0, 1, 2});
  CHECK(dxs == std::set<int>{-2, -1, 0, 1, 2});
  CHECK(flips == std::set<int>{0, 1});
  int same = 0;  // a sample's augmentation changes with the epoch
  for (int64_t index = 0; index < n; ++index) {
    const Crop a = loader.crop(0, index), b = loader.crop(1, index);
    same += a.dy == b.dy && a.dx == b.dx && a.flip == b.flip;
  }
  CHECK(same < n / 10);

  // Flip only: no shift; and the draws depend on the sample, not on the subset holding it.
  data::LoaderOptions flip_only = o;
  flip_only.augmentation = {0, true};
  data::DataLoader flipper(data::Subset{base, {5, 6, 7}}, flip_only);
  for (int64_t index : {5, 6, 7}) {
    CHECK(flipper.crop(0, index).dy == 0);
    CHECK(flipper.crop(0, index).dx == 0);
    CHECK(flipper.crop(0, index).flip == loader.crop(0, index).flip);
  }
}

TEST_CASE("data: evaluation_loader gives the subset in order") {
  const DatasetPtr base = make_dataset(30, 1, 3, 3);
  const data::Subset retain{base, {29, 4, 11, 0, 7}};
  data::DataLoader eval = data::evaluation_loader(retain, 2, data::fashion_mnist_normalization());
  CHECK(eval.batches_per_epoch() == 3);
  CHECK(epoch_indices(eval, 0) == retain.indices);
  CHECK(eval.batch(0, 2).images.str() == "float32[1,1,3,3] on cpu");
}

TEST_CASE("data: invalid subsets and options") {
  const DatasetPtr base = make_dataset(10, 1, 2, 2);
  auto fails = [](data::Subset s, data::LoaderOptions o, const char* what) {
    CHECK_THROWS_WITH_AS(data::DataLoader(std::move(s), std::move(o)), doctest::Contains(what), Error);
  };
  fails({}, options(4), "DataLoader: the subset has no base data set");
  fails({base, {3, 10}}, options(4), "DataLoader: index 10 at position 1 of the subset is outside the data set of 10 samples");
  fails({base, {-1}}, options(4), "DataLoader: index -1 at position 0");
  fails(data::Subset::all(base), options(0), "DataLoader: batch size 0 is not positive");
  data::LoaderOptions o = options(4);
  o.augmentation.crop_padding = -1;
  fails(data::Subset::all(base), o, "DataLoader: crop padding -1 is negative");
  const auto flat = std::make_shared<const data::Dataset>(data::Dataset{base->images.flatten(1), base->labels});
  fails(data::Subset::all(flat), options(4), "DataLoader: expects contiguous uint8 images [N,C,H,W] on the cpu, got uint8[10,4] on cpu");
  const auto wrong_labels = std::make_shared<const data::Dataset>(data::Dataset{base->images, base->labels.narrow(0, 0, 9)});
  fails({wrong_labels, {0}}, options(4), "DataLoader: expects contiguous int64 labels [10] on the cpu for images uint8[10,1,2,2] on cpu, got int64[9] on cpu");
  const auto five = std::make_shared<const data::Dataset>(data::Dataset{Tensor::zeros({2, 5, 1, 1}, DType::u8), base->labels.narrow(0, 0, 2)});
  fails(data::Subset::all(five), options(4), "DataLoader: images uint8[2,5,1,1] on cpu have more than 4 channels");
  if (!cuda_available()) {
    o = options(4);
    o.device = Device::cuda(0);
    fails(data::Subset::all(base), o, "DataLoader: no device cuda:0 (0 visible)");
  }
}

TEST_CASE("data: CPU and CUDA batches are identical") {
  if (!test::cuda_or_skip("data: CPU/CUDA loader parity")) return;
  const DatasetPtr base = make_dataset(150, 3, 6, 5);
  data::LoaderOptions o = options(32, 9);
  o.normalization = data::cifar10_normalization();
  for (const data::Augmentation aug : {data::Augmentation{}, data::Augmentation{2, true}}) {
    CAPTURE(aug.crop_padding);
    o.augmentation = aug;
    o.device = Device::cpu();
    data::DataLoader cpu(data::Subset::all(base), o);
    o.device = Device::cuda(0);
    data::DataLoader gpu(data::Subset::all(base), o);
    // Several batches in a row reuse both staging buffers; then random access.
    for (const auto& [e, i] : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 0}, {1, 1}, {0, 2}, {3, 4}}) {
      const data::Batch a = cpu.batch(e, i), b = gpu.batch(e, i);
      CHECK(b.images.device() == Device::cuda(0));
      CHECK(b.labels.device() == Device::cuda(0));
      CHECK(a.indices == b.indices);
      CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
      CHECK(a.labels.to_vector<int64_t>() == b.labels.to_vector<int64_t>());
    }
    // Batches queued back to back, read after the loader is gone (its destructor waits for the copies).
    std::vector<data::Batch> kept;
    {
      data::DataLoader short_lived(data::Subset::all(base), o);
      for (int64_t i = 0; i < short_lived.batches_per_epoch(); ++i) kept.push_back(short_lived.batch(2, i));
    }
    for (size_t i = 0; i < kept.size(); ++i)
      CHECK(kept[i].images.to_vector<float>() == cpu.batch(2, static_cast<int64_t>(i)).images.to_vector<float>());
  }
}
