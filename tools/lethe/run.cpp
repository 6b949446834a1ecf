// lethe run: a whole unlearning study from one TOML file. It trains the original, and per scenario
// draws the split, retrains, runs every method, measures every model and relearns them all in one
// batched pass (RCD); then writes results.json, results.csv, curves.csv and report.html.
//
// Every phase is the `lethe` subcommand a user could run by hand (train, split, unlearn), run in
// this process with the config's flags. A phase's outputs are written atomically, then a small
// record of the flags it and its inputs ran with (`NAME.done.json`); a re-run skips every phase
// whose record matches and whose checkpoint loads, so after Ctrl-C it resumes where it stopped (the
// original's training from its last finished epoch), and a changed phase re-runs what depends on it.
#include <fmt/core.h>
#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "relearn_args.h"
#include "relearn_models.h"
#include "report.h"
#include "study_output.h"
#include "toml_config.h"
#include "unlearn/method.h"
#include "unlearn/study_summary.h"

namespace lethe::cli {

namespace fs = std::filesystem;

namespace {

struct Study {
  std::string name = "default";
  std::string model = "cnn-s";
  RunOptions run;
  std::vector<std::string> scenarios = {"random:0.1", "class:0"};
  std::vector<std::string> methods;  // default: every method but retrain (which always runs)
  // Replicate r (0-based) trains, draws its split and relearns with seed study_seed + r: each its
  // own original, retrained model and unlearned models (README, "Replicates").
  int64_t replicates = 1;
  uint64_t study_seed = 0;
  double confidence = 0.95;
  double margin = 0.02;
  unlearn::RelearnMode relearn_mode = unlearn::RelearnMode::automatic;
  // The [train], [split], [unlearn], [relearn] tables as flags of those subcommands; [unlearn.M]
  // tables add flags for method M only.
  std::vector<std::string> train, split, unlearn, relearn;
  std::map<std::string, std::vector<std::string>> method_flags;
  nlohmann::json config;  // the file as read, for the report
};

// The flags --quick sets, over the config's own.
const std::vector<std::string> kQuickTrain = {"--limit=4000", "--epochs=2"};
const std::vector<std::string> kQuickSplit = {"--split-limit=4000"};
const std::vector<std::string> kQuickUnlearn = {"--steps=40"};
const std::vector<std::string> kQuickRelearn = {"--steps=60"};

template <class T>
T get_or(const toml::table& t, const char* key, T fallback, const std::string& path) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return fallback;
  const std::optional<T> v = n->value<T>();
  LETHE_CHECK(v.has_value(), "run", path, ": [study] ", key, " has the wrong type");
  return *v;
}

std::vector<std::string> get_list(const toml::table& t, const char* key, std::vector<std::string> fallback,
                                  const std::string& path) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return fallback;
  const toml::array* a = n->as_array();
  LETHE_CHECK(a != nullptr, "run", path, ": [study] ", key, " must be an array of strings");
  std::vector<std::string> out;
  for (const toml::node& e : *a) {
    const auto s = e.value<std::string>();
    LETHE_CHECK(s.has_value(), "run", path, ": [study] ", key, " must be an array of strings");
    out.push_back(*s);
  }
  return out;
}

