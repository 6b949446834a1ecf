#include "nn/data/loader.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "kernels/common/philox.h"
#if defined(LETHE_WITH_CUDA)
#include "engine/cuda_runtime.h"
#endif

namespace lethe::data {

namespace {

constexpr const char* kOp = "DataLoader";
// Gathering fewer bytes of images than this runs on one thread (waking threads costs µs).
constexpr int64_t kParallelBytes = 32768;

// The images' channel statistics as the kernels take them, one pair per channel.
PixelNorm pixel_norm(const Normalization& n, int64_t channels) {
  const auto values = static_cast<int64_t>(n.mean.size());
  LETHE_CHECK(n.std.size() == n.mean.size(), kOp, "normalization has ", values, " means but ", n.std.size(),
              " standard deviations");
  LETHE_CHECK(values <= 1 || values == channels, kOp, "normalization has ", values,
              " values per statistic for images of ", channels, " channels");
  PixelNorm p{};
  for (int64_t c = 0; c < channels; ++c) {
    const size_t v = values == 1 ? 0 : static_cast<size_t>(c);
    const double mean = values == 0 ? 0 : n.mean[v], std = values == 0 ? 1 : n.std[v];
    LETHE_CHECK(std::isfinite(mean) && std::isfinite(std) && std > 0, kOp, "normalization of channel ", c,
                " has mean ", mean, " and std ", std, "; needs a finite mean and a positive std");
    p.mean[c] = static_cast<float>(mean);
    p.std[c] = static_cast<float>(std);
  }
  return p;
}

bool augments(const Augmentation& a) { return a.crop_padding > 0 || a.horizontal_flip; }

}  // namespace

std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) {
    // j uniform in [0, i] by multiply-shift (bias below 2^-13 for n ≤ 2^19).
    const uint64_t r = philox::random_u32(seed, stream, static_cast<uint64_t>(i));
    std::swap(p[i], p[static_cast<int64_t>((r * static_cast<uint64_t>(i + 1)) >> 32)]);
  }
  return p;
}

#if defined(LETHE_WITH_CUDA)
// Two pinned buffers, each laid out as labels int64 [B], crops int32 [B,3], images uint8
// [B,C,H,W] for B = batch_size, and for each the event recorded after its last copies.
struct DataLoader::Staging {
  struct Slot {
    uint8_t* pinned = nullptr;
    cuda::Event copied = nullptr;
  };
  Slot slots[2];
  int next = 0;

