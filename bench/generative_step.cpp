// lethe-bench-generative-step: times training steps of the W5 generators (README: `cvae` at batch
// 128, `ddpm-s` at batch 64) as `lethe train` runs them: zero_grad, the per-image loss (its draws
// included), its batch mean, backward, one fused Adam step (AdamW without weight decay, lr 1e-3),
// on random images in [0, 1] with random labels. Prints the median and minimum ms/step per model
// (with --json, one JSON object). Its PyTorch counterpart is bench/torch_generative.py;
// bench/generative_side_by_side.sh runs the two alternately and prints the ratio.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include <nlohmann/json.hpp>

#include "bench/harness.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"
#include "nn/generative.h"
#include "nn/models.h"
#include "nn/train.h"

using namespace lethe;

namespace {

using Clock = std::chrono::steady_clock;
using bench::median, bench::ms_since;

nlohmann::json time_model(const std::string& name, int64_t batch, int steps, int warmup) {
  nn::ModelSpec spec;
  spec.name = name;
  nn::Model model(spec, 0, Device::cpu());
  nn::Recipe recipe;
  recipe.optimizer = "adamw";
  recipe.lr = 1e-3;
  recipe.weight_decay = 0;
  const auto optimizer = nn::make_optimizer(recipe, model.arena());
  const Tensor images = Tensor::rand({batch, 1, 28, 28}, 1);
  const Tensor labels = mul(Tensor::rand({batch}, 2), 10).to(DType::i64);
  nn::Generator& g = *model.generator();
  double last_loss = 0;
  auto step = [&](int i) {
    model.arena().zero_grad(0);
    const Tensor loss = mean(g.loss(images, labels, 3, static_cast<uint64_t>(i)));
    loss.backward();
    optimizer->step(0);
    last_loss = loss.item();
  };
  for (int i = 0; i < warmup; ++i) step(i);
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    step(warmup + i);
    times.push_back(ms_since(t0));
  }
  const double min = *std::min_element(times.begin(), times.end());
  fmt::print("lethe: {} train step, batch {}: median {:.2f} ms/step, min {:.2f} ms ({} steps; last loss {:.6g})\n", name,
             batch, median(times), min, steps, last_loss);
  return {{"model", name}, {"batch", batch}, {"steps", steps}, {"median_ms", median(times)}, {"min_ms", min},
          {"last_loss", last_loss}};
}

int run(int argc, char** argv) {
  CLI::App app{"lethe-bench-generative-step: ms per training step of cvae and ddpm-s (loss, backward, Adam) on the CPU"};
  int threads = 2, steps = 30, warmup = 5;
  int64_t cvae_batch = 128, ddpm_batch = 64;
  std::string model = "both";
  bool json = false;
  app.add_option("--model", model, "cvae, ddpm-s or both")->capture_default_str()->check(CLI::IsMember({"cvae", "ddpm-s", "both"}));
  app.add_option("--threads", threads, "CPU threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--cvae-batch", cvae_batch, "cvae's batch")->capture_default_str()->check(CLI::Range(1, 65536));
  app.add_option("--ddpm-batch", ddpm_batch, "ddpm-s's batch")->capture_default_str()->check(CLI::Range(1, 65536));
  app.add_flag("--json", json, "also print one JSON object (last line)");
  CLI11_PARSE(app, argc, argv);

  set_num_threads(threads);
  nlohmann::json result = {{"threads", threads}, {"sgemm", blas::sgemm_name()}, {"cpu", bench::device_name(Device::cpu())}};
  if (model != "ddpm-s") result["cvae"] = time_model("cvae", cvae_batch, steps, warmup);
  if (model != "cvae") result["ddpm-s"] = time_model("ddpm-s", ddpm_batch, steps, warmup);
  if (json) fmt::print("{}\n", result.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main("lethe-bench-generative-step", run, argc, argv); }
