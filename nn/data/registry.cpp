#include "nn/data/registry.h"

#include <cstdlib>

#include "engine/error.h"
#include "nn/data/cifar10.h"
#include "nn/data/fashion_mnist.h"

namespace lethe::data {

namespace {

const std::vector<std::string> kFashionClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
const std::vector<std::string> kDigitClasses = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
const std::vector<std::string> kCifarClasses = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};
// MNIST shares Fashion-MNIST's file format (IDX) and geometry.
const Normalization kMnistNormalization = {{0.1307}, {0.3081}};

}  // namespace

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10"};
  return names;
}

std::string default_data_dir(const std::string& name) {
  const std::string folder = name == "cifar10" ? "cifar-10" : name;
  const char* root = std::getenv("LETHE_DATASETS");
  return (root != nullptr && *root != '\0' ? std::string(root) : std::string("/usr/share/datasets")) + "/" + folder;
}

DataSource load_data(const std::string& name, const std::string& dir, bool need_train, bool need_test) {
  LETHE_CHECK(need_train || need_test, "data", "load_data of ", excerpt(name, 80, '\''),
              " asked for neither the training nor the test set");
  DataSource s;
  s.name = name;
  auto shared = [](Dataset d) { return std::make_shared<const Dataset>(std::move(d)); };
  if (name == "cifar10") {
    const std::string folder = dir.empty() ? default_data_dir(name) : dir;
    if (need_train) s.train = shared(load_cifar10(folder, true));
    if (need_test) s.test = shared(load_cifar10(folder, false));
    s.normalization = cifar10_normalization();
    s.class_names = kCifarClasses;
  } else {
    if (name != "fashion-mnist" && name != "mnist") {
      std::string known;
      for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
      LETHE_FAIL("data", "unknown data set ", excerpt(name, 80, '\''), " (known: ", known, ")");
    }
    const bool fashion = name == "fashion-mnist";
    const std::string folder = dir.empty() ? default_data_dir(name) : dir;
    if (need_train) s.train = shared(load_fashion_mnist(folder, true));
    if (need_test) s.test = shared(load_fashion_mnist(folder, false));
    s.normalization = fashion ? fashion_mnist_normalization() : kMnistNormalization;
    s.class_names = fashion ? kFashionClasses : kDigitClasses;
  }
  const Shape& shape = (s.test ? s.test : s.train)->images.shape();
  s.channels = shape[1];
  s.image_size = shape[2];
  s.classes = static_cast<int64_t>(s.class_names.size());
  return s;
}

}  // namespace lethe::data