Study read_study(const std::string& path) {
  Study s;
  for (const unlearn::Method& m : unlearn::methods())
    if (m.name != "retrain") s.methods.push_back(m.name);
  if (path.empty()) return s;
  toml::table file;
  try {
    file = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    LETHE_FAIL("run", path, ": TOML error at line ", e.source().begin.line, ", column ", e.source().begin.column, ": ",
               e.description());
  }
  std::stringstream as_json;
  as_json << toml::json_formatter{file};
  s.config = nlohmann::json::parse(as_json.str());
  for (const auto& [key, node] : file) {
    const std::string k(key.str());
    LETHE_CHECK(node.is_table(), "run", path, ": '", k, "' must be a table ([study], [train], [split], [unlearn], "
                "[relearn])");
    const toml::table& t = *node.as_table();
    if (k == "study") {
      for (const auto& [sk, sv] : t) {
        const std::string name(sk.str());
        static const std::set<std::string> known = {"name",      "model",      "dataset",    "data",
                                                    "device",    "threads",    "scenarios",  "methods",
                                                    "replicates", "study_seed", "confidence", "margin",
                                                    "relearn_mode"};
        LETHE_CHECK(name != "split_seed", "run", path, ": [study] split_seed is replaced by study_seed: replicate r "
                    "trains, draws its split and relearns with seed study_seed + r");
        LETHE_CHECK(known.count(name) != 0, "run", path, ": [study] has no key '", name, "' (known: name, model, "
                    "dataset, data, device, threads, scenarios, methods, replicates, study_seed, confidence, margin, "
                    "relearn_mode)");
        (void)sv;
      }
      s.name = get_or<std::string>(t, "name", s.name, path);
      s.model = get_or<std::string>(t, "model", s.model, path);
      s.run.dataset = get_or<std::string>(t, "dataset", s.run.dataset, path);
      s.run.data = get_or<std::string>(t, "data", s.run.data, path);
      s.run.device = get_or<std::string>(t, "device", s.run.device, path);
      s.run.threads = static_cast<int>(get_or<int64_t>(t, "threads", s.run.threads, path));
      s.scenarios = get_list(t, "scenarios", s.scenarios, path);
      s.methods = get_list(t, "methods", s.methods, path);
      s.replicates = get_or<int64_t>(t, "replicates", s.replicates, path);
      LETHE_CHECK(s.replicates >= 1, "run", path, ": [study] replicates = ", s.replicates, ": must be at least 1");
      const int64_t seed = get_or<int64_t>(t, "study_seed", 0, path);
      LETHE_CHECK(seed >= 0, "run", path, ": [study] study_seed = ", seed, ": must be >= 0");
      s.study_seed = static_cast<uint64_t>(seed);
      s.confidence = get_or<double>(t, "confidence", s.confidence, path);
      LETHE_CHECK(s.confidence > 0 && s.confidence < 1, "run", path, ": [study] confidence = ", s.confidence,
                  ": must be in (0, 1)");
      s.margin = get_or<double>(t, "margin", s.margin, path);
      s.relearn_mode = unlearn::parse_relearn_mode(
          get_or<std::string>(t, "relearn_mode", unlearn::relearn_mode_name(s.relearn_mode), path));
    } else if (k == "train" || k == "split" || k == "relearn") {
      LETHE_CHECK(!t.contains("seed") && !t.contains("split-seed"), "run", path, ": [", k, "] sets a seed; a study's "
                  "seeds come from [study] study_seed (replicate r uses study_seed + r)");
      (k == "train" ? s.train : k == "split" ? s.split : s.relearn) = table_flags(t, path + " [" + k + "]");
    } else if (k == "unlearn") {
      toml::table shared;
      for (const auto& [mk, mv] : t) {
        if (mv.is_table()) {
          const std::string method(mk.str());
          unlearn::find_method(method);  // throws with the known names
          s.method_flags[method] = table_flags(*mv.as_table(), path + " [unlearn." + method + "]");
        } else {
          shared.insert(mk, mv);
        }
      }
      s.unlearn = table_flags(shared, path + " [unlearn]");
    } else {
      LETHE_FAIL("run", path, ": unknown table [", k, "] (known: study, train, split, unlearn, relearn)");
    }
  }
  for (const std::string& m : s.methods) unlearn::find_method(m);
  LETHE_CHECK(!s.scenarios.empty(), "run", path, ": [study] scenarios is empty");
  return s;
}

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

// ---- the phase records: `key` is what a phase ran with (its flags, then its inputs' keys)

fs::path record_path(const fs::path& output) { return fs::path(output.string() + ".done.json"); }

// The record of `output` when it was made with `key` (and, for checkpoints, still loads).
std::optional<nlohmann::json> finished(const fs::path& output, const std::vector<std::string>& key, bool checkpoint) {
  const fs::path record = record_path(output);
  if (!fs::exists(record) || !fs::exists(output)) return std::nullopt;
  try {
    nlohmann::json r = nlohmann::json::parse(read_file(record.string(), "run"));
    if (r.at("key") != nlohmann::json(key)) return std::nullopt;
    if (checkpoint) nn::load_checkpoint(output.string());
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable or stale: the phase runs again
  }
}

