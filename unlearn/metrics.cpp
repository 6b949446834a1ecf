#include "unlearn/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"

namespace lethe::unlearn {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Philox stream of the MIA's balancing subsample (splits use 2^33 and 2^33 + 1).
constexpr uint64_t kMiaStream = (uint64_t{2} << 32) + 2;

// JSON has no infinities: an end threshold is written as a string.
nlohmann::json number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(std::to_string(x)); }

}  // namespace

SampleScores score_samples(nn::Model& model, data::DataLoader& loader) {
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
  SampleScores s;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const data::Batch batch = loader.batch(0, b);
    append_scores(s, model.forward(batch.images), batch.labels.to_vector<int64_t>());
  }
  model.train(was_training);
  return s;
}

void append_scores(SampleScores& s, const Tensor& logits, const std::vector<int64_t>& labels) {
  const int64_t classes = logits.size(1);
  const std::vector<double> lp = log_softmax(logits, 1).to(DType::f64).to_vector<double>();
  const std::vector<int64_t> predicted = argmax(logits, 1).to_vector<int64_t>();
  for (size_t i = 0; i < labels.size(); ++i) {
    const double* row = lp.data() + static_cast<int64_t>(i) * classes;
    double entropy = 0;
    for (int64_t c = 0; c < classes; ++c) entropy -= std::exp(row[c]) * row[c];
    s.labels.push_back(labels[i]);
    s.predicted.push_back(predicted[i]);
    s.confidence.push_back(std::exp(row[labels[i]]));
    s.entropy.push_back(entropy);
    s.loss.push_back(-row[labels[i]]);
  }
}

double accuracy(const SampleScores& s) {
  if (s.size() == 0) return kNaN;
  int64_t hits = 0;
  for (int64_t i = 0; i < s.size(); ++i) hits += s.labels[static_cast<size_t>(i)] == s.predicted[static_cast<size_t>(i)];
  return static_cast<double>(hits) / static_cast<double>(s.size());
}

double mean_loss(const SampleScores& s) {
  if (s.size() == 0) return kNaN;
  double sum = 0;
  for (const double l : s.loss) sum += l;
  return sum / static_cast<double>(s.size());
}

double fraction_predicted(const SampleScores& s, int64_t target) {
  if (s.size() == 0) return kNaN;
  return static_cast<double>(std::count(s.predicted.begin(), s.predicted.end(), target)) / static_cast<double>(s.size());
}

SampleScores filter_classes(const SampleScores& s, const std::vector<int64_t>& classes, bool keep) {
  SampleScores out;
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if ((std::find(classes.begin(), classes.end(), s.labels[i]) != classes.end()) != keep) continue;
    out.labels.push_back(s.labels[i]);
    out.predicted.push_back(s.predicted[i]);
    out.confidence.push_back(s.confidence[i]);
    out.entropy.push_back(s.entropy[i]);
    out.loss.push_back(s.loss[i]);
  }
  return out;
}

const char* feature_name(MiaFeature f) { return f == MiaFeature::confidence ? "confidence" : "entropy"; }

std::vector<double> feature_of(const SampleScores& s, MiaFeature f) {
  return f == MiaFeature::confidence ? s.confidence : s.entropy;
}

