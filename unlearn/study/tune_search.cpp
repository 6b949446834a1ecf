// The search of one scenario: the reference measurements (the retrained model on the validation
// split, and its RCD when the criterion has an RCD term), then every trial of every searched
// method, in this process or in one process per trial (--jobs), each a resumable phase.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "nn/option_json.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/processes.h"
#include "unlearn/study/tune.h"
#include "unlearn/evaluation.h"
#include "unlearn/method.h"
#include "unlearn/relearn.h"
#include "unlearn/search_space.h"

namespace lethe::study {

namespace {

bool is_ieu_ablation(const std::string& method) { return method.rfind("ieu-no-", 0) == 0; }

// What every trial of a scenario is measured with. Built once per process.
class TrialBench {
 public:
  TrialBench(const Study& s, const ReplicatePhases& phases, const SearchScenario& at, const DataSource& source,
             Device device)
      : source_(source), device_(device) {
    split_ = unlearn::load_split(at.split.path.string());
    validation_ = std::make_shared<const data::Dataset>(unlearn::validation_set(split_, *source.train));
    // The validation split stands for the test set: VA for TA, the MIA's non-members, and the
    // relearning's held-out images.
    sets_ = unlearn::make_eval_sets(split_, source.train, validation_, source.normalization, device);
    const TuneOptions& t = *s.tune;
    if (t.rcd_weight > 0) {
      CLI::App parser;  // the flags of `lethe relearn`, which the [relearn] table holds
      add_option_flags(parser, relearn_, unlearn::relearn_options());
      parse_flags(parser, joined({s.relearn, {"--seed=" + std::to_string(phases.replicate().seed)}}), "[relearn]");
      relearn_.resolve(at.scenario);
      relearn_.calibration_samples = 0;  // the criterion's RCD is the plain loss RCD
      data_ = unlearn::relearn_data(sets_.train, split_, relearn_, validation_);
    }
  }

  const unlearn::Split& split() const { return split_; }
  const data::Dataset& validation() const { return *validation_; }

  unlearn::Headline measure(const std::string& checkpoint) const {
    const nn::Checkpoint c = load_checkpoint_for(checkpoint, source_);
    nn::Model model = nn::load_model(c, device_);
    return unlearn::measure(model, sets_).headline;
  }

  // The loss target, from the original (unlearn/relearn.h).
  void measure_targets(const std::string& original) {
    const nn::Checkpoint c = load_checkpoint_for(original, source_);
    nn::Model model = nn::load_model(c, device_);
    targets_ = unlearn::relearn_targets(relearn_, unlearn::forget_metrics(model, data_.forget, source_.normalization,
                                                                          relearn_));
  }
  const unlearn::RelearnTargets& targets() const { return targets_; }
  void set_targets(const unlearn::RelearnTargets& t) { targets_ = t; }

  // Steps to the loss target, and whether that is the cap (not met): the retrained model relearns
  // to cap_limit, every other model to the cap.
  std::pair<int64_t, bool> rcd(const std::string& checkpoint, bool extended) const {
    const nn::Checkpoint c = load_checkpoint_for(checkpoint, source_);
    const std::vector<unlearn::RelearnResult> r =
        unlearn::relearn(c.info.model, {c.model_state}, data_, source_.normalization, relearn_, targets_, device_,
                         unlearn::RelearnMode::automatic, {}, {}, extended ? std::vector<size_t>{0} : std::vector<size_t>{});
    LETHE_CHECK(!r.front().diverged, "tune", checkpoint, ": the forget loss diverged while relearning");
    if (r.front().loss_steps >= 0) return {r.front().loss_steps, false};
    return {r.front().cap, true};
  }

