#include "unlearn/study/study_runner.h"

#include <fmt/core.h>

#include <algorithm>
#include <set>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/relearn_models.h"
#include "unlearn/study/report.h"
#include "unlearn/study/study_output.h"
#include "unlearn/study/tune_output.h"
#include "unlearn/study_summary.h"

namespace lethe::study {

namespace fs = std::filesystem;

namespace {
// The id only() takes to let no phase run: what checking whether a phase is done needs.
const char* const kNoPhase = "(none)";
}  // namespace

void StudyRunner::only(const std::string& phase_id) {
  only_ = phase_id;
  for (auto& [r, rp] : replicates_) rp->only(phase_id);
}

ReplicatePhases& StudyRunner::replicate(int64_t r) {
  auto& rp = replicates_[r];
  if (!rp) {
    rp = std::make_unique<ReplicatePhases>(s_, replicate_of(s_, out_, r), phases_, timings_, command_);
    if (!only_.empty()) rp->only(only_);
  }
  return *rp;
}

const PhaseOutput& StudyRunner::cached(const std::string& id, const std::function<PhaseOutput()>& make) {
  auto it = outputs_.find(id);
  if (it == outputs_.end()) it = outputs_.emplace(id, make()).first;
  return it->second;
}

const PhaseOutput& StudyRunner::evaluator() {
  return cached(kEvaluatorPhase, [&]() -> PhaseOutput {
    const fs::path file = evaluator_file(s_, out_);
    if (!s_.evaluator.empty()) {  // given: its digest keys the relearning phases
      const std::string digest = fnv1a64(read_file(file.string(), "run"));
      return {file, {"--evaluator=" + file.string(), "--digest=" + digest}, nullptr};
    }
    ReplicatePhases& rp = replicate(0);  // for only(): the evaluator belongs to no replicate
    const std::vector<std::string> flags = evaluator_command(s_, out_);
    if (rp.shown(kEvaluatorPhase)) phases_.begin("train the evaluator (cnn-s, seed " + std::to_string(s_.study_seed) + ")");
    std::optional<nlohmann::json> done = finished(file, flags, true);
    if (!done) {
      rp.check_may_run(kEvaluatorPhase, file);
      fs::create_directories(out_);
      write_record(file, flags, timed([&] { command_(flags); }));
      done = finished(file, flags, true);
    } else if (rp.shown(kEvaluatorPhase)) {
      fmt::print(stderr, "done before: {}\n", file.string());
    }
    timings_.push_back({{"phase", "train the evaluator"}, {"seconds", done->at("seconds")}});
    return {file, joined({flags, {recorded_digest(*done, file)}}), *done};
  });
}

const PhaseOutput& StudyRunner::original(int64_t r) {
  return cached(replicate(r).id("original"), [&] { return replicate(r).original(); });
}

const PhaseOutput& StudyRunner::split(int64_t r, const unlearn::Scenario& sc) {
  return cached(replicate(r).id(sc, "split"), [&] { return replicate(r).split(sc); });
}

const PhaseOutput& StudyRunner::model(int64_t r, const unlearn::Scenario& sc, const std::string& method) {
  return cached(replicate(r).id(sc, method), [&] {
    const PhaseOutput& from = original(r);
    const PhaseOutput& drawn = split(r, sc);
    std::vector<std::string> extra;
    if (s_.tune && method != "retrain") {
      const auto& chosen = search(sc);
      const auto it = chosen.find(method);
      if (it != chosen.end()) extra = it->second;
    }
    return replicate(r).model(sc, from, drawn, method, extra);
  });
}

const std::map<std::string, std::vector<std::string>>& StudyRunner::search(const unlearn::Scenario& sc) {
  const auto found = chosen_.find(sc.str());
  if (found != chosen_.end()) return found->second;
  ReplicatePhases& rp = replicate(0);
  const SearchScenario at{sc, original(0), split(0, sc), model(0, sc, "retrain")};
  if (rp.shown(rp.id(sc, "search")))
    phases_.begin(rp.tag() + sc.str() + ": search every method's setting (" + std::to_string(s_.tune->trials) +
                  " trials each)");
  search_records_[sc.str()] = search_scenario(s_, rp, at, source_, device_, invocation_);
  return chosen_[sc.str()] = chosen_flags(search_records_[sc.str()], s_.methods);
}
nlohmann::json StudyRunner::relearn(int64_t r, const unlearn::Scenario& scenario) {
  ReplicatePhases& rp = replicate(r);
  const Replicate& rep = rp.replicate();
  const PhaseOutput& original_model = original(r);
  const PhaseOutput& drawn = split(r, scenario);
  std::vector<ModelFile> models = {{original_model.path.string(), "original", "original", "original", nullptr}};
  nlohmann::json records = nlohmann::json::object();  // every model's key and digest: the relearning phase's key
  auto add = [&](const std::string& method) {
    const PhaseOutput& made = model(r, scenario, method);
    records[method] = made.key;
    const bool is_retrain = method == "retrain";
    models.push_back({made.path.string(), is_retrain ? "retrained" : method, method,
                      is_retrain ? "retrained" : "unlearned", made.record.at("seconds")});
  };
  add("retrain");
  for (const std::string& method : s_.methods) add(method);
  const bool generators = generative(s_);
  const PhaseOutput* judge = generators ? &evaluator() : nullptr;
  if (judge != nullptr) records["evaluator"] = judge->key;

  const std::vector<std::string> relearn_flags = joined({s_.relearn, {"--seed=" + std::to_string(rep.seed)}});
  unlearn::RelearnOptions relearn_options;
  {
    CLI::App parser;  // the flags of `lethe relearn`, which the [relearn] table holds
    add_option_flags(parser, relearn_options, unlearn::relearn_options());
    parse_flags(parser, relearn_flags, "[relearn]");
  }
  if (generators) generator_relearn_defaults(relearn_options);
  relearn_options.resolve(scenario);
  unlearn::GeneratorMetricOptions metric_options = s_.generator;
  metric_options.seed = rep.seed;
  const fs::path relearn_file = rp.scenario_folder(scenario) / "relearn.json";
  std::vector<std::string> key = joined({{"relearn", records.dump()}, relearn_flags, {fmt::format("{}", s_.margin)}});
  if (generators)
    key.push_back(fmt::format("--samples-per-class={} --loss-images={}", metric_options.samples_per_class,
                              metric_options.loss_images));
  // A generator's relearning phase also draws a picture per model (samples/NAME.png).
  std::vector<std::pair<std::string, fs::path>> pictures;
  if (generators)
    for (const ModelFile& m : models)
      pictures.emplace_back(m.name, rp.scenario_folder(scenario) / "samples" / (m.name + ".png"));
  const std::string phase = rp.id(scenario, "relearn");
  if (rp.shown(phase))
    phases_.begin(rp.tag() + scenario.str() + ": measure and relearn " + std::to_string(models.size()) + " models");
  std::vector<fs::path> relearn_inputs = {drawn.path};
  for (const ModelFile& m : models) relearn_inputs.push_back(m.path);
  if (judge != nullptr) relearn_inputs.push_back(judge->path);
  std::optional<nlohmann::json> done = finished(relearn_file, key, false, relearn_inputs);
  if (done && !std::all_of(pictures.begin(), pictures.end(), [](const auto& p) { return fs::exists(p.second); }))
    done.reset();  // a picture is missing: the phase runs again
  if (!done) {
    rp.check_may_run(phase, relearn_file);
    const unlearn::Split split_drawn = unlearn::load_split(drawn.path.string());
    RelearnOutput result;
    const double seconds = timed([&] {
      RelearnInputs in{source_, split_drawn, device_, relearn_options, s_.margin, s_.relearn_mode, false, models, "", 1, {}, "", {}};
      if (judge != nullptr) in.evaluator = judge->path.string(), in.generator = metric_options;
      result = relearn_models(in);
      for (size_t i = 0; i < pictures.size(); ++i)
        write_sample_picture(models[i].path, source_, device_, split_drawn.scenario, rep.seed, pictures[i].second);
    });
    const nlohmann::json body = {{"models", result.models},
                                 {"targets", result.targets},
                                 {"relearn_data", result.data},
                                 {"relearn_seconds", result.seconds},
                                 {"split_digest", split_drawn.digest()},
                                 {"forget_size", split_drawn.forget.size()}};
    write_file_atomically(relearn_file.string(), body.dump(1), "run");
    write_record(relearn_file, key, seconds, relearn_inputs);
    done = finished(relearn_file, key, false, relearn_inputs);
    fmt::print(stderr, "{}", rcd_table(result.models, relearn_options.headline));
  } else if (rp.shown(phase)) {
    fmt::print(stderr, "done before: {}\n", relearn_file.string());
  }
  timings_.push_back({{"phase", rp.tag() + scenario.str() + ": measure and relearn"}, {"seconds", done->at("seconds")}});
  const nlohmann::json body = parse_json(read_file(relearn_file.string(), "run"), "run: " + relearn_file.string());
  try {  // a field missing or of another type: nlohmann's exception, said as lethe's
    nlohmann::json relearn_json = relearn_options;
    relearn_json["accuracy_target"] = body.at("targets").at("accuracy");
    relearn_json["loss_target"] = body.at("targets").at("loss");
    relearn_json["calibrated_loss_target"] = body.at("targets").value("calibrated_loss", nlohmann::json());
    const nlohmann::json read = body.value("relearn_data", nlohmann::json::object());
    relearn_json["data"] =
        relearn_options.retain_samples > 0 || relearn_options.retain_mix > 0 ? "forget+retain" : "forget";
    relearn_json["read"] = read;  // how many forget and retain samples the steps read, what was measured
    nlohmann::json samples = nlohmann::json::object();  // each model's picture, from the study's folder
    for (const auto& [name, file] : pictures) samples[name] = fs::relative(file, out_).generic_string();
    return {{"replicate", rep.index},
            {"seed", rep.seed},
            {"samples", samples},
            {"split_digest", body.at("split_digest")},
            {"forget_size", body.at("forget_size")},
            {"relearn", relearn_json},
            {"relearn_seconds", body.at("relearn_seconds")},
            {"models", body.at("models")}};
  } catch (const nlohmann::json::exception& e) {
    LETHE_FAIL("run", relearn_file.string(), ": malformed: ", e.what());
  }
}

void StudyRunner::run(const PlannedPhase& p) {
  if (p.kind == "evaluator") {
    evaluator();
    return;
  }
  if (p.kind == "train") {
    original(p.replicate);
    return;
  }
  const unlearn::Scenario sc = unlearn::parse_scenario(p.scenario);
  if (p.kind == "split") split(p.replicate, sc);
  if (p.kind == "unlearn") model(p.replicate, sc, p.method);
  if (p.kind == "search") search(sc);
  if (p.kind == "relearn") relearn(p.replicate, sc);
}

bool StudyRunner::done(const PlannedPhase& p) {
  only(kNoPhase);
  try {
    run(p);
    return true;
  } catch (const Error&) {
    return false;
  }
}

void StudyRunner::report(const std::string& config, bool quick) {
  std::vector<std::vector<nlohmann::json>> by_scenario(s_.scenarios.size());  // [scenario][replicate]
  for (int64_t r = 0; r < s_.replicates; ++r)
    for (size_t i = 0; i < s_.scenarios.size(); ++i)
      by_scenario[i].push_back(relearn(r, unlearn::parse_scenario(s_.scenarios[i])));
  write_outputs(config, quick, by_scenario, {});
}

std::vector<std::string> StudyRunner::report_done(const std::string& config, bool quick,
                                                  const std::vector<PlannedPhase>& plan) {
  std::set<std::string> not_done;
  std::vector<std::vector<nlohmann::json>> by_scenario(s_.scenarios.size());
  for (const PlannedPhase& p : plan) {
    if (p.kind == "report" || p.kind == "relearn") continue;  // relearn: below, keeping its record
    if (!done(p)) not_done.insert(p.id);
  }
  only(kNoPhase);
  for (int64_t r = 0; r < s_.replicates; ++r)
    for (size_t i = 0; i < s_.scenarios.size(); ++i) {
      const unlearn::Scenario sc = unlearn::parse_scenario(s_.scenarios[i]);
      try {
        by_scenario[i].push_back(relearn(r, sc));
      } catch (const Error&) {
        not_done.insert(replicate(r).id(sc, "relearn"));
      }
    }
  std::vector<std::string> pending;
  for (const PlannedPhase& p : plan)
    if (not_done.count(p.id) > 0) pending.push_back(p.id);
  write_outputs(config, quick, by_scenario, pending);
  return pending;
}

void StudyRunner::write_outputs(const std::string& config, bool quick,
                                const std::vector<std::vector<nlohmann::json>>& by_scenario,
                                const std::vector<std::string>& pending) {
  nlohmann::json scenarios = nlohmann::json::array();
  for (size_t i = 0; i < s_.scenarios.size(); ++i) {
    if (by_scenario[i].empty()) continue;  // no replicate's relearning done (a partial report)
    std::vector<nlohmann::json> models;
    for (const nlohmann::json& rep : by_scenario[i]) models.push_back(rep.at("models"));
    const nlohmann::json summary = unlearn::summarize_replicates(models, s_.confidence);
    scenarios.push_back({{"scenario", unlearn::parse_scenario(s_.scenarios[i]).str()},
                         {"relearn", by_scenario[i].front().at("relearn")},
                         {"replicates", by_scenario[i]},
                         {"summary", summary}});
    const size_t n = by_scenario[i].size();
    fmt::print(stderr, "\n== {}: {} replicate{}\n{}", s_.scenarios[i], n, n == 1 ? "" : "s", summary_table(summary));
  }

  double total = 0;
  for (const nlohmann::json& t : timings_) total += t.at("seconds").get<double>();
  nlohmann::json tune;  // null without [tune]
  if (s_.tune) {
    tune = tune_header(s_);
    tune["scenarios"] = nlohmann::json::array();
    for (const std::string& text : s_.scenarios) {
      const unlearn::Scenario sc = unlearn::parse_scenario(text);
      if (pending.empty()) search(sc);  // a partial report holds the searches that are done
      const auto record = search_records_.find(sc.str());
      if (record != search_records_.end()) tune["scenarios"].push_back(record->second);
    }
    if (tune["scenarios"].empty()) {
      tune = nullptr;
    } else {
      finish_tune_record(tune);
      fs::create_directories(out_ / "tune");
      write_file_atomically((out_ / "tune" / "tune.json").string(), tune.dump(1), "run");
      write_tune_outputs(tune, out_ / "tune");
    }
  }
  nlohmann::json results = {{"lethe_version", version()},
                            {"schema_version", kOutputSchemaVersion},
                            {"study", s_.name},
                            {"created", utc_now()},
                            {"config", {{"file", config}, {"quick", quick}, {"toml", s_.config}}},
                            {"device", device_.str()},
                            {"threads", s_.run.threads},
                            {"replicates", s_.replicates},
                            {"study_seed", s_.study_seed},
                            {"confidence", s_.confidence},
                            {"timings", timings_},
                            {"total_seconds", total},
                            {"margin", s_.margin},
                            {"pending_phases", pending},
                            {"scenarios", scenarios}};
  if (!tune.is_null()) results["tune"] = tune;
  write_file_atomically((out_ / "results.json").string(), results.dump(1), "run");
  write_results_csv(out_ / "results.csv", results);
  write_summary_csv(out_ / "summary.csv", results);
  std::string curves = curves_csv_header(true) + "\n";  // written whole, atomically, as the other tables
  for (const nlohmann::json& sc : scenarios)
    for (const nlohmann::json& rep : sc.at("replicates"))
      curves += curves_csv_rows(sc.at("scenario"), rep.at("models"), rep.at("replicate").get<int64_t>());
  write_file_atomically((out_ / "curves.csv").string(), curves, "run");
  lethe::study::write_report(results, out_ / "report.html", out_);
  fmt::print("study {}: {} replicate{}, {:.0f} s of phases ({:.0f} s this run)\nresults: {}\nreport: {}\n", s_.name,
             s_.replicates, s_.replicates == 1 ? "" : "s", total, phases_.seconds(), (out_ / "results.json").string(),
             (out_ / "report.html").string());
}

void report_study(const std::string& config, const std::string& out, bool quick) {
  Study s = read_study(config);
  // The study's plan and its phases' keys need the data only with --quick (its pool is at most
  // the training set's size); nothing is trained or measured.
  DataSource source;
  if (quick) {
    source = load_data(s.run, true, false);
    apply_quick(s, source.train->size());
  }
  const fs::path dir = out.empty() ? fs::path("study") / s.name : fs::path(out);
  LETHE_CHECK(fs::is_directory(dir), "report", "--study: no study folder ", dir.string(),
              " (lethe run CONFIG --out DIR writes one; give it with --dir)");
  const std::vector<PlannedPhase> plan = plan_study(s, dir);
  Phases phases(0);
  const CommandRunner none = [](const std::vector<std::string>& args) {
    LETHE_FAIL("report", "--study runs no phase, asked to run lethe ", args.empty() ? "" : args.front());
  };
  StudyRunner runner(s, dir, source, Device::parse(s.run.device), {config, dir.string(), quick}, phases, none);
  const std::vector<std::string> pending = runner.report_done(config, quick, plan);
  if (pending.empty()) {
    fmt::print("every phase of the study is done ({})\n", plan.size());
  } else {
    fmt::print("{} of {} phases not done (the report holds the replicates whose relearning is done):\n",
               pending.size(), plan.size());
    for (const std::string& id : pending) fmt::print("  {}\n", id);
  }
}

}  // namespace lethe::study