void write_record(const fs::path& output, const std::vector<std::string>& key, double seconds) {
  const nlohmann::json record = {{"key", key}, {"seconds", seconds}, {"lethe_version", version()}};
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

  // The original. A phase's record holds its own flags and its inputs' records' flags, so a
  // changed original also re-runs everything made from it.
  const fs::path original = rep.dir / "original.safetensors";
  std::vector<std::string> original_key;
  {
    const std::vector<std::string> flags =
        joined({{"train", "--model=" + s.model, "--out=" + original.string(), "--seed=" + seed}, run, s.train});
    phases.begin(tag + "train the original (" + s.model + ", seed " + seed + ")");
    std::optional<nlohmann::json> done = finished(original, flags, true);
    if (!done) {
      const fs::path pending = rep.dir / "original.pending.json";  // an interrupted training resumes if its flags match
      const bool resume = fs::exists(original) && fs::exists(pending) &&
                          nlohmann::json::parse(read_file(pending.string(), "run")) == nlohmann::json(flags);
      write_file_atomically(pending.string(), nlohmann::json(flags).dump(), "run");
      const double seconds = timed([&] {
        run_command(resume ? joined({{"train", "--resume=" + original.string(), "--out=" + original.string()}, run})
                           : flags);
      });
      write_record(original, flags, seconds);
      fs::remove(pending);
      done = finished(original, flags, true);
    } else {
      fmt::print(stderr, "done before: {}\n", original.string());
    }
    timing("train original", *done);
    original_key = flags;
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
      split_key = flags;
    }

    std::vector<ModelFile> models = {{original.string(), "original", "original", "original", nullptr}};
    std::vector<std::string> made = {"retrain"};
    made.insert(made.end(), s.methods.begin(), s.methods.end());
    nlohmann::json records = nlohmann::json::object();  // every model's flags: the relearning phase's key
    for (const std::string& method : made) {
      const fs::path checkpoint = dir / (method + ".safetensors");
      const std::vector<std::string> flags =
          joined({{"unlearn", "--method=" + method, "--split=" + split_file.string(), "--from=" + original.string(),
                   "--out=" + checkpoint.string(), "--no-eval"},
                  run, s.unlearn, s.method_flags.count(method) ? s.method_flags.at(method) : std::vector<std::string>{}});
      const std::vector<std::string> key = joined({flags, {"--inputs:"}, original_key, split_key});
      phases.begin(tag + scenario.str() + ": " + method);
      std::optional<nlohmann::json> done = finished(checkpoint, key, true);
      if (!done) {
        write_record(checkpoint, key, timed([&] { run_command(flags); }));
        done = finished(checkpoint, key, true);
      } else {
        fmt::print(stderr, "done before: {}\n", checkpoint.string());
      }
      timing(scenario.str() + ": " + method, *done);
      records[method] = key;
      const bool is_retrain = method == "retrain";
      models.push_back({checkpoint.string(), is_retrain ? "retrained" : method, method,
                        is_retrain ? "retrained" : "unlearned", done->at("seconds")});
    }

    // Measure and relearn every model of the scenario.
    const std::vector<std::string> relearn_flags = joined({s.relearn, {"--seed=" + seed}});
    unlearn::RelearnOptions relearn_options;
    {
      CLI::App parser;
      add_relearn_options(parser, relearn_options);
      parse_flags(parser, relearn_flags, "[relearn]");
    }
    relearn_options.resolve(scenario);
    const fs::path relearn_file = dir / "relearn.json";
    const std::vector<std::string> key = joined({{"relearn", records.dump()}, relearn_flags, {fmt::format("{}", s.margin)}});
    phases.begin(tag + scenario.str() + ": measure and relearn " + std::to_string(models.size()) + " models");
    std::optional<nlohmann::json> done = finished(relearn_file, key, false);
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
      write_record(relearn_file, key, seconds);
      done = finished(relearn_file, key, false);
      fmt::print(stderr, "{}", rcd_table(result.models, relearn_options.headline));
    } else {
      fmt::print(stderr, "done before: {}\n", relearn_file.string());
    }
    timing(scenario.str() + ": measure and relearn", *done);
    const nlohmann::json body = nlohmann::json::parse(read_file(relearn_file.string(), "run"));
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
  fs::create_directories(out);
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
  const fs::path curves = out / "curves.csv";
  fs::remove(curves);
  for (const nlohmann::json& sc : scenarios)
    for (const nlohmann::json& rep : sc.at("replicates"))
      append_curves_csv(curves.string(), sc.at("scenario"), rep.at("models"), rep.at("replicate").get<int64_t>());
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
