#pragma once
// The options of a relearning run (unlearn/relearn.h): what the steps read, how they step, the
// targets and when a model stops; each declared once in relearn_options() (its flag of `lethe
// relearn`, its key of [relearn] study tables and of the `relearn` JSON object).
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "nn/option_table.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

struct RelearnOptions {
  // "" (lethe's default, WORKLOADS.md W1), "golatkar" or "ain": fills the fields the protocol fixes
  // (README, "Relearning"); fields set explicitly are kept.
  std::string preset;
  std::string optimizer;          // sgd | adam; "": sgd (ain: adam)
  double lr = kUnset;             // unset: sgd — random forgetting 0.05, otherwise 0.01; adam 1e-3
  double momentum = 0;            // sgd
  double weight_decay = 0;        // sgd (coupled) and adam (decoupled, AdamW)
  int64_t batch = 0;              // 0: 128 (golatkar: 500)
  int64_t steps = 300;            // the cap
  // The retrained model's cap (relearn()'s `extended` models): it relearns past `steps` until it
  // meets both targets or reaches this, so the denominator of every ratio is measured, not capped.
  // 0: 8 × steps. Must be ≥ steps.
  int64_t cap_limit = 0;
  int64_t eval_every = 0;         // 0: random forgetting 5, otherwise 1
  int64_t eval_batch = 1000;      // forward-only (on the CPU, 100 made one RCD ~10% cheaper: bench/RESULTS.md)
  uint64_t seed = 0;              // batch order and the sampled subsets
  std::string bn = "train";       // batch norm during relearning steps: train (batch statistics) | frozen
  bool cuda_graph = true;         // on CUDA, replay each step as a captured CUDA graph (the same results)
  // What the steps read: the forget set, or a seeded part of it (< 1: a fraction, ≥ 1: a count;
  // 0: all of it), plus a seeded sample of the retain set (0: none; ≤ 1: a fraction; > 1: a count).
  double forget_samples = 0;
  double retain_samples = kUnset;  // unset: 0 (golatkar: 1, the whole training set)
  // Or the retain part as a share of the relearning data: m in [0, 1) adds
  // round(F × m / (1 − m)) seeded retain samples (at most all of them) to the F forget samples the
  // steps read; m = 1 reads F retain samples and no forget sample (a control). Unset: 0.5 for
  // class-wise and backdoor scenarios (their forget set is one class or one label: relearning on it
  // alone can meet the targets by predicting that class for everything), 0 otherwise — and 0
  // whenever retain_samples is given (the two are exclusive).
  double retain_mix = kUnset;
  // What the targets and RCD are measured on: "forget" (the forget set) or "class-test" (the test
  // set's images of the forgotten classes; class-wise scenarios only). "": forget (ain on a
  // class-wise scenario: class-test).
  std::string target_set;
  // The calibration-matched RCD (0: off): the first N test images (class-wise: of the remaining
  // classes) are a held-out set on which, at every evaluation, one temperature per model is fitted
  // (unlearn/stats.h, fit_temperature); the forget loss at that temperature must fall to the
  // original's, measured the same way. A model that is only under-confident everywhere (shrunk
  // weights, noise) then no longer looks like one that forgot. The held-out loss also gives the
  // membership gap along each curve.
  int64_t calibration_samples = 0;
  // Targets, from the original model's forget accuracy and loss: accuracy ≥ original − drop, or
  // ≥ ratio × original when the ratio is set (ain: 0.95); loss ≤ original's. An explicit target
  // (a fraction / nats) replaces the derived one.
  double accuracy_drop = 0.01;
  double accuracy_ratio = kUnset;
  double accuracy_target = kUnset, loss_target = kUnset;
  std::string stop;      // when a model stops: all (both targets met) | loss | accuracy | none (the cap); "": all (ain: accuracy)
  std::string headline;  // which RCD the summaries lead with: loss | accuracy; "": loss (ain: accuracy)

  // Applies the preset, fills the scenario's defaults, checks every field (lethe::Error naming it).
  void resolve(const Scenario& scenario);
};
const nn::OptionTable<RelearnOptions>& relearn_options();
// Output JSON (`relearn` of `lethe relearn --json` and results.json): keys in snake case.
void to_json(nlohmann::json& j, const RelearnOptions& o);

}  // namespace lethe::unlearn
