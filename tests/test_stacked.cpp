// StackedModel against the single-model path: on the CPU every claim is bitwise (logits, losses,
// gradients, optimizer steps, running statistics), at one and two threads.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "harness.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/stacked.h"

using namespace lethe;
using namespace lethe::nn;
using test::bitwise_equal;

namespace {

void check_same_state(const NamedTensors& stacked, const NamedTensors& single) {
  REQUIRE(stacked.size() == single.size());
  for (size_t e = 0; e < single.size(); ++e) {
    INFO(single[e].first);
    CHECK(stacked[e].first == single[e].first);
    CHECK(bitwise_equal(stacked[e].second, single[e].second));
  }
}

Tensor images(int64_t batch, uint64_t seed, int64_t size = 28, Device device = Device::cpu()) {
  return Tensor::randn({batch, 1, size, size}, seed, 0, DType::f32, device);
}

Tensor labels(int64_t batch, uint64_t seed, int64_t classes = 10, Device device = Device::cpu()) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < batch; ++i) v.push_back(static_cast<int64_t>((i * 7 + seed * 13 + i * i) % classes));
  return Tensor::from_vector(v, {batch}, device);
}

// N single models with seeds 100, 101, ... and the stack of their states.
struct Models {
  std::vector<std::unique_ptr<Model>> singles;
  std::unique_ptr<StackedModel> stacked;
};
Models make_models(const ModelSpec& spec, int64_t n, Device device = Device::cpu()) {
  Models m;
  std::vector<NamedTensors> states;
  for (int64_t i = 0; i < n; ++i) {
    m.singles.push_back(std::make_unique<Model>(spec, 100 + i, device));
    states.push_back(m.singles.back()->net().state_dict());
  }
  m.stacked = std::make_unique<StackedModel>(spec, states, device);
  return m;
}

// One forward and backward of every model on (x, y); checks logits, losses and gradients.
void check_forward_backward(Models& m, const Tensor& x, const Tensor& y) {
  StackedModel& s = *m.stacked;
  s.arena().zero_grad(0);
  const Tensor logits = s.forward(x);
  CHECK(logits.shape() == Shape{s.models(), x.size(0), s.spec().classes});
  CHECK(logits.is_contiguous());
  const StackedLoss loss = stacked_cross_entropy(logits, y);
  loss.total.backward();
  for (int64_t n = 0; n < s.models(); ++n) {
    INFO("model " << n);
    Model& single = *m.singles[static_cast<size_t>(n)];
    single.arena().zero_grad(0);
    const Tensor out = single.forward(x);
    const Tensor l = cross_entropy(out, y);
    l.backward();
    CHECK(bitwise_equal(logits.select(0, n), out));
    if (n > 0) CHECK_FALSE(bitwise_equal(logits.select(0, n), logits.select(0, 0)));  // the models differ
    CHECK(bitwise_equal(loss.per_model.select(0, n), l));
    CHECK(bitwise_equal(s.model_flat(s.arena().grad(), n), single.arena().grad()));
  }
}

}  // namespace

TEST_CASE("stacked: which specs stack") {
  CHECK(stackable(ModelSpec{"mlp"}));
  CHECK(stackable(ModelSpec{"cnn-s"}));
  CHECK(stackable(ModelSpec{"cnn-s", 3, 32, 100}));
  CHECK_FALSE(stackable(ModelSpec{"resnet18c", 1, 28, 10, 0.125}));
}

TEST_CASE("stacked: logits, losses and gradients are bitwise the single models'") {
  for (const char* name : {"mlp", "cnn-s"}) {
    for (const int64_t n : {1, 3, 8}) {
      if (n == 8 && name == std::string("mlp")) continue;
      INFO(name << ", " << n << " models");
      Models m = make_models({name}, n);
      for (const int64_t batch : {128, 37}) {
        INFO("batch " << batch);
        check_forward_backward(m, images(batch, 1), labels(batch, 2));
      }
      // An evaluation batch, without autograd (at 8 models its activations take 0.8 GB: skipped).
      if (n == 8) continue;
      NoGradGuard no_grad;
      m.stacked->eval();
      const Tensor x = images(1000, 3);
      const Tensor logits = m.stacked->forward(x);
      for (int64_t i = 0; i < n; ++i) {
        Model& single = *m.singles[static_cast<size_t>(i)];
        single.eval();
        CHECK(bitwise_equal(logits.select(0, i), single.forward(x)));
      }
    }
  }
}

