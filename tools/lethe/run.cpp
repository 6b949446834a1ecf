// lethe run: a whole unlearning study from one TOML file. It trains the original, and per scenario
// draws the split, retrains, runs every method, measures every model and relearns them all in one
// batched pass (RCD); then writes results.json, results.csv, curves.csv and report.html.
//
// Every phase is the `lethe` subcommand a user could run by hand (train, split, unlearn), run in
// this process with the config's flags. A phase's outputs are written atomically, then a small
// record of the flags it and its inputs ran with and of its files' digests (`NAME.done.json`); a
// re-run skips every phase whose record matches, whose files still have those digests and whose
// checkpoint loads, so after Ctrl-C (or a kill, or a crash) it resumes where it stopped (the
// original's training from its last finished epoch), a corrupt or edited file re-runs the phase
// that made it, and a changed phase re-runs what depends on it.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <optional>

#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "option_flags.h"
#include "relearn_models.h"
#include "report.h"
#include "study_config.h"
#include "study_output.h"
#include "unlearn/method.h"
#include "unlearn/study_summary.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

// The flags --quick sets, over the config's own.
const std::vector<std::string> kQuickTrain = {"--limit=4000", "--epochs=2"};
const std::vector<std::string> kQuickSplit = {"--split-limit=4000"};
const std::vector<std::string> kQuickUnlearn = {"--steps=40"};
const std::vector<std::string> kQuickRelearn = {"--steps=60"};

std::vector<std::string> run_flags(const RunOptions& r) {
  std::vector<std::string> out = {"--dataset=" + r.dataset, "--device=" + r.device,
                                  "--threads=" + std::to_string(r.threads)};
  if (!r.data.empty()) out.push_back("--data=" + r.data);
  return out;
}

