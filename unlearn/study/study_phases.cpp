#include "unlearn/study/study_phases.h"

#include <fmt/core.h>

#include <algorithm>
#include <ctime>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/version.h"
#include "nn/checkpoint.h"

namespace lethe::study {

std::vector<std::string> joined(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

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

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

double timed(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;  // the FNV-1a 64 offset basis and prime
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return fmt::format("fnv1a64:{:016x}:{}", h, bytes.size());
}

namespace {

// A phase whose output (or an input) no longer has its digest — corrupt, truncated, edited,
// replaced — runs again; if its new output differs, so does its digest, so every phase made from it
// (whose key holds that digest) runs again too.

// FNV-1a, 64 bits, over a file's bytes, with the file's length: it catches corruption and edits,
// not collisions crafted on purpose (it is no cryptographic hash). Empty when it cannot be read.
std::string file_digest(const fs::path& path) {
  std::string bytes;
  try {
    bytes = read_file(path.string(), "run");
  } catch (const Error&) {
    return "";
  }
  return fnv1a64(bytes);
}

nlohmann::json file_digests(const fs::path& output, const std::vector<fs::path>& inputs) {
  nlohmann::json d = {{output.string(), file_digest(output)}};
  for (const fs::path& f : inputs) d[f.string()] = file_digest(f);
  return d;
}

fs::path record_path(const fs::path& output) { return fs::path(output.string() + ".done.json"); }

}  // namespace

std::string recorded_digest(const nlohmann::json& record, const fs::path& file) {
  return "--digest=" + record.at("digests").at(file.string()).get<std::string>();
}

std::optional<nlohmann::json> finished(const fs::path& output, const std::vector<std::string>& key, bool checkpoint,
                                       const std::vector<fs::path>& inputs) {
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
                  const std::vector<fs::path>& inputs) {
  const nlohmann::json record = {{"key", key},
                                 {"digests", file_digests(output, inputs)},
                                 {"seconds", seconds},
                                 {"lethe_version", version()}};
  write_file_atomically(record_path(output).string(), record.dump(1), "run");
}

void Phases::begin(const std::string& what) {
  ++done_;
  fmt::print(stderr, "\n== [{}/{}] {} ({:.0f} s so far)\n", done_, total_, what, seconds());
}

double Phases::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

Replicate replicate_of(const Study& s, const fs::path& out, int64_t index) {
  return {index, s.study_seed + static_cast<uint64_t>(index), out / fmt::format("replicate-{}", index)};
}

std::vector<std::string> run_flags(const Study& s) {
  std::vector<std::string> run = {"--dataset=" + s.run.dataset, "--device=" + s.run.device,
                                  "--threads=" + std::to_string(s.run.threads)};
  if (!s.run.data.empty()) run.push_back("--data=" + s.run.data);
  return run;
}

fs::path evaluator_file(const Study& s, const fs::path& out) {
  return s.evaluator.empty() ? out / "evaluator.safetensors" : fs::path(s.evaluator);
}

std::vector<std::string> evaluator_command(const Study& s, const fs::path& out) {
  return joined({{"train", "--model=cnn-s", "--out=" + evaluator_file(s, out).string(),
                  "--seed=" + std::to_string(s.study_seed)},
                 run_flags(s), s.evaluator_train});
}

ReplicatePhases::ReplicatePhases(const Study& study, Replicate rep, Phases& phases, nlohmann::json& timings,
                                 CommandRunner command)
    : s_(study), rep_(std::move(rep)), phases_(phases), timings_(timings), command_(std::move(command)) {
  tag_ = s_.replicates > 1 ? fmt::format("r{}: ", rep_.index) : "";
  run_ = study::run_flags(s_);
}

std::string ReplicatePhases::id(const std::string& what) const { return fmt::format("r{}/{}", rep_.index, what); }

std::string ReplicatePhases::id(const unlearn::Scenario& scenario, const std::string& what) const {
  return id(scenario_dir(scenario.str()) + "/" + what);
}

void ReplicatePhases::check_may_run(const std::string& phase_id, const fs::path& output) const {
  LETHE_CHECK(only_.empty() || only_ == phase_id, "run", "phase ", only_, " needs phase ", phase_id, " (",
              output.string(), "), which is not done or was made with other flags or inputs than this config gives: run ",
              phase_id, " first (lethe run CONFIG --phase ", phase_id, ")");
}

void ReplicatePhases::timing(const std::string& phase, const nlohmann::json& record) {
  timings_.push_back({{"phase", tag_ + phase}, {"seconds", record.at("seconds")}});
}

namespace {
// A study that tunes never reads a test sample before its final report: its original is trained
// without the per-epoch test evaluation.
std::vector<std::string> no_test(const Study& s) {
  return s.tune ? std::vector<std::string>{"--no-test"} : std::vector<std::string>{};
}
}  // namespace

std::vector<std::string> ReplicatePhases::original_command() const {
  return joined({{"train", "--model=" + s_.model, "--out=" + original_file().string(),
                  "--seed=" + std::to_string(rep_.seed)},
                 run_, pool_flags(s_), no_test(s_), s_.train});
}

PhaseOutput ReplicatePhases::original() {
  // A phase's key holds its own flags and its inputs' keys with their files' digests, so a changed
  // original also re-runs everything made from it.
  const std::string seed = std::to_string(rep_.seed);
  const fs::path original = original_file();
  const std::vector<std::string> flags = original_command();
  const std::string phase = id("original");
  if (shown(phase)) phases_.begin(tag_ + "train the original (" + s_.model + ", seed " + seed + ")");
  std::optional<nlohmann::json> done = finished(original, flags, true);
  if (!done) {
    check_may_run(phase, original);
    fs::create_directories(rep_.dir);
    const fs::path pending = rep_.dir / "original.pending.json";  // an interrupted training resumes if its flags match
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
      run_command(resumable ? joined({{"train", "--resume=" + original.string(), "--out=" + original.string()}, run_,
                                      no_test(s_)})
                            : flags);
    });
    write_record(original, flags, seconds);
    fs::remove(pending);
    done = finished(original, flags, true);
  } else if (shown(phase)) {
    fmt::print(stderr, "done before: {}\n", original.string());
  }
  timing("train original", *done);
  return {original, joined({flags, {recorded_digest(*done, original)}}), *done};
}

