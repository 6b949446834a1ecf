#include "nn/models.h"

#include <cmath>

#include "engine/error.h"
#include "nn/generative.h"
#include "nn/layers.h"

namespace lethe::nn {

namespace {

std::shared_ptr<Module> build_mlp(const ModelSpec& s) {
  auto net = std::make_shared<Sequential>();
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc1", std::make_shared<Linear>(s.in_channels * s.image_size * s.image_size, 256));
  net->add("relu1", std::make_shared<ReLU>());
  net->add("fc2", std::make_shared<Linear>(256, 256));
  net->add("relu2", std::make_shared<ReLU>());
  net->add("fc3", std::make_shared<Linear>(256, s.classes));
  return net;
}

// Multinomial logistic regression: logits = W·x + b on the flattened image, so the mean
// cross-entropy is convex in (W, b). The names are those of a PyTorch module with
// `self.fc = nn.Linear(784, 10)` and a flatten in forward.
// With input_pool P > 1 an AvgPool2d(P) ("pool", no parameters) comes first.
std::shared_ptr<Module> build_linear(const ModelSpec& s) {
  LETHE_CHECK(s.image_size % s.input_pool == 0, "model", "linear's input pool ", s.input_pool,
              " does not divide the image size ", s.image_size);
  const int64_t side = s.image_size / s.input_pool;
  auto net = std::make_shared<Sequential>();
  if (s.input_pool > 1) net->add("pool", std::make_shared<AvgPool2d>(static_cast<int>(s.input_pool)));
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc", std::make_shared<Linear>(s.in_channels * side * side, s.classes));
  return net;
}

std::shared_ptr<Module> build_cnn_s(const ModelSpec& s) {
  LETHE_CHECK(s.image_size % 4 == 0, "model", "cnn-s needs an image size divisible by 4, got ", s.image_size);
  const int64_t pooled = s.image_size / 4;
  auto net = std::make_shared<Sequential>();
  net->add("conv1", std::make_shared<Conv2d>(s.in_channels, 16, 5, 1, 2));
  net->add("relu1", std::make_shared<ReLU>());
  net->add("pool1", std::make_shared<MaxPool2d>(2));
  net->add("conv2", std::make_shared<Conv2d>(16, 32, 5, 1, 2));
  net->add("relu2", std::make_shared<ReLU>());
  net->add("pool2", std::make_shared<MaxPool2d>(2));
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc1", std::make_shared<Linear>(32 * pooled * pooled, 128));
  net->add("relu3", std::make_shared<ReLU>());
  net->add("fc2", std::make_shared<Linear>(128, s.classes));
  return net;
}

// CIFAR-style ResNet-18 with torchvision's attribute names: 3×3 stem without max-pool, four
// stages of two BasicBlocks, global average pool, fc.
class ResNet18c : public Module {
 public:
  explicit ResNet18c(const ModelSpec& s) {
    auto channels = [&](int64_t base) {
      const auto c = static_cast<int64_t>(std::lround(static_cast<double>(base) * s.width));
      LETHE_CHECK(c > 0, "model", "resnet18c width ", s.width, " leaves no channels");
      return c;
    };
    const int64_t c0 = channels(64);
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(s.in_channels, c0, 3, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(c0));
    int64_t in = c0;
    const int64_t bases[] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
      const int64_t out = channels(bases[stage]);
      auto layer = std::make_shared<Sequential>();
      layer->add(std::make_shared<BasicBlock>(in, out, stage == 0 ? 1 : 2));
      layer->add(std::make_shared<BasicBlock>(out, out, 1));
      layers_[stage] = register_module("layer" + std::to_string(stage + 1), layer);
      in = out;
    }
    fc_ = register_module("fc", std::make_shared<Linear>(in, s.classes));
  }

  Tensor forward(const Tensor& x) override {
    Tensor h = relu(bn1_->forward(conv1_->forward(x)));
    for (auto& layer : layers_) h = layer->forward(h);
    return fc_->forward(global_avg_pool2d(h));
  }

 private:
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<Sequential> layers_[4];
  std::shared_ptr<Linear> fc_;
};

}  // namespace

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"mlp", "cnn-s", "resnet18c", "linear", "cvae", "ddpm-s"};
  return names;
}

std::shared_ptr<Module> build_network(const ModelSpec& spec) {
  LETHE_CHECK(spec.in_channels > 0 && spec.image_size > 0 && spec.classes > 1 && spec.width > 0, "model",
              "bad spec for ", spec.name, ": ", spec.in_channels, " channels, size ", spec.image_size, ", ",
              spec.classes, " classes, width ", spec.width);
  LETHE_CHECK(is_floating(spec.dtype), "model", spec.name, " in ", dtype_name(spec.dtype),
              ": a model's dtype is float32 or float64");
  LETHE_CHECK(spec.input_pool == 1 || (spec.name == "linear" && spec.input_pool > 1 && spec.input_pool <= spec.image_size),
              "model", "an input pool of ", spec.input_pool, " (only linear pools its input, by 1 to the image size)");
  if (spec.name == "mlp") return build_mlp(spec);
  if (spec.name == "cnn-s") return build_cnn_s(spec);
  if (spec.name == "resnet18c") return std::make_shared<ResNet18c>(spec);
  if (spec.name == "linear") return build_linear(spec);
  if (is_generator_name(spec.name)) return build_generator(spec);
  LETHE_FAIL("model", "unknown model ", excerpt(spec.name, 80, '\''), " (known: mlp, cnn-s, resnet18c, linear, cvae, ddpm-s)");
}

Model::Model(const ModelSpec& spec, uint64_t seed, Device device, int grad_buffers)
    : spec_(spec), seed_(seed), device_(device), net_(build_network(spec)) {
  net_->to(device);
  initialize(*net_, seed);  // in float32 always: the float64 model's values are these, widened
  net_->to(spec.dtype);
  arena_ = ParamArena(net_->parameters(), grad_buffers);
}

Generator* Model::generator() { return dynamic_cast<Generator*>(net_.get()); }

Tensor Model::forward(const Tensor& images) {
  return net_->forward(images.defined() && images.dtype() != spec_.dtype ? images.to(spec_.dtype) : images);
}

}  // namespace lethe::nn