TEST_CASE("stacked: SGD and AdamW steps give the single models' weights bitwise, at 1 and 2 threads") {
  const int threads = num_threads();
  struct Recipe {
    const char* name;
    std::function<std::unique_ptr<Optimizer>(const ParamArena&)> make;
  };
  const std::vector<Recipe> recipes = {
      {"sgd", [](const ParamArena& a) { return make_sgd(a, {.lr = 0.05}); }},
      {"sgd momentum", [](const ParamArena& a) { return make_sgd(a, {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4}); }},
      {"adamw", [](const ParamArena& a) { return make_adamw(a, {.lr = 1e-3, .weight_decay = 0}); }},
  };
  for (const int t : {1, 2}) {
    set_num_threads(t);
    for (const char* name : {"mlp", "cnn-s"}) {
      for (const Recipe& recipe : recipes) {
        INFO(name << ", " << recipe.name << ", " << t << " threads");
        Models m = make_models({name}, 3);
        std::vector<std::unique_ptr<Optimizer>> single_opts;
        for (const auto& single : m.singles) single_opts.push_back(recipe.make(single->arena()));
        const auto stacked_opt = recipe.make(m.stacked->arena());
        for (uint64_t step = 0; step < 5; ++step) {
          const Tensor x = images(64, 10 + step), y = labels(64, step);
          m.stacked->arena().zero_grad(0);
          stacked_cross_entropy(m.stacked->forward(x), y).total.backward();
          stacked_opt->step();
          for (size_t i = 0; i < m.singles.size(); ++i) {
            m.singles[i]->arena().zero_grad(0);
            cross_entropy(m.singles[i]->forward(x), y).backward();
            single_opts[i]->step();
          }
        }
        const auto stacked_state = stacked_opt->state();
        for (size_t i = 0; i < m.singles.size(); ++i) {
          INFO("model " << i);
          check_same_state(m.stacked->state_dict(static_cast<int64_t>(i)), m.singles[i]->net().state_dict());
          const auto single_state = single_opts[i]->state();
          for (size_t k = 0; k + 1 < single_state.size(); ++k)  // the flat buffers; "scalars" is last
            CHECK(bitwise_equal(m.stacked->model_flat(stacked_state[k].second, static_cast<int64_t>(i)),
                                single_state[k].second));
        }
      }
    }
  }
  set_num_threads(threads);
}

TEST_CASE("stacked: state dicts and flat buffers map to and from the single models' layout") {
  for (const char* name : {"mlp", "cnn-s"}) {
    INFO(name);
    Models m = make_models({name}, 3);
    const StackedModel& s = *m.stacked;
    CHECK(s.models() == 3);
    CHECK(s.spec().name == name);
    CHECK(s.device() == Device::cpu());
    for (size_t i = 0; i < 3; ++i) {
      check_same_state(s.state_dict(static_cast<int64_t>(i)), m.singles[i]->net().state_dict());
      CHECK(bitwise_equal(s.model_flat(s.arena().data(), static_cast<int64_t>(i)), m.singles[i]->arena().data()));
    }
    std::vector<Tensor> datas, grads;
    for (const auto& single : m.singles) datas.push_back(single->arena().data());
    CHECK(bitwise_equal(s.stack_flat(datas), s.arena().data()));
    // A gradient (zero padding) survives the round trip.
    stacked_cross_entropy(m.stacked->forward(images(16, 5)), labels(16, 6)).total.backward();
    for (int64_t i = 0; i < 3; ++i) grads.push_back(s.model_flat(s.arena().grad(), i));
    CHECK(bitwise_equal(s.stack_flat(grads), s.arena().grad()));
    const std::vector<float> grad1 = grads[1].to_vector<float>();
    for (const int64_t k : test::padding_indices(m.singles[0]->arena())) CHECK(grad1[static_cast<size_t>(k)] == 0);
  }
  // The stacked layouts: conv tensors merge the models into the channel dim, linear ones prepend it.
  Models cnn = make_models({"cnn-s"}, 2);
  const std::vector<Tensor>& params = cnn.stacked->arena().params();
  CHECK(params[0].shape() == Shape{32, 1, 5, 5});   // conv1.weight: groups of 16 output channels
  CHECK(params[1].shape() == Shape{32});            // conv1.bias
  CHECK(params[4].shape() == Shape{2, 128, 1568});  // fc1.weight
  CHECK(params[5].shape() == Shape{2, 128});        // fc1.bias
}

