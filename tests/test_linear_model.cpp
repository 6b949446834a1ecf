// The `linear` model (multinomial logistic regression) and models in float64 (issue 20): names,
// float32/float64 agreement, a gradcheck of the whole model, checkpoints, training, stacking.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/file.h"
#include "engine/safetensors.h"
#include "harness.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/stacked.h"
#include "nn/train.h"
#include "temp_dir.h"

using namespace lethe;
using namespace lethe::nn;

namespace {

const ModelSpec kLinear32{"linear", 1, 28, 10, 1};
const ModelSpec kLinear64{"linear", 1, 28, 10, 1, DType::f64};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.detach().to(Device::cpu()).contiguous(), cb = b.detach().to(Device::cpu()).contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

const Tensor& entry(const NamedTensors& named, const std::string& name) {
  for (const auto& [n, t] : named)
    if (n == name) return t;
  FAIL("no entry " << name);
  static Tensor none;
  return none;
}

Tensor images(int64_t batch, uint64_t seed) { return Tensor::randn({batch, 1, 28, 28}, seed); }

Tensor labels(int64_t batch) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < batch; ++i) v.push_back((i * 7 + 3) % 10);
  return Tensor::from_vector(v, {batch});
}

// A checkpoint file's metadata with its model spec's JSON changed by `edit`, written over
// `tensors` (as a foreign or older lethe would write it).
void write_with_spec(const std::string& from, const std::string& to, const NamedTensors& tensors,
                     const std::function<void(nlohmann::json&)>& edit) {
  std::map<std::string, std::string> meta = parse_safetensors(read_file(from, "test"), from).metadata;
  nlohmann::json spec = nlohmann::json::parse(meta.at("model"));
  edit(spec);
  meta["model"] = spec.dump();
  save_safetensors(to, tensors, meta);
}

}  // namespace

TEST_CASE("linear: a flatten and one fc layer, with PyTorch's names") {
  Model m(kLinear32, 0, Device::cpu());
  const NamedTensors state = m.net().state_dict();
  REQUIRE(state.size() == 2);
  CHECK(state[0].first == "fc.weight");
  CHECK(state[0].second.shape() == Shape{10, 784});
  CHECK(state[1].first == "fc.bias");
  CHECK(state[1].second.shape() == Shape{10});
  CHECK(m.net().parameter_count() == 7850);
  // logits = W·x + b on the flattened image, exactly the op.
  const Tensor x = images(5, 1);
  CHECK(bitwise_equal(m.forward(x), linear(x.flatten(1), state[0].second, state[1].second)));
  // The geometry follows the spec: CIFAR-10-sized inputs, 100 classes.
  Model cifar(ModelSpec{"linear", 3, 32, 100}, 0, Device::cpu());
  CHECK(entry(cifar.net().state_dict(), "fc.weight").shape() == Shape{100, 3072});
  CHECK(std::find(model_names().begin(), model_names().end(), "linear") != model_names().end());
}

TEST_CASE("linear: an input pool averages the image first, adds no parameters, is checked and saved") {
  ModelSpec pooled = kLinear64;
  pooled.input_pool = 4;
  Model m(pooled, 0, Device::cpu());
  const NamedTensors state = m.net().state_dict();
  REQUIRE(state.size() == 2);
  CHECK(state[0].second.shape() == Shape{10, 49});
  const Tensor x = images(3, 2).to(DType::f64);
  CHECK(bitwise_equal(m.forward(x), linear(avg_pool2d(x, {4, 4, 4, 4}).flatten(1), state[0].second, state[1].second)));
  ModelSpec uneven = kLinear32;
  uneven.input_pool = 5;
  CHECK_THROWS_WITH_AS(build_network(uneven), doctest::Contains("does not divide the image size 28"), Error);
  ModelSpec cnn{"cnn-s", 1, 28, 10, 1};
  cnn.input_pool = 2;
  CHECK_THROWS_WITH_AS(build_network(cnn), doctest::Contains("only linear pools its input"), Error);
  test::TempDir dir;
  const std::string path = dir.file("pooled.safetensors");
  save_checkpoint(path, m, nullptr, {m.spec(), "synthetic", std::nullopt, 1, 1, 0, {}});
  CHECK(load_checkpoint(path).info.model.input_pool == 4);
}

