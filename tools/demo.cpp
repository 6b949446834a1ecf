// lethe-demo: trains the WORKLOADS.md `mlp` on Fashion-MNIST with the reference optimizer recipe
// (SGD, momentum 0.9, coupled weight decay 5e-4, cosine learning-rate decay per step to 0, batch
// 128, reshuffled every epoch) and reports the test accuracy. Same seed and threads, same result.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <numeric>

#include "engine/arena.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "kernels/common/philox.h"
#include "nn/data/fashion_mnist.h"

using namespace lethe;

namespace {

constexpr uint64_t kShuffleStream = 1000;  // + epoch; parameters use streams 0..5

// U(−bound, bound) from Philox stream (seed, stream), as a trainable leaf.
Tensor uniform_param(const Shape& shape, double bound, uint64_t seed, uint64_t stream, Device device) {
  Tensor t = sub(mul(Tensor::rand(shape, seed, stream, DType::f32, device), 2 * bound), bound);
  t.set_requires_grad();
  return t;
}

// Flatten → Linear(784,256) → ReLU → Linear(256,256) → ReLU → Linear(256,10), with PyTorch's
// default init: kaiming_uniform(a=√5) for weights, which is U(±1/√fan_in), and the same for biases.
struct Mlp {
  std::vector<Tensor> params;  // fc1.weight, fc1.bias, fc2.*, fc3.*

  Mlp(uint64_t seed, Device device) {
    const int64_t sizes[] = {784, 256, 256, 10};
    for (int l = 0; l < 3; ++l) {
      const double bound = 1 / std::sqrt(static_cast<double>(sizes[l]));
      params.push_back(uniform_param({sizes[l + 1], sizes[l]}, bound, seed, 2 * l, device));
      params.push_back(uniform_param({sizes[l + 1]}, bound, seed, 2 * l + 1, device));
    }
  }
  Tensor forward(const Tensor& images) const {
    Tensor h = images.flatten(1);
    for (size_t l = 0; l < params.size(); l += 2) {
      h = linear(h, params[l], params[l + 1]);
      if (l + 2 < params.size()) h = relu(h);
    }
    return h;
  }
};

// torch.optim.SGD (momentum μ, coupled weight decay λ) as one pass over the whole arena:
// v = μ·v + (g + λ·θ);  θ −= lr·v.  Arena padding stays zero.
void sgd_step(const ParamArena& arena, Tensor& velocity, double lr, double momentum, double decay) {
  NoGradGuard no_grad;
  Tensor theta = arena.data();
  velocity.copy_(add(mul(velocity, momentum), add(arena.grad(0), mul(theta, decay))));
  theta.add_(velocity, -lr);
}

// A Philox-driven Fisher–Yates shuffle of 0..n−1, one stream per epoch.
std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) {
    // j uniform in [0, i] by multiply-shift (bias below 2^-13 for n ≤ 2^19).
    const uint64_t r = philox::random_u32(seed, kShuffleStream + epoch, static_cast<uint64_t>(i));
    std::swap(p[i], p[static_cast<int64_t>((r * static_cast<uint64_t>(i + 1)) >> 32)]);
  }
  return p;
}

double accuracy(const Mlp& model, const data::Dataset& set) {
  NoGradGuard no_grad;
  double correct = 0;
  for (int64_t start = 0; start < set.size(); start += 1000) {
    const int64_t n = std::min<int64_t>(1000, set.size() - start);
    const Tensor logits = model.forward(data::normalize_images(set.images.narrow(0, start, n)));
    correct += sum(eq(argmax(logits, 1), set.labels.narrow(0, start, n))).item();
  }
  return correct / static_cast<double>(set.size());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lethe-demo: train the mlp on Fashion-MNIST and report its test accuracy"};
  std::string dir = data::kFashionMnistDir, device_name = "cpu";
  int epochs = 2, batch = 128, threads = 2;
  double lr = 0.05;
  uint64_t seed = 0;
  app.add_option("--data", dir, "Fashion-MNIST folder")->capture_default_str();
  app.add_option("--epochs", epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "peak learning rate (cosine decay to 0)")->capture_default_str();
  app.add_option("--seed", seed, "seed of the initialisation and the shuffles")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--device", device_name, "cpu, cuda or cuda:N")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    set_num_threads(threads);
    const Device device = Device::parse(device_name);
    LETHE_CHECK(device.is_cpu() || device.index < cuda_device_count(), "--device", "no CUDA device ",
                device.str(), " (", cuda_device_count(), " visible)");
    data::Dataset train = data::load_fashion_mnist(dir, true), test = data::load_fashion_mnist(dir, false);
    for (data::Dataset* set : {&train, &test}) *set = {set->images.to(device), set->labels.to(device)};
    fmt::print("lethe-demo: mlp on Fashion-MNIST ({} train, {} test images), {}, {} threads, seed {}\n",
               train.size(), test.size(), device.str(), threads, seed);

    Mlp model(seed, device);
    ParamArena arena(model.params);
    Tensor velocity = Tensor::zeros({arena.size()}, DType::f32, device);
    const int64_t n = train.size(), steps_per_epoch = (n + batch - 1) / batch;
    const int64_t total_steps = steps_per_epoch * epochs;
    int64_t step = 0;
    double test_accuracy = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor order = Tensor::from_vector(permutation(n, seed, epoch), {n}, device);
      Tensor loss_sum = Tensor::zeros({}, DType::f32, device);  // summed on the device: no sync per step
      for (int64_t start = 0; start < n; start += batch, ++step) {
        const int64_t b = std::min<int64_t>(batch, n - start);
        const Tensor index = order.narrow(0, start, b);
        const Tensor images = data::normalize_images(index_select(train.images, 0, index));
        arena.zero_grad(0);
        const Tensor loss = cross_entropy(model.forward(images), index_select(train.labels, 0, index));
        loss.backward();
        const double step_lr = 0.5 * lr * (1 + std::cos(std::numbers::pi * step / total_steps));
        sgd_step(arena, velocity, step_lr, 0.9, 5e-4);
        loss_sum.add_(loss.detach(), static_cast<double>(b));
      }
      const double train_loss = loss_sum.item() / static_cast<double>(n);
      const double train_seconds = seconds_since(t0);
      test_accuracy = accuracy(model, test);
      fmt::print("epoch {}/{}  train loss {:.4f}  test accuracy {:.4f}  {:.1f} s  {:.0f} images/s\n", epoch + 1,
                 epochs, train_loss, test_accuracy, train_seconds, static_cast<double>(n) / train_seconds);
    }
    fmt::print("test accuracy: {:.4f}\n", test_accuracy);
  } catch (const Error& e) {
    fmt::print(stderr, "lethe-demo: {}\n", e.what());
    return 1;
  }
  return 0;
}
