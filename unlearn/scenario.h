#pragma once
// Forgetting scenarios and their splits. A scenario says what is to be forgotten (`random:0.1`,
// `class:0`, `mislabeled:0.1`, `backdoor:0.05`); a split is one seeded draw of it: the forget and
// retain indices into the training set, plus, for the poisoning scenarios, what was done to the
// forget samples. A split is written to a JSON file once, and every method, metric and relearning
// run reads that file, so they all see exactly the same samples.
//
//  - random:F      a seeded fraction F of the training set.
//  - class:C[,C…]  every training sample of the classes; test accuracy is then reported on the
//                  other classes, the forgotten classes' test accuracy separately.
//  - mislabeled:F  a seeded fraction F gets a wrong label, uniform over the other classes; the
//                  original model is trained on that set, and the forget set is exactly the
//                  flipped samples.
//  - backdoor:F[:T] a seeded fraction F of the samples not of class T (default 0) gets the trigger
//                  (a white square in the bottom-right corner) and the label T; the forget set is
//                  exactly those samples.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nn/data/dataset.h"

namespace lethe::unlearn {

// An option not given: filled from the scenario's (or the preset's) default when resolved.
inline constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();

enum class ScenarioKind { random, class_wise, mislabeled, backdoor };

struct Scenario {
  ScenarioKind kind = ScenarioKind::random;
  double fraction = 0.1;         // random, mislabeled, backdoor
  std::vector<int64_t> classes;  // class_wise
  int64_t target = 0;            // backdoor: the class triggered images are relabelled to
  std::string str() const;       // canonical spelling, parse_scenario(str()) == *this
  bool poisons() const { return kind == ScenarioKind::mislabeled || kind == ScenarioKind::backdoor; }
  bool operator==(const Scenario&) const = default;
};
// Throws lethe::Error with the accepted syntax on anything else.
Scenario parse_scenario(const std::string& text);

// The backdoor trigger: a `size`×`size` square of pixel value `value` in every channel, its
// bottom-right corner on the image's.
struct Trigger {
  int64_t size = 3;
  int64_t value = 255;
  bool operator==(const Trigger&) const = default;
};

// The training pool: the samples a study trains, unlearns and tunes on, drawn from the first
// train_size samples of the training set. `subset` > 0 keeps a seeded subset of that many (the
// memorising regime, README "W4"); `validation` > 0 holds a seeded fraction of the pool out as the
// validation split — never trained on, never in a forget or retain set — which `lethe tune` measures
// in place of the test set. Every draw is keyed by `seed` alone, so `lethe train` and `lethe split`
// given the same pool see the same samples. The trivial pool (subset 0, validation 0) is every sample.
struct Pool {
  int64_t subset = 0;      // 0: every sample
  double validation = 0;   // fraction of the pool, in [0, 0.5]
  uint64_t seed = 0;
  bool trivial() const { return subset == 0 && validation == 0; }
  std::string str() const;  // "subset=10000,validation=0.1,seed=0"; "all" for the trivial pool
  bool operator==(const Pool&) const = default;
};
// Throws lethe::Error naming the field by its flag (--subset, --validation) and its range: subset
// < 0, validation outside [0, 0.5] (or NaN), a subset larger than `train_size`, a validation split
// that is empty for validation > 0 or leaves fewer than 2 training samples.
void check_pool(const Pool& pool, int64_t train_size);
struct PoolIndices {
  std::vector<int64_t> training;    // ascending: what a model is trained on, what a split partitions
  std::vector<int64_t> validation;  // ascending, disjoint from `training`
};
// The pool's samples among [0, train_size): the subset (a seeded pick of `subset`, or all), then
// validation = llround(validation × pool size) of them picked with a second seeded stream (each
// draw its own Philox stream, keyed by `seed`). Checks the pool first (check_pool).
PoolIndices draw_pool(const Pool& pool, int64_t train_size);

struct Split {
  Scenario scenario;
  uint64_t seed = 0;
  int64_t train_size = 0;        // drawn from the first train_size samples of the training set
  int64_t classes = 0;
  std::vector<int64_t> forget;   // ascending indices into the training set
  std::vector<int64_t> retain;   // the others, ascending
  // mislabeled and backdoor: the label each forget sample carries in the poisoned training set
  // (aligned with `forget`); empty otherwise.
  std::vector<int64_t> poisoned_labels;
  Trigger trigger;  // backdoor
  // The pool the split was drawn in: forget ∪ retain = draw_pool(pool, train_size).training, and
  // `validation` its validation samples (empty for a pool without one).
  Pool pool;
  std::vector<int64_t> validation;

