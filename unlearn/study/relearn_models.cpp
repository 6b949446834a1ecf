#include "unlearn/study/relearn_models.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>

#include "engine/error.h"
#include "nn/checkpoint.h"
#include "engine/file.h"
#include "nn/data/png.h"
#include "nn/generative.h"
#include "unlearn/study/progress.h"
#include "unlearn/study/scenario_args.h"
#include "unlearn/trajectory.h"
#include "unlearn/metrics.h"

namespace lethe::study {

namespace {

const RelearnedModel* find_role(const std::vector<RelearnedModel>& models, const std::string& role) {
  for (const RelearnedModel& m : models)
    if (m.role == role) return &m;
  return nullptr;
}

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

std::string cell(const nlohmann::json& v, const char* format, double scale = 1) {
  if (!v.is_number()) return "—";
  return fmt::format(fmt::runtime(format), scale * v.get<double>());
}

// Right-aligns `v` in `width` columns, counting UTF-8 characters (≥, ≤ and — are one column, three bytes).
std::string pad(const std::string& v, size_t width) {
  size_t shown = 0;
  for (const char c : v) shown += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return std::string(shown < width ? width - shown : 0, ' ') + v;
}

}  // namespace

nlohmann::json model_distances(const nn::Module& model, const nn::Module* original, const nn::Module* retrained) {
  auto l2 = [&](const nn::Module* other) {
    return other == nullptr ? nlohmann::json() : nlohmann::json(unlearn::weight_distances(model, *other).back().l2);
  };
  return {{"original", l2(original)}, {"retrained", l2(retrained)}};
}

nlohmann::json models_json(const std::vector<RelearnedModel>& models, double margin) {
  const RelearnedModel* retrained = find_role(models, "retrained");
  nlohmann::json out = nlohmann::json::array();
  for (const RelearnedModel& m : models) {
    const unlearn::Headline& h = m.metrics.headline;
    const bool damaged = retrained != nullptr && m.role == "unlearned" &&
                         (h.ra < retrained->metrics.headline.ra - margin || h.ta < retrained->metrics.headline.ta - margin);
    out.push_back(
        {{"name", m.name},
         {"method", m.method},
         {"role", m.role},
         {"metrics", {{"fa", h.fa}, {"ra", h.ra}, {"ta", h.ta}, {"mia", h.mia}, {"forget_loss", number(m.metrics.forget_loss)}}},
         // What tells forgetting from damage at the start (README, "Controls"); along the curve
         // the points carry the held-out loss and the membership gap.
         {"controls",
          {{"retain_loss", number(m.metrics.retain_loss)},
           {"test_loss", number(m.metrics.test_loss)},
           {"membership_gap", number(m.metrics.membership_gap)}}},
         {"gap", retrained ? number(unlearn::average_gap(h, retrained->metrics.headline)) : nlohmann::json()},
         {"damaged", damaged},
         {"unlearn_seconds", m.unlearn_seconds},
         {"distance", m.distance},
         {"rcd", unlearn::rcd_json(m.relearn, retrained ? &retrained->relearn : nullptr)},
         {"curve", unlearn::curve_json(m.relearn)}});
    if (!m.generator.is_null()) {
      out.back()["generative"] = {{"forget_frechet", m.generator.at("forget_frechet")},
                                  {"retain_frechet", m.generator.at("retain_frechet")},
                                  {"test_forget_class_loss", m.generator.at("test_forget_class_loss")}};
      out.back()["generator_metrics"] = m.generator;
    }
  }
  return out;
}

std::string rcd_table(const nlohmann::json& models, const std::string& headline) {
  const std::string first = headline == "accuracy" ? "accuracy" : "loss", second = first == "loss" ? "accuracy" : "loss";
  std::string s = fmt::format("  {:<12}{:>7}{:>7}{:>7}{:>7}{:>7}  {:>11}{:>8}  {:>11}{:>8}{:>10}{:>8}\n", "model", "FA",
                              "RA", "TA", "MIA", "gap", first == "loss" ? "RCD loss" : "RCD acc", "/retr",
                              first == "loss" ? "RCD acc" : "RCD loss", "/retr", "loss AUC", "/retr");
  bool any_damaged = false, any_bound = false;
  std::string extended;
  int64_t cap = -1;
  for (const nlohmann::json& m : models) {
    const nlohmann::json& x = m.at("metrics");
    const nlohmann::json& r = m.at("rcd");
    const bool damaged = m.at("damaged").get<bool>();
    any_damaged = any_damaged || damaged;
    std::vector<std::string> ratios;
    for (const std::string& f : {first, second, std::string("loss_auc")}) {
      ratios.push_back(unlearn::rcd_ratio_text(r, f));
      any_bound = any_bound || ratios.back() == "n/a" || ratios.back().rfind("≥", 0) == 0 || ratios.back().rfind("≤", 0) == 0;
    }
    if (r.value("extended", false))
      extended = fmt::format("{}: {} (--cap-limit: the gold standard relearns until it meets both targets{})",
                             m.at("name").get<std::string>(), r.at("cap").get<int64_t>(),
                             r.at("censored_at_limit") == true ? "; it did not, even there: censored" : "");
    else if (r.contains("cap"))
      cap = r.at("cap").get<int64_t>();
    s += fmt::format("  {:<12}{:>7}{:>7}{:>7}{:>7}{:>7}  {}{}  {}{}{}{}{}\n", m.at("name").get<std::string>(),
                     cell(x.at("fa"), "{:.2f}", 100), cell(x.at("ra"), "{:.2f}", 100), cell(x.at("ta"), "{:.2f}", 100),
                     cell(x.at("mia"), "{:.2f}", 100), cell(m.at("gap"), "{:.2f}", 100),
                     pad(unlearn::rcd_figure_text(r, first), 11), pad(ratios[0], 8),
                     pad(unlearn::rcd_figure_text(r, second), 11), pad(ratios[1], 8),
                     pad(unlearn::rcd_figure_text(r, "loss_auc"), 10), pad(ratios[2], 8), damaged ? "  damaged*" : "");
  }
  s += "  FA/RA/TA/MIA and gap in points; RCD in relearning steps (≥: not met within the steps run, censored); /retr: "
       "divided by the retrained model's (1: relearns like a model that never saw the data, < 1: faster, the data was "
       "hidden)\n";
  if (!extended.empty()) s += cap >= 0 ? fmt::format("  cap {} steps; {}\n", cap, extended) : "  cap of " + extended + "\n";
  if (any_bound)
    s += "  /retr ≥ x: a lower bound (this model censored), ≤ x: an upper bound (the retrained model censored), n/a: "
         "undefined (both censored, a model diverged, or no retrained model)\n";
  if (any_damaged) s += "  * RA or TA below the retrained model's by more than the margin: a damaged model relearns slowly too\n";
  return s;
}

namespace {

// A generator's metrics in a classifier's places: FA and RA are its forget and retain fidelity, TA
// and the MIA do not apply (NaN: null in JSON, "—" in tables).
unlearn::ModelMetrics generator_row_metrics(const unlearn::GeneratorMetrics& g) {
  unlearn::ModelMetrics m;
  const double none = std::numeric_limits<double>::quiet_NaN();
  m.headline = {g.forget_fidelity.value, g.retain_fidelity.value, none, none};
  m.forget_loss = g.forget_loss;
  m.retain_loss = g.retain_loss;
  m.test_loss = g.test_loss;
  m.membership_gap = g.membership_gap;
  return m;
}

}  // namespace

void generator_relearn_defaults(unlearn::RelearnOptions& options) {
  if (std::isnan(options.retain_mix) && std::isnan(options.retain_samples)) options.retain_mix = 0;
}

void write_sample_picture(const std::string& checkpoint, const DataSource& source, Device device,
                          const unlearn::Scenario& scenario, uint64_t seed, const std::filesystem::path& png) {
  nn::Model generator = nn::load_model(load_checkpoint_for(checkpoint, source), device);
  const int64_t forgotten = scenario.classes.at(0), classes = generator.spec().classes;
  std::vector<int64_t> labels;
  for (int64_t row = 0; row < 3; ++row)
    labels.insert(labels.end(), static_cast<size_t>(kPictureColumns), (forgotten + row) % classes);
  std::filesystem::create_directories(png.parent_path());
  write_file_atomically(png.string(), data::encode_png(data::image_grid(nn::generate(generator, labels, seed), kPictureColumns)),
                        "run");
}

RelearnOutput relearn_models(const RelearnInputs& in) {
  const unlearn::RelearnOptions& o = in.options;
  LETHE_CHECK(!in.models.empty(), "relearn", "nothing to relearn");
  const bool generators = !in.evaluator.empty();
  // A generator's pixels are in [0, 1]; the evaluator reads the data set's normalisation.
  const data::Normalization normalization = generators ? data::Normalization{} : in.source.normalization;
  std::optional<nn::Model> evaluator;
  std::optional<unlearn::GeneratorJudge> judge;
  if (generators) {
    const nn::Checkpoint e = load_checkpoint_for(in.evaluator, in.source);
    require_classifier(e.info, in.evaluator, "relearn --evaluator");
    evaluator.emplace(nn::load_model(e, in.device));
    std::vector<int64_t> labels;
    for (int64_t c : in.split.scenario.classes)
      labels.insert(labels.end(), static_cast<size_t>(in.generator.samples_per_class), c);
    judge = unlearn::GeneratorJudge{&*evaluator, in.source.normalization, std::move(labels), in.generator.seed};
  }
  const unlearn::EvalSets sets =
      generators ? unlearn::EvalSets{}
                 : unlearn::make_eval_sets(in.split, in.source.train, in.source.test, in.source.normalization, in.device);
  const std::shared_ptr<const data::Dataset> train = unlearn::scenario_training_set(in.split, in.source.train);
  const unlearn::RelearnData data = unlearn::relearn_data(train, in.split, o, in.source.test);
  std::vector<nn::Model> nets;
  std::vector<NamedTensors> starts;
  std::vector<RelearnedModel> rows;
  const nn::Module *original = nullptr, *retrained = nullptr;
  nets.reserve(in.models.size());  // `original` and `retrained` point into it
  for (const ModelFile& f : in.models) {
    const nn::Checkpoint c = load_checkpoint_for(f.path, in.source, in.plain);
    const bool generator = nn::is_generator_name(c.info.model.name);
    LETHE_CHECK(generator == generators, "relearn", f.path, " holds the ", generator ? "generator " : "classifier ",
                c.info.model.name, generator ? ": relearning a generator needs --evaluator, the classifier that judges its samples"
                                             : ": --evaluator is for generators");
    LETHE_CHECK(nets.empty() || c.info.model.name == nets.front().spec().name, "relearn", f.path, " holds a ",
                c.info.model.name, ", not a ", nets.front().spec().name);
    check_trained_for(c.info, f.path, in.split);
    nets.push_back(nn::load_model(c, in.device));
    starts.push_back(c.model_state);
    if (generators) {
      const unlearn::GeneratorMetrics g = unlearn::generator_metrics(
          nets.back(), *evaluator, in.split, in.source.train, in.source.test, in.source.normalization, in.generator);
      rows.push_back({f.name, f.method, f.role, generator_row_metrics(g), nullptr, f.unlearn_seconds, {},
                      unlearn::to_json(g)});
    } else {
      rows.push_back({f.name, f.method, f.role, unlearn::measure(nets.back(), sets), nullptr, f.unlearn_seconds, {}, nullptr});
    }
    LETHE_CHECK(f.role == "unlearned" || (f.role == "original" ? original : retrained) == nullptr, "relearn",
                "more than one ", f.role, " model");
    if (f.role == "original") original = &nets.back().net();
    if (f.role == "retrained") retrained = &nets.back().net();
  }
  LETHE_CHECK(original != nullptr || (!std::isnan(o.accuracy_target) && !std::isnan(o.loss_target)), "relearn",
              "the targets come from the original model: give it, or both --accuracy-target and --loss-target");
  for (size_t i = 0; i < rows.size(); ++i) rows[i].distance = model_distances(nets[i].net(), original, retrained);

  unlearn::ForgetMetrics reference;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].role == "original")
      reference = unlearn::forget_metrics(nets[i], data.forget, normalization, o, data.heldout, judge ? &*judge : nullptr);
  RelearnOutput out;
  out.targets = unlearn::relearn_targets(o, reference);
  out.data = unlearn::relearn_data_json(data, o);
  const char* measured_on = o.target_set == "class-test" ? "the forgotten classes' test images" : "the forget set";
  if (!in.quiet)
    fmt::print(stderr, "relearning {} models on {} samples of {} ({} forget, {} retain; {}, {}); targets on {} ({} "
               "images): accuracy >= {:.2f}%, loss <= {:.4f}\n",
               rows.size(), data.train.size(), in.split.scenario.str(), data.forget_read, data.retain_read, o.optimizer,
               unlearn::relearn_mode_name(in.mode), measured_on, data.forget.size(), 100 * out.targets.accuracy,
               out.targets.loss);
  // One log per model (each has its own start), all appending to one file.
  std::vector<std::unique_ptr<unlearn::TrajectoryLog>> logs;
  if (!in.trajectory.empty())
    for (size_t i = 0; i < rows.size(); ++i) {
      unlearn::TrajectoryReferences refs;
      refs.start = unlearn::snapshot(nets[i].net().named_parameters());
      if (original != nullptr) refs.original = unlearn::snapshot(original->named_parameters());
      if (retrained != nullptr) refs.retrained = unlearn::snapshot(retrained->named_parameters());
      logs.push_back(std::make_unique<unlearn::TrajectoryLog>(in.trajectory, std::move(refs), in.trajectory_every, i > 0));
    }
  const unlearn::RelearnObserver observe = [&](size_t model, int64_t step, const NamedTensors& params) {
    logs[model]->record(rows[model].name, "relearn", step, params);
  };
  // The retrained model is the gold standard: it relearns past the cap, to cap_limit at most.
  std::vector<size_t> extended;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].role == "retrained") extended.push_back(i);
  Progress progress("relearn", extended.empty() ? o.steps : std::max(o.steps, o.cap_limit), in.quiet);
  const auto start = std::chrono::steady_clock::now();
  std::vector<unlearn::RelearnResult> results = unlearn::relearn(
      nets.front().spec(), starts, data, normalization, o, out.targets, in.device, in.mode,
      [&](const unlearn::RelearnProgress& p) { progress.update(p.step); }, logs.empty() ? nullptr : observe, extended,
      judge ? &*judge : nullptr);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress.finish(fmt::format("{:.1f} s", out.seconds));
  for (size_t i = 0; i < rows.size(); ++i) rows[i].relearn = std::move(results[i]);
  out.models = models_json(rows, in.margin);
  return out;
}

