// lethe-bench-relearn: what makes an RCD measurement cheap, measured side by side on the models of
// a `lethe run` study (its checkpoints and split files):
//  1. one RCD measurement (the retrained model, the scenario's W1 relearning options): lethe's
//     loop (forward-only evaluation in large batches every eval_every steps, exact bracket replay,
//     early stop) against the naive loop (the whole forget set evaluated after every step with
//     autograd on, at the training batch size) — checking both report the same steps;
//  2. N models relearned in one batched pass against one after another (N = 8, 32: the study's
//     models repeated), to a fixed number of steps (--own-stop: also each to its own early stop) —
//     checking the results are bitwise equal (on CUDA: the same steps; and the CUDA graph against
//     launching the step's kernels one by one, bitwise).
// The two sides alternate, --repeats times each; medians are reported.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <functional>

#include "bench/harness.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"
#include "nn/checkpoint.h"
#include "nn/data/fashion_mnist.h"
#include "nn/data/loader.h"
#include "nn/stacked.h"
#include "unlearn/metrics.h"
#include "unlearn/relearn.h"

using namespace lethe;
namespace fs = std::filesystem;
using bench::median;

namespace {

struct Study {
  std::shared_ptr<const data::Dataset> train;
  unlearn::Split split;
  nn::ModelSpec spec;
  NamedTensors original, retrained;
  std::vector<NamedTensors> models;  // every checkpoint of the scenario, the original first
};

Study load_study(const fs::path& dir, const std::string& scenario, const std::string& data_dir) {
  Study s;
  s.train = std::make_shared<const data::Dataset>(data::load_fashion_mnist(data_dir, true));
  s.split = unlearn::load_split((dir / scenario / "split.json").string());
  const nn::Checkpoint original = nn::load_checkpoint((dir / "original.safetensors").string());
  s.spec = original.info.model;
  s.original = original.model_state;
  s.models.push_back(s.original);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir / scenario))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    s.models.push_back(nn::load_checkpoint(f.string()).model_state);
    if (f.stem() == "retrain") s.retrained = s.models.back();
  }
  LETHE_CHECK(!s.retrained.empty(), "bench-relearn", dir / scenario, " has no retrain.safetensors");
  return s;
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Steps {
  int64_t accuracy = -1, loss = -1;
};

// The naive loop: one model; at the start and after every step the whole forget set is evaluated
// with autograd on (a graph is recorded and dropped), in batches of the training batch size;
// stops when both targets are met. The metric arithmetic is relearn's (unlearn/metrics.h).
Steps naive_rcd(const Study& s, const unlearn::RelearnData& d, const unlearn::RelearnOptions& o,
                const unlearn::RelearnTargets& t, Device device) {
  nn::Model model(s.spec, 0, device);
  model.net().load_state_dict(s.retrained);
  nn::SgdOptions sgd;
  sgd.lr = o.lr;
  const std::unique_ptr<nn::Optimizer> opt = nn::make_sgd(model.arena(), sgd);
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.seed = o.seed;
  lo.normalization = data::fashion_mnist_normalization();
  lo.device = device;
  data::DataLoader loader(d.train, lo);
  data::DataLoader eval = data::evaluation_loader(d.forget, o.batch, data::fashion_mnist_normalization(), device);
  Steps found;
  for (int64_t step = 0; step <= o.steps && (found.accuracy < 0 || found.loss < 0); ++step) {
    if (step > 0) {  // step 0 is the model as it starts
      const int64_t per_epoch = loader.batches_per_epoch();
      const data::Batch b = loader.batch((step - 1) / per_epoch, (step - 1) % per_epoch);
      model.train();
      model.arena().zero_grad(0);
      cross_entropy(model(b.images), b.labels).backward();
      opt->step(0);
    }
    model.eval();
    unlearn::SampleScores scores;
    for (int64_t i = 0; i < eval.batches_per_epoch(); ++i) {
      const data::Batch e = eval.batch(0, i);
      unlearn::append_scores(scores, model(e.images), e.labels.to_vector<int64_t>());
    }
    if (found.accuracy < 0 && unlearn::accuracy(scores) >= t.accuracy) found.accuracy = step;
    if (found.loss < 0 && unlearn::mean_loss(scores) <= t.loss) found.loss = step;
  }
  return found;
}

