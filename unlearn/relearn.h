#pragma once
// Relearning: fine-tune a model on the data it was made to forget and count the steps it takes to
// get that data back — the relearning convergence delay (RCD) of Tran & Woo. A model retrained
// without the data relearns it slowly; a model that only hides it relearns fast.
//
// Cheap by construction:
//  - the forget set is evaluated forward-only (no autograd), in large batches, every `eval_every`
//    steps. When a target is met at an evaluation point, the steps since the previous point are
//    replayed one by one from a snapshot, so the reported step is the first step that meets the
//    target, as evaluating after every step would report (unless the curve met the target and fell
//    back within one bracket: README, "Relearning");
//  - each model stops as soon as its targets are met;
//  - many models relearn in one batched pass (nn::StackedModel), bitwise equal on the CPU to
//    relearning them one at a time.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/dataset.h"
#include "nn/models.h"
#include "nn/module.h"
#include "unlearn/relearn_options.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

// The samples a relearning run trains on, and the set it is measured on (`forget`: the forget set,
// or with target_set class-test the test images of the forgotten classes).
struct RelearnData {
  data::Subset train;
  data::Subset forget;
  data::Subset heldout;  // the calibration set: empty without calibration_samples
  int64_t forget_read = 0, retain_read = 0;  // how many of `train` are forget / retain samples
};
// `test` is needed for target_set class-test only.
RelearnData relearn_data(std::shared_ptr<const data::Dataset> train, const Split& split, const RelearnOptions& o,
                         std::shared_ptr<const data::Dataset> test = nullptr);
nlohmann::json relearn_data_json(const RelearnData& d, const RelearnOptions& o);

// How a class-conditional generator's relearning is measured (issue 17): its forget fidelity (the
// share of samples of `labels`, the forget classes, that `evaluator` classifies as their label)
// stands for the forget accuracy, and its mean per-image loss on the forget images (negative
// ELBO, denoising error; the same draws at every evaluation) for the forget loss. The samples are
// drawn with `seed` at every evaluation too, so the curve moves only with the weights.
struct GeneratorJudge {
  nn::Model* evaluator = nullptr;
  data::Normalization normalization;  // the evaluator's data normalisation
  std::vector<int64_t> labels;        // the labels of the samples drawn at each evaluation
  uint64_t seed = 0;
};

struct ForgetMetrics {
  double accuracy = kUnset, loss = kUnset;  // fraction; mean cross-entropy in nats
  // With a held-out set: the temperature fitted on it, the forget loss at that temperature, and
  // the held-out loss (at temperature 1).
  double temperature = kUnset, calibrated_loss = kUnset, heldout_loss = kUnset;
};
// Forward-only, in eval mode, in batches of o.eval_batch; the calibrated figures when `heldout`
// is not empty. A generator is measured by `judge` (no calibration).
ForgetMetrics forget_metrics(nn::Model& model, const data::Subset& forget, const data::Normalization& normalization,
                             const RelearnOptions& o, const data::Subset& heldout = {},
                             const GeneratorJudge* judge = nullptr);

struct RelearnTargets {
  double accuracy = kUnset, loss = kUnset;
  double calibrated_loss = kUnset;  // the original's calibrated forget loss (unset: no calibration)
};
RelearnTargets relearn_targets(const RelearnOptions& o, const ForgetMetrics& original);
void to_json(nlohmann::json& j, const RelearnTargets& t);

struct RelearnPoint {
  int64_t step = 0;
  double forget_accuracy = 0, forget_loss = 0;
  double distance = 0;  // L2 distance of the parameters from the starting model
  double temperature = kUnset, calibrated_loss = kUnset, heldout_loss = kUnset;  // with calibration
};

struct RelearnResult {
  // Every evaluation point, and every step of a replayed bracket, in step order.
  std::vector<RelearnPoint> curve;
  int64_t accuracy_steps = -1, loss_steps = -1;  // first step meeting the target; −1: not within the cap
  int64_t calibrated_loss_steps = -1;             // the calibrated loss target's (with calibration)
  bool calibrated = false;                        // the run had a calibration target
  // Σ over the curve (trapezoids) of max(0, forget loss − loss target), in nats·steps, up to the
  // step the loss target is met (or the last point): how much loss was left to relearn, for how long.
  double loss_auc = kUnset;
  int64_t steps = 0;      // steps taken when the model stopped
  int64_t cap = 0;        // the step cap that applied to it: o.steps, or o.cap_limit when extended
  bool extended = false;  // relearned past o.steps (the retrained model: the gold standard)
  bool diverged = false;  // the forget loss became NaN or infinite (the model stopped there)
  NamedTensors final_state;  // the model when it stopped, on the CPU
};

