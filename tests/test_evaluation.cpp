// The evaluation (unlearn/evaluation.h): which samples and which labels each metric of a model
// uses. The model's every prediction can be read off its input: 3×3 images whose pixels 0, 1 and
// 2 are the evidence for classes 0, 1 and 2, and whose bottom-right pixel is where the backdoor
// trigger (1×1, value 255) lands; so each expected accuracy below is a fraction counted by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "unlearn/evaluation.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

constexpr int64_t kClasses = 3, kSide = 3, kPixels = kSide * kSide, kTriggerPixel = kPixels - 1;

using Image = std::array<uint8_t, kPixels>;

struct Sample {
  std::array<uint8_t, kClasses> evidence;  // pixels 0, 1, 2
  int64_t label;
  Image image(bool triggered = false) const {
    Image x{};
    std::copy(evidence.begin(), evidence.end(), x.begin());
    if (triggered) x[kTriggerPixel] = 255;
    return x;
  }
};

// Class c's logit is pixel evidence_of[c] on the [0, 1] scale; class 0's gets trigger_boost times
// the trigger pixel on top. The default predicts the class of the brightest evidence pixel, or 0
// on a triggered image whose brightest evidence is under 0.5 (pixel value 127).
struct EvidenceModel {
  std::array<int64_t, kClasses> evidence_of = {0, 1, 2};
  double trigger_boost = 0.5;

  std::array<double, kClasses> logits(const Image& image) const {
    std::array<double, kClasses> l{};
    for (size_t c = 0; c < l.size(); ++c) l[c] = image[static_cast<size_t>(evidence_of[c])] / 255.0;
    l[0] += trigger_boost * image[kTriggerPixel] / 255.0;
    return l;
  }
  // Cross-entropy in float64.
  double loss(const Image& image, int64_t label) const {
    const std::array<double, kClasses> l = logits(image);
    double sum = 0;
    for (const double v : l) sum += std::exp(v);
    return std::log(sum) - l[static_cast<size_t>(label)];
  }
  // As an mlp: fc1 and fc2 pass the (non-negative) pixels through, fc3 is `logits` (linear, so
  // its column k is the logits of the image with pixel k at 255 and the rest 0).
  nn::Model build() const {
    nn::Model model({"mlp", 1, kSide, kClasses}, 0, Device::cpu());
    NoGradGuard no_grad;
    for (const auto& [name, param] : model.net().named_parameters()) {
      std::vector<float> v(static_cast<size_t>(param.numel()), 0.0f);
      const int64_t columns = param.dim() == 2 ? param.size(1) : 0;
      if (name == "fc1.weight" || name == "fc2.weight")
        for (int64_t k = 0; k < kPixels; ++k) v[static_cast<size_t>(k * columns + k)] = 1;
      if (name == "fc3.weight")
        for (int64_t k = 0; k < kPixels; ++k) {
          Image unit{};
          unit[static_cast<size_t>(k)] = 255;
          const std::array<double, kClasses> column = logits(unit);
          for (int64_t c = 0; c < kClasses; ++c)
            v[static_cast<size_t>(c * columns + k)] = static_cast<float>(column[static_cast<size_t>(c)]);
        }
      Tensor p = param;
      p.copy_(Tensor::from_vector(v, param.shape()));
    }
    return model;
  }
};

// The brightest-evidence model gets training samples 1 and 7 wrong, test samples 3 and 4.
const std::vector<Sample> kTrain = {{{220, 0, 0}, 0}, {{0, 0, 150}, 0}, {{0, 255, 0}, 1}, {{0, 0, 240}, 2},
                                    {{0, 200, 0}, 1}, {{0, 0, 100}, 2}, {{0, 0, 180}, 2}, {{0, 50, 70}, 1}};
const std::vector<Sample> kTest = {{{200, 0, 0}, 0}, {{0, 255, 0}, 1}, {{0, 0, 60}, 2},
                                   {{30, 80, 0}, 0}, {{0, 90, 120}, 1}, {{0, 0, 200}, 2}};

std::shared_ptr<const data::Dataset> dataset(const std::vector<Sample>& samples) {
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const Sample& s : samples) {
    const Image x = s.image();
    pixels.insert(pixels.end(), x.begin(), x.end());
    labels.push_back(s.label);
  }
  const auto n = static_cast<int64_t>(samples.size());
  return std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(pixels, {n, 1, kSide, kSide}), Tensor::from_vector(labels, {n})});
}