std::string curves_csv_header(bool study) {
  return study ? "scenario,replicate,model,step,forget_accuracy,forget_loss,distance"
               : "scenario,model,step,forget_accuracy,forget_loss,distance";
}

std::string curves_csv_rows(const std::string& scenario, const nlohmann::json& models, int64_t replicate) {
  const std::string who = replicate >= 0 ? scenario + "," + std::to_string(replicate) : scenario;
  std::string rows;
  for (const nlohmann::json& m : models)
    for (const nlohmann::json& p : m.at("curve"))
      rows += fmt::format("{},{},{},{:.17g},{},{}\n", who, m.at("name").get<std::string>(), p.at("step").get<int64_t>(),
                          p.at("forget_accuracy").get<double>(),
                          p.at("forget_loss").is_number() ? fmt::format("{:.17g}", p.at("forget_loss").get<double>()) : "nan",
                          p.at("distance").is_number() ? fmt::format("{:.17g}", p.at("distance").get<double>()) : "nan");
  return rows;
}

void append_curves_csv(const std::string& path, const std::string& scenario, const nlohmann::json& models,
                       int64_t replicate) {
  append_to_csv(path, curves_csv_header(replicate >= 0), curves_csv_rows(scenario, models, replicate), "relearn");
}

}  // namespace lethe::study
