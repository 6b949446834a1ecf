#pragma once
// DataLoader: batches of a Subset, shuffled deterministically per epoch, optionally augmented
// (random crop with zero padding, horizontal flip) and normalised, on the CPU or a CUDA device.
//
// Reproducible by construction: batch i of epoch e is a function of (seed, e, i) and the subset
// only. The order is a Philox-driven Fisher–Yates shuffle of the subset's positions, one stream
// per epoch; each sample's augmentation is one Philox block keyed by (seed, epoch, its index in
// the base data set), so it is the same on every device, in every subset the sample is part of,
// and whether batches are read in order or not.
//
// On a CUDA device, a batch is gathered on the host into a pinned staging buffer, copied over
// with cudaMemcpyAsync on the compute stream, and normalised/augmented there by a kernel. Two
// staging buffers alternate; before refilling one, the host waits on the event recorded after
// its last copies (issued two batches ago), never on the whole stream. So batch() returns while
// the device still works on earlier batches: the host prepares batch i+1 while the device
// computes on batch i, and runs at most two batches ahead.
//
// On the CPU, gathering and normalising a batch costs tens of microseconds (128 Fashion-MNIST
// images: ~50 µs on 2 threads), so batches are built when asked for, on the training threads.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"
#include "kernels/common/data.h"
#include "nn/data/dataset.h"

namespace lethe::data {

// Philox streams of the loader (parameters and dropout use small stream numbers).
inline constexpr uint64_t kShuffleStream = 1000;                    // + epoch
inline constexpr uint64_t kAugmentationStream = uint64_t{1} << 32;  // + epoch

struct Augmentation {
  int crop_padding = 0;          // RandomCrop(size, padding): pad with zeros, crop back at random
  bool horizontal_flip = false;  // RandomHorizontalFlip(0.5), after the crop
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop a last batch smaller than batch_size, or keep it
  uint64_t seed = 0;
  Normalization normalization;
  Augmentation augmentation;
  Device device = Device::cpu();
};

struct Batch {
  Tensor images;                 // float32 [B,C,H,W], normalised, on the loader's device
  Tensor labels;                 // int64 [B], on the loader's device
  std::vector<int64_t> indices;  // the samples' indices in the base data set
};

class DataLoader {
 public:
  // Checks the subset (uint8 [N,C,H,W] images and int64 [N] labels on the CPU, indices in
  // range) and the options; throws lethe::Error saying what is wrong.
  DataLoader(Subset subset, LoaderOptions options);
  ~DataLoader();
  DataLoader(DataLoader&&) noexcept;
  DataLoader& operator=(DataLoader&&) noexcept;

  int64_t batches_per_epoch() const;
  int64_t size() const { return subset_.size(); }
  const Subset& subset() const { return subset_; }
  const LoaderOptions& options() const { return options_; }

  // Batch i of epoch e. Reading an epoch's batches in order is the fast path (the epoch's order
  // is computed once); any (e, i) may be read at any time (resuming mid-epoch).
  Batch batch(int64_t epoch, int64_t i);
  // The crop and flip of the sample with index `index` in the base data set in `epoch`.
  Crop crop(int64_t epoch, int64_t index) const;

 private:
  struct Staging;  // the CUDA path's pinned buffers and events

  // The base indices of the epoch's samples, in order.
  const std::vector<int64_t>& order(int64_t epoch);
  // Copies the samples' images and labels, and draws their crops (crops may be null), into
  // host memory.
  void gather(int64_t epoch, const std::vector<int64_t>& indices, uint8_t* images, int64_t* labels,
              int32_t* crops) const;
  // gather() into a pinned buffer, then asynchronous copies into the device tensors.
  void stage(int64_t epoch, const std::vector<int64_t>& indices, const Tensor& images, const Tensor& labels,
             const Tensor& crops);

  Subset subset_;
  LoaderOptions options_;
  ImageGeometry geometry_;
  PixelNorm norm_{};
  std::vector<int64_t> order_;  // order(order_epoch_) when shuffling
  int64_t order_epoch_ = -1;
  std::unique_ptr<Staging> staging_;
};

// A Philox-driven Fisher–Yates shuffle of 0..n−1, a function of (seed, stream) only: the epoch
// orders, and the samples a forgetting scenario picks.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t stream);

// Every sample of `subset` in order, in batches of `batch_size` (the last one may be smaller),
// normalised, without shuffling or augmentation: for evaluation.
DataLoader evaluation_loader(Subset subset, int64_t batch_size, Normalization normalization,
                             Device device = Device::cpu());

}  // namespace lethe::data
