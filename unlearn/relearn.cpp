#include "unlearn/relearn.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/cuda_graph.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "nn/data/loader.h"
#include "nn/generative.h"
#include "nn/optim.h"
#include "nn/stacked.h"
#include "unlearn/generative_metrics.h"
#include "unlearn/metrics.h"
#include "unlearn/stats.h"

namespace lethe::unlearn {

namespace {

constexpr uint64_t kForgetSampleStream = uint64_t{5} << 32;
constexpr uint64_t kRetainSampleStream = kForgetSampleStream + 1;
// A generator's draws while relearning: its steps' (stream = the step) and its evaluations' (stream =
// the forget batch), each seed apart from the other draws' and from training's.
constexpr uint64_t kGeneratorStepSeed = 0x7265'6c65'6172'6e31ull, kGeneratorEvalSeed = kGeneratorStepSeed + 1;

// `k` of `indices` (at most all of them) drawn with Philox (seed, stream), in ascending order. The
// first k of one permutation: a smaller k draws a subset of a larger one.
std::vector<int64_t> take(const std::vector<int64_t>& indices, int64_t k, uint64_t seed, uint64_t stream) {
  const auto n = static_cast<int64_t>(indices.size());
  k = std::clamp<int64_t>(k, 0, n);
  const std::vector<int64_t> order = data::permutation(n, seed, stream);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) out.push_back(indices[static_cast<size_t>(order[static_cast<size_t>(i)])]);
  std::sort(out.begin(), out.end());
  return out;
}

// `count` of `indices`: < 1 a fraction, ≥ 1 a count.
std::vector<int64_t> sample(const std::vector<int64_t>& indices, double count, uint64_t seed, uint64_t stream) {
  const auto n = static_cast<double>(indices.size());
  return take(indices, count < 1 ? std::llround(count * n) : static_cast<int64_t>(count), seed, stream);
}

// Every label a relearning run reads, checked once up front: the steps then skip the per-call
// check, which on CUDA waits for the GPU and under a CUDA graph cannot run at all (a bad label
// would become a NaN loss, reported as divergence instead of an error).
// A data set's labels as int64 on the host.
Tensor host_labels(const data::Dataset& d) { return d.labels.to(Device::cpu()).to(DType::i64).contiguous(); }

// The first `limit` images (in order; 0: all) whose label is among `classes` (`among`) or not.
std::vector<int64_t> images_by_class(const data::Dataset& d, const std::vector<int64_t>& classes, bool among,
                                     int64_t limit) {
  const Tensor labels = host_labels(d);
  const int64_t* l = labels.data<int64_t>();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < labels.numel() && (limit == 0 || static_cast<int64_t>(out.size()) < limit); ++i)
    if ((std::find(classes.begin(), classes.end(), l[i]) != classes.end()) == among) out.push_back(i);
  return out;
}

void check_labels(const data::Subset& s, int64_t classes, const char* what) {
  const Tensor labels = host_labels(*s.base);
  const int64_t* l = labels.data<int64_t>();
  for (const int64_t i : s.indices) {
    LETHE_CHECK(i >= 0 && i < labels.numel(), "relearn", what, " sample ", i, " is outside the data set (", labels.numel(),
                " samples)");
    LETHE_CHECK(l[i] >= 0 && l[i] < classes, "relearn", what, " sample ", i, " has label ", l[i], ", outside [0, ",
                classes, ") of the model");
  }
}

// ---- evaluation of the forget set

// The forget set's batches, normalised once and kept: every evaluation point reads them again.
struct EvalSet {
  std::vector<Tensor> images;
  std::vector<std::vector<int64_t>> labels;
};
EvalSet eval_set(const data::Subset& forget, const data::Normalization& normalization, int64_t batch, Device device) {
  if (forget.indices.empty()) return {};  // no held-out set: no calibration
  data::DataLoader loader = data::evaluation_loader(forget, batch, normalization, device);
  EvalSet s;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    data::Batch batch_b = loader.batch(0, b);
    s.images.push_back(batch_b.images);
    s.labels.push_back(batch_b.labels.to_vector<int64_t>());
  }
  return s;
}

// What one evaluation reads of one model: its forget-set scores and, with a held-out set, the
// logits of both sets (float64, row-major) for the temperature.
struct PointScores {
  SampleScores forget;
  std::vector<double> forget_logits, heldout_logits;
  std::vector<int64_t> heldout_labels;
  int64_t classes = 0;
};

void append_logits(std::vector<double>& out, const Tensor& logits) {
  const std::vector<double> v = logits.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  out.insert(out.end(), v.begin(), v.end());
}

// One batch of model outputs into its scores. `calibrate`: keep the logits too.
void add_forget(PointScores& s, const Tensor& logits, const std::vector<int64_t>& labels, bool calibrate) {
  append_scores(s.forget, logits, labels);
  s.classes = logits.size(1);
  if (calibrate) append_logits(s.forget_logits, logits);
}
void add_heldout(PointScores& s, const Tensor& logits, const std::vector<int64_t>& labels) {
  append_logits(s.heldout_logits, logits);
  s.heldout_labels.insert(s.heldout_labels.end(), labels.begin(), labels.end());
}

// A model's forget accuracy and loss from its scores: the arithmetic of every other FA and loss
// figure (unlearn/metrics), so they do not depend on which path measured them. With held-out
// logits, the temperature fitted there and the forget loss at it.
ForgetMetrics forget_metrics_of(const PointScores& s) {
  ForgetMetrics m{accuracy(s.forget), mean_loss(s.forget)};
  if (s.heldout_labels.empty()) return m;
  if (!std::isfinite(m.loss)) {  // diverged: nothing to calibrate
    m.temperature = m.calibrated_loss = m.heldout_loss = std::nan("");
    return m;
  }
  m.temperature = stats::fit_temperature(s.heldout_logits, s.classes, s.heldout_labels);
  m.calibrated_loss = stats::temperature_nll(s.forget_logits, s.classes, s.forget.labels, m.temperature);
  m.heldout_loss = stats::temperature_nll(s.heldout_logits, s.classes, s.heldout_labels, 1);
  return m;
}

