#include "unlearn/generative_metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "nn/data/loader.h"
#include "nn/generative.h"
#include "nn/layers.h"
#include "unlearn/stats.h"

namespace lethe::unlearn {

namespace {

// (x − mean_c) / std_c per channel of images in [0, 1] (one value: every channel; none: as is).
Tensor normalize(const Tensor& images, const data::Normalization& norm) {
  if (norm.mean.empty()) return images;
  const int64_t channels = images.size(1);
  std::vector<double> mean, stddev;
  for (int64_t c = 0; c < channels; ++c) {
    mean.push_back(norm.mean[norm.mean.size() == 1 ? 0 : static_cast<size_t>(c)]);
    stddev.push_back(norm.std[norm.std.size() == 1 ? 0 : static_cast<size_t>(c)]);
  }
  const auto per_channel = [&](const std::vector<double>& v) {
    return Tensor::from_vector(v, {1, channels, 1, 1}).to(images.dtype()).to(images.device());
  };
  return div(sub(images, per_channel(mean)), per_channel(stddev));
}

// The images of `set` at `indices` as float [N,C,H,W] in [0, 1] on `device`.
Tensor images_at(const std::shared_ptr<const data::Dataset>& set, const std::vector<int64_t>& indices, Device device) {
  const Tensor index = Tensor::from_vector(indices, {static_cast<int64_t>(indices.size())});
  return div(index_select(set->images, 0, index).to(DType::f32), 255.0).to(device);
}

std::vector<int64_t> labels_of(const data::Dataset& set) { return set.labels.to_vector<int64_t>(); }

// At most `limit` of `indices`, evenly spaced (0: all).
std::vector<int64_t> spaced(const std::vector<int64_t>& indices, int64_t limit) {
  const auto n = static_cast<int64_t>(indices.size());
  if (limit <= 0 || n <= limit) return indices;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < limit; ++i) out.push_back(indices[static_cast<size_t>(i * n / limit)]);
  return out;
}

// The generator's mean per-image loss over the images of `set` at `indices`, batch k's draws from
// stream k of the options' seed.
double mean_loss(nn::Model& generator, const std::shared_ptr<const data::Dataset>& set,
                 const std::vector<int64_t>& indices, const GeneratorMetricOptions& o) {
  LETHE_CHECK(!indices.empty(), "generator metrics", "no images to measure the loss on");
  const bool was_training = generator.net().is_training();
  generator.eval();
  NoGradGuard no_grad;
  // Pixels in [0, 1]: a generator's data has no normalisation.
  data::DataLoader batches = data::evaluation_loader({set, indices}, o.batch, data::Normalization{}, generator.device());
  double total = 0;
  for (int64_t k = 0; k < batches.batches_per_epoch(); ++k) {
    const data::Batch b = batches.batch(0, k);
    const Tensor loss = generator.generator()->loss(b.images.to(generator.spec().dtype), b.labels,
                                                    nn::draw_seed(o.seed), static_cast<uint64_t>(k));
    total += sum(loss).to(DType::f64).item();
  }
  generator.train(was_training);
  const double mean = total / static_cast<double>(indices.size());
  LETHE_CHECK(std::isfinite(mean), "generator metrics", "the generator's loss is not finite (", mean, ")");
  return mean;
}

}  // namespace

Judgement judge(nn::Model& evaluator, const Tensor& images, const data::Normalization& normalization, int64_t batch) {
  auto* net = dynamic_cast<nn::Sequential*>(&evaluator.net());
  LETHE_CHECK(net != nullptr && net->layers().size() >= 2, "evaluator", evaluator.spec().name,
              " is not a Sequential classifier (mlp, cnn-s): its penultimate layer is not defined here");
  LETHE_CHECK(images.defined() && images.dim() == 4 && images.size(0) > 0, "evaluator", "expects images [N,C,H,W], got ",
              images.str());
  const bool was_training = evaluator.net().is_training();
  evaluator.eval();
  NoGradGuard no_grad;
  const auto& layers = net->layers();
  std::vector<Tensor> features;
  Judgement j;
  for (int64_t first = 0; first < images.size(0); first += batch) {
    const int64_t count = std::min(batch, images.size(0) - first);
    Tensor h = normalize(images.narrow(0, first, count).to(evaluator.device()).to(evaluator.spec().dtype), normalization);
    for (size_t l = 0; l + 1 < layers.size(); ++l) h = layers[l].second->forward(h);
    const Tensor logits = layers.back().second->forward(h);
    features.push_back(h.to(DType::f64).to(Device::cpu()));
    for (int64_t p : argmax(logits, 1).to_vector<int64_t>()) j.predicted.push_back(p);
  }
  evaluator.train(was_training);
  j.features = features.size() == 1 ? features.front() : concat(features, 0);
  LETHE_CHECK(j.features.dim() == 2, "evaluator", "penultimate features of shape ", j.features.str(), " (want [N, d])");
  return j;
}

