#include "unlearn/scenario.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "kernels/common/philox.h"
#include "nn/data/loader.h"

namespace lethe::unlearn {

namespace {

constexpr const char* kOp = "scenario";
constexpr int kSplitFormat = 1;
// Philox streams of the split draws (the loader uses 1000 + epoch and 2^32 + epoch; the MIA
// 2·2^32 + 2, IEU's noise 3·2^32, RL's labels 4·2^32 + step, relearning's samples 5·2^32 + 0/1).
constexpr uint64_t kPickStream = uint64_t{2} << 32;
constexpr uint64_t kLabelStream = kPickStream + 1;
// The pool's draws: its subset, then its validation samples.
constexpr uint64_t kPoolSubsetStream = uint64_t{6} << 32;
constexpr uint64_t kPoolValidationStream = kPoolSubsetStream + 1;
// The largest train_size a split file may give: a pool's subset is drawn by a permutation of that
// many, and a file of at most 64 MiB (JsonLimits) lists no more indices than this anyway.
constexpr int64_t kMaxTrainSize = int64_t{1} << 25;

const char* kind_name(ScenarioKind k) {
  switch (k) {
    case ScenarioKind::random: return "random";
    case ScenarioKind::class_wise: return "class";
    case ScenarioKind::mislabeled: return "mislabeled";
    case ScenarioKind::backdoor: return "backdoor";
  }
  return "?";
}

[[noreturn]] void bad_syntax(const std::string& text, const std::string& why) {
  LETHE_FAIL(kOp, excerpt(text, 80, '\''), ": ", why,
             " (expected random:F, class:C[,C...], mislabeled:F or backdoor:F[:TARGET], F a fraction in (0, 1))");
}

double parse_fraction(const std::string& text, const std::string& value) {
  size_t used = 0;
  double f = 0;
  try {
    f = std::stod(value, &used);
  } catch (const std::exception&) {
    bad_syntax(text, excerpt(value, 40, '\'') + " is not a number");
  }
  if (used != value.size() || !(f > 0 && f < 1)) bad_syntax(text, "the fraction must be in (0, 1)");
  return f;
}

int64_t parse_class(const std::string& text, const std::string& value) {
  size_t used = 0;
  long long c = -1;
  try {
    c = std::stoll(value, &used);
  } catch (const std::exception&) {
    bad_syntax(text, excerpt(value, 40, '\'') + " is not a class number");
  }
  if (used != value.size() || c < 0) bad_syntax(text, excerpt(value, 40, '\'') + " is not a class number");
  return c;
}

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

// The shortest decimal that reads back as `f`.
std::string shortest(double f) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, f);
    if (std::stod(buf) == f) break;
  }
  return buf;
}

// `count` of `candidates` picked by a seeded shuffle (Philox stream `stream`), ascending.
std::vector<int64_t> pick(const std::vector<int64_t>& candidates, int64_t count, uint64_t seed, uint64_t stream) {
  const std::vector<int64_t> order = data::permutation(static_cast<int64_t>(candidates.size()), seed, stream);
  std::vector<int64_t> picked(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) picked[static_cast<size_t>(k)] = candidates[static_cast<size_t>(order[static_cast<size_t>(k)])];
  std::sort(picked.begin(), picked.end());
  return picked;
}

// The indices of `among` whose label is one of `classes` (sorted), in order: a class split's forget set.
std::vector<int64_t> samples_of(const std::vector<int64_t>& classes, const int64_t* labels,
                                const std::vector<int64_t>& among) {
  std::vector<int64_t> out;
  for (const int64_t i : among)
    if (std::binary_search(classes.begin(), classes.end(), labels[i])) out.push_back(i);
  return out;
}

std::vector<int64_t> all_below(int64_t n) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::iota(out.begin(), out.end(), int64_t{0});
  return out;
}

// The ascending `sorted` without the ascending `removed`.
std::vector<int64_t> without(const std::vector<int64_t>& sorted, const std::vector<int64_t>& removed) {
  std::vector<int64_t> rest;
  rest.reserve(sorted.size() - std::min(sorted.size(), removed.size()));
  std::set_difference(sorted.begin(), sorted.end(), removed.begin(), removed.end(), std::back_inserter(rest));
  return rest;
}