double l2_distance(const Tensor& a, const Tensor& b) {
  // Widened first (exact for float32), so float32 and float64 models are measured alike.
  const std::vector<double> x = a.to(Device::cpu()).to(DType::f64).to_vector<double>(),
                            y = b.to(Device::cpu()).to(DType::f64).to_vector<double>();
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - y[i];
    sum += d * d;
  }
  return std::sqrt(sum);
}

// ---- the models being relearned

using OptimizerState = std::vector<std::pair<std::string, Tensor>>;

// One model mid-relearning: its state dict, its optimizer's state (empty: a fresh optimizer), and
// its starting parameters as a flat single-model arena (for the distance).
struct ModelState {
  NamedTensors weights;
  OptimizerState optimizer;
  Tensor start;
};

// (Also for optimizer state: the same type.)
NamedTensors cloned(const NamedTensors& s) {
  NamedTensors out;
  for (const auto& [name, t] : s) out.emplace_back(name, t.clone());
  return out;
}

std::unique_ptr<nn::Optimizer> make_optimizer(const ParamArena& arena, const RelearnOptions& o) {
  if (o.optimizer == "adam") {
    nn::AdamWOptions a;
    a.lr = o.lr;
    a.weight_decay = o.weight_decay;
    return nn::make_adamw(arena, a);
  }
  nn::SgdOptions s;
  s.lr = o.lr;
  s.momentum = o.momentum;
  s.weight_decay = o.weight_decay;
  return nn::make_sgd(arena, s);
}

// Runs a relearning step eagerly or, on CUDA, as a CUDA graph: the first step of each batch size
// runs eagerly as the warm-up a capture needs (it picks the cuDNN algorithms of that shape, which
// a capture refuses to do, loads the kernels and warms the allocator; the library handles are
// made by the capture itself, before it begins), then the step is captured on a copy of the
// batch and replayed on copies of the later batches. A replay runs the eager step's kernels, so
// the results are the same bit for bit. A captured step checks no labels (that would read back
// to the host): relearn() checks every label of the data set once, before the first step.
class StepRunner {
 public:
  using Step = std::function<void(const Tensor& images, const Tensor& labels)>;
  StepRunner(Device device, bool graphs, Step step)
      : device_(device), graphs_(graphs && device.is_cuda()), step_(std::move(step)) {}

  void operator()(const data::Batch& batch) {
    if (!graphs_) return step_(batch.images, batch.labels);
    Captured& c = by_size_[batch.images.size(0)];  // an epoch's last batch may be smaller
    if (!c.images.defined()) {
      c.images = batch.images.clone();
      c.labels = batch.labels.clone();
      return step_(c.images, c.labels);
    }
    c.images.copy_(batch.images);
    c.labels.copy_(batch.labels);
    if (c.graph == nullptr) c.graph = std::make_unique<CudaGraph>(device_.index, [&] { step_(c.images, c.labels); });
    c.graph->launch();
  }

 private:
  struct Captured {
    Tensor images, labels;  // the graph's inputs: fixed addresses
    std::unique_ptr<CudaGraph> graph;
  };
  Device device_;
  bool graphs_;
  Step step_;
  std::map<int64_t, Captured> by_size_;
};

// A set of models taking relearning steps in lockstep on one batch stream.
class Learners {
 public:
  virtual ~Learners() = default;
  virtual int64_t size() const = 0;
  virtual void step(const data::Batch& batch, int64_t step) = 0;  // `step`: the relearning step it takes (from 0)
  // The forget set's metrics of every learner; calibrated on `heldout` when it has batches.
  virtual std::vector<ForgetMetrics> evaluate(const EvalSet& forget, const EvalSet& heldout) = 0;
  virtual std::vector<double> distances() const = 0;
  virtual std::vector<ModelState> states() const = 0;
  virtual NamedTensors parameters(size_t j) const = 0;  // learner j's, named as the single model's
  // Whether any subset of the learners, rebuilt from their states, steps bitwise as they do here.
  // True one by one. Not for a stack: on CUDA its size is in every grouped-convolution and
  // batched-GEMM shape, and cuDNN and cuBLAS pick algorithms (summation orders) by shape. (On the
  // CPU a stack is bitwise its models anyway; one rule for both devices lets the CPU tests run
  // the path CUDA takes.)
  virtual bool independent() const = 0;
};
using LearnersFactory = std::function<std::unique_ptr<Learners>(const std::vector<ModelState>&)>;

// A generator's forget metrics (GeneratorJudge): the fidelity of its samples, and its mean loss over
// the forget images, batch b's draws from stream b.
ForgetMetrics generator_forget_metrics(nn::Model& model, const EvalSet& forget, const GeneratorJudge& by) {
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
  nn::Generator& g = *model.generator();
  double total = 0;
  int64_t count = 0;
  for (size_t b = 0; b < forget.images.size(); ++b) {
    const auto n = static_cast<int64_t>(forget.labels[b].size());
    const Tensor labels = Tensor::from_vector(forget.labels[b], {n}).to(model.device());
    total += sum(g.loss(forget.images[b].to(model.spec().dtype), labels, kGeneratorEvalSeed, b)).to(DType::f64).item();
    count += n;
  }
  const JudgedSamples judged = judge_samples(model, *by.evaluator, by.labels, by.seed, by.normalization);
  model.train(was_training);
  ForgetMetrics m;
  m.accuracy = static_cast<double>(judged.fidelity.hits) / static_cast<double>(by.labels.size());
  m.loss = total / static_cast<double>(std::max<int64_t>(count, 1));
  return m;
}

