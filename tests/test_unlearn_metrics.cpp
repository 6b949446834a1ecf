// The unlearning metrics on cases small enough to compute by hand.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "nn/data/fashion_mnist.h"
#include "nn/train.h"
#include "unlearn/metrics.h"

using namespace lethe;
using namespace lethe::unlearn;

TEST_CASE("mia: the threshold classifier picks the best balanced cut") {
  ThresholdClassifier c = fit_threshold({3, 4, 5}, {0, 1, 2});
  CHECK(c.threshold == 2.5);
  CHECK(c.member_above);
  CHECK(c.train_accuracy == 1);
  c = fit_threshold({0, 1}, {5, 6, 7});  // members low: the direction flips
  CHECK(c.threshold == 3);
  CHECK_FALSE(c.member_above);
  // Sorted 0n 1m 2n 3m: cuts at 0.5 and 2.5 both reach (1 + ½)/2; the lower one wins.
  c = fit_threshold({1, 3}, {0, 2});
  CHECK(c.threshold == 0.5);
  CHECK(c.member_above);
  CHECK(c.train_accuracy == 0.75);
  // Ties: no cut between equal values.
  c = fit_threshold({1, 1, 2}, {1, 0, 0});
  // Sorted 0n 0n 1n 1m 1m 2m: the cut at 0.5 reaches (1 + ⅔)/2, the one at 1.5 only (⅓ + 1)/2.
  CHECK(c.threshold == 0.5);
  CHECK(c.train_accuracy == doctest::Approx(5.0 / 6));
}

TEST_CASE("mia: logistic regression is a cut at the symmetric point") {
  const ThresholdClassifier c = fit_logistic({1, 2, 3, 2.5}, {-1, -2, -3, -2.5});
  CHECK(c.member_above);
  CHECK(std::abs(c.threshold) < 1e-9);
  CHECK(c.train_accuracy == 1);
  const ThresholdClassifier flipped = fit_logistic({-1, -2, -3, -2.5}, {1, 2, 3, 2.5});
  CHECK_FALSE(flipped.member_above);
  CHECK(std::abs(flipped.threshold) < 1e-9);
  // Overlapping classes shifted by 10: the cut moves with them.
  const ThresholdClassifier shifted = fit_logistic({11, 12, 9.5, 13}, {9, 8, 10.5, 7});
  CHECK(shifted.threshold == doctest::Approx(10).epsilon(1e-9));
}

TEST_CASE("mia: efficacy is the forget fraction called non-member, on a balanced training set") {
  // 6 retain (members) against 3 test: 3 retain samples are drawn.
  const std::vector<double> retain = {0.9, 0.95, 0.99, 0.97, 0.92, 0.91}, test = {0.1, 0.2, 0.3};
  const MiaResult r = mia_efficacy(retain, test, {0.05, 0.5, 0.96, 0.99}, MiaFeature::confidence,
                                   MiaClassifier::threshold, 0);
  CHECK(r.members == 3);
  CHECK(r.non_members == 3);
  CHECK(r.classifier.member_above);
  // The cut is halfway between 0.3 and the smallest member drawn (0.9 to 0.97): 0.05 and 0.5 fall
  // below it, 0.96 and 0.99 above.
  CHECK(r.classifier.threshold >= 0.6);
  CHECK(r.classifier.threshold <= 0.635);
  CHECK(r.efficacy == 0.5);
  CHECK(mia_efficacy(retain, test, {0.05}, MiaFeature::confidence, MiaClassifier::logistic, 0).efficacy == 1);
  CHECK_THROWS_AS(mia_efficacy(retain, {}, {0.5}, MiaFeature::confidence, MiaClassifier::logistic, 0), Error);
}

TEST_CASE("metrics: average gap is the mean absolute difference") {
  const Headline m{0.90, 0.95, 0.91, 0.20}, rt{0.92, 0.96, 0.90, 0.24};
  CHECK(average_gap(m, rt) == doctest::Approx((0.02 + 0.01 + 0.01 + 0.04) / 4));
  CHECK(average_gap(rt, rt) == 0);
}

TEST_CASE("metrics: accuracy, attack success and class filters on scores") {
  SampleScores s;
  s.labels = {0, 1, 2, 1};
  s.predicted = {0, 2, 2, 1};
  s.confidence = {0.9, 0.1, 0.8, 0.7};
  s.entropy = {0.1, 1, 0.2, 0.3};
  s.loss = {0.1, 2.3, 0.2, 0.4};
  CHECK(accuracy(s) == 0.75);
  CHECK(mean_loss(s) == doctest::Approx(0.75));
  CHECK(fraction_predicted(s, 2) == 0.5);
  const SampleScores ones = filter_classes(s, {1}, true);
  CHECK(ones.size() == 2);
  CHECK(accuracy(ones) == 0.5);
  CHECK(accuracy(filter_classes(s, {1}, false)) == 1);
  CHECK(std::isnan(accuracy(SampleScores{})));
}

TEST_CASE("metrics: weight distances per parameter and for the whole model") {
  nn::Model a({"mlp", 1, 4, 3}, 0, Device::cpu()), b({"mlp", 1, 4, 3}, 0, Device::cpu());
  {
    NoGradGuard no_grad;
    const NamedTensors params = b.net().named_parameters();
    Tensor bias = params.back().second;  // fc3.bias [3]
    bias.add_(Tensor::full({3}, 2.0));
  }
  const std::vector<Distance> d = weight_distances(a.net(), b.net());
  REQUIRE(d.size() == a.net().named_parameters().size() + 1);
  for (size_t i = 0; i + 2 < d.size(); ++i) {
    CHECK(d[i].l2 == 0);
    CHECK(d[i].cosine == doctest::Approx(1));
  }
  CHECK(d[d.size() - 2].name == "fc3.bias");
  CHECK(d[d.size() - 2].l2 == doctest::Approx(std::sqrt(12.0)));  // three differences of 2
  CHECK(d.back().name == "model");
  CHECK(d.back().l2 == doctest::Approx(std::sqrt(12.0)));
  CHECK(d.back().numel == a.net().parameter_count());
  nn::Model other({"cnn-s"}, 0, Device::cpu());
  CHECK_THROWS_AS(weight_distances(a.net(), other.net()), Error);
}

TEST_CASE("metrics: per-sample scores agree with evaluate()") {
  const int64_t n = 50;
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 16);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % 3;
    for (int64_t p = 0; p < 16; ++p) pixels[static_cast<size_t>(i * 16 + p)] = static_cast<uint8_t>((i * 37 + p * 11) % 256);
  }
  const auto set = std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(pixels, {n, 1, 4, 4}), Tensor::from_vector(labels, {n})});
  nn::Model model({"mlp", 1, 4, 3}, 1, Device::cpu());
  data::DataLoader loader = data::evaluation_loader(data::Subset::all(set), 16, data::fashion_mnist_normalization());
  const SampleScores s = score_samples(model, loader);
  const nn::Evaluation e = nn::evaluate(model, loader);
  REQUIRE(s.size() == n);
  CHECK(accuracy(s) == e.accuracy);
  CHECK(mean_loss(s) == doctest::Approx(e.mean_loss).epsilon(1e-6));
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    CHECK(s.confidence[k] == doctest::Approx(std::exp(-s.loss[k])));
    CHECK(s.entropy[k] >= 0);
    CHECK(s.entropy[k] <= std::log(3.0) + 1e-9);
  }
}