TEST_CASE("linear: a float64 model starts at the float32 one's values, and logits and gradients agree") {
  Model m32(kLinear32, 5, Device::cpu()), m64(kLinear64, 5, Device::cpu());
  CHECK(m64.arena().data().dtype() == DType::f64);
  CHECK(m64.arena().grad(0).dtype() == DType::f64);
  for (const auto& [name, p] : m64.net().named_parameters()) {
    const std::string parameter = name;  // clang 14 captures no structured binding (INFO's lambda)
    INFO(parameter);
    CHECK(p.dtype() == DType::f64);
    CHECK(p.requires_grad());
    CHECK(p.grad_fn() == nullptr);  // still a leaf
    CHECK(bitwise_equal(p, entry(m32.net().state_dict(), name).to(DType::f64)));
  }
  const Tensor x = images(16, 2), y = labels(16);
  const Tensor logits32 = m32.forward(x), logits64 = m64.forward(x);  // float32 images, widened by the model
  CHECK(logits64.dtype() == DType::f64);
  test::expect_close(logits32, logits64, 1e-5, 1e-6);
  cross_entropy(logits32, y).backward();
  cross_entropy(logits64, y).backward();
  for (const char* name : {"fc.weight", "fc.bias"}) {
    INFO(name);
    const Tensor g64 = entry(m64.net().named_parameters(), name).grad();
    CHECK(g64.dtype() == DType::f64);
    test::expect_close(entry(m32.net().named_parameters(), name).grad(), g64, 1e-5, 1e-6);
  }
  CHECK_THROWS_WITH_AS(Model(ModelSpec{"linear", 1, 28, 10, 1, DType::i32}, 0, Device::cpu()),
                       doctest::Contains("model: linear in int32: a model's dtype is float32 or float64"), Error);
}

TEST_CASE("linear: float64 gradcheck of the mean cross-entropy w.r.t. every parameter element") {
  Model m(kLinear64, 7, Device::cpu());
  const Tensor x = images(6, 3), y = labels(6);
  // gradcheck perturbs the parameters in place, which are the model's own (views of its arena).
  test::gradcheck([&](const std::vector<Tensor>&) { return cross_entropy(m.forward(x), y); }, m.net().parameters());
}

TEST_CASE("linear: float64 checkpoints round-trip bitwise, the dtype is checked, and old files are float32") {
  test::TempDir dir;
  Model m(kLinear64, 3, Device::cpu());
  auto sgd = make_sgd(m.arena(), SgdOptions{0.1, 0.9});
  cross_entropy(m.forward(images(8, 4)), labels(8)).backward();
  sgd->step();
  const std::string path = dir.file("f64.safetensors");
  save_checkpoint(path, m, sgd.get(), {m.spec(), "synthetic", std::nullopt, 1, 1, 3, {}});

  const Checkpoint c = load_checkpoint(path);
  CHECK(c.info.model.dtype == DType::f64);
  const NamedTensors saved = m.net().state_dict();
  REQUIRE(c.model_state.size() == saved.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    INFO(saved[i].first);
    CHECK(bitwise_equal(c.model_state[i].second, saved[i].second));
  }
  Model loaded = load_model(c, Device::cpu());
  CHECK(loaded.spec().dtype == DType::f64);
  CHECK(bitwise_equal(loaded.arena().data(), m.arena().data()));
  auto resumed = make_sgd(loaded.arena(), SgdOptions{0.1, 0.9});
  resumed->load_state(c.optimizer_state);
  CHECK(bitwise_equal(resumed->state()[0].second, sgd->state()[0].second));

  // The spec says float64, the tensors are float32: refused, naming the tensor.
  Model m32(kLinear32, 3, Device::cpu());
  write_with_spec(path, dir.file("mixed.safetensors"), m32.net().state_dict(), [](nlohmann::json&) {});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("mixed.safetensors")),
                       doctest::Contains("tensor fc.weight is float32 but the model metadata says float64"), Error);
  // An unknown dtype in the spec.
  write_with_spec(path, dir.file("half.safetensors"), saved, [](nlohmann::json& s) { s["dtype"] = "float16"; });
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("half.safetensors")),
                       doctest::Contains("dtype must be \"float32\" or \"float64\", got \"float16\""), Error);
  // A checkpoint from before models had a dtype: float32.
  write_with_spec(path, dir.file("old.safetensors"), m32.net().state_dict(),
                  [](nlohmann::json& s) { s.erase("dtype"); });
  const Checkpoint old = load_checkpoint(dir.file("old.safetensors"));
  CHECK(old.info.model.dtype == DType::f32);
  CHECK(bitwise_equal(load_model(old, Device::cpu()).arena().data(), m32.arena().data()));
}