// The size of the pool before its validation split, and the validation split's.
int64_t pool_size(const Pool& pool, int64_t train_size) { return pool.subset > 0 ? pool.subset : train_size; }
int64_t validation_count(const Pool& pool, int64_t train_size) {
  return static_cast<int64_t>(std::llround(pool.validation * static_cast<double>(pool_size(pool, train_size))));
}

// What is wrong with `pool` over `train_size` samples, named by its flags; empty when nothing is.
std::string pool_problem(const Pool& pool, int64_t train_size) {
  if (pool.subset < 0 || pool.subset > train_size)
    return detail::concat("--subset ", pool.subset, ": must be in [0, ", train_size, "] (0: every sample; ",
                          train_size, " training samples)");
  if (!(pool.validation >= 0 && pool.validation <= 0.5))
    return detail::concat("--validation ", shortest(pool.validation), ": must be in [0, 0.5]");
  const int64_t size = pool_size(pool, train_size), held = validation_count(pool, train_size);
  if (pool.validation > 0 && (held < 1 || size - held < 2))
    return detail::concat("--validation ", shortest(pool.validation), " of ", size, " pool samples holds out ", held,
                          ": needs at least 1, and at least 2 left to train on");
  return {};
}

// The samples `indices` of `set`, copied (images and labels), in that order.
data::Dataset gather(const data::Dataset& set, const std::vector<int64_t>& indices) {
  const int64_t image = set.images.numel() / std::max<int64_t>(set.size(), 1);
  Shape shape = set.images.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  data::Dataset out{Tensor::empty(shape, DType::u8), Tensor::empty({shape[0]}, DType::i64)};
  const uint8_t* src = set.images.data<uint8_t>();
  const int64_t* labels = set.labels.data<int64_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  int64_t* out_labels = out.labels.data<int64_t>();
  for (size_t k = 0; k < indices.size(); ++k) {
    std::copy_n(src + indices[k] * image, image, dst + static_cast<int64_t>(k) * image);
    out_labels[k] = labels[indices[k]];
  }
  return out;
}

}  // namespace

std::string Scenario::str() const {
  std::string s = kind_name(kind);
  s += ':';
  if (kind == ScenarioKind::class_wise) {
    for (size_t i = 0; i < classes.size(); ++i) s += (i ? "," : "") + std::to_string(classes[i]);
  } else {
    s += shortest(fraction);
    if (kind == ScenarioKind::backdoor && target != 0) s += ":" + std::to_string(target);
  }
  return s;
}

Scenario parse_scenario(const std::string& text) {
  const std::vector<std::string> parts = split_on(text, ':');
  if (parts.size() < 2) bad_syntax(text, "no ':'");
  Scenario s;
  const std::string& kind = parts[0];
  if (kind == "random" || kind == "mislabeled" || kind == "backdoor") {
    s.kind = kind == "random" ? ScenarioKind::random
             : kind == "mislabeled" ? ScenarioKind::mislabeled : ScenarioKind::backdoor;
    if (parts.size() > (s.kind == ScenarioKind::backdoor ? 3u : 2u)) bad_syntax(text, "too many ':' fields");
    s.fraction = parse_fraction(text, parts[1]);
    if (parts.size() == 3) s.target = parse_class(text, parts[2]);
  } else if (kind == "class") {
    if (parts.size() != 2) bad_syntax(text, "too many ':' fields");
    s.kind = ScenarioKind::class_wise;
    s.fraction = 0;
    for (const std::string& c : split_on(parts[1], ',')) s.classes.push_back(parse_class(text, c));
    if (s.classes.empty()) bad_syntax(text, "no class");
    std::sort(s.classes.begin(), s.classes.end());
    if (std::adjacent_find(s.classes.begin(), s.classes.end()) != s.classes.end()) bad_syntax(text, "a class twice");
  } else {
    bad_syntax(text, "unknown scenario " + excerpt(kind, 40, '\''));
  }
  return s;
}

std::string Pool::str() const {
  if (trivial()) return "all";
  return "subset=" + std::to_string(subset) + ",validation=" + shortest(validation) + ",seed=" + std::to_string(seed);
}

void check_pool(const Pool& pool, int64_t train_size) {
  const std::string problem = pool_problem(pool, train_size);
  LETHE_CHECK(problem.empty(), "pool", problem);
}