ThresholdClassifier fit_threshold(const std::vector<double>& members, const std::vector<double>& non_members) {
  LETHE_CHECK(!members.empty() && !non_members.empty(), "mia", "needs members and non-members, got ", members.size(),
              " and ", non_members.size());
  std::vector<std::pair<double, bool>> points;  // (feature, is member)
  for (const double x : members) points.emplace_back(x, true);
  for (const double x : non_members) points.emplace_back(x, false);
  for (const auto& [x, m] : points) LETHE_CHECK(std::isfinite(x), "mia", "a feature value is not finite: ", x);
  std::sort(points.begin(), points.end());
  const double wm = 1.0 / static_cast<double>(members.size()), wn = 1.0 / static_cast<double>(non_members.size());
  // Sweep the cut from below everything to above everything: `members_below` and
  // `non_members_below` are the weights under the cut.
  ThresholdClassifier best;
  best.train_accuracy = -1;
  double members_below = 0, non_members_below = 0;
  const size_t n = points.size();
  for (size_t k = 0; k <= n; ++k) {
    if (k > 0) (points[k - 1].second ? members_below : non_members_below) += points[k - 1].second ? wm : wn;
    if (k > 0 && k < n && points[k - 1].first == points[k].first) continue;  // not a cut between values
    const double t = k == 0   ? -std::numeric_limits<double>::infinity()
                     : k == n ? std::numeric_limits<double>::infinity()
                              : points[k - 1].first + (points[k].first - points[k - 1].first) / 2;
    // Balanced accuracy: the mean of the two classes' recalls.
    const double above = ((1 - members_below) + non_members_below) / 2;  // members above the cut
    const double below = (members_below + (1 - non_members_below)) / 2;  // members below it
    if (above > best.train_accuracy) best = {t, true, above};
    if (below > best.train_accuracy) best = {t, false, below};
  }
  return best;
}

// Balanced accuracy of a cut on the training set.
static double balanced_accuracy(const ThresholdClassifier& c, const std::vector<double>& members,
                         const std::vector<double>& non_members) {
  double hit_m = 0, hit_n = 0;
  for (const double x : members) hit_m += c.is_member(x);
  for (const double x : non_members) hit_n += !c.is_member(x);
  return (hit_m / static_cast<double>(members.size()) + hit_n / static_cast<double>(non_members.size())) / 2;
}

ThresholdClassifier fit_logistic(const std::vector<double>& members, const std::vector<double>& non_members) {
  LETHE_CHECK(!members.empty() && !non_members.empty(), "mia", "needs members and non-members, got ", members.size(),
              " and ", non_members.size());
  std::vector<double> x(members);
  x.insert(x.end(), non_members.begin(), non_members.end());
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (const double v : x) {
    LETHE_CHECK(std::isfinite(v), "mia", "a feature value is not finite: ", v);
    mean += v / n;
  }
  for (const double v : x) var += (v - mean) * (v - mean) / n;
  const double scale = var > 0 ? std::sqrt(var) : 1;
  // Newton's method on (w, b) for Σ log(1 + exp(−y(w·z + b))) + ½w², z standardised, y = ±1.
  double w = 0, b = 0;
  for (int iteration = 0; iteration < 100; ++iteration) {
    double gw = w, gb = 0, hww = 1, hwb = 0, hbb = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double z = (x[i] - mean) / scale, y = i < members.size() ? 1.0 : 0.0;
      const double p = 1 / (1 + std::exp(-(w * z + b)));
      gw += (p - y) * z;
      gb += p - y;
      const double h = p * (1 - p);
      hww += h * z * z;
      hwb += h * z;
      hbb += h;
    }
    const double det = hww * hbb - hwb * hwb;
    if (!(det > 0)) break;
    const double dw = (hbb * gw - hwb * gb) / det, db = (hww * gb - hwb * gw) / det;
    w -= dw;
    b -= db;
    if (std::abs(dw) + std::abs(db) < 1e-12) break;
  }
  ThresholdClassifier c;
  // member iff w·(x − mean)/scale + b > 0
  c.member_above = w >= 0;
  c.threshold = w != 0 ? mean - b * scale / w : (b > 0 ? -1 : 1) * std::numeric_limits<double>::infinity();
  c.train_accuracy = balanced_accuracy(c, members, non_members);
  return c;
}

const char* classifier_name(MiaClassifier c) { return c == MiaClassifier::logistic ? "logistic" : "threshold"; }