  // FNV-1a of the scenario, seed and forget indices (and, for a non-trivial pool only, of the pool
  // and its validation indices, so the splits drawn before pools existed keep their digests):
  // checkpoints trained on a poisoned set record it, so a model is never unlearned against a split
  // it was not trained with.
  std::string digest() const;
};

// A label other than `label`, uniform over the other classes for a uniform 32-bit `r`: the
// mislabeled scenario's flips and RL's random labels.
inline int64_t other_label(int64_t label, uint32_t r, int64_t classes) {
  return (label + 1 + static_cast<int64_t>(r % static_cast<uint32_t>(classes - 1))) % classes;
}

// Draws `scenario` over the pool's training samples of `train` (uint8 images [N,C,H,W], int64
// labels) with `seed`; a fraction is of the pool's training samples, a class split forgets the
// pool's samples of its classes. The trivial pool draws exactly as before pools existed (the same
// split, the same digest), whatever its seed.
Split make_split(const Scenario& scenario, const data::Dataset& train, int64_t classes, uint64_t seed,
                 const Pool& pool = {});

// JSON, written atomically; load checks every field (indices in range, disjoint, complete). A
// non-trivial pool is written as "pool": {"subset", "validation", "seed"} with "validation": [...]
// (a file without them has the trivial pool); load draws the pool again and refuses a file whose
// forget ∪ retain or validation indices are not exactly the pool's.
void save_split(const std::string& path, const Split& split);
Split load_split(const std::string& path);
// Refuses (as "split: ORIGIN: why") a split that does not describe what its scenario says on this
// training set (clean labels) with `classes` classes: a class split must forget exactly those
// classes' samples; a drawn one as many samples as its fraction gives, mislabeled ones relabelled
// to another class, backdoor ones not of the target class, relabelled to it, with a trigger that
// fits the images. load_split checks what the file alone can tell; this checks it against the data.
// Samples and fractions are the pool's: a class split is the pool's training samples of its classes.
void check_split_fits(const Split& split, const data::Dataset& train, int64_t classes, const std::string& origin);
// The same from the file's text; `origin` names it in errors.
Split parse_split(std::string_view text, const std::string& origin);

// The first `count` samples of `set` (views, no copy).
data::Dataset leading_samples(const data::Dataset& set, int64_t count);

// The split's validation samples of the clean training set `clean`, copied (images and clean
// labels), in index order: what `lethe tune` measures where the report measures the test set.
// Throws lethe::Error for a split without a validation split.
data::Dataset validation_set(const Split& split, const data::Dataset& clean);

// The training set of the scenario: the first train_size samples of `clean` (`clean` itself when
// that is all of it) for random and class-wise; for mislabeled and backdoor a copy of them with
// the forget samples' labels (and backdoor triggers) applied.
std::shared_ptr<const data::Dataset> scenario_training_set(const Split& split,
                                                           std::shared_ptr<const data::Dataset> clean);

// Backdoor: the test images whose class is not the target, with the trigger stamped and their
// true labels; attack success is how many of them the model puts in the target class.
data::Dataset triggered_test_set(const Split& split, const data::Dataset& test);

// Stamps the trigger on image `i` of `images` (uint8 [N,C,H,W]) in place.
void stamp_trigger(Tensor& images, int64_t i, const Trigger& trigger);

}  // namespace lethe::unlearn
