// The unlearning metrics on cases small enough to compute by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "engine/autograd.h"
#include "engine/error.h"
#include "nn/data/fashion_mnist.h"
#include "nn/train.h"
#include "unlearn/metrics.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

// softmax(logits) in float64.
std::vector<double> softmax64(const std::vector<double>& logits) {
  double top = logits[0];
  for (const double l : logits) top = std::max(top, l);
  std::vector<double> p;
  double sum = 0;
  for (const double l : logits) sum += p.emplace_back(std::exp(l - top));
  for (double& v : p) v /= sum;
  return p;
}

// The cut fit_logistic documents, found independently: gradient descent in float64 on
// Σ log(1 + exp(−y(w·z + b))) + penalty·½w², y = ±1, z the feature standardised with the pooled
// mean and population standard deviation, to a gradient below 1e-12; member iff w·z + b > 0.
struct ReferenceCut {
  double threshold = 0;
  bool member_above = true;
};
ReferenceCut reference_logistic_cut(const std::vector<double>& members, const std::vector<double>& non_members,
                                    double penalty) {
  std::vector<double> x(members);
  x.insert(x.end(), non_members.begin(), non_members.end());
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (const double v : x) mean += v / n;
  for (const double v : x) var += (v - mean) * (v - mean) / n;
  const double scale = std::sqrt(var);
  // The loss's curvature is at most n/4 (Σz² = n) plus the penalty: a step of 0.1 is stable for
  // the dozen points used here.
  double w = 0, b = 0;
  for (int step = 0; step < 1000000; ++step) {
    double gw = penalty * w, gb = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double z = (x[i] - mean) / scale, y = i < members.size() ? 1 : -1;
      const double sigma = 1 / (1 + std::exp(y * (w * z + b)));  // −d/dm log(1 + exp(−m)) at m = y(wz + b)
      gw -= y * z * sigma;
      gb -= y * sigma;
    }
    if (std::abs(gw) + std::abs(gb) < 1e-12) return {mean - b * scale / w, w > 0};
    w -= 0.1 * gw;
    b -= 0.1 * gb;
  }
  FAIL("the reference logistic fit did not converge");
  return {};
}

// A parameter value by (tensor index, element index).
using Values = std::function<double(size_t, int64_t)>;

// fc1 [256,1], fc2 [256,256], fc3 [2,256] and their biases: every size even.
const nn::ModelSpec kDistanceSpec{"mlp", 1, 1, 2};

// The element counts of kDistanceSpec's parameter tensors.
std::vector<int64_t> parameter_sizes() {
  std::vector<int64_t> sizes;
  for (const auto& [name, param] : nn::build_network(kDistanceSpec)->named_parameters()) sizes.push_back(param.numel());
  return sizes;
}

// weight_distances between two models of kDistanceSpec whose parameters are `a` and `b` (as float32).
std::vector<Distance> distances_between(const Values& a, const Values& b) {
  nn::Model ma(kDistanceSpec, 0, Device::cpu()), mb(kDistanceSpec, 0, Device::cpu());
  NoGradGuard no_grad;
  for (const auto& [model, values] : {std::pair{&ma, &a}, std::pair{&mb, &b}}) {
    const NamedTensors params = model->net().named_parameters();
    for (size_t t = 0; t < params.size(); ++t) {
      std::vector<float> v(static_cast<size_t>(params[t].second.numel()));
      for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>((*values)(t, static_cast<int64_t>(k)));
      Tensor param = params[t].second;
      param.copy_(Tensor::from_vector(v, param.shape()));
    }
  }
  return weight_distances(ma.net(), mb.net());
}

