#include "nn/train.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "nn/generative.h"
#include "nn/option_json.h"

namespace lethe::nn {

const OptionTable<Recipe>& recipe_options() {
  static const OptionTable<Recipe> table = {
      {"limit", &Recipe::limit, "train on the first N training images only (0: all)", integer_in(0, kMaxCount)},
      {"epochs", &Recipe::epochs, "training epochs", integer_in(1, 1000000)},
      {"batch", &Recipe::batch, "batch size", integer_in(1, 1 << 20)},
      {"optimizer", &Recipe::optimizer, "sgd or adamw", {}, {"sgd", "adamw"}},
      {"lr", &Recipe::lr, "peak learning rate", real_in(0, 1e6)},
      {"momentum", &Recipe::momentum, "SGD momentum", unit_open()},
      {"nesterov", &Recipe::nesterov, "SGD with Nesterov momentum", Initial::flag},
      {"weight-decay", &Recipe::weight_decay, "weight decay", real_in(0, 100)},
      {"decoupled-weight-decay", &Recipe::decoupled_weight_decay,
       "SGD: decay the weights directly (θ ← (1 − lr·λ)θ) instead of adding λθ to the gradient", Initial::flag},
      {"beta1", &Recipe::beta1, "AdamW β1", unit_open()},
      {"beta2", &Recipe::beta2, "AdamW β2", unit_open()},
      {"eps", &Recipe::eps, "AdamW ε", positive_up_to(1)},
      {"schedule", &Recipe::schedule, "constant, step or cosine (per step, to 0)", {}, {"constant", "step", "cosine"}},
      {"warmup-steps", &Recipe::warmup_steps, "linear warm-up steps", integer_in(0, kMaxCount)},
      {"step-size", &Recipe::step_size, "step schedule: steps between decays", integer_in(1, kMaxCount), {},
       Initial::placeholder},
      {"gamma", &Recipe::gamma, "step schedule: decay factor", positive_up_to(1000)},
      {"clip-norm", &Recipe::clip_norm, "clip gradients to this global L2 norm (0: off)", real_in(0, 1e9)},
      {"crop-padding", &Recipe::crop_padding, "random-crop augmentation padding (0: off)", integer_in(0, 64)},
      {"horizontal-flip", &Recipe::horizontal_flip, "random horizontal-flip augmentation", Initial::flag},
  };
  return table;
}

void Recipe::validate() const {
  auto check = [this](auto field, bool ok, const char* want) {
    LETHE_CHECK(ok, "recipe", option_name(recipe_options(), field), " = ", this->*field, ": ", want);
  };
  check(&Recipe::limit, limit >= 0, "must be non-negative (0: all)");
  check(&Recipe::epochs, epochs > 0, "must be positive");
  check(&Recipe::batch, batch > 0, "must be positive");
  check(&Recipe::optimizer, optimizer == "sgd" || optimizer == "adamw", "must be sgd or adamw");
  check(&Recipe::lr, lr >= 0 && std::isfinite(lr), "must be finite and non-negative");
  check(&Recipe::momentum, momentum >= 0 && momentum < 1, "must be in [0, 1)");
  check(&Recipe::nesterov, !nesterov || momentum > 0, "needs momentum > 0");
  check(&Recipe::weight_decay, weight_decay >= 0, "must be non-negative");
  check(&Recipe::beta1, beta1 >= 0 && beta1 < 1, "must be in [0, 1)");
  check(&Recipe::beta2, beta2 >= 0 && beta2 < 1, "must be in [0, 1)");
  check(&Recipe::eps, eps > 0, "must be positive");
  parse_schedule(schedule);
  check(&Recipe::warmup_steps, warmup_steps >= 0, "must be non-negative");
  check(&Recipe::step_size, schedule != "step" || step_size > 0, "must be positive for the step schedule");
  check(&Recipe::gamma, gamma > 0, "must be positive");
  check(&Recipe::clip_norm, clip_norm >= 0, "must be non-negative (0: off)");
  check(&Recipe::crop_padding, crop_padding >= 0, "must be non-negative");
}

void to_json(nlohmann::json& j, const Recipe& r) { j = options_json(r, recipe_options(), JsonKeys::flag); }

void from_json(const nlohmann::json& j, Recipe& r) { read_options_json(j, r, recipe_options(), JsonKeys::flag, "recipe"); }

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, const ParamArena& arena) {
  if (r.optimizer == "adamw") {
    AdamWOptions o;
    o.lr = r.lr;
    o.beta1 = r.beta1;
    o.beta2 = r.beta2;
    o.eps = r.eps;
    o.weight_decay = r.weight_decay;
    return make_adamw(arena, o);
  }
  LETHE_CHECK(r.optimizer == "sgd", "recipe", "unknown optimizer '", r.optimizer, "' (sgd, adamw)");
  SgdOptions o;
  o.lr = r.lr;
  o.momentum = r.momentum;
  o.nesterov = r.nesterov;
  o.weight_decay = r.weight_decay;
  o.decoupled_weight_decay = r.decoupled_weight_decay;
  return make_sgd(arena, o);
}

Schedule make_schedule(const Recipe& r, int64_t total_steps) {
  Schedule s;
  s.kind = parse_schedule(r.schedule);
  s.base_lr = r.lr;
  s.total_steps = total_steps;
  s.warmup_steps = r.warmup_steps;
  s.step_size = r.step_size;
  s.gamma = r.gamma;
  return s;
}