JudgedSamples judge_samples(nn::Model& generator, nn::Model& evaluator, const std::vector<int64_t>& labels,
                            uint64_t seed, const data::Normalization& normalization) {
  JudgedSamples out;
  out.judgement = judge(evaluator, nn::generate(generator, labels, seed), normalization);
  int64_t hits = 0;
  for (size_t i = 0; i < labels.size(); ++i) hits += out.judgement.predicted[i] == labels[i];
  out.fidelity = stats::wilson_interval(hits, static_cast<int64_t>(labels.size()));
  return out;
}

Gaussian fit_gaussian(const Tensor& features) {
  LETHE_CHECK(features.defined() && features.dim() == 2 && features.size(0) >= 2 && features.size(1) >= 1,
              "fit_gaussian", "needs features [N, d] with N ≥ 2, got ", features.defined() ? features.str() : "undefined");
  const Tensor x = features.to(DType::f64).to(Device::cpu());
  const Tensor mu = mean(x, {0});
  const Tensor centred = sub(x, mu);
  const Tensor covariance = div(matmul(centred.transpose(0, 1), centred), static_cast<double>(x.size(0) - 1));
  return {mu, covariance};
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  LETHE_CHECK(a.mean.shape() == b.mean.shape() && a.covariance.shape() == b.covariance.shape(), "frechet_distance",
              "the Gaussians differ in dimension: ", a.mean.str(), " and ", b.mean.str());
  const Tensor diff = sub(a.mean, b.mean);
  const double means = sum(mul(diff, diff)).item();
  const auto trace = [](const Tensor& m) {
    double t = 0;
    const std::vector<double> v = m.to_vector<double>();
    for (int64_t i = 0; i < m.size(0); ++i) t += v[static_cast<size_t>(i * m.size(0) + i)];
    return t;
  };
  const Tensor root_a = sqrtmh(a.covariance);
  Tensor product = matmul(matmul(root_a, b.covariance), root_a);
  product = mul(add(product, product.transpose(0, 1)), 0.5);  // symmetric to the last bit for LAPACK
  double cross = 0;
  for (double e : eigvalsh(product).to_vector<double>()) cross += std::sqrt(std::max(e, 0.0));
  return means + trace(a.covariance) + trace(b.covariance) - 2 * cross;
}