// The same from the definitions, in float64 over the float32 values: per tensor, then "model".
std::vector<Distance> reference_distances(const Values& a, const Values& b) {
  const std::vector<int64_t> sizes = parameter_sizes();
  std::vector<Distance> rows;
  double total_diff2 = 0, total_dot = 0, total_a2 = 0, total_b2 = 0;
  int64_t total_size = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    double diff2 = 0, dot = 0, a2 = 0, b2 = 0;
    for (int64_t k = 0; k < sizes[t]; ++k) {
      const double x = static_cast<float>(a(t, k)), y = static_cast<float>(b(t, k));
      diff2 += (x - y) * (x - y), dot += x * y, a2 += x * x, b2 += y * y;
    }
    rows.push_back({"", sizes[t], std::sqrt(diff2), dot / (std::sqrt(a2) * std::sqrt(b2))});
    total_diff2 += diff2, total_dot += dot, total_a2 += a2, total_b2 += b2, total_size += sizes[t];
  }
  rows.push_back({"model", total_size, std::sqrt(total_diff2), total_dot / (std::sqrt(total_a2) * std::sqrt(total_b2))});
  return rows;
}

}  // namespace

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

TEST_CASE("mia: logistic regression on asymmetric data is the penalised fit, and the penalty moves the cut") {
  // Tight members, spread-out non-members: the cut depends on both the slope and the intercept, so
  // on the penalty too.
  const std::vector<double> members = {0.9, 0.95, 0.99, 0.6, 0.97, 0.8}, non_members = {0.1, 0.7, 0.5, 0.92, 0.3, 0.85};
  const ReferenceCut fit = reference_logistic_cut(members, non_members, 1);  // ½w²: scikit-learn's C = 1
  const ReferenceCut unpenalised = reference_logistic_cut(members, non_members, 0);
  const ReferenceCut doubled = reference_logistic_cut(members, non_members, 2);
  const ThresholdClassifier c = fit_logistic(members, non_members);
  CHECK(c.member_above == fit.member_above);
  CHECK(c.member_above);
  CHECK(c.threshold == doctest::Approx(fit.threshold).epsilon(1e-9));
  // The cut (about 0.7315) is neither the pooled mean (0.715) nor the unpenalised or doubly
  // penalised fit's (about 0.7527 and 0.7251).
  CHECK(c.threshold > 0.715 + 0.01);
  CHECK(unpenalised.threshold > c.threshold + 0.01);
  CHECK(doubled.threshold < c.threshold - 0.005);
  // On the training set: 0.6 is the one member under the cut, 0.92 and 0.85 the non-members above.
  CHECK(c.train_accuracy == doctest::Approx((5.0 / 6 + 4.0 / 6) / 2));
  // Members low: the same cut, the other direction.
  const ReferenceCut flipped_fit = reference_logistic_cut(non_members, members, 1);
  const ThresholdClassifier flipped = fit_logistic(non_members, members);
  CHECK_FALSE(flipped_fit.member_above);
  CHECK_FALSE(flipped.member_above);
  CHECK(flipped.threshold == doctest::Approx(flipped_fit.threshold).epsilon(1e-9));
  CHECK(flipped_fit.threshold == doctest::Approx(fit.threshold).epsilon(1e-9));

  // Efficacy (equal sides, so nothing is subsampled): 0.728 falls under the cut and 0.74 over it,
  // which the unpenalised fit would call 3 of 4 non-members and the doubled penalty 1 of 4.
  const std::vector<double> forget = {0.728, 0.74, 0.9, 0.2};
  const MiaResult r = mia_efficacy(members, non_members, forget, MiaFeature::confidence, MiaClassifier::logistic, 0);
  CHECK(r.classifier.threshold == doctest::Approx(fit.threshold).epsilon(1e-9));
  CHECK(r.efficacy == 0.5);
  auto below = [&](const ReferenceCut& cut) {
    return static_cast<double>(std::count_if(forget.begin(), forget.end(), [&](double x) { return x < cut.threshold; })) / 4;
  };
  CHECK(below(fit) == 0.5);
  CHECK(below(unpenalised) == 0.75);
  CHECK(below(doubled) == 0.25);
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

TEST_CASE("metrics: cosine and L2 distances on orthogonal, opposite, scaled and general weights") {
  // Orthogonal: a on the even elements, b on the odd ones (every tensor has both).
  for (const Distance& d : distances_between([](size_t, int64_t k) { return k % 2 == 0 ? 1.0 : 0.0; },
                                             [](size_t, int64_t k) { return k % 2 == 1 ? 2.0 : 0.0; })) {
    CHECK(d.cosine == 0);
    CHECK(d.l2 == doctest::Approx(std::sqrt(static_cast<double>(d.numel / 2) * (1 + 4))));
  }
  // Multiples of ¼, so 3a and −a are exact in float32; ‖a‖ is the distance to zero.
  const Values a = [](size_t t, int64_t k) { return 0.25 * static_cast<double>(k % 7) - 0.5 + static_cast<double>(t); };
  const std::vector<Distance> norms = reference_distances(a, [](size_t, int64_t) { return 0.0; });
  const std::vector<Distance> opposite = distances_between(a, [&](size_t t, int64_t k) { return -a(t, k); });
  const std::vector<Distance> scaled = distances_between(a, [&](size_t t, int64_t k) { return 3 * a(t, k); });
  REQUIRE(opposite.size() == norms.size());
  REQUIRE(scaled.size() == norms.size());
  for (size_t i = 0; i < norms.size(); ++i) {
    CHECK(opposite[i].cosine == doctest::Approx(-1).epsilon(1e-12));
    CHECK(opposite[i].l2 == doctest::Approx(2 * norms[i].l2).epsilon(1e-12));
    CHECK(scaled[i].cosine == doctest::Approx(1).epsilon(1e-12));
    CHECK(scaled[i].l2 == doctest::Approx(2 * norms[i].l2).epsilon(1e-12));
  }
  // A general pair: per tensor and over the whole model (not the mean of the tensors' cosines).
  const Values g = [](size_t t, int64_t k) { return std::sin(0.37 * static_cast<double>(k) + static_cast<double>(t)); };
  const Values h = [](size_t t, int64_t k) {
    return std::cos(0.11 * static_cast<double>(k) - static_cast<double>(t)) + 0.3 * static_cast<double>(t);
  };
  const std::vector<Distance> general = distances_between(g, h), expected = reference_distances(g, h);
  REQUIRE(general.size() == expected.size());
  for (size_t i = 0; i < general.size(); ++i) {
    CAPTURE(general[i].name);
    CHECK(general[i].numel == expected[i].numel);
    CHECK(general[i].cosine == doctest::Approx(expected[i].cosine).epsilon(1e-12));
    CHECK(general[i].l2 == doctest::Approx(expected[i].l2).epsilon(1e-12));
  }
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

TEST_CASE("metrics: the entropy feature is the softmax's entropy in nats") {
  const std::vector<std::vector<double>> rows = {
      {0, 0, 0},                                        // uniform: ln 3
      {std::log(0.5), std::log(0.25), std::log(0.25)},  // ½ ln 2 + 2·¼ ln 4 = 1.5 ln 2
      {2, -1, 0.5},
      {6, 0, 0},
      {-3, 4, 1}};
  const std::vector<int64_t> labels = {2, 0, 1, 0, 0};
  std::vector<float> logits;
  for (const auto& row : rows) logits.insert(logits.end(), row.begin(), row.end());
  SampleScores s;
  append_scores(s, Tensor::from_vector(logits, {5, 3}), labels);
  REQUIRE(s.size() == 5);
  CHECK(s.entropy[0] == doctest::Approx(std::log(3.0)).epsilon(1e-6));
  CHECK(s.entropy[1] == doctest::Approx(1.5 * std::log(2.0)).epsilon(1e-6));
  CHECK(s.confidence[1] == doctest::Approx(0.5).epsilon(1e-6));
  for (size_t i = 0; i < rows.size(); ++i) {
    CAPTURE(i);
    const std::vector<double> p = softmax64(rows[i]);
    double entropy = 0;
    for (const double v : p) entropy -= v * std::log(v);
    const double label_p = p[static_cast<size_t>(labels[i])];
    CHECK(s.entropy[i] == doctest::Approx(entropy).epsilon(1e-6));
    CHECK(s.confidence[i] == doctest::Approx(label_p).epsilon(1e-6));
    CHECK(s.loss[i] == doctest::Approx(-std::log(label_p)).epsilon(1e-6));
  }
  CHECK(feature_of(s, MiaFeature::entropy) == s.entropy);
  CHECK(feature_of(s, MiaFeature::confidence) == s.confidence);
}
