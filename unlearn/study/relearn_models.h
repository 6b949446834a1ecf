#pragma once
// What `lethe relearn` and `lethe run` report for a set of models relearned under one split: per
// model its metrics, distances and RCD next to the retrained model's, as the "models" array of
// results.json (README, "lethe run") and as a text table.
#include <nlohmann/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "unlearn/study/common.h"
#include "nn/models.h"
#include "unlearn/evaluation.h"
#include "unlearn/generative_metrics.h"
#include "unlearn/relearn.h"

namespace lethe::study {

struct RelearnedModel {
  std::string name, method;
  std::string role;  // original | retrained | unlearned
  unlearn::ModelMetrics metrics;
  nlohmann::json distance;             // {"original": L2, "retrained": L2}, null where absent
  nlohmann::json unlearn_seconds;      // null for models the run did not make
  unlearn::RelearnResult relearn;
  nlohmann::json generator;            // a generator's metrics (unlearn::to_json), else null
};

// One checkpoint to relearn.
struct ModelFile {
  std::string path, name, method;
  std::string role;                 // original | retrained | unlearned
  nlohmann::json unlearn_seconds;   // null when not known
};

struct RelearnInputs {
  const DataSource& source;
  const unlearn::Split& split;
  Device device;
  unlearn::RelearnOptions options;  // resolved for the split's scenario
  double margin = 0.02;
  unlearn::RelearnMode mode = unlearn::RelearnMode::automatic;
  bool quiet = false;
  std::vector<ModelFile> models;    // at most one original and one retrained
  std::string trajectory;           // a trajectory CSV to write (unlearn/trajectory.h), or ""
  int64_t trajectory_every = 1;
  ModelFlags plain;                 // the model of plain state dicts among `models`
  // Generators (cvae, ddpm-s; a class:C scenario): the classifier checkpoint that judges their
  // samples (unlearn/generative_metrics.h), and how many it draws (samples_per_class also sets the
  // forget-class samples drawn at every relearning evaluation). Empty: the models are classifiers.
  std::string evaluator;
  unlearn::GeneratorMetricOptions generator;
};

struct RelearnOutput {
  nlohmann::json models;  // the "models" array
  unlearn::RelearnTargets targets;
  double seconds = 0;     // the relearning itself
  nlohmann::json data;    // unlearn::relearn_data_json: what the steps read and what was measured
};

// Measures every model (FA, RA, TA, MIA, distances), takes the targets from the original (or the
// options' explicit ones) on the target set, relearns all models in one batched pass (one by one
// when `sequential`), the retrained model up to the options' cap_limit, with a progress bar on
// stderr unless `quiet`. Generators (with `evaluator`) are measured by generator_metrics — FA and
// RA are the forget and retain fidelity, TA and MIA do not apply (null) — and relearn one by one,
// their forget fidelity and forget loss against the original's.
RelearnOutput relearn_models(const RelearnInputs& in);

// A generator relearns on the forget class's images alone unless the options say otherwise
// (retain_mix or retain_samples given): the classifiers' retain mix guards against predicting one
// class for everything, which a class-conditional generator's fidelity cannot reward.
void generator_relearn_defaults(unlearn::RelearnOptions& options);

// The picture of a study's report for the generator at `checkpoint` after forgetting class C
// (`scenario`): a row of kPictureColumns samples of C, then one of C + 1 and one of C + 2 (mod
// the classes), drawn with `seed`; written atomically as PNG to `png`.
inline constexpr int64_t kPictureColumns = 12;
void write_sample_picture(const std::string& checkpoint, const DataSource& source, Device device,
                          const unlearn::Scenario& scenario, uint64_t seed, const std::filesystem::path& png);

// L2 distances of `model` to the original and retrained models (either may be null).
nlohmann::json model_distances(const nn::Module& model, const nn::Module* original, const nn::Module* retrained);

// The "models" array: metrics (a generator's also in "generative": its Fréchet distances and the
// test loss of the forget class, and whole in "generator_metrics"), gap to retrain, the damaged flag (RA or TA more than `margin` below
// the retrained model's), distances, RCD (normalised by the retrained model's, with bounds) and the
// curve.
nlohmann::json models_json(const std::vector<RelearnedModel>& models, double margin);

// A fixed-width table of a "models" array, the headline RCD first: "≥ N" a target not met within N
// steps, "diverged" a model that diverged first; a ratio "≥ x" / "≤ x" is a bound (one side
// censored), "n/a" undefined.
std::string rcd_table(const nlohmann::json& models, const std::string& headline);

// The curves of a "models" array as CSV rows: scenario,model,step,forget_accuracy,forget_loss,distance
// (a study's: scenario,replicate,model,..., with `replicate` ≥ 0), each ending in a newline, and
// their header line (without one).
std::string curves_csv_rows(const std::string& scenario, const nlohmann::json& models, int64_t replicate = -1);
std::string curves_csv_header(bool study);
// Appends them to `path` (the header first when it is new or empty) with one checked write.
void append_curves_csv(const std::string& path, const std::string& scenario, const nlohmann::json& models,
                       int64_t replicate = -1);

}  // namespace lethe::study