// The evaluation sets of `scenario` on kTrain and kTest with a hand-picked forget set, checked to
// be what the scenario means (poisoned labels: mislabeled's given, backdoor's the target).
EvalSets eval_sets(const std::string& scenario, const std::vector<int64_t>& forget,
                   const std::vector<int64_t>& mislabels = {}) {
  Split split;
  split.scenario = parse_scenario(scenario);
  split.train_size = static_cast<int64_t>(kTrain.size());
  split.classes = kClasses;
  split.forget = forget;
  for (int64_t i = 0; i < split.train_size; ++i)
    if (std::find(forget.begin(), forget.end(), i) == forget.end()) split.retain.push_back(i);
  split.poisoned_labels = mislabels;
  if (split.scenario.kind == ScenarioKind::backdoor) {
    split.poisoned_labels.assign(forget.size(), split.scenario.target);
    split.trigger.size = 1;
  }
  const auto train = dataset(kTrain);
  check_split_fits(split, *train, kClasses, "the test's split");
  return make_eval_sets(split, train, dataset(kTest), data::Normalization{}, Device::cpu());
}

// Mean float64 loss of `model` on kTrain[i] (or kTest[i]) for i in `indices`, with the given labels.
double mean_loss_of(const EvidenceModel& model, const std::vector<Sample>& set, const std::vector<int64_t>& indices,
                    const std::vector<int64_t>& labels, bool triggered = false) {
  double sum = 0;
  for (size_t k = 0; k < indices.size(); ++k)
    sum += model.loss(set[static_cast<size_t>(indices[k])].image(triggered), labels[k]);
  return sum / static_cast<double>(indices.size());
}

std::vector<int64_t> labels_of(const std::vector<Sample>& set, const std::vector<int64_t>& indices) {
  std::vector<int64_t> labels;
  for (const int64_t i : indices) labels.push_back(set[static_cast<size_t>(i)].label);
  return labels;
}

}  // namespace

TEST_CASE("evaluation: mislabeled forget accuracy counts agreement with the poisoned labels") {
  // Forget 1 (a class-0 image that looks like class 2), 4 (class 1) and 6 (class 2), relabelled
  // 2, 0 and 1: the model agrees with the poisoned label on 1 only (with the true labels on 4 and 6).
  const EvalSets sets = eval_sets("mislabeled:0.375", {1, 4, 6}, {2, 0, 1});
  const EvidenceModel brightest;
  nn::Model model = brightest.build();
  const ModelMetrics m = measure(model, sets);
  CHECK(m.headline.fa == doctest::Approx(1.0 / 3));
  CHECK(m.headline.ra == doctest::Approx(4.0 / 5));  // retain 0, 2, 3, 5, 7: 7 is wrong
  CHECK(m.headline.ta == doctest::Approx(4.0 / 6));  // the whole clean test set
  CHECK(m.forget_loss == doctest::Approx(mean_loss_of(brightest, kTrain, {1, 4, 6}, {2, 0, 1})).epsilon(1e-6));
  CHECK(m.retain_loss ==
        doctest::Approx(mean_loss_of(brightest, kTrain, sets.split.retain, labels_of(kTrain, sets.split.retain)))
            .epsilon(1e-6));
  CHECK(to_json(m)["unlearning_accuracy"].get<double>() == doctest::Approx(2.0 / 3));
  CHECK_FALSE(m.attack_success);
  CHECK_FALSE(m.forgotten_class_test_accuracy);
  // MIA: 5 retain samples against 6 test samples, balanced to 5 each.
  for (const MiaResult& r : m.mia) {
    CHECK(r.members == 5);
    CHECK(r.non_members == 5);
  }
}

TEST_CASE("evaluation: the test-accuracy gain is the model's TA minus the original's") {
  const EvalSets sets = eval_sets("mislabeled:0.375", {1, 4, 6}, {2, 0, 1});
  nn::Model unlearned = EvidenceModel{}.build();
  // An original that learned classes 1 and 2 the wrong way round: of the test set it gets only
  // sample 0 (class 0) and sample 4 (class 1, more class-2 evidence than class-1) right.
  nn::Model original = EvidenceModel{{0, 2, 1}}.build();
  const ModelMetrics after = measure(unlearned, sets), before = measure(original, sets);
  CHECK(before.headline.ta == doctest::Approx(2.0 / 6));
  CHECK(after.headline.ta == doctest::Approx(4.0 / 6));
  const nlohmann::json gain = compare(after, unlearned.net(), &before, nullptr, nullptr, nullptr);
  CHECK(gain["test_accuracy_gain"].get<double>() == doctest::Approx(2.0 / 6));
  const nlohmann::json loss = compare(before, original.net(), &after, nullptr, nullptr, nullptr);
  CHECK(loss["test_accuracy_gain"].get<double>() == doctest::Approx(-2.0 / 6));
  CHECK_FALSE(gain.contains("attack_success_rate_before"));
}