PoolIndices draw_pool(const Pool& pool, int64_t train_size) {
  check_pool(pool, train_size);
  PoolIndices p;
  p.training = all_below(train_size);
  if (pool.subset > 0) p.training = pick(p.training, pool.subset, pool.seed, kPoolSubsetStream);
  const int64_t held = validation_count(pool, train_size);
  if (held > 0) {
    p.validation = pick(p.training, held, pool.seed, kPoolValidationStream);
    p.training = without(p.training, p.validation);
  }
  return p;
}

std::string Split::digest() const {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= (v >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  };
  for (const char c : scenario.str()) mix(static_cast<unsigned char>(c));
  mix(seed);
  mix(static_cast<uint64_t>(train_size));
  for (const int64_t i : forget) mix(static_cast<uint64_t>(i));
  for (const int64_t l : poisoned_labels) mix(static_cast<uint64_t>(l));
  if (scenario.kind == ScenarioKind::backdoor) {  // the trigger changes the training images too
    mix(static_cast<uint64_t>(trigger.size));
    mix(static_cast<uint64_t>(trigger.value));
  }
  if (!pool.trivial()) {  // only then: the splits drawn before pools existed keep their digests
    for (const char c : pool.str()) mix(static_cast<unsigned char>(c));
    for (const int64_t i : validation) mix(static_cast<uint64_t>(i));
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Split make_split(const Scenario& scenario, const data::Dataset& train, int64_t classes, uint64_t seed,
                 const Pool& pool) {
  const int64_t n = train.size();
  LETHE_CHECK(n > 1 && train.labels.dtype() == DType::i64 && train.images.dim() == 4, kOp,
              "needs a training set with uint8 [N,C,H,W] images and int64 labels, got ", n, " samples");
  LETHE_CHECK(classes >= 2, kOp, "needs at least 2 classes, got ", classes);
  const int64_t* labels = train.labels.data<int64_t>();
  Split split;
  split.scenario = scenario;
  split.seed = seed;
  split.train_size = n;
  split.classes = classes;
  PoolIndices drawn = draw_pool(pool, n);
  const std::vector<int64_t>& training = drawn.training;
  split.pool = pool.trivial() ? Pool{} : pool;  // one spelling of the trivial pool, whatever its seed
  split.validation = std::move(drawn.validation);
  auto check_class = [&](int64_t c) {
    LETHE_CHECK(c >= 0 && c < classes, kOp, scenario.str(), ": class ", c, " does not exist (", classes, " classes)");
  };
  std::vector<int64_t> candidates;
  if (scenario.kind == ScenarioKind::class_wise) {
    LETHE_CHECK(!scenario.classes.empty(), kOp, "class-wise forgetting needs at least one class");
    for (const int64_t c : scenario.classes) check_class(c);
    split.forget = samples_of(scenario.classes, labels, training);
    LETHE_CHECK(!split.forget.empty(), kOp, scenario.str(), ": no training sample has these classes");
  } else {
    if (scenario.kind == ScenarioKind::backdoor) check_class(scenario.target);
    for (const int64_t i : training)
      if (scenario.kind != ScenarioKind::backdoor || labels[i] != scenario.target) candidates.push_back(i);
    // The fraction is of the pool's whole training set, for backdoor too.
    const auto count = static_cast<int64_t>(std::llround(scenario.fraction * static_cast<double>(training.size())));
    LETHE_CHECK(count >= 1 && count < static_cast<int64_t>(candidates.size()), kOp, scenario.str(), " picks ", count,
                " of ", candidates.size(), " candidate samples; needs at least one and fewer than all");
    split.forget = pick(candidates, count, seed, kPickStream);
  }
  split.retain = without(training, split.forget);
  LETHE_CHECK(!split.retain.empty(), kOp, scenario.str(), " leaves no retain sample (", training.size(),
              " training samples), and every method and metric needs one");
  if (scenario.kind == ScenarioKind::mislabeled) {
    for (const int64_t i : split.forget) {
      const uint32_t r = philox::random_u32(seed, kLabelStream, static_cast<uint64_t>(i));
      split.poisoned_labels.push_back(other_label(labels[i], r, classes));
    }
  } else if (scenario.kind == ScenarioKind::backdoor) {
    split.poisoned_labels.assign(split.forget.size(), scenario.target);
    split.trigger.size = std::max<int64_t>(1, std::min(train.images.size(2), train.images.size(3)) / 9);
  }
  return split;
}

void save_split(const std::string& path, const Split& s) {
  nlohmann::ordered_json j;
  j["format"] = "lethe-split";
  j["version"] = kSplitFormat;
  j["scenario"] = s.scenario.str();
  j["seed"] = s.seed;
  j["train_size"] = s.train_size;
  j["classes"] = s.classes;
  if (!s.pool.trivial())
    j["pool"] = {{"subset", s.pool.subset}, {"validation", s.pool.validation}, {"seed", s.pool.seed}};
  j["digest"] = s.digest();
  std::string definition =
      "forget and retain are ascending indices into the training set; poisoned_labels are the labels the forget "
      "samples carry in the poisoned training set (mislabeled, backdoor); the backdoor trigger is a size x size square "
      "of pixel value `value` in every channel at the bottom-right corner";
  if (!s.pool.trivial())  // (a file without a pool reads as it did before pools existed)
    definition += "; forget and retain partition the pool's training samples (the subset of `subset` samples, or all "
                  "of train_size, drawn with `seed`), and validation (ascending) is the pool's held-out fraction";
  j["definition"] = definition;
  if (s.scenario.kind == ScenarioKind::backdoor) j["trigger"] = {{"size", s.trigger.size}, {"value", s.trigger.value}};
  j["forget"] = s.forget;
  j["retain"] = s.retain;
  if (!s.pool.trivial()) j["validation"] = s.validation;
  if (!s.poisoned_labels.empty()) j["poisoned_labels"] = s.poisoned_labels;
  write_file_atomically(path, j.dump() + "\n", "split");
}

Split load_split(const std::string& path) { return parse_split(read_file(path, "split"), path); }

Split parse_split(std::string_view text, const std::string& path) {
  JsonLimits limits;
  limits.refuse_duplicate_keys = true;  // lethe writes none; a repeated key is an edit
  const nlohmann::json j = parse_json(text, "split: " + path, limits);
  Split s;
  LETHE_CHECK(j.is_object() && j.contains("format") && j.at("format") == "lethe-split", "split", path,
              ": not a lethe split file");
  const auto field = [&](const char* key) -> const nlohmann::json& {
    LETHE_CHECK(j.contains(key), "split", path, ": missing field '", key, "'");
    return j.at(key);
  };
  const auto name = [&](const std::string& key) { return "split: " + path + ": " + key; };
  const auto indices = [&](const nlohmann::json& value, const std::string& key) {
    LETHE_CHECK(value.is_array(), "split", path, ": ", key, " must be an array of integers, got ", json_excerpt(value));
    std::vector<int64_t> out;
    out.reserve(value.size());
    for (const nlohmann::json& v : value) out.push_back(json_int(v, name(key) + " element"));
    return out;
  };
  const int64_t version = json_int(field("version"), name("version"));
  LETHE_CHECK(version == kSplitFormat, "split", path, ": unsupported version ", version);
  LETHE_CHECK(field("scenario").is_string(), "split", path, ": scenario must be a string, got ",
              json_excerpt(field("scenario")));
  s.scenario = parse_scenario(field("scenario").get<std::string>());
  s.seed = json_uint(field("seed"), name("seed"));
  s.train_size = json_int(field("train_size"), name("train_size"));
  s.classes = json_int(field("classes"), name("classes"));
  s.forget = indices(field("forget"), "forget");
  s.retain = indices(field("retain"), "retain");
  if (j.contains("poisoned_labels")) s.poisoned_labels = indices(j.at("poisoned_labels"), "poisoned_labels");
  if (j.contains("pool")) {
    const nlohmann::json& p = j.at("pool");
    LETHE_CHECK(p.is_object() && p.contains("subset") && p.contains("validation") && p.contains("seed") &&
                    p.at("validation").is_number(),
                "split", path, ": pool must be an object with subset, validation (a number) and seed, got ",
                json_excerpt(p));
    s.pool.subset = json_int(p.at("subset"), name("pool.subset"));
    s.pool.validation = p.at("validation").get<double>();
    s.pool.seed = json_uint(p.at("seed"), name("pool.seed"));
  }
  if (j.contains("validation")) s.validation = indices(j.at("validation"), "validation");
  if (j.contains("trigger")) {
    const nlohmann::json& t = j.at("trigger");
    LETHE_CHECK(t.is_object() && t.contains("size") && t.contains("value"), "split", path,
                ": trigger must be an object with size and value, got ", json_excerpt(t));
    s.trigger.size = json_int(t.at("size"), name("trigger.size"));
    s.trigger.value = json_int(t.at("value"), name("trigger.value"));
  }
  auto check = [&](bool ok, const std::string& why) { LETHE_CHECK(ok, "split", path, ": ", why); };
  check(s.train_size > 0 && s.classes >= 2, "bad train_size or classes");
  check(s.train_size <= kMaxTrainSize, detail::concat("train_size ", s.train_size, " is over ", kMaxTrainSize));
  check(!s.forget.empty() && !s.retain.empty(), "the forget and retain sets must both be non-empty");
  check(std::is_sorted(s.forget.begin(), s.forget.end()) && std::is_sorted(s.retain.begin(), s.retain.end()),
        "indices are not ascending");
  const std::string problem = pool_problem(s.pool, s.train_size);
  check(problem.empty(), "pool: " + problem);
  const std::string pool = s.pool.trivial() ? std::string("the training set")
                                            : "the pool " + s.pool.str() + " of " + std::to_string(s.train_size);
  const int64_t training = pool_size(s.pool, s.train_size) - validation_count(s.pool, s.train_size);
  check(static_cast<int64_t>(s.forget.size() + s.retain.size()) == training,
        detail::concat("forget and retain do not add up to the ", training, " training samples of ", pool, " (",
                       s.forget.size(), " + ", s.retain.size(), ")"));
  check(s.forget.front() >= 0 && s.forget.back() < s.train_size, "a forget index is out of range");
  // The pool's samples, drawn again: the file must list exactly them.
  const PoolIndices drawn = draw_pool(s.pool, s.train_size);
  check(std::adjacent_find(s.forget.begin(), s.forget.end()) == s.forget.end(), "a forget index repeats");
  check(without(drawn.training, s.forget) == s.retain,
        "forget and retain are not a partition of the training samples of " + pool);
  check(s.validation == drawn.validation,
        detail::concat("validation (", s.validation.size(), " indices) is not the ", drawn.validation.size(),
                       " validation samples of ", pool));
  const bool poisons = s.scenario.poisons();
  check(poisons ? s.poisoned_labels.size() == s.forget.size() : s.poisoned_labels.empty(),
        "poisoned_labels must be present (and as long as forget) exactly for mislabeled and backdoor");
  for (const int64_t c : s.scenario.classes)
    check(c < s.classes, detail::concat(s.scenario.str(), ": class ", c, " does not exist (", s.classes, " classes)"));
  check(s.scenario.kind != ScenarioKind::backdoor || s.scenario.target < s.classes,
        detail::concat(s.scenario.str(), ": target class ", s.scenario.target, " does not exist (", s.classes, " classes)"));
  for (const int64_t l : s.poisoned_labels) check(l >= 0 && l < s.classes, "a poisoned label is out of range");
  check(s.trigger.size > 0 && s.trigger.value >= 0 && s.trigger.value <= 255, "bad trigger");
  const nlohmann::json digest = j.contains("digest") ? j.at("digest") : nlohmann::json("");
  check(digest == s.digest(), "the digest " + json_excerpt(digest) + " does not match the contents (" + s.digest() +
                                  "): edited or corrupt");
  return s;
}

void stamp_trigger(Tensor& images, int64_t i, const Trigger& t) {
  const int64_t c = images.size(1), h = images.size(2), w = images.size(3);
  uint8_t* image = images.data<uint8_t>() + i * c * h * w;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = h - t.size; y < h; ++y)
      for (int64_t x = w - t.size; x < w; ++x) image[(ch * h + y) * w + x] = static_cast<uint8_t>(t.value);
}

data::Dataset leading_samples(const data::Dataset& set, int64_t count) {
  LETHE_CHECK(count <= set.size(), kOp, "wants the first ", count, " samples of a set of ", set.size());
  return {set.images.narrow(0, 0, count), set.labels.narrow(0, 0, count)};
}

std::shared_ptr<const data::Dataset> scenario_training_set(const Split& split,
                                                           std::shared_ptr<const data::Dataset> clean) {
  LETHE_CHECK(clean && clean->size() >= split.train_size, kOp, "the split was drawn from ", split.train_size,
              " training samples, this training set has only ", clean ? clean->size() : 0);
  if (!split.scenario.poisons()) {
    if (clean->size() == split.train_size) return clean;
    return std::make_shared<const data::Dataset>(leading_samples(*clean, split.train_size));
  }
  const data::Dataset lead = leading_samples(*clean, split.train_size);
  data::Dataset poisoned{split.scenario.kind == ScenarioKind::backdoor ? lead.images.clone() : lead.images,
                         lead.labels.clone()};
  int64_t* labels = poisoned.labels.data<int64_t>();
  for (size_t k = 0; k < split.forget.size(); ++k) {
    labels[split.forget[k]] = split.poisoned_labels[k];
    if (split.scenario.kind == ScenarioKind::backdoor) stamp_trigger(poisoned.images, split.forget[k], split.trigger);
  }
  return std::make_shared<const data::Dataset>(std::move(poisoned));
}

data::Dataset validation_set(const Split& split, const data::Dataset& clean) {
  LETHE_CHECK(!split.validation.empty(), kOp, "the split (", split.scenario.str(), ", pool ", split.pool.str(),
              ") has no validation samples: draw it with --validation F");
  LETHE_CHECK(clean.size() >= split.train_size, kOp, "the split was drawn from ", split.train_size,
              " training samples, this training set has only ", clean.size());
  return gather(clean, split.validation);
}

data::Dataset triggered_test_set(const Split& split, const data::Dataset& test) {
  LETHE_CHECK(split.scenario.kind == ScenarioKind::backdoor, kOp, "only backdoor scenarios have a trigger");
  const int64_t* labels = test.labels.data<int64_t>();
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < test.size(); ++i)
    if (labels[i] != split.scenario.target) keep.push_back(i);
  data::Dataset out = gather(test, keep);
  for (int64_t i = 0; i < out.size(); ++i) stamp_trigger(out.images, i, split.trigger);
  return out;
}

