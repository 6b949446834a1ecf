#pragma once
// Every metric of one model under one split (unlearn/metrics.h has the definitions), and the
// comparisons with the original and the retrained model.
//
// Which samples each metric uses:
//  - FA on the forget set and RA on the retain set, with the labels of the scenario's training
//    set (so for mislabeled and backdoor FA is agreement with the poisoned labels the original
//    learned, on the triggered images);
//  - TA on the clean test set; class-wise: on the test samples of the remaining classes, the
//    forgotten classes' test accuracy reported separately;
//  - MIA: members are retain samples, non-members test samples (class-wise: of the remaining
//    classes), applied to the forget set;
//  - backdoor: attack success = fraction of triggered test images (true class ≠ target)
//    classified as the target; mislabeled: test-accuracy gain over the original.
#include <cstdint>
#include <memory>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/dataset.h"
#include "nn/models.h"
#include "unlearn/metrics.h"
#include "unlearn/scenario.h"

namespace lethe::unlearn {

struct EvalSets {
  Split split;
  std::shared_ptr<const data::Dataset> train;           // the scenario's training set
  std::shared_ptr<const data::Dataset> test;            // clean
  std::shared_ptr<const data::Dataset> triggered_test;  // backdoor only
  data::Normalization normalization;
  Device device = Device::cpu();
  int64_t batch = 1000;
  uint64_t mia_seed = 0;
};
// Builds the sets of `split` from the clean training and test sets.
EvalSets make_eval_sets(const Split& split, std::shared_ptr<const data::Dataset> clean_train,
                        std::shared_ptr<const data::Dataset> test, const data::Normalization& normalization,
                        Device device);

struct ModelMetrics {
  Headline headline;  // FA, RA, TA, MIA (confidence, logistic)
  std::vector<MiaResult> mia;  // every feature × classifier, the headline's first
  const MiaResult& mia_entropy() const { return mia.at(2); }  // entropy, logistic
  double forget_loss = 0, retain_loss = 0, test_loss = 0;
  // Mean loss on data the model never saw − mean forget loss, in nats (unlearn/stats.h): about 0
  // for a model that never saw the forget set, > 0 for one that still fits it better. The unseen
  // data: the test set; class-wise, the forgotten classes' test images (the same classes as the
  // forget set, so a gap is memory of the samples, not of the classes).
  double membership_gap = 0;
  std::optional<double> forgotten_class_test_accuracy, forgotten_class_test_loss;  // class-wise
  std::optional<double> attack_success;                 // backdoor
};
ModelMetrics measure(nn::Model& model, const EvalSets& sets);
nlohmann::json to_json(const ModelMetrics& m);

// The comparisons that need the other models: average gap to the retrained model; test-accuracy
// gain over the original (mislabeled) and its attack success (backdoor); weight distances to
// both. Absent models are skipped.
nlohmann::json compare(const ModelMetrics& m, const nn::Module& model, const ModelMetrics* original,
                       const nn::Module* original_model, const ModelMetrics* retrained,
                       const nn::Module* retrained_model);

}  // namespace lethe::unlearn
