#include <cmath>

#include "engine/autograd.h"
#include "harness.h"
#include "nn/layers.h"
#include "nn/models.h"

using namespace lethe;
using namespace lethe::nn;

namespace {

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

const Tensor& find(const NamedTensors& named, const std::string& name) {
  for (const auto& [n, t] : named)
    if (n == name) return t;
  FAIL("no entry " << name);
  static Tensor none;
  return none;
}

}  // namespace

TEST_CASE("nn: mlp and cnn-s have WORKLOADS.md's parameter names, shapes and counts") {
  Model mlp({"mlp"}, 0, Device::cpu());
  CHECK(names_of(mlp.net().state_dict()) ==
        std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"});
  CHECK(mlp.net().parameter_count() == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);

  Model cnn({"cnn-s"}, 0, Device::cpu());
  const NamedTensors state = cnn.net().state_dict();
  CHECK(names_of(state) == std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                                    "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK(find(state, "conv1.weight").shape() == Shape{16, 1, 5, 5});
  CHECK(find(state, "conv2.weight").shape() == Shape{32, 16, 5, 5});
  CHECK(find(state, "fc1.weight").shape() == Shape{128, 1568});
  CHECK(find(state, "fc2.weight").shape() == Shape{10, 128});
  CHECK(cnn.net().parameter_count() == 215370);
  CHECK(cnn.forward(Tensor::zeros({3, 1, 28, 28})).shape() == Shape{3, 10});
}

TEST_CASE("nn: resnet18c has torchvision's names in state_dict order") {
  Model net({"resnet18c", 3, 32, 10, 1}, 0, Device::cpu());
  CHECK(net.net().parameter_count() == 11173962);  // the CIFAR ResNet-18 of the literature
  const std::vector<std::string> names = names_of(net.net().state_dict());
  CHECK(names.size() == 122);
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 8) ==
        std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                 "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.0.bn1.weight"});
  CHECK(names.back() == "fc.bias");
  const NamedTensors state = net.net().state_dict();
  CHECK(find(state, "layer2.0.downsample.0.weight").shape() == Shape{128, 64, 1, 1});
  CHECK(find(state, "layer2.0.downsample.1.num_batches_tracked").dtype() == DType::i64);
  CHECK(find(state, "layer4.1.bn2.running_var").shape() == Shape{512});
  for (const auto& name : names) CHECK(name.find("layer1.0.downsample") == std::string::npos);

  // Width and input geometry are configurable; the output is [N, classes] for any input size.
  Model small({"resnet18c", 1, 28, 7, 0.125}, 0, Device::cpu());
  CHECK(find(small.net().state_dict(), "fc.weight").shape() == Shape{7, 64});
  CHECK(small.forward(Tensor::randn({2, 1, 28, 28}, 1)).shape() == Shape{2, 7});
}

TEST_CASE("nn: initialisation follows PyTorch's default distributions and the seed") {
  Model a({"cnn-s"}, 7, Device::cpu()), b({"cnn-s"}, 7, Device::cpu()), c({"cnn-s"}, 8, Device::cpu());
  const NamedTensors sa = a.net().state_dict();
  for (const auto& [name, t] : sa) {
    const std::string parameter = name;  // clang 14 captures no structured binding (INFO's lambda)
    const Tensor& weight = find(sa, name.substr(0, name.find('.')) + ".weight");
    const double fan_in = static_cast<double>(weight.numel() / weight.size(0));
    const double bound = 1 / std::sqrt(fan_in);
    const std::vector<float> v = t.to_vector<float>();
    double sum = 0, sq = 0, worst = 0;
    for (float x : v) {
      sum += x;
      sq += static_cast<double>(x) * x;
      worst = std::max(worst, std::fabs(static_cast<double>(x)));
    }
    INFO(parameter);
    CHECK(worst <= bound);
    if (v.size() >= 400) {
      CHECK(worst > 0.99 * bound);  // U(±b): mean 0, variance b²/3
      const double n = static_cast<double>(v.size());
      CHECK(std::fabs(sum / n) < 4 * bound / std::sqrt(3 * n));
      CHECK(sq / n == doctest::Approx(bound * bound / 3).epsilon(0.15));
    }
  }
  CHECK(sum(eq(a.arena().data(), b.arena().data())).item() == a.arena().size());
  CHECK(sum(eq(a.arena().data(), c.arena().data())).item() < 100);  // padding zeros agree
}

TEST_CASE("nn: cnn-s forward is the composition of the ops, gradients land in the arena") {
  Model model({"cnn-s"}, 3, Device::cpu());
  const NamedTensors p = model.net().state_dict();
  const Tensor x = Tensor::randn({4, 1, 28, 28}, 5);
  Conv2dOptions same;
  same.pad_h = same.pad_w = 2;
  const Pool2dOptions pool;
  Tensor h = max_pool2d(relu(conv2d(x, find(p, "conv1.weight"), find(p, "conv1.bias"), same)), pool);
  h = max_pool2d(relu(conv2d(h, find(p, "conv2.weight"), find(p, "conv2.bias"), same)), pool);
  h = linear(relu(linear(h.flatten(1), find(p, "fc1.weight"), find(p, "fc1.bias"))), find(p, "fc2.weight"),
             find(p, "fc2.bias"));
  const Tensor y = model.forward(x);
  CHECK(sum(eq(y, h)).item() == static_cast<double>(y.numel()));
  {  // recording nothing, Sequential runs conv, ReLU, pool as conv2d_relu_max_pool2: the same bits
    NoGradGuard no_grad;
    CHECK(test::bitwise_equal(model.forward(x), y));
  }

  const Tensor labels = Tensor::from_vector<int64_t>({0, 3, 9, 1}, {4});
  cross_entropy(y, labels).backward();
  const Tensor& fc2 = find(p, "fc2.weight");
  const int64_t offset = model.arena().offset(6);
  CHECK(fc2.grad().data_ptr() == static_cast<float*>(model.arena().grad(0).data_ptr()) + offset);
  CHECK(sum(abs(model.arena().grad(0))).item() > 0);
}

