#pragma once
// CIFAR-10 (WORKLOADS.md), binary version: data_batch_1.bin .. data_batch_5.bin (50,000 training
// images) and test_batch.bin (10,000), 32×32 RGB, 10 classes. Each file is a run of 3073-byte
// records: one label byte, then 3072 pixel bytes in CHW order (1024 red, 1024 green, 1024 blue,
// each plane row-major). Every problem with a file throws lethe::Error naming the file and what
// is wrong.
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "nn/data/dataset.h"

namespace lethe::data {

// Where the loaders look by default, beside Debian's fashion-mnist (no package ships CIFAR-10:
// unpack cifar-10-binary.tar.gz's .bin files there, or pass another folder).
inline constexpr const char* kCifar10Dir = "/usr/share/datasets/cifar-10";
inline constexpr int64_t kCifar10Classes = 10;
inline constexpr int64_t kCifar10Channels = 3, kCifar10Size = 32;
inline constexpr int64_t kCifar10RecordBytes = 1 + kCifar10Channels * kCifar10Size * kCifar10Size;
// The training set's per-channel pixel mean and standard deviation (on the [0, 1] scale).
inline constexpr double kCifar10Mean[3] = {0.4914, 0.4822, 0.4465};
inline constexpr double kCifar10Std[3] = {0.2470, 0.2435, 0.2616};
Normalization cifar10_normalization();

// The records of the given files, in file order: images uint8 [N,3,32,32], labels int64 [N] in
// [0, 10), on the CPU.
Dataset read_cifar10(const std::vector<std::string>& paths);
// The training files (train) or the test file from `dir`.
Dataset load_cifar10(const std::string& dir = kCifar10Dir, bool train = true);

}  // namespace lethe::data
