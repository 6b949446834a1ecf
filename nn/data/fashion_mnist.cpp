#include "nn/data/fashion_mnist.h"

#include "engine/ops.h"

namespace lethe::data {

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz";
  Dataset d = read_idx_dataset(images_path, prefix + "-labels-idx1-ubyte.gz", kFashionMnistClasses);
  LETHE_CHECK(d.images.size(1) == 28 && d.images.size(2) == 28, "fashion_mnist", "'", images_path,
              "' holds images of shape ", d.images.shape().str(), ", expected [N,28,28]");
  d.images = d.images.unsqueeze(1);  // [N,1,28,28]: one channel
  return d;
}

Normalization fashion_mnist_normalization() { return {{kFashionMnistMean}, {kFashionMnistStd}}; }

Tensor normalize_images(const Tensor& u8_batch) {
  LETHE_CHECK(u8_batch.defined() && u8_batch.dtype() == DType::u8, "normalize_images",
              "expects uint8 images, got ", u8_batch.defined() ? u8_batch.str() : "an undefined tensor");
  const Tensor x = div(u8_batch.to(DType::f32), 255.0);
  return div(sub(x, kFashionMnistMean), kFashionMnistStd);
}

}  // namespace lethe::data