void check_split_fits(const Split& s, const data::Dataset& train, int64_t classes, const std::string& origin) {
  auto check = [&](bool ok, const auto&... why) { LETHE_CHECK(ok, "split", origin, ": ", why...); };
  check(s.classes == classes, "drawn for ", s.classes, " classes, the data set has ", classes);
  check(s.train_size <= train.size(), "drawn from ", s.train_size, " training samples, the data set has ", train.size());
  const int64_t* labels = train.labels.data<int64_t>();
  const Scenario& sc = s.scenario;
  for (const int64_t c : sc.classes) check(c >= 0 && c < classes, sc.str(), ": class ", c, " does not exist");
  const std::vector<int64_t> training = draw_pool(s.pool, s.train_size).training;
  if (sc.kind == ScenarioKind::class_wise) {
    // Exactly the pool's samples of the classes, none missing, none added.
    const std::vector<int64_t> expected = samples_of(sc.classes, labels, training);
    check(s.forget == expected, sc.str(), " must forget exactly the ", expected.size(),
          " training samples of those classes; the split's forget set (", s.forget.size(), " samples) is not that");
    return;
  }
  // The drawn scenarios: as many samples as the fraction of the pool says, of the kind the scenario poisons.
  const auto count = static_cast<int64_t>(std::llround(sc.fraction * static_cast<double>(training.size())));
  check(static_cast<int64_t>(s.forget.size()) == count, sc.str(), " of ", training.size(), " samples is ", count,
        " forget samples, the split has ", s.forget.size());
  if (sc.kind == ScenarioKind::mislabeled)
    for (size_t k = 0; k < s.forget.size(); ++k)
      check(s.poisoned_labels[k] != labels[s.forget[k]], "forget sample ", s.forget[k],
            " keeps its true label: a mislabeled sample must carry another one");
  if (sc.kind == ScenarioKind::backdoor) {
    check(sc.target >= 0 && sc.target < classes, sc.str(), ": target class ", sc.target, " does not exist (", classes,
          " classes)");
    for (size_t k = 0; k < s.forget.size(); ++k) {
      check(labels[s.forget[k]] != sc.target, "forget sample ", s.forget[k], " is of the target class ", sc.target);
      check(s.poisoned_labels[k] == sc.target, "forget sample ", s.forget[k], " is relabelled ", s.poisoned_labels[k],
            ", not the target ", sc.target);
    }
    const int64_t side = std::min(train.images.size(2), train.images.size(3));
    check(s.trigger.size >= 1 && s.trigger.size <= side, "the trigger's size ", s.trigger.size, " is not in [1, ",
          side, "] (the images' side)");
  }
}

}  // namespace lethe::unlearn