TEST_CASE("stacked: a network with BatchNorm2d stacks bitwise, running statistics included") {
  // conv, BN, relu, pool, flatten, linear on 8×8 images; BN parameters and running statistics
  // drawn per model, num_batches_tracked different per model.
  auto network = [] {
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Conv2d>(1, 4, 3, 1, 1));
    net->add(std::make_shared<BatchNorm2d>(4));
    net->add(std::make_shared<ReLU>());
    net->add(std::make_shared<MaxPool2d>(2));
    net->add(std::make_shared<Flatten>());
    net->add(std::make_shared<Linear>(4 * 4 * 4, 5));
    return net;
  };
  const int64_t models = 3;
  std::vector<std::shared_ptr<Sequential>> singles;
  std::vector<NamedTensors> states;
  for (int64_t n = 0; n < models; ++n) {
    singles.push_back(network());
    NamedTensors state;
    uint64_t seed = 50 + 10 * static_cast<uint64_t>(n);
    for (const auto& [name, t] : singles.back()->state_dict()) {
      if (t.dtype() == DType::i64) {
        state.emplace_back(name, Tensor::full({}, static_cast<double>(n), DType::i64));
      } else {
        const bool variance = name.find("running_var") != std::string::npos;
        state.emplace_back(name, test::random_tensor(t.shape(), seed++, variance ? 0.5 : -1, variance ? 2 : 1, DType::f32));
      }
    }
    singles.back()->load_state_dict(state);
    states.push_back(state);
  }
  StackedModel stacked(network(), states, Device::cpu());
  CHECK(stacked.spec().name.empty());
  // The single networks have no arena: a single arena's layout, over stand-ins, to compare by.
  std::vector<Tensor> stand_ins;
  for (const Tensor& p : singles[0]->parameters()) stand_ins.push_back(Tensor::zeros(p.shape()).set_requires_grad());
  const ParamArena layout(stand_ins, 0);
  const Tensor x = images(24, 7, 8), y = labels(24, 8, 5);
  for (const bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    stacked.train(training);
    stacked.arena().zero_grad(0);
    const Tensor logits = stacked.forward(x);
    stacked_cross_entropy(logits, y).total.backward();
    for (int64_t n = 0; n < models; ++n) {
      INFO("model " << n);
      Sequential& single = *singles[static_cast<size_t>(n)];
      single.train(training);
      const std::vector<Tensor> params = single.parameters();
      const Tensor out = single.forward(x);
      const std::vector<Tensor> g = autograd::grad(cross_entropy(out, y), params);
      CHECK(bitwise_equal(logits.select(0, n), out));
      const Tensor flat = stacked.model_flat(stacked.arena().grad(), n);
      for (size_t i = 0; i < g.size(); ++i)
        CHECK(bitwise_equal(flat.narrow(0, layout.offset(i), g[i].numel()).view(g[i].shape()), g[i]));
      check_same_state(stacked.state_dict(n), single.state_dict());
    }
  }
}