  Staging(int device, size_t bytes) {
    for (Slot& s : slots) {
      s.pinned = static_cast<uint8_t*>(cuda::allocate_pinned(bytes));
      s.copied = cuda::create_event(device);
    }
  }
  ~Staging() {
    for (Slot& s : slots) {
      cuda::destroy_event(s.copied);  // waits for the copies still reading the buffer
      cuda::release_pinned(s.pinned);
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
};
#else
struct DataLoader::Staging {};
#endif

DataLoader::DataLoader(Subset subset, LoaderOptions options)
    : subset_(std::move(subset)), options_(std::move(options)) {
  LETHE_CHECK(subset_.base != nullptr, kOp, "the subset has no base data set");
  const Tensor& images = subset_.base->images;
  const Tensor& labels = subset_.base->labels;
  LETHE_CHECK(images.defined() && images.dtype() == DType::u8 && images.dim() == 4 && images.device().is_cpu() &&
                  images.is_contiguous(),
              kOp, "expects contiguous uint8 images [N,C,H,W] on the cpu, got ",
              images.defined() ? images.str() : "undefined images");
  const int64_t n = images.size(0);
  LETHE_CHECK(labels.defined() && labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == n &&
                  labels.device().is_cpu() && labels.is_contiguous(),
              kOp, "expects contiguous int64 labels [", n, "] on the cpu for images ", images.str(), ", got ",
              labels.defined() ? labels.str() : "undefined labels");
  geometry_ = {images.size(1), images.size(2), images.size(3)};
  LETHE_CHECK(geometry_.channels <= kMaxImageChannels, kOp, "images ", images.str(), " have more than ",
              kMaxImageChannels, " channels");
  for (size_t k = 0; k < subset_.indices.size(); ++k)
    LETHE_CHECK(subset_.indices[k] >= 0 && subset_.indices[k] < n, kOp, "index ", subset_.indices[k],
                " at position ", k, " of the subset is outside the data set of ", n, " samples");
  LETHE_CHECK(options_.batch_size > 0, kOp, "batch size ", options_.batch_size, " is not positive");
  LETHE_CHECK(options_.augmentation.crop_padding >= 0, kOp, "crop padding ", options_.augmentation.crop_padding,
              " is negative");
  norm_ = pixel_norm(options_.normalization, geometry_.channels);

  const Device device = options_.device;
  LETHE_CHECK(device.is_cpu() || device.index < cuda_device_count(), kOp, "no device ", device.str(), " (",
              cuda_device_count(), " visible)");
#if defined(LETHE_WITH_CUDA)
  if (device.is_cuda()) {
    const auto batch = static_cast<size_t>(options_.batch_size);
    staging_ = std::make_unique<Staging>(device.index, batch * (sizeof(int64_t) + 3 * sizeof(int32_t)) +
                                                           batch * static_cast<size_t>(geometry_.size()));
  }
#endif
}

DataLoader::~DataLoader() = default;
DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;

int64_t DataLoader::batches_per_epoch() const {
  const int64_t b = options_.batch_size;
  return options_.drop_last ? size() / b : (size() + b - 1) / b;
}

Crop DataLoader::crop(int64_t epoch, int64_t index) const {
  const Augmentation& a = options_.augmentation;
  return draw_crop(options_.seed, kAugmentationStream + static_cast<uint64_t>(epoch), static_cast<uint64_t>(index),
                   a.crop_padding, a.horizontal_flip);
}

const std::vector<int64_t>& DataLoader::order(int64_t epoch) {
  if (!options_.shuffle) return subset_.indices;
  if (epoch != order_epoch_) {
    order_ = permutation(size(), options_.seed, kShuffleStream + static_cast<uint64_t>(epoch));
    for (int64_t& position : order_) position = subset_.indices[position];
    order_epoch_ = epoch;
  }
  return order_;
}

void DataLoader::gather(int64_t epoch, const std::vector<int64_t>& indices, uint8_t* images, int64_t* labels,
                        int32_t* crops) const {
  const uint8_t* src_images = subset_.base->images.data<uint8_t>();
  const int64_t* src_labels = subset_.base->labels.data<int64_t>();
  const int64_t image = geometry_.size();
  const auto batch = static_cast<int64_t>(indices.size());
  // Each sample's bytes depend on the sample alone, so any partition writes the same batch.
#pragma omp parallel for schedule(static) if (batch * image > kParallelBytes)
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t index = indices[b];
    std::memcpy(images + b * image, src_images + index * image, static_cast<size_t>(image));
    labels[b] = src_labels[index];
    if (crops == nullptr) continue;
    const Crop c = crop(epoch, index);
    crops[3 * b] = c.dy;
    crops[3 * b + 1] = c.dx;
    crops[3 * b + 2] = c.flip;
  }
}

void DataLoader::stage(int64_t epoch, const std::vector<int64_t>& indices, const Tensor& images,
                       const Tensor& labels, const Tensor& crops) {
#if defined(LETHE_WITH_CUDA)
  Staging::Slot& slot = staging_->slots[staging_->next];
  staging_->next ^= 1;
  // The copies that last read this buffer were queued two batches ago; usually long done.
  cuda::wait_event(slot.copied);
  const auto batch = static_cast<size_t>(options_.batch_size);
  auto* host_labels = reinterpret_cast<int64_t*>(slot.pinned);
  auto* host_crops = reinterpret_cast<int32_t*>(slot.pinned + batch * sizeof(int64_t));
  uint8_t* host_images = slot.pinned + batch * (sizeof(int64_t) + 3 * sizeof(int32_t));
  gather(epoch, indices, host_images, host_labels, crops.defined() ? host_crops : nullptr);

  const int device = options_.device.index;
  cuda::copy_to_device_async(images.data_ptr(), device, host_images, images.nbytes());
  cuda::copy_to_device_async(labels.data_ptr(), device, host_labels, labels.nbytes());
  if (crops.defined()) cuda::copy_to_device_async(crops.data_ptr(), device, host_crops, crops.nbytes());
  cuda::record_event(slot.copied, device);
#else
  (void)epoch, (void)indices, (void)images, (void)labels, (void)crops;
  detail::no_cuda(kOp);
#endif
}

Batch DataLoader::batch(int64_t epoch, int64_t i) {
  LETHE_CHECK(epoch >= 0, kOp, "epoch ", epoch, " is negative");
  LETHE_CHECK(i >= 0 && i < batches_per_epoch(), kOp, "no batch ", i, ": an epoch has ", batches_per_epoch(),
              " batches (", size(), " samples, batch size ", options_.batch_size,
              options_.drop_last ? ", drop_last)" : ")");
  const std::vector<int64_t>& all = order(epoch);
  const int64_t start = i * options_.batch_size, b = std::min(options_.batch_size, size() - start);
  std::vector<int64_t> indices(all.begin() + start, all.begin() + start + b);

  const Device device = options_.device;
  const Shape shape{b, geometry_.channels, geometry_.height, geometry_.width};
  Tensor images = Tensor::empty(shape, DType::u8, device), labels = Tensor::empty({b}, DType::i64, device);
  Tensor crops = augments(options_.augmentation) ? Tensor::empty({b, 3}, DType::i32, device) : Tensor();
  if (device.is_cpu()) {
    gather(epoch, indices, images.data<uint8_t>(), labels.data<int64_t>(),
           crops.defined() ? crops.data<int32_t>() : nullptr);
  } else {
    stage(epoch, indices, images, labels, crops);
  }
  return {augment_normalize(images, crops, norm_), std::move(labels), std::move(indices)};
}

DataLoader evaluation_loader(Subset subset, int64_t batch_size, Normalization normalization, Device device) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.normalization = std::move(normalization);
  options.device = device;
  return DataLoader(std::move(subset), std::move(options));
}

}  // namespace lethe::data