// Whether two runs report the same steps and, with `bitwise`, the same curves and final weights.
bool same(const std::vector<unlearn::RelearnResult>& a, const std::vector<unlearn::RelearnResult>& b, bool bitwise) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].accuracy_steps != b[i].accuracy_steps || a[i].loss_steps != b[i].loss_steps ||
        a[i].steps != b[i].steps || a[i].curve.size() != b[i].curve.size())
      return false;
    if (!bitwise) continue;
    for (size_t p = 0; p < a[i].curve.size(); ++p)
      if (a[i].curve[p].forget_loss != b[i].curve[p].forget_loss ||
          a[i].curve[p].forget_accuracy != b[i].curve[p].forget_accuracy)
        return false;
    for (size_t k = 0; k < a[i].final_state.size(); ++k)
      if (a[i].final_state[k].second.to_vector<float>() != b[i].final_state[k].second.to_vector<float>()) return false;
  }
  return true;
}

int run(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines as they come: a long run shows its progress
  CLI::App app{"lethe-bench-relearn: RCD against a naive loop, and N models batched against one by one"};
  std::string dir = "study/default/replicate-0", scenario = "random-0.1";
  int threads = 2, repeats = 1;
  std::vector<int> counts = {8, 32};
  int64_t fixed_steps = 30, stacked_eval_batch = 100;
  bool own_stop = false;
  app.add_option("--study", dir, "one replicate of a `lethe run` study: OUT/replicate-R")->capture_default_str();
  app.add_option("--scenario", scenario, "its scenario folder")->capture_default_str();
  std::string data_dir = data::kFashionMnistDir;
  app.add_option("--data", data_dir, "the Fashion-MNIST folder the study read")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--repeats", repeats, "runs of each side, alternating")->capture_default_str();
  app.add_option("--models", counts, "model counts of the batched case")->capture_default_str();
  app.add_option("--fixed-steps", fixed_steps, "steps of the batched case's fixed-length runs")->capture_default_str();
  app.add_option("--stacked-eval-batch", stacked_eval_batch, "evaluation batch of the batched case (a stacked "
                 "forward holds N times the activations)")->capture_default_str();
  app.add_flag("--own-stop", own_stop, "also time the first model count with each model to its own stop");
  unlearn::RelearnOptions o;
  app.add_option("--eval-every", o.eval_every, "lethe's evaluation interval (0: the scenario's default)");
  app.add_option("--eval-batch", o.eval_batch, "lethe's evaluation batch")->capture_default_str();
  std::string device_name = "cpu";
  app.add_option("--device", device_name, "cpu or cuda: where both sides run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  set_num_threads(threads);
  const Device device = Device::parse(device_name);
  const Study s = load_study(dir, scenario, data_dir);
  o.resolve(s.split.scenario);
  const unlearn::RelearnData d = unlearn::relearn_data(s.train, s.split, o);
  nn::Model original(s.spec, 0, device);
  original.net().load_state_dict(s.original);
  const unlearn::RelearnTargets t =
      unlearn::relearn_targets(o, unlearn::forget_metrics(original, d.forget, data::fashion_mnist_normalization(), o));
  fmt::print("{} ({}), {} threads; relearning: {} lr {}, batch {}, eval every {} in batches of {}, cap {}; targets "
             "FA >= {:.4f}, loss <= {:.4f}\n",
             scenario, s.split.scenario.str(), threads, o.optimizer, o.lr, o.batch, o.eval_every, o.eval_batch, o.steps,
             t.accuracy, t.loss);

  // 1. One RCD measurement.
  std::vector<double> lethe_s, naive_s;
  std::vector<unlearn::RelearnResult> ours;
  Steps theirs;
  for (int r = 0; r < repeats; ++r) {
    lethe_s.push_back(seconds_of([&] {
      ours = unlearn::relearn(s.spec, {s.retrained}, d, data::fashion_mnist_normalization(), o, t, device,
                              unlearn::RelearnMode::sequential);
    }));
    naive_s.push_back(seconds_of([&] { theirs = naive_rcd(s, d, o, t, device); }));
  }
  const bool agree = ours[0].accuracy_steps == theirs.accuracy && ours[0].loss_steps == theirs.loss;
  fmt::print("one RCD (retrained model): lethe {:.2f} s, naive {:.2f} s: {:.1f}x cheaper; steps to FA {} / {}, to "
             "loss {} / {} ({})\n",
             median(lethe_s), median(naive_s), median(naive_s) / median(lethe_s), ours[0].accuracy_steps,
             theirs.accuracy, ours[0].loss_steps, theirs.loss, agree ? "identical" : "DIFFERENT");

  // 2. N models batched against one by one.
  bool all_same = agree;
  for (const int n : counts) {
    std::vector<NamedTensors> starts;
    for (int i = 0; i < n; ++i) starts.push_back(s.models[static_cast<size_t>(i) % s.models.size()]);
    for (const bool fixed : {true, false}) {
      if (!fixed && (!own_stop || n != counts.front())) continue;
      unlearn::RelearnOptions on = o;
      on.eval_batch = stacked_eval_batch;
      if (fixed) on.stop = "none", on.steps = fixed_steps;
      // On CUDA also the batched pass with its kernels launched one by one instead of as a CUDA graph.
      const bool graphs = device.is_cuda();
      std::vector<double> batched_s, sequential_s, eager_s;
      std::vector<unlearn::RelearnResult> batched, sequential, eager;
      auto relearn_all = [&](unlearn::RelearnMode mode, bool cuda_graph) {
        unlearn::RelearnOptions x = on;
        x.cuda_graph = cuda_graph;
        return unlearn::relearn(s.spec, starts, d, data::fashion_mnist_normalization(), x, t, device, mode);
      };
      for (int r = 0; r < repeats; ++r) {
        batched_s.push_back(seconds_of([&] { batched = relearn_all(unlearn::RelearnMode::batched, true); }));
        sequential_s.push_back(seconds_of([&] { sequential = relearn_all(unlearn::RelearnMode::sequential, true); }));
        if (graphs) eager_s.push_back(seconds_of([&] { eager = relearn_all(unlearn::RelearnMode::batched, false); }));
      }
      // The stacked pass is bitwise the single models' on the CPU; on CUDA its kernels differ, so
      // only the steps are compared. A graph replays its eager kernels: bitwise everywhere.
      const bool equal = same(batched, sequential, !device.is_cuda());
      const bool graph_equal = !graphs || same(batched, eager, true);
      all_same = all_same && equal && graph_equal;
      fmt::print("N = {:>2}, {:<28}: batched {:7.2f} s, one by one {:7.2f} s: {:.2f}x ({})\n", n,
                 fixed ? fmt::format("{} steps each", on.steps) : std::string("each to its own stop"),
                 median(batched_s), median(sequential_s), median(sequential_s) / median(batched_s),
                 equal ? (device.is_cuda() ? "same steps" : "bitwise equal") : "DIFFERENT");
      if (graphs)
        fmt::print("        batched, CUDA graph {:7.2f} s, kernel by kernel {:7.2f} s: {:.2f}x ({})\n", median(batched_s),
                   median(eager_s), median(eager_s) / median(batched_s), graph_equal ? "bitwise equal" : "DIFFERENT");
    }
  }
  return all_same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return bench::run_main("lethe-bench-relearn", run, argc, argv); }