// Each model on its own, through the ordinary path: nn::Model, cross_entropy (a generator's loss),
// backward, step.
class SequentialLearners final : public Learners {
 public:
  SequentialLearners(const nn::ModelSpec& spec, const std::vector<ModelState>& states, Device device,
                     const RelearnOptions& o, const GeneratorJudge* judge)
      : options_(o), judge_(judge), step_(device, o.cuda_graph, [this](const Tensor& images, const Tensor& labels) {
          for (One& m : models_) {
            m.model->train(options_.bn == "train");
            m.model->arena().zero_grad(0);
            CrossEntropyOptions ce;
            ce.labels_checked = true;  // relearn() checked the data set's
            cross_entropy(m.model->forward(images), labels, ce).backward();
            m.optimizer->step(0);
          }
        }) {
    for (const ModelState& s : states) {
      One one{std::make_unique<nn::Model>(spec, 0, device), nullptr, s.start};
      one.model->net().load_state_dict(s.weights);
      one.optimizer = make_optimizer(one.model->arena(), o);
      if (!s.optimizer.empty()) one.optimizer->load_state(s.optimizer);
      models_.push_back(std::move(one));
    }
  }
  int64_t size() const override { return static_cast<int64_t>(models_.size()); }

  void step(const data::Batch& batch, int64_t step) override {
    if (judge_ == nullptr) return step_(batch);
    for (One& m : models_) {  // a generator: its draws keyed by the step (no CUDA graph: they change)
      m.model->train(options_.bn == "train");
      m.model->arena().zero_grad(0);
      mean(m.model->generator()->loss(batch.images.to(m.model->spec().dtype), batch.labels, kGeneratorStepSeed,
                                      static_cast<uint64_t>(step)))
          .backward();
      m.optimizer->step(0);
    }
  }

  std::vector<ForgetMetrics> evaluate(const EvalSet& forget, const EvalSet& heldout) override {
    if (judge_ != nullptr) {
      std::vector<ForgetMetrics> out;
      for (One& m : models_) out.push_back(generator_forget_metrics(*m.model, forget, *judge_));
      return out;
    }
    NoGradGuard no_grad;
    const bool calibrate = !heldout.images.empty();
    std::vector<ForgetMetrics> out;
    for (One& m : models_) {
      m.model->eval();
      PointScores scores;
      for (size_t b = 0; b < forget.images.size(); ++b)
        add_forget(scores, m.model->forward(forget.images[b]), forget.labels[b], calibrate);
      for (size_t b = 0; b < heldout.images.size(); ++b)
        add_heldout(scores, m.model->forward(heldout.images[b]), heldout.labels[b]);
      out.push_back(forget_metrics_of(scores));
    }
    return out;
  }

  std::vector<double> distances() const override {
    std::vector<double> out;
    for (const One& m : models_) out.push_back(l2_distance(m.model->arena().data(), m.start));
    return out;
  }

  std::vector<ModelState> states() const override {
    std::vector<ModelState> out;
    for (const One& m : models_)
      out.push_back({cloned(m.model->net().state_dict()), cloned(m.optimizer->state()), m.start});
    return out;
  }

  NamedTensors parameters(size_t j) const override { return models_.at(j).model->net().named_parameters(); }
  bool independent() const override { return true; }

 private:
  struct One {
    std::unique_ptr<nn::Model> model;
    std::unique_ptr<nn::Optimizer> optimizer;
    Tensor start;
  };
  RelearnOptions options_;
  const GeneratorJudge* judge_;  // null for a classifier
  std::vector<One> models_;
  StepRunner step_;  // last: its graphs go before the tensors they use
};

// All models stacked into one network (nn::StackedModel): one grouped-conv / batched-GEMM pass
// per step, and one optimizer step over the stacked arena.
class StackedLearners final : public Learners {
 public:
  StackedLearners(const nn::ModelSpec& spec, const std::vector<ModelState>& states, Device device,
                  const RelearnOptions& o)
      : options_(o),
        model_(spec, weights_of(states), device),
        step_(device, o.cuda_graph, [this](const Tensor& images, const Tensor& labels) {
          model_.train(options_.bn == "train");
          model_.arena().zero_grad(0);
          nn::stacked_cross_entropy(model_.forward(images), labels, /*labels_checked=*/true).total.backward();
          optimizer_->step(0);
        }) {
    optimizer_ = make_optimizer(model_.arena(), o);
    for (const ModelState& s : states) starts_.push_back(s.start);
    if (!states.front().optimizer.empty()) optimizer_->load_state(stacked_optimizer(states));
  }
  int64_t size() const override { return model_.models(); }

  void step(const data::Batch& batch, int64_t) override { step_(batch); }

  std::vector<ForgetMetrics> evaluate(const EvalSet& forget, const EvalSet& heldout) override {
    NoGradGuard no_grad;
    model_.eval();
    const bool calibrate = !heldout.images.empty();
    std::vector<PointScores> scores(static_cast<size_t>(size()));
    for (size_t b = 0; b < forget.images.size(); ++b) {
      const Tensor logits = model_.forward(forget.images[b]);
      for (int64_t n = 0; n < size(); ++n)
        add_forget(scores[static_cast<size_t>(n)], logits.select(0, n), forget.labels[b], calibrate);
    }
    for (size_t b = 0; b < heldout.images.size(); ++b) {
      const Tensor logits = model_.forward(heldout.images[b]);
      for (int64_t n = 0; n < size(); ++n) add_heldout(scores[static_cast<size_t>(n)], logits.select(0, n), heldout.labels[b]);
    }
    std::vector<ForgetMetrics> out;
    for (const PointScores& s : scores) out.push_back(forget_metrics_of(s));
    return out;
  }

