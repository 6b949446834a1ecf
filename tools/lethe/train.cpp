// lethe train: trains a model on a dataset (or its pool, or a split's training set) with a recipe,
// evaluates it on the test set after every epoch (unless --no-test), and writes a checkpoint that
// `lethe eval`, `lethe unlearn` and PyTorch can read.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <vector>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "kernels/cpu/blas.h"
#include "nn/checkpoint.h"
#include "nn/generative.h"
#include "nn/train.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/progress.h"
#include "unlearn/study/scenario_args.h"
#include "subcommand.h"

namespace lethe::cli {

namespace {

struct TrainOptions {
  RunOptions run;
  std::string model = "cnn-s";
  double width = 1;
  std::string dtype = "float32";  // the model's parameters: float32 or float64
  uint64_t seed = 0;
  nn::Recipe recipe;
  std::string out, resume, log;
  int64_t log_every = 50;
  int64_t stop_after = 0;
  bool no_test = false;
  ScenarioArgs scenario;  // train on the scenario's training set (the poisoned one for mislabeled, backdoor)
  std::vector<const CLI::Option*> run_defining;  // the flags of the run's recipe, model and seed: --resume keeps them
};

// The model and seed of a run, besides its recipe (nn::recipe_options()).
const nn::OptionTable<TrainOptions>& model_options() {
  static const nn::OptionTable<TrainOptions> table = {
      {"model", &TrainOptions::model, "mlp, cnn-s, resnet18c, linear, or the generators cvae and ddpm-s", {},
       nn::model_names()},
      {"width", &TrainOptions::width, "resnet18c's width multiplier", positive_up_to(64)},
      {"dtype", &TrainOptions::dtype,
       "the parameters' dtype, float32 or float64 (a float64 model starts from the float32 one's values)", {},
       {"float32", "float64"}},
      {"seed", &TrainOptions::seed, "seed of the initialisation, shuffles and augmentation", seed_range()},
  };
  return table;
}

// Appends JSON lines to the metrics log (when one was asked for): each line one checked write, so
// a full disk stops the run with an error instead of leaving a short or cut log.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path) {
    if (!path.empty()) file_.emplace(path, "train");
  }
  void write(const nlohmann::json& line) {
    if (file_) file_->write(line.dump() + '\n');
  }
  void close() {
    if (file_) file_->close();
  }

 private:
  std::optional<AppendFile> file_;
};

// What a run trains on, and the metadata that says so in its checkpoint.
struct TrainingSet {
  data::Subset samples;
  unlearn::Pool pool;
  std::map<std::string, std::string> metadata;
};

// The scenario's training set (the poisoned one for mislabeled and backdoor) restricted to its
// split's pool, or the pool's training samples of the clean set; the trivial pool keeps every
// sample (Subset::all: the runs from before pools existed, bit for bit).
TrainingSet training_set(const TrainOptions& o, const nn::Recipe& recipe, const DataSource& source) {
  TrainingSet t{data::Subset::all(source.train), o.scenario.pool(), {}};
  std::vector<int64_t> indices;
  if (o.scenario.given()) {
    const unlearn::Split split = resolve_split(o.scenario, source);
    LETHE_CHECK(recipe.limit == 0, "train", "--limit and a scenario do not go together: the split says which samples "
                "(lethe split --split-limit N draws over the first N)");
    t.samples = data::Subset::all(unlearn::scenario_training_set(split, source.train));
    t.pool = split.pool;
    t.metadata = {{kScenarioKey, split.scenario.str()}, {kSplitDigestKey, split.digest()}};
    std::merge(split.forget.begin(), split.forget.end(), split.retain.begin(), split.retain.end(),
               std::back_inserter(indices));
  } else if (!t.pool.trivial()) {
    LETHE_CHECK(recipe.limit == 0, "train", "--limit and a pool (--subset, --validation) do not go together: "
                "--subset N trains on a seeded N samples");
    indices = unlearn::draw_pool(t.pool, source.train->size()).training;
  }
  if (t.pool.trivial()) return t;
  t.samples.indices = std::move(indices);
  t.metadata[kPoolKey] = t.pool.str();
  return t;
}

// The test metrics (a classifier's accuracy and loss, a generator's loss) on one progress line,
// or as lines of the final text.
std::string describe(const nn::Evaluation& test, bool lines) {
  const char* colon = lines ? ":" : "";
  std::string text = std::isnan(test.accuracy) ? ""
                     : fmt::format("test accuracy{} {:.4f}{}", colon, test.accuracy, lines ? "\n" : "  ");
  return text + fmt::format("test loss{} {:.4f}", colon, test.mean_loss);
}

