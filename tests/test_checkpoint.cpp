#include <cstdio>
#include <unistd.h>

#include <filesystem>

#include "engine/file.h"
#include "engine/safetensors.h"
#include "harness.h"
#include "nn/checkpoint.h"
#include "nn/data/fashion_mnist.h"
#include "nn/train.h"

using namespace lethe;
using namespace lethe::nn;

namespace {

// A scratch folder removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("lethe-test-checkpoint-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// 512 synthetic 1×28×28 images whose class is readable from the pixels, so training moves.
std::shared_ptr<const data::Dataset> synthetic_set(int64_t n = 512) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 784);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % 10;
    for (int64_t p = 0; p < 784; ++p)
      pixels[static_cast<size_t>(i * 784 + p)] = static_cast<uint8_t>((p / 78 == i % 10 ? 200 : 20) + (i * 7 + p) % 31);
  }
  return std::make_shared<const data::Dataset>(data::Dataset{Tensor::from_vector(pixels, {n, 1, 28, 28}),
                                                             Tensor::from_vector(labels, {n})});
}

Recipe small_recipe() {
  Recipe r;
  r.epochs = 2;
  r.batch = 64;
  r.lr = 0.05;
  return r;
}

// Trains `epochs_now` epochs of the 2-epoch recipe from `start` (a checkpoint or nothing) and
// saves to `out`.
void train_into(const std::string& out, const std::string& start, int64_t epochs_now, const std::string& model = "cnn-s") {
  const Recipe recipe = small_recipe();
  data::LoaderOptions lo;
  lo.batch_size = recipe.batch;
  lo.seed = 3;
  lo.normalization = data::fashion_mnist_normalization();
  data::DataLoader loader(data::Subset::all(synthetic_set()), lo);
  Model m({model}, 3, Device::cpu());
  Trainer trainer(m, recipe, loader);
  int64_t epoch = 0;
  if (!start.empty()) {
    const Checkpoint c = load_checkpoint(start);
    m.net().load_state_dict(c.model_state);
    trainer.optimizer().load_state(c.optimizer_state);
    trainer.sync_step();
    epoch = c.info.epoch;
  }
  for (int64_t e = 0; e < epochs_now; ++e, ++epoch) trainer.run_epoch(epoch);
  save_checkpoint(out, m, &trainer.optimizer(), {m.spec(), "synthetic", recipe, epoch, trainer.step(), 3, {}});
}

}  // namespace

TEST_CASE("checkpoint: same seed, same threads: byte-identical files, resume continues bit-exactly") {
  TempDir dir;
  train_into(dir.file("a.safetensors"), "", 2);
  train_into(dir.file("b.safetensors"), "", 2);
  CHECK(read_file(dir.file("a.safetensors")) == read_file(dir.file("b.safetensors")));

  train_into(dir.file("half.safetensors"), "", 1);
  train_into(dir.file("resumed.safetensors"), dir.file("half.safetensors"), 1);
  CHECK(read_file(dir.file("a.safetensors")) == read_file(dir.file("resumed.safetensors")));

  const Checkpoint c = load_checkpoint(dir.file("a.safetensors"));
  CHECK(c.info.model.name == "cnn-s");
  CHECK(c.info.epoch == 2);
  CHECK(c.info.step == 16);
  CHECK(c.info.seed == 3);
  CHECK(c.info.dataset == "synthetic");
  REQUIRE(c.info.recipe.has_value());
  CHECK(c.info.recipe->batch == 64);
  CHECK(c.model_state.size() == 8);
  CHECK(!c.optimizer_state.empty());
  // The trained model evaluates the same after loading.
  Model loaded = load_model(c, Device::cpu());
  CHECK(loaded.net().parameter_count() == 215370);
}