  std::vector<double> distances() const override {
    std::vector<double> out;
    for (int64_t n = 0; n < size(); ++n)
      out.push_back(l2_distance(model_.model_flat(model_.arena().data(), n), starts_[static_cast<size_t>(n)]));
    return out;
  }

  std::vector<ModelState> states() const override {
    const OptimizerState stacked = optimizer_->state();
    std::vector<ModelState> out;
    for (int64_t n = 0; n < size(); ++n) {
      OptimizerState own;
      for (const auto& [name, t] : stacked)  // flat buffers are split; the scalars (lr, step) are shared
        own.emplace_back(name, name == "scalars" ? t.clone() : model_.model_flat(t, n));
      out.push_back({model_.state_dict(n), std::move(own), starts_[static_cast<size_t>(n)]});
    }
    return out;
  }

  NamedTensors parameters(size_t j) const override { return model_.parameters(static_cast<int64_t>(j)); }
  bool independent() const override { return false; }

 private:
  static std::vector<NamedTensors> weights_of(const std::vector<ModelState>& states) {
    LETHE_CHECK(!states.empty(), "relearn", "no models to stack");
    std::vector<NamedTensors> out;
    for (const ModelState& s : states) out.push_back(s.weights);
    return out;
  }
  OptimizerState stacked_optimizer(const std::vector<ModelState>& states) const {
    OptimizerState out;
    const OptimizerState& first = states.front().optimizer;
    for (size_t i = 0; i < first.size(); ++i) {
      if (first[i].first == "scalars") {
        out.push_back(first[i]);
        continue;
      }
      std::vector<Tensor> parts;
      for (const ModelState& s : states) parts.push_back(s.optimizer.at(i).second);
      out.emplace_back(first[i].first, model_.stack_flat(parts));
    }
    return out;
  }

  RelearnOptions options_;
  nn::StackedModel model_;
  std::unique_ptr<nn::Optimizer> optimizer_;
  std::vector<Tensor> starts_;
  StepRunner step_;  // last: its graphs go before the tensors they use
};

// ---- the driver

// Where one model stands while relearning.
struct Tracker {
  RelearnResult result;  // result.cap: where it stops at the latest
  bool stopped = false;
  std::string stop;      // its stop rule: the run's, or "all" for an extended model
  int64_t hold_until = 0;  // no stop (but divergence) before this step: an extended model under stop none

  bool accuracy_met(const ForgetMetrics& m, const RelearnTargets& t) const {
    return !std::isnan(t.accuracy) && m.accuracy >= t.accuracy;
  }
  bool loss_met(const ForgetMetrics& m, const RelearnTargets& t) const { return !std::isnan(t.loss) && m.loss <= t.loss; }
  bool calibrated_met(const ForgetMetrics& m, const RelearnTargets& t) const {
    return !std::isnan(t.calibrated_loss) && m.calibrated_loss <= t.calibrated_loss;
  }
  // Whether this point meets a target not met before.
  bool newly_met(const ForgetMetrics& m, const RelearnTargets& t) const {
    return (result.accuracy_steps < 0 && accuracy_met(m, t)) || (result.loss_steps < 0 && loss_met(m, t)) ||
           (result.calibrated_loss_steps < 0 && calibrated_met(m, t)) || !std::isfinite(m.loss);
  }
  // Records the point and what it meets; returns whether the model stops here. (Reaching its cap
  // is the driver's to record: the cap is not an evaluation.)
  bool record(int64_t step, const ForgetMetrics& m, double distance, const RelearnTargets& t) {
    result.curve.push_back({step, m.accuracy, m.loss, distance, m.temperature, m.calibrated_loss, m.heldout_loss});
    if (result.accuracy_steps < 0 && accuracy_met(m, t)) result.accuracy_steps = step;
    if (result.loss_steps < 0 && loss_met(m, t)) result.loss_steps = step;
    if (result.calibrated_loss_steps < 0 && calibrated_met(m, t)) result.calibrated_loss_steps = step;
    result.diverged = !std::isfinite(m.loss);
    const bool acc = result.accuracy_steps >= 0 || std::isnan(t.accuracy);
    const bool loss = result.loss_steps >= 0 || std::isnan(t.loss);
    // "all" waits for the calibrated target too: it is one of the run's figures.
    const bool calibrated = result.calibrated_loss_steps >= 0 || std::isnan(t.calibrated_loss);
    const bool met = (stop == "all" && acc && loss && calibrated) || (stop == "accuracy" && result.accuracy_steps >= 0) ||
                     (stop == "loss" && result.loss_steps >= 0);
    stopped = result.diverged || (met && step >= hold_until);
    if (stopped) result.steps = step;
    return stopped;
  }
};

class Driver {
 public:
  Driver(LearnersFactory factory, const RelearnData& data, const data::Normalization& normalization,
         const RelearnOptions& o, const RelearnTargets& targets, Device device,
         const std::function<void(const RelearnProgress&)>& progress, const RelearnObserver& observe)
      : factory_(std::move(factory)),
        options_(o),
        observe_(observe),
        targets_(targets),
        progress_(progress),
        forget_(eval_set(data.forget, normalization, o.eval_batch, device)),
        heldout_(eval_set(data.heldout, normalization, o.eval_batch, device)),
        loader_(data.train, [&] {
          data::LoaderOptions l;
          l.batch_size = o.batch;
          l.seed = o.seed;
          l.normalization = normalization;
          l.device = device;
          return l;
        }()) {
    if (observe_) options_.eval_every = 1;  // an observed step must not lie past a model's stop
  }