void run_train(const TrainOptions& o) {
  const CommandRun command("train", o.run);
  const Device device = command.device();
  nn::Recipe recipe = o.recipe;
  uint64_t seed = o.seed;
  std::string model_name = o.model;
  double width = o.width;
  DType dtype = o.dtype == "float64" ? DType::f64 : DType::f32;
  std::optional<nn::Checkpoint> resumed;
  if (!o.resume.empty()) {
    // A resumed run is the run that wrote the checkpoint: it keeps its recipe, model and seed.
    for (const CLI::Option* flag : o.run_defining)
      LETHE_CHECK(flag->count() == 0, "train", "--resume continues the checkpoint's recipe; ", flag->get_name(),
                  " cannot change it");
    resumed = nn::load_checkpoint(o.resume);
    LETHE_CHECK(resumed->info.recipe.has_value(), "train", o.resume, " has no training recipe to resume");
    recipe = *resumed->info.recipe;
    seed = resumed->info.seed;
    model_name = resumed->info.model.name;
    width = resumed->info.model.width;
    dtype = resumed->info.model.dtype;
    LETHE_CHECK(resumed->info.dataset == o.run.dataset, "train", o.resume, " was trained on '",
                resumed->info.dataset, "', not on '", o.run.dataset, "'");
  }
  recipe.validate();
  DataSource source = load_data(o.run, true, !o.no_test);
  const bool generator = nn::is_generator_name(model_name);
  if (generator) source.normalization = {};  // a generator models pixels in [0, 1]
  if (resumed)
    nn::check_fits_data(resumed->info, o.resume, {source.name, source.channels, source.image_size, source.classes});
  nn::ModelSpec spec = model_spec(model_name, width, source);
  spec.dtype = dtype;
  nn::Model model(spec, seed, device);

  data::LoaderOptions lo;
  lo.batch_size = recipe.batch;
  lo.seed = seed;
  lo.normalization = source.normalization;
  lo.augmentation = {recipe.crop_padding, recipe.horizontal_flip};
  lo.device = device;
  const TrainingSet training = training_set(o, recipe, source);
  data::Subset train_set = training.samples;
  std::map<std::string, std::string> extra = training.metadata;
  if (resumed) {
    const auto digest = resumed->info.extra.find(kSplitDigestKey);
    const std::string was = digest == resumed->info.extra.end() ? "" : digest->second;
    LETHE_CHECK(was == (extra.count(kSplitDigestKey) ? extra.at(kSplitDigestKey) : ""), "train", o.resume,
                was.empty() ? " was trained on the plain training set; resume it without a scenario"
                            : " was trained for split " + was + "; resume it with that --split");
    const std::string pool = recorded_pool(resumed->info);
    LETHE_CHECK(pool == training.pool.str(), "train", o.resume, " was trained in the pool ", pool,
                "; resume it with that pool (--subset, --validation, --pool-seed), not ", training.pool.str());
  }
  if (recipe.limit > 0 && recipe.limit < train_set.size()) train_set.indices.resize(static_cast<size_t>(recipe.limit));
  data::DataLoader loader(train_set, lo);
  std::optional<data::DataLoader> test_loader;
  if (!o.no_test) test_loader.emplace(eval_loader(source.test, source, device));
  nn::Trainer trainer(model, recipe, loader);

  int64_t first_epoch = 0;
  if (resumed) {
    model.net().load_state_dict(resumed->model_state);
    trainer.optimizer().load_state(resumed->optimizer_state);
    trainer.sync_step();
    first_epoch = resumed->info.epoch;
    LETHE_CHECK(trainer.step() == first_epoch * loader.batches_per_epoch(), "train", o.resume, " stopped mid-epoch (step ",
                trainer.step(), ", epoch ", first_epoch, ")");
  }
  // Every input is read and checked: now the outputs, before anything is written. --resume without
  // --out writes back to the resumed checkpoint (read whole above), as --out would.
  const std::string out = o.out.empty() ? o.resume : o.out;
  check_outputs("train", {{"--out", out}, {"--log", o.log, true}}, {{"--split", o.scenario.split}});
  check_distinct_output({"--log", o.log}, {{"--resume", o.resume}}, "train");
  const bool quiet = o.run.json;
  if (!quiet)
    fmt::print(stderr, "lethe train: {}{} ({} parameters) on {} ({} train, {}), {}, {} threads, seed {}{}\n", spec.name,
               spec.dtype == DType::f32 ? "" : " in float64", model.net().parameter_count(), source.name, loader.size(),
               o.no_test ? "no test images" : fmt::format("{} test images", source.test->size()), device.str(),
               o.run.threads, seed, resumed ? fmt::format(", resuming after epoch {}", first_epoch) : "");

  MetricsLog log(o.log);
  nn::CheckpointInfo info{spec, source.name, recipe, 0, 0, seed, extra};
  std::optional<nn::Evaluation> test;  // none with --no-test
  const auto evaluate_test = [&] {
    if (test_loader) test = nn::evaluate(model, *test_loader);
  };
  double train_loss = 0, train_seconds = 0;
  int64_t epoch = first_epoch;
  const int64_t last_epoch = o.stop_after > 0 ? std::min(recipe.epochs, first_epoch + o.stop_after) : recipe.epochs;
  for (; epoch < last_epoch; ++epoch) {
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, recipe.epochs), loader.size(), quiet);
    const int64_t epoch_start_step = trainer.step();
    train_loss = trainer.run_epoch(epoch, [&](int64_t i, const Tensor& loss) {
      const int64_t step = epoch_start_step + i;
      if (o.log_every > 0 && step % o.log_every == 0)
        log.write({{"event", "step"}, {"epoch", epoch + 1}, {"step", step}, {"loss", loss.item()},
                   {"lr", trainer.schedule().lr_at(step)}});
      progress.update(std::min((i + 1) * recipe.batch, loader.size()), [&] { return loss.item(); });
    });
    const double seconds = progress.seconds();
    train_seconds += seconds;
    evaluate_test();
    const double rate = static_cast<double>(loader.size()) / seconds;
    progress.finish(fmt::format("train loss {:.4f}  {}{:.1f} s  {:.0f} images/s", train_loss,
                                test ? describe(*test, false) + "  " : "", seconds, rate));
    log.write({{"event", "epoch"}, {"epoch", epoch + 1}, {"step", trainer.step()}, {"train_loss", train_loss},
               {"test_accuracy", test ? nlohmann::json(test->accuracy) : nlohmann::json()},
               {"test_loss", test ? nlohmann::json(test->mean_loss) : nlohmann::json()}, {"seconds", seconds},
               {"images_per_second", rate}});
    if (!out.empty()) {  // after every epoch, so an interrupted run can --resume
      info.epoch = epoch + 1;
      info.step = trainer.step();
      nn::save_checkpoint(out, model, &trainer.optimizer(), info);
    }
  }
  log.close();
  if (epoch == first_epoch) evaluate_test();

  const double images = static_cast<double>(loader.size()) * static_cast<double>(epoch - first_epoch);
  nlohmann::json result = command.result();
  if (test) {
    result.update(nn::to_json(*test));
  } else {  // the same keys, null: no test sample was read
    const nlohmann::json keys = nn::to_json(nn::Evaluation{});
    for (const auto& item : keys.items()) result[item.key()] = nullptr;
  }
  result["model"] = spec.name;
  result["dataset"] = source.name;
  result["epochs_completed"] = epoch;
  result["steps"] = trainer.step();
  result["train_loss"] = train_loss;
  result["train_seconds"] = train_seconds;
  result["images_per_second"] = train_seconds > 0 ? images / train_seconds : 0;
  // Which float32 GEMM ran the CPU's convolutions and linear layers (speed figures depend on it).
  result["float32_gemm"] = device.is_cpu() ? blas::sgemm_name() : std::string("cublas/cudnn");
  result["wall_seconds"] = command.wall_seconds();
  result["checkpoint"] = out.empty() ? nlohmann::json() : nlohmann::json(out);
  std::string text = test ? describe(*test, true) + "\n" : std::string("no test set (--no-test)\n");
  text += fmt::format("training: {:.1f} s, {:.0f} images/s\n", train_seconds,
                      result["images_per_second"].get<double>());
  text += out.empty() ? "no checkpoint written (give --out FILE)\n" : fmt::format("checkpoint: {}\n", out);
  command.print(result, text);
}

}  // namespace