// RelearnResult::loss_auc of a curve (NaN for an unset target).
double loss_auc(const RelearnResult& r, double loss_target);

// How the models of one relearning run are stepped: stacked into one network (nn::StackedModel) or
// one after another through the single-model path — bitwise the same results on the CPU. `automatic`
// stacks on CUDA, where one launch per op for all models is the point, and not on the CPU, where
// stacking keeps every GEMM at the single model's shape (to stay bitwise) and only adds working
// set: measured slower there (bench/RESULTS.md).
enum class RelearnMode { automatic, batched, sequential };
RelearnMode parse_relearn_mode(const std::string& name);  // auto | batched | sequential
const char* relearn_mode_name(RelearnMode mode);

struct RelearnProgress {
  int64_t step = 0, cap = 0;
  int64_t active = 0, models = 0;  // models still relearning / in all
};

// Sees model `model`'s parameters after relearning step `step` (0: the start), for a trajectory
// log (unlearn/trajectory.h).
using RelearnObserver = std::function<void(size_t model, int64_t step, const NamedTensors& params)>;

// Relearns every start (state dicts of `spec`) on `data` from step 0, all on one batch stream, each
// stopping on its own. `batched` stacks the models into one network where the spec allows
// (nn::stackable); otherwise, and in `sequential` mode, each step runs the models one after another
// through the ordinary single-model path. Both give the same results, bitwise on the CPU. With an
// observer, every step is evaluated (eval_every 1), so no step past a model's stop is observed.
//
// The starts at the positions `extended` (the retrained model) are the gold standard: they stop
// when both targets are met (with stop none: not before o.steps), and otherwise at o.cap_limit,
// not at o.steps; the others stop by o.stop, at o.steps at the latest. All models read one batch
// stream, so the steps an extended model takes past o.steps are the ones a run with
// steps = cap_limit would take.
// Generators (spec cvae, ddpm-s) relearn one by one, measured by `judge` (required for them): a
// step descends the mean per-image loss, its draws from Philox keyed by the step, so a replayed
// bracket draws what the run drew. `normalization` is then none (pixels in [0, 1]).
std::vector<RelearnResult> relearn(const nn::ModelSpec& spec, const std::vector<NamedTensors>& starts,
                                   const RelearnData& data, const data::Normalization& normalization,
                                   const RelearnOptions& o, const RelearnTargets& targets, Device device,
                                   RelearnMode mode = RelearnMode::automatic,
                                   const std::function<void(const RelearnProgress&)>& progress = {},
                                   const RelearnObserver& observe = {}, const std::vector<size_t>& extended = {},
                                   const GeneratorJudge* judge = nullptr);

// Which learners a bracket's replay steps again, as positions among the `learners` the run
// stepped: the `crossed` ones (ascending) where learners step independently (one by one), and all
// of them, in order, where they do not (a stack on CUDA, whose size is in every shape): a replay
// must run the very shapes the run ran, or its bitwise check against the run fails.
std::vector<size_t> replay_positions(bool independent, const std::vector<size_t>& crossed, size_t learners);

// The "rcd" record of one model (schema in README, "Relearning"): steps to each target (its cap,
// flagged censored, when not met; null when it diverged first), the loss AUC, its cap, and each
// figure divided by the retrained model's with the kind of number that ratio is ("bound"): exact,
// at_least (this model censored), at_most (the retrained model censored) or none (both censored,
// or undefined: the value is then null). `retrained` may be null.
nlohmann::json rcd_json(const RelearnResult& r, const RelearnResult* retrained);
// How a figure of an "rcd" record reads in a table. `figure`: loss | accuracy (steps: "N", "≥N"
// censored, "diverged" when the model diverged before meeting the target) or loss_auc ("x.x",
// "≥x.x", "diverged"). rcd_ratio_text: its ratio to the retrained model's, "x.xx", "≥x.xx"
// (at_least), "≤x.xx" (at_most) or "n/a" (none).
std::string rcd_figure_text(const nlohmann::json& rcd, const std::string& figure);
std::string rcd_ratio_text(const nlohmann::json& rcd, const std::string& figure);
nlohmann::json curve_json(const RelearnResult& r);

}  // namespace lethe::unlearn