  std::vector<RelearnResult> run(const std::vector<ModelState>& starts, const std::vector<size_t>& extended) {
    trackers_.assign(starts.size(), Tracker{});
    for (Tracker& t : trackers_) {
      t.result.cap = options_.steps;
      t.result.calibrated = !std::isnan(targets_.calibrated_loss);
      t.stop = options_.stop;
    }
    for (const size_t e : extended) {
      LETHE_CHECK(e < trackers_.size(), "relearn", "extended model ", e, " of ", trackers_.size());
      Tracker& t = trackers_[e];
      t.result.extended = true;
      t.result.cap = std::max(options_.cap_limit, options_.steps);
      t.stop = "all";
      if (options_.stop == "none") t.hold_until = options_.steps;
    }
    for (const Tracker& t : trackers_) max_cap_ = std::max(max_cap_, t.result.cap);
    ids_.resize(starts.size());
    std::iota(ids_.begin(), ids_.end(), size_t{0});
    learners_ = factory_(starts);
    int64_t step = 0;
    observe(step);
    record(step, learners_->evaluate(forget_, heldout_), learners_->distances(), {});
    for (;;) {
      stop_capped(step);
      keep_active();
      report(step);
      if (ids_.empty()) break;
      // A bracket ends at the nearest cap at the latest: there the models of that cap stop, the
      // stack shrinks, and the others (the extended ones) go on from a new baseline.
      int64_t cap = max_cap_;
      for (const size_t id : ids_) cap = std::min(cap, trackers_[id].result.cap);
      const int64_t span = std::min(options_.eval_every, cap - step);
      const std::vector<ModelState> snapshot = span > 1 ? learners_->states() : std::vector<ModelState>{};
      for (int64_t i = 0; i < span; ++i) learners_->step(batch_at(step + i), step + i);
      step += span;
      observe(step);
      const std::vector<ForgetMetrics> m = learners_->evaluate(forget_, heldout_);
      const std::vector<double> d = learners_->distances();
      std::vector<size_t> crossed;  // learners whose bracket is replayed: a target was met within it
      for (size_t j = 0; j < ids_.size(); ++j)
        if (span > 1 && trackers_[ids_[j]].newly_met(m[j], targets_)) crossed.push_back(j);
      record(step, m, d, crossed);
      if (!crossed.empty()) replay(snapshot, crossed, step - span, step, m, d);
    }
    std::vector<RelearnResult> out;
    for (Tracker& t : trackers_) {
      t.result.loss_auc = loss_auc(t.result, targets_.loss);
      out.push_back(std::move(t.result));
    }
    return out;
  }

 private:
  static NamedTensors to_cpu(const NamedTensors& s) {
    NamedTensors out;
    for (const auto& [name, t] : s) out.emplace_back(name, t.to(Device::cpu()));
    return out;
  }

  data::Batch batch_at(int64_t step) {
    const int64_t per_epoch = loader_.batches_per_epoch();
    return loader_.batch(step / per_epoch, step % per_epoch);
  }

  // Records the evaluation at `step` of every learner but the `skipped` ones (ascending).
  void record(int64_t step, const std::vector<ForgetMetrics>& m, const std::vector<double>& d,
              const std::vector<size_t>& skipped) {
    std::vector<ModelState> states;  // read once, when a model stops
    for (size_t j = 0, s = 0; j < ids_.size(); ++j) {
      if (s < skipped.size() && skipped[s] == j) {
        ++s;
        continue;
      }
      Tracker& t = trackers_[ids_[j]];
      if (!t.record(step, m[j], d[j], targets_)) continue;
      if (states.empty()) states = learners_->states();
      t.result.final_state = to_cpu(states[j].weights);
    }
  }

  // Stops the learners whose cap is `step` (their last evaluation was just recorded).
  void stop_capped(int64_t step) {
    std::vector<ModelState> states;
    for (size_t j = 0; j < ids_.size(); ++j) {
      Tracker& t = trackers_[ids_[j]];
      if (t.stopped || step < t.result.cap) continue;
      if (states.empty()) states = learners_->states();
      t.stopped = true;
      t.result.steps = step;
      t.result.final_state = to_cpu(states[j].weights);
    }
  }

  // Drops the learners that stopped, rebuilding the set from the others' states. A smaller stack
  // is a new baseline: every bracket after it is snapshot, run and replayed on that stack.
  void keep_active() {
    std::vector<size_t> keep;
    for (size_t j = 0; j < ids_.size(); ++j)
      if (!trackers_[ids_[j]].stopped) keep.push_back(j);
    if (keep.size() == ids_.size()) return;
    const std::vector<ModelState> all = learners_->states();
    std::vector<ModelState> kept;
    std::vector<size_t> kept_ids;
    for (const size_t j : keep) kept.push_back(all[j]), kept_ids.push_back(ids_[j]);
    learners_ = kept.empty() ? nullptr : factory_(kept);
    ids_ = std::move(kept_ids);
  }