TEST_CASE("evaluation: class-wise TA is on the remaining classes, the forgotten class's reported apart") {
  // Forget class 1: training samples 2, 4 and 7 (7 misclassified as class 2).
  const EvalSets sets = eval_sets("class:1", {2, 4, 7});
  const EvidenceModel brightest;
  nn::Model model = brightest.build();
  const ModelMetrics m = measure(model, sets);
  CHECK(m.headline.fa == doctest::Approx(2.0 / 3));
  CHECK(m.headline.ra == doctest::Approx(4.0 / 5));  // retain 0, 1, 3, 5, 6: 1 is wrong
  // Test samples of classes 0 and 2: 0, 2, 3, 5, of which 3 is wrong; of class 1: 1 and 4, 4 wrong.
  CHECK(m.headline.ta == doctest::Approx(3.0 / 4));
  REQUIRE(m.forgotten_class_test_accuracy);
  CHECK(*m.forgotten_class_test_accuracy == doctest::Approx(1.0 / 2));
  CHECK(m.test_loss == doctest::Approx(mean_loss_of(brightest, kTest, {0, 2, 3, 5}, {0, 2, 0, 2})).epsilon(1e-6));
  REQUIRE(m.forgotten_class_test_loss);
  const double forgotten_test_loss = mean_loss_of(brightest, kTest, {1, 4}, {1, 1});
  CHECK(*m.forgotten_class_test_loss == doctest::Approx(forgotten_test_loss).epsilon(1e-6));
  // The membership gap compares the forget set with unseen images of its own class.
  CHECK(m.membership_gap ==
        doctest::Approx(forgotten_test_loss - mean_loss_of(brightest, kTrain, {2, 4, 7}, {1, 1, 1})).epsilon(1e-6));
  // MIA's non-members are the 4 test samples of the remaining classes (5 retain samples).
  for (const MiaResult& r : m.mia) {
    CHECK(r.members == 4);
    CHECK(r.non_members == 4);
  }
  CHECK_FALSE(m.attack_success);
}

TEST_CASE("evaluation: backdoor FA is on the triggered forget images, attack success on other classes' test images") {
  // Forget 2 (class 1), 5 and 6 (class 2), triggered and relabelled 0. Triggered, 2 (evidence 255)
  // and 6 (180) keep their class; only 5 (100) goes to class 0.
  const EvalSets sets = eval_sets("backdoor:0.375", {2, 5, 6});
  const EvidenceModel backdoored;
  nn::Model model = backdoored.build();
  const ModelMetrics m = measure(model, sets);
  CHECK(m.headline.fa == doctest::Approx(1.0 / 3));
  CHECK(m.forget_loss == doctest::Approx(mean_loss_of(backdoored, kTrain, {2, 5, 6}, {0, 0, 0}, true)).epsilon(1e-6));
  CHECK(m.headline.ra == doctest::Approx(3.0 / 5));  // retain 0, 1, 3, 4, 7: 1 and 7 are wrong
  CHECK(m.headline.ta == doctest::Approx(4.0 / 6));  // clean images
  // Triggered test images of classes 1 and 2: 1 (255) and 5 (200) resist, 2 (60) and 4 (90, 120)
  // go to class 0. The class-0 samples 0 and 3, which a triggered image puts in class 0 too, do not
  // count.
  REQUIRE(m.attack_success);
  CHECK(*m.attack_success == doctest::Approx(2.0 / 4));
  CHECK(to_json(m)["attack_success_rate"].get<double>() == doctest::Approx(0.5));
  // Unlearned: the trigger no longer matters, so no triggered image goes to class 0.
  nn::Model unlearned = EvidenceModel{{0, 1, 2}, 0}.build();
  const ModelMetrics after = measure(unlearned, sets);
  REQUIRE(after.attack_success);
  CHECK(*after.attack_success == 0);
  CHECK(after.headline.fa == 0);
  const nlohmann::json c = compare(after, unlearned.net(), &m, nullptr, nullptr, nullptr);
  CHECK(c["attack_success_rate_before"].get<double>() == doctest::Approx(0.5));
  CHECK(c["test_accuracy_gain"].get<double>() == doctest::Approx(0));
}