fs::path ReplicatePhases::scenario_folder(const unlearn::Scenario& scenario) const {
  return rep_.dir / scenario_dir(scenario.str());
}

std::vector<std::string> ReplicatePhases::split_command(const unlearn::Scenario& scenario) const {
  return joined({{"split", "--scenario=" + scenario.str(), "--split-seed=" + std::to_string(rep_.seed),
                  "--out=" + split_file(scenario).string()},
                 run_, pool_flags(s_), s_.split});
}

PhaseOutput ReplicatePhases::split(const unlearn::Scenario& scenario) {
  const fs::path dir = scenario_folder(scenario);
  fs::create_directories(dir);
  const fs::path file = split_file(scenario);
  const std::vector<std::string> flags = split_command(scenario);
  const std::string phase = id(scenario, "split");
  if (shown(phase)) phases_.begin(tag_ + scenario.str() + ": draw the split");
  std::optional<nlohmann::json> done = finished(file, flags, false);
  if (!done) {
    check_may_run(phase, file);
    write_record(file, flags, timed([&] { run_command(flags); }));
    done = finished(file, flags, false);
  }
  timing(scenario.str() + ": split", *done);
  return {file, joined({flags, {recorded_digest(*done, file)}}), *done};
}

std::vector<std::string> ReplicatePhases::unlearn_flags(const std::string& method,
                                                        const std::vector<std::string>& extra) const {
  const auto own = s_.method_flags.find(method);
  return overridden(joined({s_.unlearn, own == s_.method_flags.end() ? std::vector<std::string>{} : own->second}),
                    extra);
}

fs::path ReplicatePhases::model_file(const unlearn::Scenario& scenario, const std::string& method) const {
  return scenario_folder(scenario) / (method + ".safetensors");
}

std::vector<std::string> ReplicatePhases::model_command(const unlearn::Scenario& scenario, const std::string& method,
                                                        const std::vector<std::string>& extra) const {
  return joined({{"unlearn", "--method=" + method, "--split=" + split_file(scenario).string(),
                  "--from=" + original_file().string(),
                  "--out=" + model_file(scenario, method).string(), "--no-eval"},
                 run_, unlearn_flags(method, extra)});
}

PhaseOutput ReplicatePhases::model(const unlearn::Scenario& scenario, const PhaseOutput& original,
                                   const PhaseOutput& split, const std::string& method,
                                   const std::vector<std::string>& extra) {
  const fs::path file = model_file(scenario, method);
  const std::vector<std::string> flags = model_command(scenario, method, extra);
  const std::vector<std::string> key = joined({flags, {"--inputs:"}, original.key, split.key});
  const std::string phase = id(scenario, method);
  if (shown(phase)) phases_.begin(tag_ + scenario.str() + ": " + method);
  const std::vector<fs::path> inputs = {original.path, split.path};
  std::optional<nlohmann::json> done = finished(file, key, true, inputs);
  if (!done) {
    check_may_run(phase, file);
    write_record(file, key, timed([&] { run_command(flags); }), inputs);
    done = finished(file, key, true, inputs);
  } else if (shown(phase)) {
    fmt::print(stderr, "done before: {}\n", file.string());
  }
  timing(scenario.str() + ": " + method, *done);
  return {file, joined({key, {recorded_digest(*done, file)}}), *done};
}

}  // namespace lethe::study