  // Steps (from, end] of the learners at positions `crossed`, replayed one by one from the snapshot
  // taken at `from` and evaluated after each, until each has stopped or reached `end` — where the
  // replay must land exactly on the run's own evaluation (`end_metrics`, `end_distances`). The
  // replay runs the same shapes as the run (replay_positions): only the crossed learners where
  // they are independent, the whole snapshot in its order otherwise, read out at the crossed ones.
  void replay(const std::vector<ModelState>& snapshot, const std::vector<size_t>& crossed, int64_t from, int64_t end,
              const std::vector<ForgetMetrics>& end_metrics, const std::vector<double>& end_distances) {
    const std::vector<size_t> replayed = replay_positions(learners_->independent(), crossed, snapshot.size());
    std::vector<ModelState> states;
    for (const size_t j : replayed) states.push_back(snapshot[j]);
    const std::unique_ptr<Learners> again = factory_(states);
    std::vector<size_t> at;  // each crossed learner's position in the replay
    for (const size_t j : crossed) at.push_back(static_cast<size_t>(std::find(replayed.begin(), replayed.end(), j) - replayed.begin()));
    std::vector<bool> done(crossed.size(), false);
    for (int64_t step = from + 1; step <= end; ++step) {
      again->step(batch_at(step - 1), step - 1);
      const std::vector<ForgetMetrics> m = again->evaluate(forget_, heldout_);
      const std::vector<double> d = again->distances();
      for (size_t r = 0; r < crossed.size(); ++r) {
        if (done[r]) continue;
        const size_t k = at[r];
        if (step == end) check_same(m[k], d[k], end_metrics[crossed[r]], end_distances[crossed[r]], from, end);
        Tracker& t = trackers_[ids_[crossed[r]]];
        if (t.record(step, m[k], d[k], targets_)) {
          t.result.final_state = to_cpu(again->states()[k].weights);
          done[r] = true;
        }
      }
    }
  }

  static void check_same(const ForgetMetrics& a, double da, const ForgetMetrics& b, double db, int64_t from, int64_t end) {
    auto same = [](double x, double y) { return x == y || (std::isnan(x) && std::isnan(y)); };
    LETHE_CHECK(same(a.loss, b.loss) && a.accuracy == b.accuracy && same(da, db) && same(a.calibrated_loss, b.calibrated_loss),
                "relearn",
                "replaying steps ", from + 1, "..", end, " gave forget loss ", a.loss, " where the run gave ", b.loss,
                ": the steps are not deterministic");
  }

  void observe(int64_t step) const {
    if (!observe_) return;
    for (size_t j = 0; j < ids_.size(); ++j) observe_(ids_[j], step, learners_->parameters(j));
  }

  void report(int64_t step) const {
    if (progress_)
      progress_({step, max_cap_, static_cast<int64_t>(ids_.size()), static_cast<int64_t>(trackers_.size())});
  }

  LearnersFactory factory_;
  RelearnOptions options_;
  RelearnObserver observe_;
  RelearnTargets targets_;
  std::function<void(const RelearnProgress&)> progress_;
  EvalSet forget_, heldout_;  // heldout_: no batches without calibration
  data::DataLoader loader_;
  std::vector<Tracker> trackers_;
  std::unique_ptr<Learners> learners_;
  std::vector<size_t> ids_;  // the tracker of each learner, in learner order
  int64_t max_cap_ = 0;
};

}  // namespace

std::vector<size_t> replay_positions(bool independent, const std::vector<size_t>& crossed, size_t learners) {
  if (independent) return crossed;
  std::vector<size_t> all(learners);
  std::iota(all.begin(), all.end(), size_t{0});
  return all;
}

RelearnMode parse_relearn_mode(const std::string& name) {
  if (name == "auto") return RelearnMode::automatic;
  if (name == "batched") return RelearnMode::batched;
  if (name == "sequential") return RelearnMode::sequential;
  LETHE_FAIL("relearn", "--mode ", excerpt(name, 80, '\''), ": must be auto, batched or sequential");
}

const char* relearn_mode_name(RelearnMode mode) {
  switch (mode) {
    case RelearnMode::automatic: return "auto";
    case RelearnMode::batched: return "batched";
    case RelearnMode::sequential: return "sequential";
  }
  return "?";
}

RelearnData relearn_data(std::shared_ptr<const data::Dataset> train, const Split& split, const RelearnOptions& o,
                         std::shared_ptr<const data::Dataset> test) {
  LETHE_CHECK(!split.forget.empty(), "relearn", "the split's forget set is empty");
  RelearnData d;
  if (o.target_set == "class-test") {
    LETHE_CHECK(split.scenario.kind == ScenarioKind::class_wise, "relearn", "--target-set class-test needs a "
                "class-wise scenario (it is the test images of the forgotten classes), not ", split.scenario.str());
    LETHE_CHECK(test != nullptr, "relearn", "--target-set class-test: no test set to take the forgotten classes' images from");
    std::vector<int64_t> images = images_by_class(*test, split.scenario.classes, true, 0);
    LETHE_CHECK(!images.empty(), "relearn", "--target-set class-test: the test set has no image of ", split.scenario.str());
    d.forget = {std::move(test), std::move(images)};
  } else {
    d.forget = {train, split.forget};
  }
  std::vector<int64_t> forget =
      o.forget_samples == 0 ? split.forget : sample(split.forget, o.forget_samples, o.seed, kForgetSampleStream);
  std::vector<int64_t> retain;
  if (o.retain_samples > 0) {
    retain = o.retain_samples == 1 ? split.retain : sample(split.retain, o.retain_samples, o.seed, kRetainSampleStream);
  } else if (o.retain_mix > 0) {  // m of the data: F·m/(1 − m) retain samples next to F forget samples
    const auto f = static_cast<double>(forget.size());
    retain = take(split.retain, o.retain_mix >= 1 ? static_cast<int64_t>(f) : std::llround(f * o.retain_mix / (1 - o.retain_mix)),
                  o.seed, kRetainSampleStream);
    if (o.retain_mix >= 1) forget.clear();  // the control: retain samples only, as many as the forget set's
  }
  if (o.calibration_samples > 0) {
    LETHE_CHECK(test != nullptr, "relearn", "--calibration-samples: no test set to take the held-out images from");
    // The first N test images, class-wise of the remaining classes only.
    const std::vector<int64_t> gone = split.scenario.kind == ScenarioKind::class_wise ? split.scenario.classes
                                                                                      : std::vector<int64_t>{};
    std::vector<int64_t> heldout = images_by_class(*test, gone, false, o.calibration_samples);
    LETHE_CHECK(!heldout.empty(), "relearn", "--calibration-samples ", o.calibration_samples,
                ": the test set has no image to fit a temperature on (the held-out set is empty)");
    d.heldout = {test, std::move(heldout)};
  }
  d.forget_read = static_cast<int64_t>(forget.size());
  d.retain_read = static_cast<int64_t>(retain.size());
  std::vector<int64_t> steps_read = std::move(forget);
  steps_read.insert(steps_read.end(), retain.begin(), retain.end());
  std::sort(steps_read.begin(), steps_read.end());
  LETHE_CHECK(!steps_read.empty(), "relearn", "--forget-samples ", o.forget_samples, " leaves no samples to relearn on");
  d.train = {std::move(train), std::move(steps_read)};
  return d;
}