TEST_CASE("checkpoint: PyTorch's pickle files are refused with the command that saves safetensors") {
  TempDir dir;
  // torch.save's zip archive and a bare pickle (protocol 2), each with more bytes after the magic.
  const std::pair<const char*, std::string> files[] = {{"zip.pt", std::string("PK\x03\x04\x14\x00\x00\x00", 8) + "data"},
                                                      {"legacy.pth", std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46", 8)}};
  for (const auto& [name, bytes] : files) {
    const std::string file = name;  // clang 14 captures no structured binding (CAPTURE's lambda)
    CAPTURE(file);
    write_file_atomically(dir.file(name), bytes);
    CHECK_THROWS_WITH_AS(load_checkpoint(dir.file(name), ModelSpec{"mlp"}),
                         doctest::Contains("lethe never unpickles; save the state dict as safetensors"), Error);
  }
  // A safetensors file whose header length starts with the pickle opcode is still read.
  Model m({"mlp"}, 1, Device::cpu());
  std::map<std::string, std::string> meta;
  std::string bytes;
  for (int pad = 0; pad < 512; ++pad) {
    meta["pad"] = std::string(static_cast<size_t>(pad), 'x');
    bytes = serialize_safetensors(m.net().state_dict(), meta);
    if (static_cast<uint8_t>(bytes[0]) == 0x80) break;
  }
  REQUIRE(static_cast<uint8_t>(bytes[0]) == 0x80);
  write_file_atomically(dir.file("plain.pt"), bytes);
  CHECK(load_checkpoint(dir.file("plain.pt"), ModelSpec{"mlp"}).plain);
}

TEST_CASE("checkpoint: a plain state dict needs a model spec, mismatches are named") {
  TempDir dir;
  Model m({"mlp"}, 1, Device::cpu());
  save_safetensors(dir.file("plain.safetensors"), m.net().state_dict());
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("plain.safetensors")), doctest::Contains("no lethe metadata"), Error);
  const Checkpoint plain = load_checkpoint(dir.file("plain.safetensors"), ModelSpec{"mlp"});
  Model copy = load_model(plain, Device::cpu());
  CHECK(sum(eq(copy.arena().data(), m.arena().data())).item() == static_cast<double>(m.arena().size()));
  CHECK_THROWS_WITH_AS(load_model(load_checkpoint(dir.file("plain.safetensors"), ModelSpec{"cnn-s"}), Device::cpu()),
                       doctest::Contains("does not fit model cnn-s"), Error);

  save_safetensors(dir.file("odd.safetensors"), m.net().state_dict(), {{"format", "something-else"}});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("odd.safetensors")), doctest::Contains("unknown format 'something-else'"),
                       Error);
  save_safetensors(dir.file("bad.safetensors"), m.net().state_dict(),
                   {{"format", "lethe-checkpoint-1"}, {"model", "{\"name\": \"mlp\"}"}, {"epoch", "1"}, {"step", "1"}, {"seed", "0"}});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("bad.safetensors")), doctest::Contains("bad model or recipe metadata"),
                       Error);
}

TEST_CASE("checkpoint: NaN or inf weights are never written and never loaded, but for forensics") {
  TempDir dir;
  Model m({"mlp"}, 1, Device::cpu());
  const CheckpointInfo info{m.spec(), "fashion-mnist", std::nullopt, 0, 0, 1, {}};
  save_checkpoint(dir.file("good.safetensors"), m, nullptr, info);
  const std::string good = read_file(dir.file("good.safetensors"));

  // A diverged model: writing it would leave a file no command loads; the old file stays.
  const auto [name, first] = m.net().named_parameters().front();
  Tensor weights = first;
  weights.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(save_checkpoint(dir.file("good.safetensors"), m, nullptr, info),
                       doctest::Contains((name + " holds nan at element 5").c_str()), Error);
  CHECK(read_file(dir.file("good.safetensors")) == good);

  // The same bytes written as a plain safetensors file (as a corrupted or foreign file would be).
  NamedTensors state = m.net().state_dict();
  std::map<std::string, std::string> meta;
  for (const auto& [key, value] : parse_safetensors(good, "good").metadata) meta[key] = value;
  weights.data<float>()[5] = std::numeric_limits<float>::infinity();
  save_safetensors(dir.file("inf.safetensors"), state, meta);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("inf.safetensors")), doctest::Contains((name + " holds inf").c_str()), Error);
  const Checkpoint forensic = load_checkpoint(dir.file("inf.safetensors"), std::nullopt, NonFinite::allow);
  CHECK(forensic.model_state.size() == state.size());
}

TEST_CASE("checkpoint: its metadata must fit the data it is run on") {
  CheckpointInfo info;
  info.model = ModelSpec{"mlp", 1, 28, 10, 1.0};
  info.dataset = "fashion-mnist";
  info.seed = 1;
  CHECK_NOTHROW(check_fits_data(info, "m", {"fashion-mnist", 1, 28, 10}));
  CHECK_THROWS_WITH_AS(check_fits_data(info, "m", {"mnist", 1, 28, 10}), doctest::Contains("trained on \"fashion-mnist\""),
                       Error);
  CHECK_THROWS_WITH_AS(check_fits_data(info, "m", {"fashion-mnist", 1, 28, 12}), doctest::Contains("10 classes"), Error);
  CHECK_THROWS_WITH_AS(check_fits_data(info, "m", {"fashion-mnist", 3, 32, 10}), doctest::Contains("1x28x28"), Error);
  CheckpointInfo anywhere = info;
  anywhere.dataset.clear();  // a plain state dict says nothing of its data set: its shapes still must fit
  CHECK_NOTHROW(check_fits_data(anywhere, "m", {"mnist", 1, 28, 10}));
}