Trainer::Trainer(Model& model, const Recipe& recipe, data::DataLoader& loader)
    : model_(model),
      recipe_(recipe),
      loader_(loader),
      optimizer_((recipe.validate(), make_optimizer(recipe, model.arena()))),
      total_steps_(recipe.epochs * loader.batches_per_epoch()),
      schedule_(make_schedule(recipe, total_steps_)) {}

double Trainer::run_epoch(int64_t epoch, const std::function<void(int64_t, const Tensor&)>& on_step) {
  model_.train();
  ParamArena& arena = model_.arena();
  Tensor loss_sum = Tensor::zeros({}, DType::f64, model_.device());  // on the device: no sync per step
  int64_t seen = 0;
  for (int64_t i = 0; i < loader_.batches_per_epoch(); ++i, ++step_) {
    const data::Batch batch = loader_.batch(epoch, i);
    arena.zero_grad(0);
    const Tensor loss = training_loss(model_, batch, static_cast<uint64_t>(step_));
    loss.backward();
    if (recipe_.clip_norm > 0) clip_grad_norm(arena, 0, recipe_.clip_norm);
    optimizer_->set_lr(schedule_.lr_at(step_));
    optimizer_->step(0);
    const int64_t b = batch.labels.numel();
    loss_sum.add_(loss.detach().to(DType::f64), static_cast<double>(b));
    seen += b;
    if (on_step) on_step(i, loss);
  }
  const double mean = loss_sum.item() / static_cast<double>(std::max<int64_t>(seen, 1));
  LETHE_CHECK(std::isfinite(mean), "train", "the mean training loss of epoch ", epoch + 1, " is not finite (", mean,
              "): diverged, or NaN/Inf in the data; stopping before anything of this epoch is saved");
  return mean;
}

Tensor training_loss(Model& model, const data::Batch& batch, uint64_t stream) {
  if (Generator* g = model.generator()) return mean(g->loss(batch.images, batch.labels, draw_seed(model.seed()), stream));
  return cross_entropy(model.forward(batch.images), batch.labels);
}

namespace {

// A generator's test loss: the mean of its per-image loss, batch i's draws from stream i.
Evaluation evaluate_generator(Model& model, data::DataLoader& loader) {
  Evaluation e;
  e.accuracy = std::numeric_limits<double>::quiet_NaN();
  Tensor loss_sum = Tensor::zeros({}, DType::f64, model.device());
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    const data::Batch batch = loader.batch(0, i);
    const Tensor loss = model.generator()->loss(batch.images, batch.labels, draw_seed(model.seed()), static_cast<uint64_t>(i));
    loss_sum.add_(sum(loss).to(DType::f64));
    e.count += batch.labels.numel();
  }
  e.mean_loss = loss_sum.item() / static_cast<double>(std::max<int64_t>(e.count, 1));
  return e;
}

}  // namespace

Evaluation evaluate(Model& model, data::DataLoader& loader) {
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
  if (model.generator() != nullptr) {
    Evaluation e = evaluate_generator(model, loader);
    model.train(was_training);
    return e;
  }
  Evaluation e;
  e.classes = model.spec().classes;
  e.confusion.assign(static_cast<size_t>(e.classes * e.classes), 0);
  Tensor loss_sum = Tensor::zeros({}, DType::f64, model.device());
  CrossEntropyOptions sum_loss;
  sum_loss.reduction = Reduction::sum;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    const data::Batch batch = loader.batch(0, i);
    const Tensor logits = model.forward(batch.images);
    loss_sum.add_(cross_entropy(logits, batch.labels, sum_loss).to(DType::f64));
    const std::vector<int64_t> predicted = argmax(logits, 1).to_vector<int64_t>();
    const std::vector<int64_t> truth = batch.labels.to_vector<int64_t>();
    for (size_t k = 0; k < truth.size(); ++k) ++e.confusion[static_cast<size_t>(truth[k] * e.classes + predicted[k])];
    e.count += static_cast<int64_t>(truth.size());
  }
  model.train(was_training);
  int64_t correct = 0;
  for (int64_t c = 0; c < e.classes; ++c) {
    int64_t in_class = 0;
    for (int64_t p = 0; p < e.classes; ++p) in_class += e.confusion[static_cast<size_t>(c * e.classes + p)];
    const int64_t hits = e.confusion[static_cast<size_t>(c * e.classes + c)];
    correct += hits;
    e.class_accuracy.push_back(in_class > 0 ? static_cast<double>(hits) / static_cast<double>(in_class)
                                            : std::numeric_limits<double>::quiet_NaN());
  }
  const double n = static_cast<double>(std::max<int64_t>(e.count, 1));
  e.accuracy = static_cast<double>(correct) / n;
  e.mean_loss = loss_sum.item() / n;
  return e;
}

nlohmann::json to_json(const Evaluation& e) {
  nlohmann::json per_class = nlohmann::json::array();
  for (double a : e.class_accuracy) per_class.push_back(std::isnan(a) ? nlohmann::json() : nlohmann::json(a));
  nlohmann::json confusion = nlohmann::json::array();
  for (int64_t c = 0; c < e.classes; ++c)
    confusion.push_back(std::vector<int64_t>(e.confusion.begin() + c * e.classes,
                                             e.confusion.begin() + (c + 1) * e.classes));
  return {{"count", e.count},
          {"accuracy", std::isnan(e.accuracy) ? nlohmann::json() : nlohmann::json(e.accuracy)},
          {"mean_loss", e.mean_loss},
          {"class_accuracy", per_class},
          {"confusion", confusion}};
}

}  // namespace lethe::nn