 private:
  const DataSource& source_;
  Device device_;
  unlearn::Split split_;
  std::shared_ptr<const data::Dataset> validation_;
  unlearn::EvalSets sets_;
  unlearn::RelearnOptions relearn_;
  unlearn::RelearnData data_;
  unlearn::RelearnTargets targets_;
};

nlohmann::json headline_json(const unlearn::Headline& h) {
  return {{"fa", h.fa}, {"ra", h.ra}, {"va", h.ta}, {"mia", h.mia}};
}
unlearn::Headline headline_of(const nlohmann::json& j) {
  return {j.at("fa").get<double>(), j.at("ra").get<double>(), j.at("va").get<double>(), j.at("mia").get<double>()};
}

// The retrained model on the validation split (and its RCD with an RCD term): a phase, so trial
// processes read it instead of measuring it again.
nlohmann::json reference(const Study& s, const ReplicatePhases& phases, const SearchScenario& at, TrialBench& bench) {
  const TuneOptions& t = *s.tune;
  const fs::path file = phases.scenario_folder(at.scenario) / "tune-reference.json";
  std::vector<std::string> key = joined({{"tune-reference", fmt::format("--rcd-weight={}", t.rcd_weight)},
                                         t.rcd_weight > 0 ? s.relearn : std::vector<std::string>{}, {"--inputs:"},
                                         at.original.key, at.split.key, at.retrained.key});
  const std::vector<fs::path> inputs = {at.original.path, at.split.path, at.retrained.path};
  if (finished(file, key, false, inputs)) {
    nlohmann::json r = parse_json(read_file(file.string(), "tune"), "tune: " + file.string());
    if (t.rcd_weight > 0)
      bench.set_targets(unlearn::RelearnTargets{r.at("targets").at("accuracy").get<double>(),
                                                r.at("targets").at("loss").get<double>()});
    return r;
  }
  phases.check_may_run(phases.id(at.scenario, "search"), file);
  fmt::print(stderr, "measuring the retrained model on the validation split ({} images)\n", bench.validation().size());
  nlohmann::json r;
  const double seconds = timed([&] {
    r = {{"retrained", headline_json(bench.measure(at.retrained.path.string()))}};
    r["retrained"]["rcd"] = nullptr;
    r["retrained"]["rcd_censored"] = false;
    if (t.rcd_weight > 0) {
      bench.measure_targets(at.original.path.string());
      const auto [steps, censored] = bench.rcd(at.retrained.path.string(), true);
      r["retrained"]["rcd"] = steps;
      r["retrained"]["rcd_censored"] = censored;
      r["targets"] = {{"accuracy", bench.targets().accuracy}, {"loss", bench.targets().loss}};
    }
  });
  write_file_atomically(file.string(), r.dump(1), "tune");
  write_record(file, key, seconds, inputs);
  return r;
}

// A method's space: its [tune.space.METHOD] table, or its default.
unlearn::SearchSpace space_of(const Study& s, const std::string& method) {
  const auto given = s.spaces.find(method);
  unlearn::SearchSpace space = given == s.spaces.end()
                                   ? unlearn::default_search_space(method)
                                   : unlearn::with_ranges({method, {}}, given->second, "[tune.space." + method + "]");
  unlearn::check_search_space(space, given == s.spaces.end() ? "the default spaces" : "[tune.space." + method + "]");
  return space;
}

// The method's options as the study gives them, resolved for the scenario: trial 0's values.
std::map<std::string, double> untuned_values(const ReplicatePhases& phases, const std::string& method,
                                             const unlearn::Scenario& scenario) {
  unlearn::MethodOptions o;
  CLI::App parser;
  add_option_flags(parser, o, unlearn::method_options());
  parse_flags(parser, phases.unlearn_flags(method, {}), "[unlearn]");
  o.resolve(scenario);
  std::map<std::string, double> values;
  const nlohmann::json given = nn::options_json(o, unlearn::method_options(), nn::JsonKeys::flag);
  for (const auto& [name, value] : given.items())
    if (value.is_number()) values[name] = value.get<double>();
  return values;
}

struct Trial {
  std::string method;
  int64_t index = 0;
  unlearn::TrialValues values;
  fs::path file;
  std::vector<std::string> key;
};

fs::path trials_folder(const ReplicatePhases& phases, const SearchScenario& at) {
  return phases.scenario_folder(at.scenario) / "trials";
}

std::vector<Trial> plan(const Study& s, const ReplicatePhases& phases, const SearchScenario& at,
                        const std::string& method) {
  const TuneOptions& t = *s.tune;
  const unlearn::SearchSpace space = space_of(s, method);
  const std::map<std::string, double> untuned = untuned_values(phases, method, at.scenario);
  const auto budget = static_cast<int64_t>(untuned.at("steps"));
  std::vector<Trial> out;
  for (int64_t k = 0; k < t.trials; ++k) {
    Trial trial{method, k, unlearn::trial_values(space, t.search_seed, k, budget, untuned),
                trials_folder(phases, at) / fmt::format("{}-{}.json", method, k), {}};
    trial.key = joined({{"trial", method, std::to_string(k)}, phases.unlearn_flags(method, trial.values.flags),
                        {fmt::format("--rcd-weight={}", t.rcd_weight)},
                        t.rcd_weight > 0 ? s.relearn : std::vector<std::string>{}, {"--inputs:"}, at.original.key,
                        at.split.key, at.retrained.key});
    out.push_back(std::move(trial));
  }
  return out;
}

std::vector<fs::path> trial_inputs(const SearchScenario& at) { return {at.original.path, at.split.path, at.retrained.path}; }

// Runs one trial in this process and writes its record. A method that fails at this setting (its
// loss diverged, say) is a trial with an error, never chosen; anything else stops the search.
void run_trial(const Study& s, ReplicatePhases& phases, const SearchScenario& at, TrialBench& bench,
               const nlohmann::json& ref, const Trial& trial) {
  const fs::path checkpoint = trial.file.parent_path() / fmt::format("{}-{}.safetensors", trial.method, trial.index);
  nlohmann::json r = {{"trial", trial.index}, {"flags", trial.values.flags}, {"error", nullptr}};
  for (const auto& [name, value] : trial.values.values) r["values"][name] = value;
  for (const char* k : {"fa", "ra", "va", "mia", "gap", "rcd", "criterion"}) r[k] = nullptr;
  r["rcd_censored"] = false;
  const double seconds = timed([&] {
    try {
      phases.run_command(joined({{"unlearn", "--method=" + trial.method, "--split=" + at.split.path.string(),
                           "--from=" + at.original.path.string(), "--out=" + checkpoint.string(), "--no-eval"},
                          phases.run_flags(), phases.unlearn_flags(trial.method, trial.values.flags)}));
      const unlearn::Headline h = bench.measure(checkpoint.string());
      r.update(headline_json(h));
      const double gap = unlearn::average_gap(h, headline_of(ref.at("retrained")));
      r["gap"] = gap;
      double rcd = NAN, rcd_retrained = NAN;
      if (s.tune->rcd_weight > 0) {
        const auto [steps, censored] = bench.rcd(checkpoint.string(), false);
        r["rcd"] = steps;
        r["rcd_censored"] = censored;
        rcd = static_cast<double>(steps);
        rcd_retrained = ref.at("retrained").at("rcd").get<double>();
      }
      r["criterion"] = unlearn::tuning_criterion(gap, s.tune->rcd_weight, rcd, rcd_retrained);
    } catch (const Error& e) {
      r["error"] = e.what();
    }
  });
  std::error_code ignored;
  fs::remove(checkpoint, ignored);  // the record is what a search keeps: a trial model is made again in seconds
  r["seconds"] = seconds;
  write_file_atomically(trial.file.string(), r.dump(1), "tune");
  write_record(trial.file, trial.key, seconds, trial_inputs(at));
}

std::string trial_id(const SearchScenario& at, const Trial& t) {
  return fmt::format("{}|{}|{}", at.scenario.str(), t.method, t.index);
}

// The flags that start a trial process with this search's settings.
std::vector<std::string> worker_args(const Study& s, const TuneInvocation& how, const std::string& id) {
  std::vector<std::string> args = {"tune"};
  if (!how.config.empty()) args.push_back(how.config);
  args.push_back("--out=" + how.out);
  if (how.quick) args.push_back("--quick");
  const nlohmann::json settings = nn::options_json(*s.tune, tune_options(), nn::JsonKeys::flag);
  for (const auto& [name, value] : settings.items())
    args.push_back(fmt::format("--{}={}", name, value.is_string() ? value.get<std::string>() : value.dump()));
  args.push_back("--worker=" + id);
  return args;
}

nlohmann::json read_trial(const Trial& t) {
  return parse_json(read_file(t.file.string(), "tune"), "tune: " + t.file.string());
}

std::string trial_line(const Trial& t, const nlohmann::json& r, int64_t trials) {
  if (!r.at("error").is_null())
    return fmt::format("{} trial {}/{}: failed: {}", t.method, t.index + 1, trials, r.at("error").get<std::string>());
  return fmt::format("{} trial {}/{}: validation gap {:.2f} points, criterion {:.2f} ({:.1f} s)", t.method,
                     t.index + 1, trials, 100 * r.at("gap").get<double>(), 100 * r.at("criterion").get<double>(),
                     r.at("seconds").get<double>());
}

}  // namespace

std::vector<std::string> searched_methods(const std::vector<std::string>& methods) {
  const bool ieu = std::count(methods.begin(), methods.end(), "ieu") > 0;
  std::vector<std::string> out;
  for (const std::string& m : methods)
    if (m != "retrain" && !(ieu && is_ieu_ablation(m))) out.push_back(m);
  return out;
}

nlohmann::json search_scenario(const Study& s, ReplicatePhases& phases, const SearchScenario& at,
                               const DataSource& source, Device device, const TuneInvocation& invocation) {
  const TuneOptions& t = *s.tune;
  fs::create_directories(trials_folder(phases, at));
  TrialBench bench(s, phases, at, source, device);
  const nlohmann::json ref = reference(s, phases, at, bench);

  const std::vector<std::string> methods = searched_methods(s.methods);
  std::vector<std::vector<Trial>> planned;
  std::vector<Trial> pending;
  for (const std::string& m : methods) {
    planned.push_back(plan(s, phases, at, m));
    for (const Trial& trial : planned.back())
      if (!finished(trial.file, trial.key, false, trial_inputs(at))) pending.push_back(trial);
  }
  const int64_t total = static_cast<int64_t>(methods.size()) * t.trials;
  if (!pending.empty()) phases.check_may_run(phases.id(at.scenario, "search"), trials_folder(phases, at));
  if (phases.shown(phases.id(at.scenario, "search")))
    fmt::print(stderr, "{}: {} trials ({} methods × {}), {} done before, {} to run{}\n", at.scenario.str(), total,
               methods.size(), t.trials, total - static_cast<int64_t>(pending.size()), pending.size(),
               t.jobs > 1 && pending.size() > 1 ? fmt::format(" in {} processes", t.jobs) : "");
  auto report = [&](const Trial& trial) { fmt::print(stderr, "{}\n", trial_line(trial, read_trial(trial), t.trials)); };
  if (t.jobs > 1 && pending.size() > 1) {
    std::vector<ProcessJob> jobs;
    for (const Trial& trial : pending)
      jobs.push_back({fmt::format("the process of {} trial {}", trial.method, trial.index),
                      worker_args(s, invocation, trial_id(at, trial)), fs::path(trial.file.string() + ".log"), {}});
    // A trial that fails is a record; a process that fails stops the search.
    run_processes(jobs, t.jobs, [&](size_t i) { report(pending[i]); }, "tune");
  } else {
    for (const Trial& trial : pending) {
      run_trial(s, phases, at, bench, ref, trial);
      report(trial);
    }
  }

  nlohmann::json record = {{"scenario", at.scenario.str()},
                           {"forget", bench.split().forget.size()},
                           {"retain", bench.split().retain.size()},
                           {"validation", bench.split().validation.size()},
                           {"retrained", ref.at("retrained")},
                           {"methods", nlohmann::json::array()}};
  for (size_t i = 0; i < methods.size(); ++i) {
    nlohmann::json trials = nlohmann::json::array();
    std::vector<double> criteria;
    for (const Trial& trial : planned[i]) {
      LETHE_CHECK(finished(trial.file, trial.key, false, trial_inputs(at)), "tune", trial.file.string(),
                  ": the trial's record is missing or stale after it ran");
      trials.push_back(read_trial(trial));
      const nlohmann::json& c = trials.back().at("criterion");
      criteria.push_back(c.is_number() ? c.get<double>() : NAN);
    }
    record["methods"].push_back({{"method", methods[i]},
                                 {"space", unlearn::to_json(space_of(s, methods[i]))},
                                 {"trials", trials},
                                 {"chosen", unlearn::best_trial(criteria)}});
  }
  return record;
}

void run_worker_trial(const Study& s, ReplicatePhases& phases, const SearchScenario& at, const DataSource& source,
                      Device device, const std::string& method, int64_t index) {
  TrialBench bench(s, phases, at, source, device);
  const nlohmann::json ref = reference(s, phases, at, bench);
  const std::vector<Trial> trials = plan(s, phases, at, method);
  LETHE_CHECK(index >= 0 && index < static_cast<int64_t>(trials.size()), "tune", "--worker: no trial ", index, " of ",
              method);
  run_trial(s, phases, at, bench, ref, trials[static_cast<size_t>(index)]);
}

void check_search_spaces(const Study& s) {
  const std::vector<std::string> searched = searched_methods(s.methods);
  for (const std::string& m : searched) space_of(s, m);
  for (const auto& [method, ranges] : s.spaces)
    LETHE_CHECK(std::count(searched.begin(), searched.end(), method) > 0, "tune", "[tune.space.", method, "]: ", method,
                is_ieu_ablation(method) && std::count(s.methods.begin(), s.methods.end(), method) > 0
                    ? " is a control of IEU, which the study searches: it runs at IEU's chosen setting"
                    : " is not one of the study's methods");
}

std::map<std::string, std::vector<std::string>> chosen_flags(const nlohmann::json& scenario_record,
                                                             const std::vector<std::string>& methods) {
  std::map<std::string, std::vector<std::string>> out;
  for (const nlohmann::json& m : scenario_record.at("methods")) {
    const nlohmann::json& chosen = m.at("trials").at(m.at("chosen").get<size_t>());
    out[m.at("method").get<std::string>()] = chosen.at("flags").get<std::vector<std::string>>();
  }
  if (out.count("ieu"))
    for (const std::string& m : methods)
      if (is_ieu_ablation(m)) out[m] = out.at("ieu");  // a control differs from IEU in its one term only
  return out;
}

namespace {
// The flags --quick sets, over the config's own.
const std::vector<std::string> kQuickTrain = {"--limit=4000", "--epochs=2"};
const std::vector<std::string> kQuickSplit = {"--split-limit=4000"};
const std::vector<std::string> kQuickUnlearn = {"--steps=40"};
const std::vector<std::string> kQuickRelearn = {"--steps=60"};
constexpr int64_t kQuickPool = 4000;
constexpr int64_t kQuickSamplesPerClass = 60, kQuickLossImages = 200;

}  // namespace

void apply_quick(Study& s, int64_t train_size) {
  // A study with a pool keeps it, at most kQuickPool samples: `--limit` does not go with a pool.
  if (s.tune || s.subset > 0) {
    s.subset = std::min({s.subset > 0 ? s.subset : kQuickPool, kQuickPool, train_size});
    s.train = overridden(s.train, {kQuickTrain.back()});
  } else {
    s.train = overridden(s.train, kQuickTrain);
    s.split = overridden(s.split, kQuickSplit);
  }
  s.unlearn = overridden(s.unlearn, kQuickUnlearn);
  s.relearn = overridden(s.relearn, kQuickRelearn);
  // A generator study's judge and metrics: small too (its shares then within about ±13 points).
  s.evaluator_train = overridden(s.evaluator_train, kQuickTrain);
  s.generator.samples_per_class = std::min<int64_t>(s.generator.samples_per_class, kQuickSamplesPerClass);
  if (s.generator.loss_images == 0 || s.generator.loss_images > kQuickLossImages)
    s.generator.loss_images = kQuickLossImages;
  s.name += "-quick";
}

void finish_tune_record(nlohmann::json& record) {
  double search = 0;
  for (const nlohmann::json& sc : record.at("scenarios"))
    for (const nlohmann::json& m : sc.at("methods"))
      for (const nlohmann::json& t : m.at("trials")) search += t.at("seconds").get<double>();
  if (!record.at("scenarios").empty()) {
    const nlohmann::json& first = record.at("scenarios").front();
    record["pool"]["training"] = first.at("forget").get<int64_t>() + first.at("retain").get<int64_t>();
    record["pool"]["validation_size"] = first.at("validation");
  }
  record["search_seconds"] = search;
  record["wall_seconds"] = nullptr;  // `lethe tune` sets it; in a study the search is part of the run
}

nlohmann::json tune_header(const Study& s) {
  unlearn::MethodOptions budget;
  CLI::App parser;
  add_option_flags(parser, budget, unlearn::method_options());
  parse_flags(parser, s.unlearn, "[unlearn]");
  return {{"command", "tune"},
          {"schema_version", kOutputSchemaVersion},
          {"lethe_version", version()},
          {"study", s.name},
          {"model", s.model},
          {"dataset", s.run.dataset},
          {"threads", s.run.threads},
          {"jobs", s.tune->jobs},
          {"seed", s.tune->search_seed},
          {"trials", s.tune->trials},
          {"step_budget", budget.steps},
          {"rcd_weight", s.tune->rcd_weight},
          {"pool", {{"subset", s.subset}, {"validation", s.tune->validation}, {"seed", s.study_seed}}}};
}

}  // namespace lethe::study
