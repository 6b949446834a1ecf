#include "unlearn/study/study_config.h"

#include <fmt/core.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/toml_config.h"
#include "nn/generative.h"
#include "unlearn/method.h"

namespace lethe::study {

namespace {

template <class T>
T get_or(const toml::table& t, const char* key, T fallback, const std::string& path) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return fallback;
  const std::optional<T> v = n->value<T>();
  LETHE_CHECK(v.has_value(), "run", path, ": [study] ", key, " has the wrong type");
  return *v;
}

// An integer of [study] in [lo, hi], checked before it is narrowed to its field.
int64_t get_int(const toml::table& t, const char* key, int64_t fallback, int64_t lo, int64_t hi,
                const std::string& path) {
  const int64_t v = get_or<int64_t>(t, key, fallback, path);
  LETHE_CHECK(v >= lo && v <= hi, "run", path, ": [study] ", key, " = ", v, ": must be in [", lo, ", ", hi, "]");
  return v;
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

// toml++'s description of a syntax error, which may quote the input, cut to a few hundred bytes.
std::string bounded(std::string_view text) {
  constexpr size_t kMax = 240;
  if (text.size() <= kMax) return std::string(text);
  size_t end = kMax;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "\u2026 (" + std::to_string(text.size()) + " bytes)";
}

// A table's name from the file for a message: as it is when it is a short plain name, else quoted.
std::string table_name(const std::string& key) {
  const bool plain = !key.empty() && key.size() <= 40 && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  return plain ? key : excerpt(key, 40);
}

// A key of [study] and how it is read into the study (checked; errors name the file and the key).
struct StudyKey {
  const char* name;
  void (*read)(const toml::table& t, const char* key, Study& s, const std::string& path);
};

const std::vector<StudyKey>& study_keys() {
  static const std::vector<StudyKey> keys = {
      {"name", [](auto& t, auto key, Study& s, auto& path) { s.name = get_or(t, key, s.name, path); }},
      {"model", [](auto& t, auto key, Study& s, auto& path) { s.model = get_or(t, key, s.model, path); }},
      {"dataset", [](auto& t, auto key, Study& s, auto& path) { s.run.dataset = get_or(t, key, s.run.dataset, path); }},
      {"data", [](auto& t, auto key, Study& s, auto& path) { s.run.data = get_or(t, key, s.run.data, path); }},
      {"device", [](auto& t, auto key, Study& s, auto& path) { s.run.device = get_or(t, key, s.run.device, path); }},
      {"threads",
       [](auto& t, auto key, Study& s, auto& path) {
         s.run.threads = static_cast<int>(get_int(t, key, s.run.threads, 1, kMaxThreads, path));
       }},
      {"scenarios", [](auto& t, auto key, Study& s, auto& path) { s.scenarios = get_list(t, key, s.scenarios, path); }},
      {"methods", [](auto& t, auto key, Study& s, auto& path) { s.methods = get_list(t, key, s.methods, path); }},
      {"replicates",
       [](auto& t, auto key, Study& s, auto& path) {
         s.replicates = get_int(t, key, s.replicates, 1, kMaxReplicates, path);
       }},
      {"study_seed",
       [](auto& t, auto key, Study& s, auto& path) {  // TOML has no larger integers
         s.study_seed = static_cast<uint64_t>(get_int(t, key, 0, 0, std::numeric_limits<int64_t>::max(), path));
       }},
      {"subset",
       [](auto& t, auto key, Study& s, auto& path) {
         s.subset = get_int(t, key, s.subset, 0, nn::kMaxCount, path);
       }},
      {"confidence",
       [](auto& t, auto key, Study& s, auto& path) {
         s.confidence = get_or(t, key, s.confidence, path);
         LETHE_CHECK(s.confidence > 0 && s.confidence < 1, "run", path, ": [study] confidence = ", s.confidence,
                     ": must be in (0, 1)");
       }},
      {"margin",
       [](auto& t, auto key, Study& s, auto& path) {
         s.margin = get_or(t, key, s.margin, path);
         LETHE_CHECK(s.margin >= 0 && s.margin <= 1, "run", path, ": [study] margin = ", s.margin,
                     ": must be in [0, 1] (as relearn's --margin)");
       }},
      {"evaluator",
       [](auto& t, auto key, Study& s, auto& path) { s.evaluator = get_or(t, key, s.evaluator, path); }},
      {"samples_per_class",
       [](auto& t, auto key, Study& s, auto& path) {
         s.generator.samples_per_class = get_int(t, key, s.generator.samples_per_class, 2, 1000000, path);
       }},
      {"loss_images",
       [](auto& t, auto key, Study& s, auto& path) {
         s.generator.loss_images = get_int(t, key, s.generator.loss_images, 0, nn::kMaxCount, path);
       }},
      {"relearn_mode",
       [](auto& t, auto key, Study& s, auto& path) {
         s.relearn_mode = unlearn::parse_relearn_mode(
             get_or<std::string>(t, key, unlearn::relearn_mode_name(s.relearn_mode), path));
       }},
  };
  return keys;
}

std::string known_study_keys() {
  std::string known;
  for (const StudyKey& key : study_keys()) known += (known.empty() ? "" : ", ") + std::string(key.name);
  return known;
}

// A [tune.space.METHOD] value: [lo, hi], or one number (the option pinned to it).
std::pair<double, double> space_range(const toml::node& n, const std::string& where) {
  auto number = [&](const toml::node& e) -> std::optional<double> {
    if (const auto i = e.value_exact<int64_t>()) return static_cast<double>(*i);
    return e.value_exact<double>();
  };
  if (const auto v = number(n)) return {*v, *v};
  const toml::array* a = n.as_array();
  std::optional<double> lo, hi;
  if (a != nullptr && a->size() == 2) lo = number((*a)[0]), hi = number((*a)[1]);
  LETHE_CHECK(lo && hi, "run", where, " must be [lo, hi] (two numbers) or one number");
  return {*lo, *hi};
}

// [tune]: its keys are the flags of `lethe tune`; its [tune.space.METHOD] tables the spaces.
void read_tune(const toml::table& t, Study& s, const std::string& path) {
  toml::table flags;
  for (const auto& [key, node] : t) {
    if (key.str() != "space") {
      flags.insert(key, node);
      continue;
    }
    LETHE_CHECK(node.is_table(), "run", path, ": [tune] space must be a table of [tune.space.METHOD] tables");
    for (const auto& [mk, mv] : *node.as_table()) {
      const std::string method(mk.str());
      unlearn::find_method(method);  // throws with the known names
      LETHE_CHECK(mv.is_table(), "run", path, ": [tune.space] ", excerpt(method, 40, '\''),
                  " must be a table [tune.space.", method, "]");
      auto& ranges = s.spaces[method];  // present, if empty: an empty space is refused by name later
      for (const auto& [ok, ov] : *mv.as_table()) {
        const std::string option(ok.str());
        ranges[option] = space_range(ov, path + ": [tune.space." + method + "] " + excerpt(option, 40, '\''));
      }
    }
  }
  TuneOptions o;
  CLI::App parser;  // the flags of `lethe tune`, which the table holds
  add_option_flags(parser, o, tune_options());
  parse_flags(parser, table_flags(flags, path + " [tune]"), path + " [tune]");
  s.tune = o;
}

// A generator study: class:C scenarios, no SCRUB (it distils a classifier's logits), no [tune]
// (its objective is the classifiers' metrics); a classifier study takes no evaluator.
void check_generative(const Study& s, const std::string& path) {
  if (!generative(s)) {
    LETHE_CHECK(s.evaluator.empty(), "run", path, ": [study] evaluator judges a generator's samples; the model ",
                s.model, " is a classifier");
    return;
  }
  for (const std::string& text : s.scenarios) {
    const unlearn::Scenario sc = unlearn::parse_scenario(text);
    LETHE_CHECK(sc.kind == unlearn::ScenarioKind::class_wise && sc.classes.size() == 1, "run", path,
                ": [study] scenarios: ", excerpt(text, 40, '\''), ": a generator (", s.model,
                ") forgets one class (class:C)");
  }
  for (const std::string& m : s.methods)
    LETHE_CHECK(m != "scrub", "run", path, ": [study] methods: scrub distils a classifier's logits; a generator (",
                s.model, ") has none");
  LETHE_CHECK(!s.tune, "run", path, ": [tune] searches on the classifiers' metrics; a generator study (", s.model,
              ") is not tuned");
}

Study default_study() {
  Study s;
  for (const unlearn::Method& m : unlearn::methods())
    if (m.name != "retrain") s.methods.push_back(m.name);
  return s;
}

}  // namespace

Study parse_study(std::string_view toml_text, const std::string& path) {
  Study s = default_study();
  if (const auto unsafe = toml_unsafe_text(toml_text)) LETHE_FAIL("run", path, ": TOML error at ", *unsafe);
  toml::table file;
  try {
    file = toml::parse(toml_text, path);
  } catch (const toml::parse_error& e) {
    LETHE_FAIL("run", path, ": TOML error at line ", e.source().begin.line, ", column ", e.source().begin.column, ": ",
               bounded(e.description()));
  }
  for (const auto& [key, node] : file) {
    const std::string k(key.str());
    LETHE_CHECK(node.is_table(), "run", path, ": ", excerpt(k, 80, '\''), " must be a table ([study], [train], "
                "[split], [unlearn], [relearn])");
    const toml::table& t = *node.as_table();
    if (k == "study") {
      for (const auto& [sk, sv] : t) {
        const std::string name(sk.str());
        LETHE_CHECK(name != "split_seed", "run", path, ": [study] split_seed is replaced by study_seed: replicate r "
                    "trains, draws its split and relearns with seed study_seed + r");
        const bool known = std::any_of(study_keys().begin(), study_keys().end(),
                                       [&](const StudyKey& known_key) { return name == known_key.name; });
        LETHE_CHECK(known, "run", path, ": [study] has no key ", excerpt(name, 80, '\''), " (known: ", known_study_keys(),
                    ")");
        (void)sv;
      }
      for (const StudyKey& study_key : study_keys()) study_key.read(t, study_key.name, s, path);
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
    } else if (k == "tune") {
      read_tune(t, s, path);
    } else if (k == "slurm") {
      CLI::App parser;  // the --slurm flags of `lethe run`, which the table holds
      add_option_flags(parser, s.slurm, slurm_options());
      parse_flags(parser, table_flags(t, path + " [slurm]"), path + " [slurm]");
    } else {
      LETHE_FAIL("run", path, ": unknown table [", table_name(k), "] (known: study, train, split, unlearn, relearn, tune, "
                 "slurm)");
    }
  }
  for (const std::string& m : s.methods) unlearn::find_method(m);
  LETHE_CHECK(!s.scenarios.empty(), "run", path, ": [study] scenarios is empty");
  // A generator study's default methods: every one with a generator form (all but SCRUB).
  const toml::table* study_table = file["study"].as_table();
  if (generative(s) && (study_table == nullptr || !study_table->contains("methods")))
    s.methods.erase(std::remove(s.methods.begin(), s.methods.end(), "scrub"), s.methods.end());
  check_generative(s, path);
  // The file as JSON, for results.json and the report. Converted once it is known to be a study
  // (tables of values and arrays of them), so it is shallow.
  std::stringstream as_json;
  as_json << toml::json_formatter{file};
  s.config = parse_json(as_json.str(), "run: " + path + " (as JSON)");
  return s;
}

std::vector<std::string> pool_flags(const Study& s) {
  const double validation = s.tune ? s.tune->validation : 0;
  if (s.subset == 0 && validation == 0) return {};
  return {fmt::format("--subset={}", s.subset), fmt::format("--validation={}", validation),
          fmt::format("--pool-seed={}", s.study_seed)};
}

bool generative(const Study& s) { return nn::is_generator_name(s.model); }

Study read_study(const std::string& path) {
  if (path.empty()) return default_study();
  return parse_study(read_file(path, "run"), path);
}

}  // namespace lethe::study