TEST_CASE("nn: batch norm tracks batches in training and uses running statistics in eval") {
  BatchNorm2d bn(3);
  const Tensor x = add(mul(Tensor::randn({8, 3, 4, 4}, 2), 3.0), 1.0);
  bn.forward(x);
  bn.forward(x);
  const NamedTensors s = bn.state_dict();
  CHECK(find(s, "num_batches_tracked").item() == 2);
  CHECK(find(s, "running_mean").to_vector<float>()[0] != 0);
  bn.eval();
  const Tensor y = bn.forward(x);
  CHECK(find(s, "num_batches_tracked").item() == 2);
  // eval: (x − running_mean)/sqrt(running_var + eps) with weight 1, bias 0
  const Tensor expected = div(sub(x, find(s, "running_mean").view({1, 3, 1, 1})),
                              sqrt(add(find(s, "running_var").view({1, 3, 1, 1}), 1e-5)));
  test::expect_close(y, expected, 1e-5, 1e-5);
}

TEST_CASE("nn: load_state_dict copies values and names every mismatch") {
  Model a({"cnn-s"}, 1, Device::cpu()), b({"cnn-s"}, 2, Device::cpu());
  b.net().load_state_dict(a.net().state_dict());
  CHECK(sum(eq(a.arena().data(), b.arena().data())).item() == a.arena().size());

  NamedTensors state = a.net().state_dict();
  state.pop_back();
  state.emplace_back("fc3.bias", Tensor::zeros({10}));
  CHECK_THROWS_WITH_AS(b.net().load_state_dict(state),
                       doctest::Contains("load_state_dict: names do not match the model: missing fc2.bias; "
                                         "unexpected fc3.bias"),
                       Error);
  state = a.net().state_dict();
  state[0].second = Tensor::zeros({16, 1, 3, 3});
  CHECK_THROWS_WITH_AS(b.net().load_state_dict(state),
                       doctest::Contains("wrong shape or dtype: conv1.weight (float32[16,1,3,3] on cpu, expected "
                                         "float32[16,1,5,5] on cpu)"),
                       Error);
  CHECK_THROWS_WITH_AS(Model({"vgg"}, 0, Device::cpu()), doctest::Contains("unknown model 'vgg'"), Error);
}

TEST_CASE("nn: models initialise and run identically on CPU and CUDA") {
  if (!test::cuda_or_skip("nn: CPU/CUDA model parity")) return;
  for (const char* name : {"mlp", "cnn-s", "resnet18c", "linear"}) {
    INFO(name);
    ModelSpec spec{name, 1, 28, 10, name == std::string("resnet18c") ? 0.25 : 1.0};
    Model cpu(spec, 4, Device::cpu()), gpu(spec, 4, Device::cuda(0));
    CHECK(cpu.arena().data().to_vector<float>() == gpu.arena().data().to_vector<float>());
    const Tensor x = Tensor::randn({8, 1, 28, 28}, 6);
    const Tensor labels = Tensor::from_vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8});
    cross_entropy(cpu.forward(x), labels).backward();
    cross_entropy(gpu.forward(x.to(Device::cuda(0))), labels.to(Device::cuda(0))).backward();
    test::expect_close(gpu.arena().grad(0), cpu.arena().grad(0), 1e-3, 1e-4);
  }
}

TEST_CASE("nn: Module::to moves parameters and buffers in place") {
  if (!test::cuda_or_skip("nn: Module::to")) return;
  BatchNorm2d bn(4);
  const Tensor w = bn.named_parameters()[0].second;
  bn.to(Device::cuda(0));
  CHECK(w.is_cuda());
  for (const auto& [name, t] : bn.state_dict()) CHECK(t.is_cuda());
  CHECK(bn.forward(Tensor::randn({2, 4, 3, 3}, 1, 0, DType::f32, Device::cuda(0))).is_cuda());
}

TEST_CASE("nn: Module::to(DType) converts floating parameters and buffers in place") {
  BatchNorm2d bn(4);
  const Tensor w = bn.named_parameters()[0].second;
  const Tensor x = add(mul(Tensor::randn({8, 4, 3, 3}, 2), 2.0), 1.0);
  bn.forward(x);  // running statistics away from their initial values
  const NamedTensors before = bn.state_dict();
  std::vector<Tensor> copies;
  for (const auto& [name, t] : before) copies.push_back(t.clone());
  bn.to(DType::f64);
  CHECK(w.dtype() == DType::f64);  // the handle held outside sees the new storage
  const NamedTensors after = bn.state_dict();
  for (size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].first);
    const Tensor& t = after[i].second;
    const bool integer = after[i].first == "num_batches_tracked";
    CHECK(t.dtype() == (integer ? DType::i64 : DType::f64));
    CHECK(sum(eq(t, copies[i].to(t.dtype()))).item() == static_cast<double>(t.numel()));  // exact widening
  }
  for (const auto& [name, p] : bn.named_parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  const Tensor y = bn.forward(x.to(DType::f64));
  CHECK(y.dtype() == DType::f64);
  sum(y).backward();
  CHECK(w.grad().dtype() == DType::f64);
  CHECK_THROWS_WITH_AS(bn.to(DType::i32), doctest::Contains("parameters are float32 or float64"), Error);
}