nlohmann::json relearn_data_json(const RelearnData& d, const RelearnOptions& o) {
  return {{"forget_samples", d.forget_read},
          {"retain_samples", d.retain_read},
          {"target_set", o.target_set.empty() ? "forget" : o.target_set},
          {"target_samples", d.forget.size()}};
}

ForgetMetrics forget_metrics(nn::Model& model, const data::Subset& forget, const data::Normalization& normalization,
                             const RelearnOptions& o, const data::Subset& heldout, const GeneratorJudge* judge) {
  const EvalSet set = eval_set(forget, normalization, o.eval_batch, model.device());
  if (model.generator() != nullptr) {
    LETHE_CHECK(judge != nullptr && judge->evaluator != nullptr, "relearn", "a generator's forget metrics need a judge");
    return generator_forget_metrics(model, set, *judge);
  }
  const EvalSet held = eval_set(heldout, normalization, o.eval_batch, model.device());
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
  PointScores scores;
  for (size_t b = 0; b < set.images.size(); ++b)
    add_forget(scores, model.forward(set.images[b]), set.labels[b], !held.images.empty());
  for (size_t b = 0; b < held.images.size(); ++b) add_heldout(scores, model.forward(held.images[b]), held.labels[b]);
  model.train(was_training);
  return forget_metrics_of(scores);
}

RelearnTargets relearn_targets(const RelearnOptions& o, const ForgetMetrics& original) {
  RelearnTargets t;
  t.accuracy = !std::isnan(o.accuracy_target)  ? o.accuracy_target
               : !std::isnan(o.accuracy_ratio) ? o.accuracy_ratio * original.accuracy
                                               : original.accuracy - o.accuracy_drop;
  t.loss = !std::isnan(o.loss_target) ? o.loss_target : original.loss;
  t.calibrated_loss = original.calibrated_loss;
  return t;
}

double loss_auc(const RelearnResult& r, double target) {
  if (std::isnan(target) || r.curve.empty()) return kUnset;
  double area = 0;
  for (size_t i = 1; i < r.curve.size(); ++i) {
    const RelearnPoint &a = r.curve[i - 1], &b = r.curve[i];
    if (r.loss_steps >= 0 && a.step >= r.loss_steps) break;
    area += 0.5 * (std::max(0.0, a.forget_loss - target) + std::max(0.0, b.forget_loss - target)) *
            static_cast<double>(b.step - a.step);
  }
  return area;
}

void to_json(nlohmann::json& j, const RelearnTargets& t) {
  j = {{"accuracy", t.accuracy},
       {"loss", t.loss},
       {"calibrated_loss", std::isnan(t.calibrated_loss) ? nlohmann::json() : nlohmann::json(t.calibrated_loss)}};
}

std::vector<RelearnResult> relearn(const nn::ModelSpec& spec, const std::vector<NamedTensors>& starts,
                                   const RelearnData& data, const data::Normalization& normalization,
                                   const RelearnOptions& o, const RelearnTargets& targets, Device device,
                                   RelearnMode mode, const std::function<void(const RelearnProgress&)>& progress,
                                   const RelearnObserver& observe, const std::vector<size_t>& extended,
                                   const GeneratorJudge* judge) {
  LETHE_CHECK(!starts.empty(), "relearn", "no models to relearn");
  const bool generator = nn::is_generator_name(spec.name);
  LETHE_CHECK(!generator || (judge != nullptr && judge->evaluator != nullptr && !judge->labels.empty()), "relearn",
              "relearning the generator ", spec.name, " needs a judge (an evaluator classifier and the forget classes)");
  LETHE_CHECK(!generator || o.target_set.empty() || o.target_set == "forget", "relearn",
              "a generator's targets are measured on the forget set, not ", o.target_set);
  LETHE_CHECK(!generator || data.heldout.indices.empty(), "relearn", "a generator's relearning has no calibration");
  check_labels(data.train, spec.classes, "training");
  check_labels(data.forget, spec.classes, "forget");
  if (!data.heldout.indices.empty()) check_labels(data.heldout, spec.classes, "held-out");
  std::vector<ModelState> states;
  for (const NamedTensors& s : starts) {
    nn::Model m(spec, 0, device);
    m.net().load_state_dict(s);
    states.push_back({cloned(m.net().state_dict()), {}, m.arena().data().clone()});
  }
  if (mode == RelearnMode::automatic) mode = device.is_cuda() ? RelearnMode::batched : RelearnMode::sequential;
  const bool stacked = mode == RelearnMode::batched && !generator && nn::stackable(spec);
  const GeneratorJudge* measured_by = generator ? judge : nullptr;
  LearnersFactory factory = [&](const std::vector<ModelState>& s) -> std::unique_ptr<Learners> {
    if (stacked) return std::make_unique<StackedLearners>(spec, s, device, o);
    return std::make_unique<SequentialLearners>(spec, s, device, o, measured_by);
  };
  Driver driver(factory, data, normalization, o, targets, device, progress, observe);
  return driver.run(states, extended);
}

