#include "unlearn/evaluation.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "nn/data/loader.h"
#include "unlearn/stats.h"

namespace lethe::unlearn {

namespace {

SampleScores score(nn::Model& model, const EvalSets& sets, data::Subset subset) {
  data::DataLoader loader = data::evaluation_loader(std::move(subset), sets.batch, sets.normalization, sets.device);
  return score_samples(model, loader);
}

}  // namespace

EvalSets make_eval_sets(const Split& split, std::shared_ptr<const data::Dataset> clean_train,
                        std::shared_ptr<const data::Dataset> test, const data::Normalization& normalization,
                        Device device) {
  EvalSets s;
  s.split = split;
  s.train = scenario_training_set(split, std::move(clean_train));
  if (split.scenario.kind == ScenarioKind::backdoor)
    s.triggered_test = std::make_shared<const data::Dataset>(triggered_test_set(split, *test));
  s.test = std::move(test);
  s.normalization = normalization;
  s.device = device;
  s.mia_seed = split.seed;
  return s;
}

ModelMetrics measure(nn::Model& model, const EvalSets& sets) {
  const Split& split = sets.split;
  const SampleScores forget = score(model, sets, {sets.train, split.forget});
  const SampleScores retain = score(model, sets, {sets.train, split.retain});
  SampleScores test = score(model, sets, data::Subset::all(sets.test));
  ModelMetrics m;
  m.membership_gap = stats::membership_gap(test.loss, forget.loss);
  if (split.scenario.kind == ScenarioKind::class_wise) {
    const SampleScores forgotten = filter_classes(test, split.scenario.classes, true);
    m.forgotten_class_test_accuracy = accuracy(forgotten);
    m.forgotten_class_test_loss = mean_loss(forgotten);
    m.membership_gap = stats::membership_gap(forgotten.loss, forget.loss);
    test = filter_classes(test, split.scenario.classes, false);
  }
  m.headline.fa = accuracy(forget);
  m.headline.ra = accuracy(retain);
  m.headline.ta = accuracy(test);
  m.forget_loss = mean_loss(forget);
  m.retain_loss = mean_loss(retain);
  m.test_loss = mean_loss(test);
  for (const MiaFeature f : {MiaFeature::confidence, MiaFeature::entropy})
    for (const MiaClassifier c : {MiaClassifier::logistic, MiaClassifier::threshold})
      m.mia.push_back(mia_efficacy(feature_of(retain, f), feature_of(test, f), feature_of(forget, f), f, c, sets.mia_seed));
  m.headline.mia = m.mia.front().efficacy;
  if (sets.triggered_test)
    m.attack_success = fraction_predicted(score(model, sets, data::Subset::all(sets.triggered_test)), split.scenario.target);
  return m;
}

nlohmann::json to_json(const ModelMetrics& m) {
  nlohmann::json j = {{"forget_accuracy", m.headline.fa},
                      {"unlearning_accuracy", 1 - m.headline.fa},
                      {"retain_accuracy", m.headline.ra},
                      {"test_accuracy", m.headline.ta},
                      {"mia_efficacy", m.headline.mia},
                      {"forget_loss", m.forget_loss},
                      {"retain_loss", m.retain_loss},
                      {"test_loss", m.test_loss},
                      {"membership_gap", m.membership_gap},
                      {"mia", nlohmann::json::object()}};
  for (const MiaResult& r : m.mia) j["mia"][r.feature][r.classifier_kind] = to_json(r);
  if (m.forgotten_class_test_accuracy) j["forgotten_class_test_accuracy"] = *m.forgotten_class_test_accuracy;
  if (m.forgotten_class_test_loss) j["forgotten_class_test_loss"] = *m.forgotten_class_test_loss;
  if (m.attack_success) j["attack_success_rate"] = *m.attack_success;
  return j;
}

nlohmann::json compare(const ModelMetrics& m, const nn::Module& model, const ModelMetrics* original,
                       const nn::Module* original_model, const ModelMetrics* retrained,
                       const nn::Module* retrained_model) {
  nlohmann::json j = nlohmann::json::object();
  if (retrained) {
    j["average_gap"] = average_gap(m.headline, retrained->headline);
    j["retrained"] = to_json(*retrained);
  }
  if (original) {
    j["test_accuracy_gain"] = m.headline.ta - original->headline.ta;
    if (original->attack_success) j["attack_success_rate_before"] = *original->attack_success;
    j["original"] = to_json(*original);
  }
  nlohmann::json distances = nlohmann::json::object();
  if (original_model) distances["to_original"] = to_json(weight_distances(model, *original_model));
  if (retrained_model) distances["to_retrained"] = to_json(weight_distances(model, *retrained_model));
  if (!distances.empty()) j["weight_distances"] = distances;
  return j;
}

}  // namespace lethe::unlearn
