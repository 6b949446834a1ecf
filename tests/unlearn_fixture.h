#pragma once
// The tiny unlearning task the method tests share (test_unlearn_methods.cpp,
// test_method_behaviour.cpp): the band task, an original checkpoint with a recipe, and a method
// run on a split of it.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "nn/checkpoint.h"
#include "nn/data/fashion_mnist.h"
#include "unlearn/method.h"

namespace lethe::test {

inline constexpr int64_t kSize = 8, kClasses = 4;

inline std::shared_ptr<const data::Dataset> task(int64_t n = 160) { return band_task(n, kSize, kClasses); }

// An untrained model (init seed 3) with the recipe retrain reuses: 1 epoch of batch 32.
inline nn::Checkpoint original_checkpoint(const std::string& model = "mlp") {
  nn::Checkpoint c;
  c.info.model = {model, 1, kSize, kClasses};
  c.info.seed = 3;
  nn::Recipe r;
  r.epochs = 1;
  r.batch = 32;
  r.lr = 0.05;
  c.info.recipe = r;
  nn::Model m(c.info.model, c.info.seed, Device::cpu());
  c.model_state = m.net().state_dict();
  return c;
}

// What a method runs on: the training set, a split of it and the original.
struct MethodCase {
  std::shared_ptr<const data::Dataset> train;
  unlearn::Split split;
  nn::Checkpoint original;

  data::Subset retain() const { return {train, split.retain}; }
  data::Subset forget() const { return {train, split.forget}; }
};

inline MethodCase method_case(const std::string& model = "mlp", const std::string& scenario = "random:0.25") {
  auto train = task();
  unlearn::Split split = make_split(unlearn::parse_scenario(scenario), *train, kClasses, 0);
  return {std::move(train), std::move(split), original_checkpoint(model)};
}

struct Outcome {
  std::vector<float> weights;  // the arena's
  nlohmann::json details;
};

inline Outcome run_method(const std::string& name, unlearn::MethodOptions options, const MethodCase& c,
                          unlearn::MethodRun::Observe observe = {}) {
  const unlearn::Method& method = unlearn::find_method(name);
  nn::Model m = nn::load_model(c.original, Device::cpu(), method.grad_buffers);
  options.resolve(c.split.scenario);
  unlearn::MethodRun run{m, c.original, c.train, c.split, data::fashion_mnist_normalization(), options, {},
                         std::move(observe)};
  Outcome out;
  out.details = method.run(run);
  out.weights = m.arena().data().to_vector<float>();
  return out;
}

inline Outcome run_method(const std::string& name, const unlearn::MethodOptions& options,
                          const std::string& model = "mlp", const std::string& scenario = "random:0.25") {
  return run_method(name, options, method_case(model, scenario));
}

}  // namespace lethe::test
