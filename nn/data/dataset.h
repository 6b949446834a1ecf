#pragma once
// In-memory labelled data sets, views of some of their samples, and how their pixels are
// normalised. The images stay uint8 (a quarter of float32's memory); the DataLoader
// (nn/data/loader.h) normalises each batch as it builds it.
#include <cstdint>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace lethe::data {

// A labelled set of images on the CPU: images uint8 [N, ...] ([N,C,H,W] for the loader),
// labels int64 [N].
struct Dataset {
  Tensor images;
  Tensor labels;
  int64_t size() const { return labels.defined() ? labels.numel() : 0; }
};

// Per-channel mean and standard deviation on the [0, 1] pixel scale: a pixel v becomes
// (v/255 − mean[c]) / std[c]. One value stands for every channel; none means mean 0, std 1.
struct Normalization {
  std::vector<double> mean, std;
};

// Some samples of a data set, without copying its images: `indices` into `base`, in any order
// (a retain or forget split, a class, a random sample). Shares `base` with every other view.
struct Subset {
  std::shared_ptr<const Dataset> base;
  std::vector<int64_t> indices;

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
  // Every sample of `base`, in order.
  static Subset all(std::shared_ptr<const Dataset> base) {
    std::vector<int64_t> indices(base ? base->size() : 0);
    std::iota(indices.begin(), indices.end(), int64_t{0});
    return {std::move(base), std::move(indices)};
  }
};

}  // namespace lethe::data
