#pragma once
// Supervised training and evaluation of a Model: the recipe (optimizer, schedule, batch, epochs),
// one epoch of steps, and the evaluation metrics. `lethe train`, retraining and fine-tuning
// baselines all run through here.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/loader.h"
#include "nn/models.h"
#include "nn/option_table.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace lethe::nn {

// Everything that decides a training run besides the model, the data and the seed. Each field is
// declared in recipe_options(): its flag, TOML key and checkpoint-metadata key.
struct Recipe {
  int64_t limit = 0;  // train on the first `limit` images only (0: all); for smoke tests
  int64_t epochs = 4;
  int64_t batch = 128;
  std::string optimizer = "sgd";  // sgd | adamw
  double lr = 0.05;
  double momentum = 0.9;  // SGD
  bool nesterov = false;
  double weight_decay = 5e-4;
  bool decoupled_weight_decay = false;  // SGD; AdamW's is always decoupled
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // AdamW
  std::string schedule = "cosine";  // constant | step | cosine (per step, to 0)
  int64_t warmup_steps = 0;
  int64_t step_size = 0;  // step schedule: steps between decays
  double gamma = 0.1;
  double clip_norm = 0;  // 0: no clipping
  int crop_padding = 0;
  bool horizontal_flip = false;

  void validate() const;  // throws lethe::Error naming the bad field
};
const OptionTable<Recipe>& recipe_options();
// Checkpoint metadata: the keys are the flag names (JsonKeys::flag).
void to_json(nlohmann::json& j, const Recipe& r);
void from_json(const nlohmann::json& j, Recipe& r);

std::unique_ptr<Optimizer> make_optimizer(const Recipe& recipe, const ParamArena& arena);
Schedule make_schedule(const Recipe& recipe, int64_t total_steps);

// Runs steps of a recipe over a loader. The step counter (and so the learning rate) continues
// across epochs and across a checkpoint resume.
class Trainer {
 public:
  Trainer(Model& model, const Recipe& recipe, data::DataLoader& loader);

  // One epoch: for each batch, forward, training_loss, backward, optional clipping, one fused
  // optimizer step. `on_step(i, loss)` sees the batch index and the loss (a device scalar: reading
  // it synchronises, so callers read it only now and then). Returns the epoch's mean training
  // loss; throws lethe::Error when it is not finite (diverged, or NaN/Inf in the data).
  double run_epoch(int64_t epoch, const std::function<void(int64_t, const Tensor&)>& on_step = {});

  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  Optimizer& optimizer() { return *optimizer_; }
  const Schedule& schedule() const { return schedule_; }
  // After loading optimizer state: continue from its step count.
  void sync_step() { step_ = optimizer_->steps(); }

 private:
  Model& model_;
  Recipe recipe_;
  data::DataLoader& loader_;
  std::unique_ptr<Optimizer> optimizer_;
  int64_t total_steps_;
  Schedule schedule_;
  int64_t step_ = 0;
};

// The mean training loss of a batch: the cross-entropy of a classifier, or the mean per-image loss
// of a generator (nn/generative.h) with its draws from Philox (draw_seed(model seed), stream).
Tensor training_loss(Model& model, const data::Batch& batch, uint64_t stream);

struct Evaluation {
  int64_t count = 0;
  double accuracy = 0;   // fraction in [0, 1]; NaN for a generator (null in JSON)
  double mean_loss = 0;  // cross-entropy, or a generator's loss (negative ELBO, denoising error)
  std::vector<double> class_accuracy;  // per true class; NaN for a class with no samples
  std::vector<int64_t> confusion;      // [classes × classes], row = true class, column = prediction
  int64_t classes = 0;
};
// Eval mode, no autograd; the model's train/eval mode is restored afterwards.
Evaluation evaluate(Model& model, data::DataLoader& loader);
nlohmann::json to_json(const Evaluation& e);

}  // namespace lethe::nn
