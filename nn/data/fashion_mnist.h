#pragma once
// Fashion-MNIST (WORKLOADS.md): 60,000 training and 10,000 test images, 28×28, 10 classes, as
// installed by Debian's dataset-fashion-mnist.
#include <string>

#include "engine/tensor.h"
#include "nn/data/idx.h"

namespace lethe::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kFashionMnistClasses = 10;
// The training set's pixel mean and standard deviation (on the [0, 1] scale).
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;
Normalization fashion_mnist_normalization();

// {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`: images uint8 [N,1,28,28],
// labels int64 [N] in [0, 10), on the CPU.
Dataset load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool train = true);

// uint8 images (any shape, any device) -> float32 (x/255 − mean) / std, as torchvision's
// ToTensor followed by Normalize computes it.
Tensor normalize_images(const Tensor& u8_batch);

}  // namespace lethe::data
