#pragma once
// The standard unlearning metrics, each defined so that it can be computed by hand:
//  - FA, RA, TA: accuracy on the forget set, the retain set and the test set (UA = 1 − FA).
//  - MIA-efficacy: a membership classifier on one per-sample feature, trained on retain samples
//    (members) against test samples (non-members), the larger side subsampled (seeded) so both
//    count the same; applied to the forget set, efficacy is the fraction it calls non-member.
//    Features: the confidence (softmax probability of the true label) and the entropy of the
//    softmax. Classifiers, both 1-D and so both a threshold with a direction:
//      logistic (the headline): logistic regression on the standardised feature, fitted by
//        Newton's method with an L2 penalty ½w² on the slope (scikit-learn's default C = 1);
//      threshold (the strongest 1-D attacker): the cut that maximises balanced accuracy on the
//        training set (the midpoint between neighbouring values; the lowest cut on ties). With a
//        weak membership signal its cut is ill-determined and jumps between runs, which is why
//        it is not the headline.
//  - Average gap: mean of |FA − FA_rt|, |RA − RA_rt|, |TA − TA_rt|, |MIA − MIA_rt| against the
//    retrained model.
//  - Weight-space distances: L2 ‖a − b‖ and cosine a·b / (‖a‖‖b‖), per parameter tensor and
//    over the whole model, in float64.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/loader.h"
#include "nn/models.h"

namespace lethe::unlearn {

// What one forward pass says about each sample (eval mode, no autograd), in float64.
struct SampleScores {
  std::vector<int64_t> labels, predicted;
  std::vector<double> confidence;  // softmax probability of the label
  std::vector<double> entropy;     // −Σ p log p, in nats
  std::vector<double> loss;        // cross-entropy, −log p(label)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};
SampleScores score_samples(nn::Model& model, data::DataLoader& loader);
// Appends the scores of one batch: its logits [B, C] and labels, each sample's in float64.
void append_scores(SampleScores& s, const Tensor& logits, const std::vector<int64_t>& labels);

double accuracy(const SampleScores& s);   // NaN for no samples
double mean_loss(const SampleScores& s);  // NaN for no samples
// Fraction of samples predicted as `target` (attack success rate on triggered images).
double fraction_predicted(const SampleScores& s, int64_t target);
// The samples whose label is (keep = true) or is not (keep = false) one of `classes`.
SampleScores filter_classes(const SampleScores& s, const std::vector<int64_t>& classes, bool keep);

enum class MiaFeature { confidence, entropy };
const char* feature_name(MiaFeature f);
std::vector<double> feature_of(const SampleScores& s, MiaFeature f);

struct ThresholdClassifier {
  double threshold = 0;
  bool member_above = true;  // member iff feature > threshold (else iff feature < threshold)
  double train_accuracy = 0;
  bool is_member(double feature) const { return member_above ? feature > threshold : feature < threshold; }
};
// The best cut for separating `members` from `non_members` (equal weight per class).
ThresholdClassifier fit_threshold(const std::vector<double>& members, const std::vector<double>& non_members);
// Logistic regression of membership on the feature (equal-size classes expected), as a cut.
ThresholdClassifier fit_logistic(const std::vector<double>& members, const std::vector<double>& non_members);

enum class MiaClassifier { logistic, threshold };
const char* classifier_name(MiaClassifier c);

struct MiaResult {
  std::string feature, classifier_kind;
  double efficacy = 0;  // fraction of the forget set predicted non-member
  ThresholdClassifier classifier;
  int64_t members = 0, non_members = 0;  // the balanced training set
};
// Retain samples as members, test samples as non-members, the larger side subsampled with
// `seed`; applied to `forget`.
MiaResult mia_efficacy(const std::vector<double>& retain, const std::vector<double>& test,
                       const std::vector<double>& forget, MiaFeature feature, MiaClassifier classifier,
                       uint64_t seed);
nlohmann::json to_json(const MiaResult& r);

struct Distance {
  std::string name;  // a parameter's name, or "model" for all of them together
  int64_t numel = 0;
  double l2 = 0, cosine = 0;
};
// Over the parameters (not the buffers) of two models of one spec: one row per parameter tensor,
// then the "model" row.
std::vector<Distance> weight_distances(const nn::Module& a, const nn::Module& b);
nlohmann::json to_json(const std::vector<Distance>& d);

// The four headline numbers of a model, as fractions; `mia` is the confidence variant.
struct Headline {
  double fa = 0, ra = 0, ta = 0, mia = 0;
};
// Mean absolute difference of the four, in the same unit (fractions), over those both models have
// (a generator's TA and MIA are NaN: its gap is that of its forget and retain fidelity).
double average_gap(const Headline& model, const Headline& retrained);

}  // namespace lethe::unlearn