namespace {

// One RCD figure of one model: steps to a target or the loss AUC. Censored: the target was not met
// within the steps the model ran, so the true figure is at least `value`. Unknown: the model
// diverged before meeting the target (or the figure is undefined): no delay to report.
struct Figure {
  double value = kUnset;
  bool censored = false;
  bool known() const { return std::isfinite(value); }
};

Figure steps_figure(const RelearnResult& r, int64_t met) {
  if (met >= 0) return {static_cast<double>(met), false};
  if (r.diverged) return {};
  return {static_cast<double>(r.steps), true};  // ran r.steps steps (its cap, or its stop) without meeting it
}

Figure auc_figure(const RelearnResult& r) {
  const bool censored = r.loss_steps < 0;
  if (censored && r.diverged) return {};
  return {r.loss_auc, censored};
}

nlohmann::json value(const Figure& f) { return f.known() ? nlohmann::json(f.value) : nlohmann::json(); }

// a / b and the kind of number it is: a censored numerator makes it a lower bound, a censored
// denominator an upper bound, both (or anything undefined) no number at all. 0 / b is exactly 0.
std::pair<nlohmann::json, const char*> ratio(const Figure& a, const Figure& b) {
  if (!a.known() || !b.known() || !(b.value > 0) || (a.censored && b.censored)) return {nullptr, "none"};
  const double v = a.value / b.value;
  if (a.value == 0 && !a.censored) return {v, "exact"};
  return {v, a.censored ? "at_least" : b.censored ? "at_most" : "exact"};
}

}  // namespace

nlohmann::json rcd_json(const RelearnResult& r, const RelearnResult* retrained) {
  const Figure loss = steps_figure(r, r.loss_steps), accuracy = steps_figure(r, r.accuracy_steps), auc = auc_figure(r);
  const Figure calibrated = r.calibrated ? steps_figure(r, r.calibrated_loss_steps) : Figure{};
  nlohmann::json normalized = {{"loss", nullptr}, {"accuracy", nullptr}, {"loss_auc", nullptr}, {"calibrated_loss", nullptr}};
  nlohmann::json bound = {{"loss", "none"}, {"accuracy", "none"}, {"loss_auc", "none"}, {"calibrated_loss", "none"}};
  if (retrained != nullptr) {
    const std::pair<nlohmann::json, const char*> l = ratio(loss, steps_figure(*retrained, retrained->loss_steps)),
                                                 a = ratio(accuracy, steps_figure(*retrained, retrained->accuracy_steps)),
                                                 u = ratio(auc, auc_figure(*retrained)),
                                                 c = ratio(calibrated, retrained->calibrated
                                                                           ? steps_figure(*retrained, retrained->calibrated_loss_steps)
                                                                           : Figure{});
    normalized = {{"loss", l.first}, {"accuracy", a.first}, {"loss_auc", u.first}, {"calibrated_loss", c.first}};
    bound = {{"loss", l.second}, {"accuracy", a.second}, {"loss_auc", u.second}, {"calibrated_loss", c.second}};
  }
  auto steps = [](const Figure& f) { return f.known() ? nlohmann::json(static_cast<int64_t>(f.value)) : nlohmann::json(); };
  return {{"loss_steps", steps(loss)},
          {"accuracy_steps", steps(accuracy)},
          {"calibrated_loss_steps", steps(calibrated)},
          {"loss_censored", loss.censored},
          {"accuracy_censored", accuracy.censored},
          {"calibrated_loss_censored", calibrated.censored},
          {"loss_auc", value(auc)},
          {"steps_run", r.steps},
          {"cap", r.cap},
          {"extended", r.extended},
          {"censored_at_limit", r.extended ? nlohmann::json(loss.censored || accuracy.censored) : nlohmann::json()},
          {"diverged", r.diverged},
          {"normalized", normalized},
          {"bound", bound}};
}

namespace {
std::string fixed(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}
}  // namespace

std::string rcd_figure_text(const nlohmann::json& rcd, const std::string& figure) {
  const bool auc = figure == "loss_auc";
  const nlohmann::json& v = rcd.at(auc ? "loss_auc" : figure + "_steps");
  const bool censored = rcd.at(auc ? "loss_censored" : figure + "_censored").get<bool>();
  if (!v.is_number()) return rcd.at("diverged").get<bool>() ? "diverged" : "n/a";
  const std::string x = auc ? fixed(v.get<double>(), 1) : std::to_string(v.get<int64_t>());
  return censored ? "≥" + x : x;
}

std::string rcd_ratio_text(const nlohmann::json& rcd, const std::string& figure) {
  const nlohmann::json& v = rcd.at("normalized").at(figure);
  if (!v.is_number()) return "n/a";
  const std::string bound = rcd.contains("bound") ? rcd.at("bound").at(figure).get<std::string>() : "exact";
  const std::string x = fixed(v.get<double>(), 2);
  return bound == "at_least" ? "≥" + x : bound == "at_most" ? "≤" + x : x;
}

nlohmann::json curve_json(const RelearnResult& r) {
  nlohmann::json out = nlohmann::json::array();
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  for (const RelearnPoint& p : r.curve)
    out.push_back({{"step", p.step},
                   {"forget_accuracy", p.forget_accuracy},
                   {"forget_loss", number(p.forget_loss)},
                   {"distance", number(p.distance)},
                   {"temperature", number(p.temperature)},
                   {"calibrated_loss", number(p.calibrated_loss)},
                   {"heldout_loss", number(p.heldout_loss)},
                   {"membership_gap", number(p.heldout_loss - p.forget_loss)}});
  return out;
}

}  // namespace lethe::unlearn
