#include "nn/train.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/json.h"
#include "engine/ops.h"

namespace lethe::nn {

void Recipe::validate() const {
  auto check = [](bool ok, const char* field, auto value, const char* want) {
    LETHE_CHECK(ok, "recipe", field, " = ", value, ": ", want);
  };
  check(limit >= 0, "limit", limit, "must be non-negative (0: all)");
  check(epochs > 0, "epochs", epochs, "must be positive");
  check(batch > 0, "batch", batch, "must be positive");
  check(optimizer == "sgd" || optimizer == "adamw", "optimizer", optimizer, "must be sgd or adamw");
  check(lr >= 0 && std::isfinite(lr), "lr", lr, "must be finite and non-negative");
  check(momentum >= 0 && momentum < 1, "momentum", momentum, "must be in [0, 1)");
  check(!nesterov || momentum > 0, "nesterov", nesterov, "needs momentum > 0");
  check(weight_decay >= 0, "weight-decay", weight_decay, "must be non-negative");
  check(beta1 >= 0 && beta1 < 1, "beta1", beta1, "must be in [0, 1)");
  check(beta2 >= 0 && beta2 < 1, "beta2", beta2, "must be in [0, 1)");
  check(eps > 0, "eps", eps, "must be positive");
  parse_schedule(schedule);
  check(warmup_steps >= 0, "warmup-steps", warmup_steps, "must be non-negative");
  check(schedule != "step" || step_size > 0, "step-size", step_size, "must be positive for the step schedule");
  check(gamma > 0, "gamma", gamma, "must be positive");
  check(clip_norm >= 0, "clip-norm", clip_norm, "must be non-negative (0: off)");
  check(crop_padding >= 0, "crop-padding", crop_padding, "must be non-negative");
}

#define LETHE_RECIPE_FIELDS(X)                                                                      \
  X(limit, "limit") X(epochs, "epochs") X(batch, "batch") X(optimizer, "optimizer") X(lr, "lr") X(momentum, "momentum") \
  X(nesterov, "nesterov") X(weight_decay, "weight-decay")                                           \
  X(decoupled_weight_decay, "decoupled-weight-decay") X(beta1, "beta1") X(beta2, "beta2") X(eps, "eps") \
  X(schedule, "schedule") X(warmup_steps, "warmup-steps") X(step_size, "step-size") X(gamma, "gamma")  \
  X(clip_norm, "clip-norm") X(crop_padding, "crop-padding") X(horizontal_flip, "horizontal-flip")

void to_json(nlohmann::json& j, const Recipe& r) {
  j = nlohmann::json::object();
#define LETHE_TO_JSON(field, key) j[key] = r.field;
  LETHE_RECIPE_FIELDS(LETHE_TO_JSON)
#undef LETHE_TO_JSON
}

namespace {
// One field of a recipe read from JSON (a checkpoint's metadata): of the field's type, integers in
// its range (nlohmann's get<> would convert fractions and out-of-range numbers unchecked).
template <class T>
void read_field(const nlohmann::json& value, const char* key, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    LETHE_CHECK(value.is_boolean(), "recipe", key, " must be true or false, got ", json_excerpt(value));
    out = value.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    out = static_cast<T>(json_int(value, std::string("recipe: ") + key, std::numeric_limits<T>::min(),
                                  std::numeric_limits<T>::max()));
  } else if constexpr (std::is_floating_point_v<T>) {
    LETHE_CHECK(value.is_number(), "recipe", key, " must be a number, got ", json_excerpt(value));
    out = value.get<T>();
  } else {
    LETHE_CHECK(value.is_string(), "recipe", key, " must be a string, got ", json_excerpt(value));
    out = value.get<std::string>();
  }
}
}  // namespace

void from_json(const nlohmann::json& j, Recipe& r) {
  LETHE_CHECK(j.is_object(), "recipe", "expected a JSON object, got ", json_excerpt(j));
#define LETHE_FROM_JSON(field, key) \
  if (j.contains(key)) read_field(j.at(key), key, r.field);
  LETHE_RECIPE_FIELDS(LETHE_FROM_JSON)
#undef LETHE_FROM_JSON
}

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
    const Tensor loss = cross_entropy(model_.forward(batch.images), batch.labels);
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

Evaluation evaluate(Model& model, data::DataLoader& loader) {
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
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
          {"accuracy", e.accuracy},
          {"mean_loss", e.mean_loss},
          {"class_accuracy", per_class},
          {"confusion", confusion}};
}

}  // namespace lethe::nn