TEST_CASE("linear: an epoch of Trainer in float64 lowers the loss, with SGD and clipping or AdamW") {
  for (const char* optimizer : {"sgd", "adamw"}) {
    INFO(optimizer);
    Model m(ModelSpec{"linear", 1, 8, 4, 1, DType::f64}, 1, Device::cpu());
    data::LoaderOptions lo;
    lo.batch_size = 16;
    lo.seed = 2;
    data::DataLoader loader(data::Subset::all(test::band_task(256)), lo);
    Recipe r;
    r.epochs = 1;
    r.batch = lo.batch_size;
    r.optimizer = optimizer;
    r.lr = optimizer == std::string("sgd") ? 0.05 : 1e-2;
    r.clip_norm = optimizer == std::string("sgd") ? 1.0 : 0;
    const double before = evaluate(m, loader).mean_loss;
    Trainer trainer(m, r, loader);
    for (const auto& [name, t] : trainer.optimizer().state()) CHECK(t.dtype() == DType::f64);
    const double train_loss = trainer.run_epoch(0);
    const double after = evaluate(m, loader).mean_loss;
    CHECK(std::isfinite(train_loss));
    CHECK(trainer.step() == 16);
    CHECK(after < 0.5 * before);
    CHECK(m.arena().data().dtype() == DType::f64);
  }
}

TEST_CASE("linear: stacks, in float32 and float64, bitwise the single models on the CPU") {
  for (const ModelSpec& spec : {kLinear32, kLinear64}) {
    INFO(dtype_name(spec.dtype));
    CHECK(stackable(spec));
    std::vector<std::unique_ptr<Model>> singles;
    std::vector<NamedTensors> states;
    for (uint64_t seed : {100, 101, 102}) {
      singles.push_back(std::make_unique<Model>(spec, seed, Device::cpu()));
      states.push_back(singles.back()->net().state_dict());
    }
    StackedModel stacked(spec, states, Device::cpu());
    CHECK(stacked.arena().data().dtype() == spec.dtype);
    const Tensor x = images(12, 8), y = labels(12);
    const Tensor logits = stacked.forward(x);
    stacked_cross_entropy(logits, y).total.backward();
    for (int64_t n = 0; n < 3; ++n) {
      INFO("model " << n);
      Model& single = *singles[static_cast<size_t>(n)];
      const Tensor out = single.forward(x);
      cross_entropy(out, y).backward();
      CHECK(bitwise_equal(logits.select(0, n), out));
      CHECK(bitwise_equal(stacked.model_flat(stacked.arena().grad(), n), single.arena().grad()));
    }
  }
  // The states must be in the spec's dtype.
  const std::vector<NamedTensors> f32_states{Model(kLinear32, 1, Device::cpu()).net().state_dict()};
  CHECK_THROWS_WITH_AS(StackedModel(kLinear64, f32_states, Device::cpu()),
                       doctest::Contains("'fc.weight' is float32[10,784] on cpu, expected float64[10,784]"), Error);
}

TEST_CASE("linear: a float64 model on CUDA agrees with the CPU") {
  if (!test::cuda_or_skip("linear: float64 on CUDA")) return;
  Model cpu(kLinear64, 4, Device::cpu()), gpu(kLinear64, 4, Device::cuda(0));
  CHECK(bitwise_equal(cpu.arena().data(), gpu.arena().data()));
  const Tensor x = images(32, 6), y = labels(32);
  const Tensor logits_cpu = cpu.forward(x), logits_gpu = gpu.forward(x.to(Device::cuda(0)));
  CHECK(logits_gpu.dtype() == DType::f64);
  test::expect_close(logits_gpu, logits_cpu, 1e-12, 1e-13);
  cross_entropy(logits_cpu, y).backward();
  cross_entropy(logits_gpu, y.to(Device::cuda(0))).backward();
  test::expect_close(gpu.arena().grad(0), cpu.arena().grad(0), 1e-11, 1e-14);
  // One SGD step with momentum and clipping on each.
  for (Model* m : {&cpu, &gpu}) {
    clip_grad_norm(m->arena(), 0, 0.5);
    make_sgd(m->arena(), SgdOptions{0.1, 0.9})->step();
  }
  test::expect_close(gpu.arena().data(), cpu.arena().data(), 1e-12, 1e-14);
}