void add_train_command(CLI::App& app) {
  add_data_command<TrainOptions>(
      app, "train", "train a model on a dataset and write a checkpoint",
      [](CLI::App& cmd, TrainOptions& o) {
        for (const auto& flags :
             {add_option_flags(cmd, o, model_options()), add_option_flags(cmd, o.recipe, nn::recipe_options())})
          o.run_defining.insert(o.run_defining.end(), flags.begin(), flags.end());
        cmd.add_option("--out", o.out, "checkpoint to write (safetensors), after every epoch, atomically");
        cmd.add_option("--resume", o.resume,
                       "continue the run that wrote this checkpoint (written back to it, unless --out)");
        cmd.add_option("--stop-after", o.stop_after, "stop after this many epochs of this invocation (then --resume)")
            ->check(range_check(integer_in(1, 1000000)));
        cmd.add_option("--log", o.log, "append JSON-lines metrics (steps and epochs) to this file");
        cmd.add_option("--log-every", o.log_every, "steps between step lines in --log (0: epochs only)")
            ->check(range_check(integer_in(0, kMaxCount)))
            ->capture_default_str();
        cmd.add_flag("--no-test", o.no_test,
                     "neither read nor evaluate the test set (the test metrics are null): lethe tune trains so");
        add_scenario_options(cmd, o.scenario);
      },
      run_train);
}

}  // namespace lethe::cli