MiaResult mia_efficacy(const std::vector<double>& retain, const std::vector<double>& test,
                       const std::vector<double>& forget, MiaFeature feature, MiaClassifier classifier,
                       uint64_t seed) {
  LETHE_CHECK(!forget.empty(), "mia", "the forget set is empty");
  // Balance by subsampling the larger side.
  auto subsample = [seed](const std::vector<double>& v, size_t count) {
    if (v.size() <= count) return v;
    const std::vector<int64_t> order = data::permutation(static_cast<int64_t>(v.size()), seed, kMiaStream);
    std::vector<int64_t> chosen(order.begin(), order.begin() + static_cast<int64_t>(count));
    std::sort(chosen.begin(), chosen.end());
    std::vector<double> out;
    for (const int64_t i : chosen) out.push_back(v[static_cast<size_t>(i)]);
    return out;
  };
  const size_t count = std::min(retain.size(), test.size());
  const std::vector<double> members = subsample(retain, count), non_members = subsample(test, count);
  MiaResult r;
  r.feature = feature_name(feature);
  r.classifier_kind = classifier_name(classifier);
  r.classifier = classifier == MiaClassifier::logistic ? fit_logistic(members, non_members)
                                                       : fit_threshold(members, non_members);
  r.members = static_cast<int64_t>(members.size());
  r.non_members = static_cast<int64_t>(non_members.size());
  int64_t outside = 0;
  for (const double x : forget) outside += !r.classifier.is_member(x);
  r.efficacy = static_cast<double>(outside) / static_cast<double>(forget.size());
  return r;
}

nlohmann::json to_json(const MiaResult& r) {
  return {{"efficacy", r.efficacy},
          {"feature", r.feature},
          {"classifier", r.classifier_kind == "logistic"
                             ? "logistic regression on the standardised feature (L2, C = 1)"
                             : "threshold maximising balanced accuracy"},
          {"trained_on", "members: retain samples, non-members: test samples, balanced by subsampling"},
          {"threshold", number(r.classifier.threshold)},
          {"member_if", r.classifier.member_above ? "feature > threshold" : "feature < threshold"},
          {"train_accuracy", r.classifier.train_accuracy},
          {"members", r.members},
          {"non_members", r.non_members}};
}

std::vector<Distance> weight_distances(const nn::Module& a, const nn::Module& b) {
  const NamedTensors pa = a.named_parameters(), pb = b.named_parameters();
  LETHE_CHECK(pa.size() == pb.size(), "weight_distances", "the models have ", pa.size(), " and ", pb.size(),
              " parameter tensors");
  std::vector<Distance> out;
  double diff2 = 0, dot = 0, na2 = 0, nb2 = 0;
  int64_t total = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    LETHE_CHECK(pa[i].first == pb[i].first && pa[i].second.shape() == pb[i].second.shape(), "weight_distances",
                "parameter ", i, " is ", pa[i].first, pa[i].second.shape().str(), " in one model and ", pb[i].first,
                pb[i].second.shape().str(), " in the other");
    const std::vector<double> x = pa[i].second.to(DType::f64).to_vector<double>();
    const std::vector<double> y = pb[i].second.to(DType::f64).to_vector<double>();
    double d2 = 0, xy = 0, x2 = 0, y2 = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      d2 += (x[k] - y[k]) * (x[k] - y[k]);
      xy += x[k] * y[k];
      x2 += x[k] * x[k];
      y2 += y[k] * y[k];
    }
    out.push_back({pa[i].first, static_cast<int64_t>(x.size()), std::sqrt(d2), xy / std::sqrt(x2 * y2)});
    diff2 += d2, dot += xy, na2 += x2, nb2 += y2, total += static_cast<int64_t>(x.size());
  }
  out.push_back({"model", total, std::sqrt(diff2), dot / std::sqrt(na2 * nb2)});
  return out;
}

nlohmann::json to_json(const std::vector<Distance>& d) {
  nlohmann::json j = nlohmann::json::object();
  for (const Distance& r : d) j[r.name] = {{"l2", r.l2}, {"cosine", number(r.cosine)}, {"numel", r.numel}};
  return j;
}

double average_gap(const Headline& m, const Headline& rt) {
  double sum = 0;
  int known = 0;
  for (const double d : {m.fa - rt.fa, m.ra - rt.ra, m.ta - rt.ta, m.mia - rt.mia})
    if (!std::isnan(d)) sum += std::abs(d), ++known;
  return known == 0 ? std::nan("") : sum / known;
}

}  // namespace lethe::unlearn