std::vector<std::string> joined(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// `flags` with each flag of `overrides` set to the override's value (CLI11 refuses a flag given twice).
std::vector<std::string> overridden(std::vector<std::string> flags, const std::vector<std::string>& overrides) {
  auto name = [](const std::string& f) { return f.substr(0, f.find('=')); };
  for (const std::string& o : overrides)
    flags.erase(std::remove_if(flags.begin(), flags.end(), [&](const std::string& f) { return name(f) == name(o); }),
                flags.end());
  flags.insert(flags.end(), overrides.begin(), overrides.end());
  return flags;
}

std::string scenario_dir(const std::string& scenario) {
  std::string s = scenario;
  for (char& c : s)
    if (c == ':' || c == ',') c = '-';
  return s;
}

// ---- the phase records: `key` is what a phase ran with (its flags, then its inputs' keys, each
// with the digest of the file it made); `digests` are those of the phase's output and input files
// when it finished. A phase whose output (or an input) no longer has its digest — corrupt,
// truncated, edited, replaced — runs again; if its new output differs, so does its digest, so
// every phase made from it (whose key holds that digest) runs again too.

// FNV-1a, 64 bits, over a file's bytes, with the file's length: it catches corruption and edits,
// not collisions crafted on purpose (it is no cryptographic hash). Empty when it cannot be read.
std::string file_digest(const fs::path& path) {
  std::string bytes;
  try {
    bytes = read_file(path.string(), "run");
  } catch (const Error&) {
    return "";
  }
  uint64_t h = 14695981039346656037ull;  // the FNV-1a 64 offset basis and prime
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return fmt::format("fnv1a64:{:016x}:{}", h, bytes.size());
}

nlohmann::json file_digests(const fs::path& output, const std::vector<fs::path>& inputs) {
  nlohmann::json d = {{output.string(), file_digest(output)}};
  for (const fs::path& f : inputs) d[f.string()] = file_digest(f);
  return d;
}

// The digest of `file` as the record of a phase that finished saw it: what dependent keys hold.
std::string recorded_digest(const nlohmann::json& record, const fs::path& file) {
  return "--digest=" + record.at("digests").at(file.string()).get<std::string>();
}

fs::path record_path(const fs::path& output) { return fs::path(output.string() + ".done.json"); }

// The record of `output` when it was made with `key` from `inputs`, and the output and the inputs
// still have the digests they had then (and, for checkpoints, the output still loads).
std::optional<nlohmann::json> finished(const fs::path& output, const std::vector<std::string>& key, bool checkpoint,
                                       const std::vector<fs::path>& inputs = {}) {
  const fs::path record = record_path(output);
  if (!fs::exists(record) || !fs::exists(output)) return std::nullopt;
  try {
    nlohmann::json r = parse_json(read_file(record.string(), "run"), "run: " + record.string());
    if (r.at("key") != nlohmann::json(key)) return std::nullopt;
    if (r.at("digests") != file_digests(output, inputs)) {
      fmt::print(stderr, "{} or an input changed since its phase finished: running it again\n", output.string());
      return std::nullopt;
    }
    if (!r.contains("seconds") || !r.at("seconds").is_number()) return std::nullopt;  // the timings read it
    if (checkpoint) nn::load_checkpoint(output.string());
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable or stale: the phase runs again
  }
}

void write_record(const fs::path& output, const std::vector<std::string>& key, double seconds,
                  const std::vector<fs::path>& inputs = {}) {
  const nlohmann::json record = {{"key", key},
                                 {"digests", file_digests(output, inputs)},
                                 {"seconds", seconds},
                                 {"lethe_version", version()}};
  write_file_atomically(record_path(output).string(), record.dump(1), "run");
}

// ---- Ctrl-C

void on_interrupt(int) {
  static const char message[] =
      "\nlethe run: interrupted; every finished phase is kept, run the same command again to resume\n";
  if (write(2, message, sizeof message - 1) < 0) {
  }
  _exit(130);
}

class Phases {
 public:
  explicit Phases(int64_t total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  void begin(const std::string& what) {
    ++done_;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    fmt::print(stderr, "\n== [{}/{}] {} ({:.0f} s so far)\n", done_, total_, what, elapsed);
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

double timed(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

struct RunCommand {
  std::string config, out;
  bool quick = false;
};

// What one replicate runs with: its seed (study_seed + index) and its folder.
struct Replicate {
  int64_t index = 0;
  uint64_t seed = 0;
  fs::path dir;
};

// Runs one replicate: the original, then per scenario the split, every method, the measurements and
// the relearning. Returns per scenario (in the config's order) the replicate's record.
std::vector<nlohmann::json> run_replicate(const Study& s, const Replicate& rep, const DataSource& source, Device device,
                                          Phases& phases, nlohmann::json& timings) {
  const std::string seed = std::to_string(rep.seed);
  const std::string tag = s.replicates > 1 ? fmt::format("r{}: ", rep.index) : "";
  auto timing = [&](const std::string& phase, const nlohmann::json& record) {
    timings.push_back({{"phase", tag + phase}, {"seconds", record.at("seconds")}});
  };
  const std::vector<std::string> run = run_flags(s.run);
  fs::create_directories(rep.dir);

  // The original. A phase's key holds its own flags and its inputs' keys with their files' digests,
  // so a changed original also re-runs everything made from it.
  const fs::path original = rep.dir / "original.safetensors";
  std::vector<std::string> original_key;
  {
    const std::vector<std::string> flags =
        joined({{"train", "--model=" + s.model, "--out=" + original.string(), "--seed=" + seed}, run, s.train});
    phases.begin(tag + "train the original (" + s.model + ", seed " + seed + ")");
    std::optional<nlohmann::json> done = finished(original, flags, true);
    if (!done) {
      const fs::path pending = rep.dir / "original.pending.json";  // an interrupted training resumes if its flags match
      // A pending record or a checkpoint left by an interrupted training that no longer reads
      // (corrupt, edited) is not resumed: the original is trained again.
      const bool resumable = fs::exists(original) && fs::exists(pending) && [&] {
        try {
          if (parse_json(read_file(pending.string(), "run"), "run: " + pending.string()) != nlohmann::json(flags))
            return false;
          nn::load_checkpoint(original.string());
          return true;
        } catch (const Error&) {
          return false;
        }
      }();
      write_file_atomically(pending.string(), nlohmann::json(flags).dump(), "run");
      const double seconds = timed([&] {
        run_command(resumable ? joined({{"train", "--resume=" + original.string(), "--out=" + original.string()}, run})
                              : flags);
      });
      write_record(original, flags, seconds);
      fs::remove(pending);
      done = finished(original, flags, true);
    } else {
      fmt::print(stderr, "done before: {}\n", original.string());
    }
    timing("train original", *done);
    original_key = joined({flags, {recorded_digest(*done, original)}});
  }

  std::vector<nlohmann::json> out;
  for (const std::string& scenario_text : s.scenarios) {
    const unlearn::Scenario scenario = unlearn::parse_scenario(scenario_text);
    const fs::path dir = rep.dir / scenario_dir(scenario.str());
    fs::create_directories(dir);
    const fs::path split_file = dir / "split.json";
    std::vector<std::string> split_key;
    {
      const std::vector<std::string> flags = joined(
          {{"split", "--scenario=" + scenario.str(), "--split-seed=" + seed, "--out=" + split_file.string()}, run, s.split});
      phases.begin(tag + scenario.str() + ": draw the split");
      std::optional<nlohmann::json> done = finished(split_file, flags, false);
      if (!done) {
        write_record(split_file, flags, timed([&] { run_command(flags); }));
        done = finished(split_file, flags, false);
      }
      timing(scenario.str() + ": split", *done);
      split_key = joined({flags, {recorded_digest(*done, split_file)}});
    }

    std::vector<ModelFile> models = {{original.string(), "original", "original", "original", nullptr}};
    std::vector<std::string> made = {"retrain"};
    made.insert(made.end(), s.methods.begin(), s.methods.end());
    nlohmann::json records = nlohmann::json::object();  // every model's key and digest: the relearning phase's key
    for (const std::string& method : made) {
      const fs::path checkpoint = dir / (method + ".safetensors");
      const std::vector<std::string> flags =
          joined({{"unlearn", "--method=" + method, "--split=" + split_file.string(), "--from=" + original.string(),
                   "--out=" + checkpoint.string(), "--no-eval"},
                  run, s.unlearn, s.method_flags.count(method) ? s.method_flags.at(method) : std::vector<std::string>{}});
      const std::vector<std::string> key = joined({flags, {"--inputs:"}, original_key, split_key});
      phases.begin(tag + scenario.str() + ": " + method);
      std::optional<nlohmann::json> done = finished(checkpoint, key, true, {original, split_file});
      if (!done) {
        write_record(checkpoint, key, timed([&] { run_command(flags); }), {original, split_file});
        done = finished(checkpoint, key, true, {original, split_file});
      } else {
        fmt::print(stderr, "done before: {}\n", checkpoint.string());
      }
      timing(scenario.str() + ": " + method, *done);
      records[method] = joined({key, {recorded_digest(*done, checkpoint)}});
      const bool is_retrain = method == "retrain";
      models.push_back({checkpoint.string(), is_retrain ? "retrained" : method, method,
                        is_retrain ? "retrained" : "unlearned", done->at("seconds")});
    }

    // Measure and relearn every model of the scenario.
    const std::vector<std::string> relearn_flags = joined({s.relearn, {"--seed=" + seed}});
    unlearn::RelearnOptions relearn_options;
    {
      CLI::App parser;  // the flags of `lethe relearn`, which the [relearn] table holds
      add_option_flags(parser, relearn_options, unlearn::relearn_options());
      parse_flags(parser, relearn_flags, "[relearn]");
    }
    relearn_options.resolve(scenario);
    const fs::path relearn_file = dir / "relearn.json";
    const std::vector<std::string> key = joined({{"relearn", records.dump()}, relearn_flags, {fmt::format("{}", s.margin)}});
    phases.begin(tag + scenario.str() + ": measure and relearn " + std::to_string(models.size()) + " models");
    std::vector<fs::path> relearn_inputs = {split_file};
    for (const ModelFile& m : models) relearn_inputs.push_back(m.path);
    std::optional<nlohmann::json> done = finished(relearn_file, key, false, relearn_inputs);
    if (!done) {
      const unlearn::Split split = unlearn::load_split(split_file.string());
      RelearnOutput result;
      const double seconds = timed([&] {
        result = relearn_models({source, split, device, relearn_options, s.margin, s.relearn_mode, false, models, "", 1});
      });
      const nlohmann::json body = {{"models", result.models},
                                   {"targets", result.targets},
                                   {"relearn_data", result.data},
                                   {"relearn_seconds", result.seconds},
                                   {"split_digest", split.digest()},
                                   {"forget_size", split.forget.size()}};
      write_file_atomically(relearn_file.string(), body.dump(1), "run");
      write_record(relearn_file, key, seconds, relearn_inputs);
      done = finished(relearn_file, key, false, relearn_inputs);
      fmt::print(stderr, "{}", rcd_table(result.models, relearn_options.headline));
    } else {
      fmt::print(stderr, "done before: {}\n", relearn_file.string());
    }
    timing(scenario.str() + ": measure and relearn", *done);
    const nlohmann::json body = parse_json(read_file(relearn_file.string(), "run"), "run: " + relearn_file.string());
    try {  // a field missing or of another type: nlohmann's exception, said as lethe's
      nlohmann::json relearn_json = relearn_options;
      relearn_json["accuracy_target"] = body.at("targets").at("accuracy");
      relearn_json["loss_target"] = body.at("targets").at("loss");
      relearn_json["calibrated_loss_target"] = body.at("targets").value("calibrated_loss", nlohmann::json());
      const nlohmann::json read = body.value("relearn_data", nlohmann::json::object());
      relearn_json["data"] = relearn_options.retain_samples > 0 || relearn_options.retain_mix > 0 ? "forget+retain" : "forget";
      relearn_json["read"] = read;  // how many forget and retain samples the steps read, what was measured
      out.push_back({{"replicate", rep.index},
                     {"seed", rep.seed},
                     {"split_digest", body.at("split_digest")},
                     {"forget_size", body.at("forget_size")},
                     {"relearn", relearn_json},
                     {"relearn_seconds", body.at("relearn_seconds")},
                     {"models", body.at("models")}});
    } catch (const nlohmann::json::exception& e) {
      LETHE_FAIL("run", relearn_file.string(), ": malformed: ", e.what());
    }
  }
  return out;
}

void run_study(const RunCommand& c) {
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  Study s = read_study(c.config);
  if (c.quick) {
    s.train = overridden(s.train, kQuickTrain);
    s.split = overridden(s.split, kQuickSplit);
    s.unlearn = overridden(s.unlearn, kQuickUnlearn);
    s.relearn = overridden(s.relearn, kQuickRelearn);
    s.name += "-quick";
  }
  const fs::path out = c.out.empty() ? fs::path("study") / s.name : fs::path(c.out);
  std::error_code made;
  fs::create_directories(out, made);
  LETHE_CHECK(!made && fs::is_directory(out), "run", "cannot make the output folder ", out.string(), ": ",
              made ? made.message() : "it exists and is not a folder");
  Phases phases(s.replicates * (1 + static_cast<int64_t>(s.scenarios.size()) * (3 + static_cast<int64_t>(s.methods.size()))));
  nlohmann::json timings = nlohmann::json::array();

  const DataSource source = load_data(s.run);
  const Device device = start(s.run);
  std::vector<std::vector<nlohmann::json>> by_scenario(s.scenarios.size());  // [scenario][replicate]
  for (int64_t r = 0; r < s.replicates; ++r) {
    const Replicate rep{r, s.study_seed + static_cast<uint64_t>(r), out / fmt::format("replicate-{}", r)};
    const std::vector<nlohmann::json> records = run_replicate(s, rep, source, device, phases, timings);
    for (size_t i = 0; i < records.size(); ++i) by_scenario[i].push_back(records[i]);
  }

  nlohmann::json scenarios = nlohmann::json::array();
  for (size_t i = 0; i < s.scenarios.size(); ++i) {
    std::vector<nlohmann::json> models;
    for (const nlohmann::json& rep : by_scenario[i]) models.push_back(rep.at("models"));
    const nlohmann::json summary = unlearn::summarize_replicates(models, s.confidence);
    scenarios.push_back({{"scenario", unlearn::parse_scenario(s.scenarios[i]).str()},
                         {"relearn", by_scenario[i].front().at("relearn")},
                         {"replicates", by_scenario[i]},
                         {"summary", summary}});
    fmt::print(stderr, "\n== {}: {} replicate{}\n{}", s.scenarios[i], s.replicates, s.replicates == 1 ? "" : "s",
               summary_table(summary));
  }

  double total = 0;
  for (const nlohmann::json& t : timings) total += t.at("seconds").get<double>();
  const nlohmann::json results = {{"lethe_version", version()},
                                  {"schema_version", kOutputSchemaVersion},
                                  {"study", s.name},
                                  {"created", utc_now()},
                                  {"config", {{"file", c.config}, {"quick", c.quick}, {"toml", s.config}}},
                                  {"device", device.str()},
                                  {"threads", s.run.threads},
                                  {"replicates", s.replicates},
                                  {"study_seed", s.study_seed},
                                  {"confidence", s.confidence},
                                  {"timings", timings},
                                  {"total_seconds", total},
                                  {"margin", s.margin},
                                  {"scenarios", scenarios}};
  write_file_atomically((out / "results.json").string(), results.dump(1), "run");
  write_results_csv(out / "results.csv", results);
  write_summary_csv(out / "summary.csv", results);
  std::string curves = curves_csv_header(true) + "\n";  // written whole, atomically, as the other tables
  for (const nlohmann::json& sc : scenarios)
    for (const nlohmann::json& rep : sc.at("replicates"))
      curves += curves_csv_rows(sc.at("scenario"), rep.at("models"), rep.at("replicate").get<int64_t>());
  write_file_atomically((out / "curves.csv").string(), curves, "run");
  write_report(results, out / "report.html");
  fmt::print("study {}: {} replicate{}, {:.0f} s of phases ({:.0f} s this run)\nresults: {}\nreport: {}\n", s.name,
             s.replicates, s.replicates == 1 ? "" : "s", total, phases.seconds(), (out / "results.json").string(),
             (out / "report.html").string());
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto c = std::make_shared<RunCommand>();
  CLI::App* cmd = app.add_subcommand(
      "run", "run a whole study from a TOML file: train, unlearn with every method, measure, relearn (RCD), report");
  cmd->add_option("config", c->config, "the study's TOML file (README, \"lethe run\"); without it, the default study")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", c->out, "output folder (default: study/NAME)");
  cmd->add_flag("--quick", c->quick, "a small version for smoke tests: 4,000 training images, 2 epochs, 40 "
                "unlearning and at most 60 relearning steps (NAME-quick)");
  cmd->callback([c] { run_study(*c); });
}

}  // namespace lethe::cli