GeneratorMetrics generator_metrics(nn::Model& generator, nn::Model& evaluator, const Split& split,
                                   const std::shared_ptr<const data::Dataset>& train,
                                   const std::shared_ptr<const data::Dataset>& test,
                                   const data::Normalization& normalization, const GeneratorMetricOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  LETHE_CHECK(generator.generator() != nullptr, "generator metrics", generator.spec().name, " is not a generator");
  LETHE_CHECK(split.scenario.kind == ScenarioKind::class_wise, "generator metrics",
              "a generator forgets classes: the scenario is class:C, not ", split.scenario.str());
  LETHE_CHECK(o.samples_per_class >= 2 && o.batch > 0 && o.loss_images >= 0, "generator metrics",
              "bad options: ", o.samples_per_class, " samples a class, batch ", o.batch);
  LETHE_CHECK(test != nullptr, "generator metrics", "needs the test set");
  const int64_t classes = generator.spec().classes;
  LETHE_CHECK(evaluator.spec().classes == classes, "generator metrics", "the evaluator has ", evaluator.spec().classes,
              " classes, the generator ", classes);
  const auto forgotten = [&](int64_t c) {
    return std::find(split.scenario.classes.begin(), split.scenario.classes.end(), c) != split.scenario.classes.end();
  };
  GeneratorMetrics m;
  m.forget_class = split.scenario.classes.front();

  // Real test images of each class, judged once.
  const std::vector<int64_t> test_labels = labels_of(*test);
  std::vector<std::vector<int64_t>> test_by_class(static_cast<size_t>(classes));
  for (size_t i = 0; i < test_labels.size(); ++i) test_by_class[static_cast<size_t>(test_labels[i])].push_back(static_cast<int64_t>(i));
  std::vector<int64_t> all_test(test_labels.size());
  for (size_t i = 0; i < all_test.size(); ++i) all_test[i] = static_cast<int64_t>(i);
  const Judgement real = judge(evaluator, images_at(test, all_test, evaluator.device()), normalization);

  std::vector<Tensor> retain_samples, retain_real;
  int64_t forget_hits = 0, forget_count = 0, retain_hits = 0, retain_count = 0;
  std::vector<Tensor> forget_samples, forget_real;
  for (int64_t c = 0; c < classes; ++c) {
    const std::vector<int64_t> labels(static_cast<size_t>(o.samples_per_class), c);
    const JudgedSamples judged = judge_samples(generator, evaluator, labels, o.seed + static_cast<uint64_t>(c), normalization);
    const Judgement& fake = judged.judgement;
    ClassMetrics cm;
    cm.label = c;
    cm.fidelity = judged.fidelity;
    const int64_t hits = judged.fidelity.hits;
    const std::vector<int64_t>& rows = test_by_class[static_cast<size_t>(c)];
    LETHE_CHECK(rows.size() >= 2, "generator metrics", "the test set has ", rows.size(), " images of class ", c);
    const Tensor real_c = index_select(real.features, 0, Tensor::from_vector(rows, {static_cast<int64_t>(rows.size())}));
    cm.frechet = frechet_distance(fit_gaussian(fake.features), fit_gaussian(real_c));
    (forgotten(c) ? forget_samples : retain_samples).push_back(fake.features);
    (forgotten(c) ? forget_real : retain_real).push_back(real_c);
    (forgotten(c) ? forget_hits : retain_hits) += hits;
    (forgotten(c) ? forget_count : retain_count) += o.samples_per_class;
    m.classes.push_back(cm);
  }
  LETHE_CHECK(retain_count > 0, "generator metrics", "no class is left to retain");
  m.forget_fidelity = stats::wilson_interval(forget_hits, forget_count);
  m.retain_fidelity = stats::wilson_interval(retain_hits, retain_count);
  m.forget_frechet = frechet_distance(fit_gaussian(concat(forget_samples, 0)), fit_gaussian(concat(forget_real, 0)));
  m.retain_frechet = frechet_distance(fit_gaussian(concat(retain_samples, 0)), fit_gaussian(concat(retain_real, 0)));

  std::vector<int64_t> test_forget;
  for (int64_t c : split.scenario.classes) {
    const auto& rows = test_by_class[static_cast<size_t>(c)];
    test_forget.insert(test_forget.end(), rows.begin(), rows.end());
  }
  std::sort(test_forget.begin(), test_forget.end());
  m.forget_loss = mean_loss(generator, train, spaced(split.forget, o.loss_images), o);
  m.retain_loss = mean_loss(generator, train, spaced(split.retain, o.loss_images), o);
  m.test_loss = mean_loss(generator, test, spaced(all_test, o.loss_images), o);
  m.test_forget_class_loss = mean_loss(generator, test, spaced(test_forget, o.loss_images), o);
  m.membership_gap = m.test_forget_class_loss - m.forget_loss;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return m;
}

namespace {
nlohmann::json share_json(const Proportion& p) {
  return {{"value", p.value}, {"lo", p.lo}, {"hi", p.hi}, {"hits", p.hits}, {"count", p.count}};
}
}  // namespace

nlohmann::json to_json(const GeneratorMetrics& m) {
  nlohmann::json per_class = nlohmann::json::array();
  for (const ClassMetrics& c : m.classes)
    per_class.push_back({{"class", c.label}, {"fidelity", share_json(c.fidelity)}, {"frechet", c.frechet}});
  return {{"forget_class", m.forget_class},
          {"forget_fidelity", share_json(m.forget_fidelity)},
          {"retain_fidelity", share_json(m.retain_fidelity)},
          {"forget_frechet", m.forget_frechet},
          {"retain_frechet", m.retain_frechet},
          {"forget_loss", m.forget_loss},
          {"retain_loss", m.retain_loss},
          {"test_loss", m.test_loss},
          {"test_forget_class_loss", m.test_forget_class_loss},
          {"membership_gap", m.membership_gap},
          {"classes", per_class},
          {"metric_seconds", m.seconds}};
}

}  // namespace lethe::unlearn