TEST_CASE("stacked: errors say what is wrong") {
  const Model cnn({"cnn-s"}, 0, Device::cpu()), mlp({"mlp"}, 0, Device::cpu());
  const Model seven({"cnn-s", 1, 28, 7}, 0, Device::cpu());
  const NamedTensors good = cnn.net().state_dict();
  CHECK_THROWS_WITH_AS(StackedModel({"cnn-s"}, {}, Device::cpu()),
                       doctest::Contains("StackedModel: no models to stack (0 state dicts given)"), Error);
  CHECK_THROWS_WITH_AS(StackedModel({"resnet18c", 1, 28, 10, 0.125}, {good}, Device::cpu()),
                       doctest::Contains("StackedModel: resnet18c cannot be stacked: it is not a Sequential"), Error);
  CHECK_THROWS_WITH_AS(StackedModel({"cnn-s"}, {good, mlp.net().state_dict()}, Device::cpu()),
                       doctest::Contains("StackedModel: model 1 of 2 (cnn-s): expected the tensors"), Error);
  CHECK_THROWS_WITH_AS(StackedModel({"cnn-s"}, {good, seven.net().state_dict()}, Device::cpu()),
                       doctest::Contains("StackedModel: model 1 of 2 (cnn-s): 'fc2.weight' is float32[7,128] on cpu, "
                                         "expected float32[10,128]"),
                       Error);
  NamedTensors doubles = good;
  doubles[2].second = doubles[2].second.to(DType::f64);
  CHECK_THROWS_WITH_AS(StackedModel({"cnn-s"}, {doubles}, Device::cpu()),
                       doctest::Contains("StackedModel: model 0 of 1 (cnn-s): 'conv2.weight' is float64[32,16,5,5]"), Error);
  CHECK_THROWS_WITH_AS(StackedModel({"vgg"}, {good}, Device::cpu()), doctest::Contains("unknown model 'vgg'"), Error);

  auto dropout = std::make_shared<Sequential>();
  dropout->add(std::make_shared<Flatten>());
  dropout->add(std::make_shared<Dropout>(0.5));
  dropout->add(std::make_shared<Linear>(4, 2));
  CHECK_FALSE(stackable(*dropout));
  CHECK_THROWS_WITH_AS(StackedModel(dropout, {dropout->state_dict()}, Device::cpu()),
                       doctest::Contains("StackedModel: the network cannot be stacked: layer '1' is not a Conv2d, "
                                         "BatchNorm2d, ReLU, MaxPool2d, Flatten or Linear"),
                       Error);
  auto unflattened = std::make_shared<Sequential>();
  unflattened->add(std::make_shared<Conv2d>(1, 2, 3));
  unflattened->add(std::make_shared<Linear>(4, 2));
  CHECK_THROWS_WITH_AS(StackedModel(unflattened, {unflattened->state_dict()}, Device::cpu()),
                       doctest::Contains("layer '1' (Linear) gets unflattened activations"), Error);
  auto headless = std::make_shared<Sequential>();
  headless->add(std::make_shared<Conv2d>(1, 2, 3));
  CHECK_THROWS_WITH_AS(StackedModel(headless, {headless->state_dict()}, Device::cpu()),
                       doctest::Contains("it does not end in model-major activations"), Error);

  StackedModel s({"cnn-s"}, {good, good}, Device::cpu());
  CHECK_THROWS_WITH_AS(s.forward(Tensor::zeros({2, 28, 28})),
                       doctest::Contains("StackedModel: expects images [B,C,H,W] on cpu, got float32[2,28,28] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(s.state_dict(2), doctest::Contains("StackedModel::state_dict: no model 2 (2 stacked)"), Error);
  CHECK_THROWS_WITH_AS(s.model_flat(cnn.arena().data(), 0),
                       doctest::Contains("StackedModel::model_flat: expects a flat buffer ["), Error);
  CHECK_THROWS_WITH_AS(s.stack_flat({cnn.arena().data()}),
                       doctest::Contains("StackedModel::stack_flat: expects 2 single-model buffers, got 1"), Error);
  CHECK_THROWS_WITH_AS(s.stack_flat({cnn.arena().data(), mlp.arena().data()}),
                       doctest::Contains("StackedModel::stack_flat: buffer 1 is float32["), Error);
  CHECK_THROWS_WITH_AS(stacked_cross_entropy(Tensor::zeros({4, 10}), labels(4, 0)),
                       doctest::Contains("stacked_cross_entropy: expects logits [N,B,classes] with N >= 1, got "
                                         "float32[4,10]"),
                       Error);
}

TEST_CASE("stacked: CUDA agrees with the single models within float32 tolerance") {
  if (!test::cuda_or_skip("stacked: CUDA stacked vs single models")) return;
  const Device cuda = Device::cuda(0);
  for (const char* name : {"mlp", "cnn-s"}) {
    INFO(name);
    Models m = make_models({name}, 3, cuda);
    std::vector<std::unique_ptr<Optimizer>> single_opts;
    for (const auto& single : m.singles) single_opts.push_back(make_sgd(single->arena(), {.lr = 0.05, .momentum = 0.9}));
    const auto stacked_opt = make_sgd(m.stacked->arena(), {.lr = 0.05, .momentum = 0.9});
    for (uint64_t step = 0; step < 3; ++step) {
      const Tensor x = images(64, 20 + step, 28, cuda), y = labels(64, step, 10, cuda);
      m.stacked->arena().zero_grad(0);
      const Tensor logits = m.stacked->forward(x);
      CHECK(logits.is_cuda());
      stacked_cross_entropy(logits, y).total.backward();
      for (size_t i = 0; i < m.singles.size(); ++i) {
        m.singles[i]->arena().zero_grad(0);
        const Tensor out = m.singles[i]->forward(x);
        cross_entropy(out, y).backward();
        test::expect_close(logits.select(0, static_cast<int64_t>(i)), out, 1e-4, 1e-4);
        test::expect_close(m.stacked->model_flat(m.stacked->arena().grad(), static_cast<int64_t>(i)),
                           m.singles[i]->arena().grad(), 1e-3, 1e-4);
        single_opts[i]->step();
      }
      stacked_opt->step();
    }
    for (size_t i = 0; i < m.singles.size(); ++i)
      test::expect_close(m.stacked->model_flat(m.stacked->arena().data(), static_cast<int64_t>(i)),
                         m.singles[i]->arena().data(), 1e-3, 1e-4);
  }
}
