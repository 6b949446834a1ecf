// The data pool (unlearn::Pool): the seeded subset and validation split a study trains, unlearns
// and tunes in; the splits drawn in it, their files, and the validation set.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "harness.h"
#include "nn/data/registry.h"
#include "tests/temp_dir.h"
#include "unlearn/study/scenario_args.h"
#include "unlearn/scenario.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

constexpr int64_t kN = 400, kClasses = 4;

// band_task: sample i is of class i % 4.
const data::Dataset& train_set() {
  static const std::shared_ptr<const data::Dataset> set = test::band_task(kN, 8, kClasses);
  return *set;
}

std::vector<int64_t> joined(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out;
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

bool disjoint(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return both.empty();
}

bool ascending(const std::vector<int64_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<>()) == v.end();
}

std::vector<int64_t> all_below(int64_t n) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = i;
  return out;
}

// An IDX file: the magic and the dimensions (big-endian uint32), then `payload`.
void write_idx(const std::string& path, uint32_t magic, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& payload) {
  std::ofstream out(path, std::ios::binary);
  std::vector<uint32_t> head{magic};
  head.insert(head.end(), dims.begin(), dims.end());
  for (const uint32_t v : head)
    for (int b = 3; b >= 0; --b) out.put(static_cast<char>((v >> (8 * b)) & 0xff));
  out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
}

const Pool kPool{200, 0.1, 3};  // 200 samples, 20 of them held out: 180 to train on

}  // namespace

TEST_CASE("data pool: draw_pool is a seeded draw of ascending, disjoint samples") {
  const PoolIndices p = draw_pool(kPool, kN);
  CHECK(p.training.size() == 180);
  CHECK(p.validation.size() == 20);
  CHECK(ascending(p.training));
  CHECK(ascending(p.validation));
  CHECK(disjoint(p.training, p.validation));
  CHECK(p.training.front() >= 0);
  CHECK(std::max(p.training.back(), p.validation.back()) < kN);

  const PoolIndices again = draw_pool(kPool, kN);
  CHECK(again.training == p.training);
  CHECK(again.validation == p.validation);
  const PoolIndices other = draw_pool({200, 0.1, 4}, kN);
  CHECK(other.training != p.training);
  CHECK(other.validation != p.validation);
  // The subset is keyed by the seed alone, so the validation split is carved out of the same subset.
  CHECK(joined(p.training, p.validation) == draw_pool({200, 0, 3}, kN).training);
  // Each draw has its own stream: the validation samples are not the subset's first picks again.
  CHECK(draw_pool({0, 0.05, 3}, kN).validation != draw_pool({20, 0, 3}, kN).training);

  const PoolIndices held = draw_pool({0, 0.25, 3}, kN);
  CHECK(held.validation.size() == 100);
  CHECK(joined(held.training, held.validation) == all_below(kN));
  const PoolIndices all = draw_pool({}, kN);
  CHECK(all.training == all_below(kN));
  CHECK(all.validation.empty());
  CHECK(draw_pool({0, 0, 99}, kN).training == all_below(kN));  // the trivial pool, whatever its seed
}

TEST_CASE("data pool: its spelling reads back") {
  CHECK(Pool{}.str() == "all");
  CHECK(Pool{0, 0, 7}.str() == "all");
  CHECK(kPool.str() == "subset=200,validation=0.1,seed=3");
  const Pool third{0, 1.0 / 3, 18446744073709551615ull};
  const std::string s = third.str();
  CHECK(s.rfind("subset=0,validation=", 0) == 0);
  CHECK(s.find(",seed=18446744073709551615") != std::string::npos);
  const std::string value = s.substr(20, s.find(",seed") - 20);
  CHECK(std::stod(value) == third.validation);  // exactly: a pool is compared by its spelling
}

TEST_CASE("data pool: check_pool names the flag and its range") {
  CHECK_NOTHROW(check_pool({}, kN));
  CHECK_NOTHROW(check_pool({kN, 0.5, 0}, kN));
  CHECK_NOTHROW(check_pool({0, 0.5, 0}, kN));
  const std::vector<std::pair<double, const char*>> bad = {{0.6, "--validation 0.6: must be in [0, 0.5]"},
                                                           {-0.1, "--validation -0.1: must be in [0, 0.5]"},
                                                           {std::nan(""), "--validation nan: must be in [0, 0.5]"}};
  for (const auto& [validation, why] : bad)
    CHECK_THROWS_WITH_AS(check_pool({0, validation, 0}, kN), doctest::Contains(why), Error);
  CHECK_THROWS_WITH_AS(check_pool({kN + 1, 0, 0}, kN), doctest::Contains("--subset 401: must be in [0, 400]"), Error);
  CHECK_THROWS_WITH_AS(check_pool({-1, 0, 0}, kN), doctest::Contains("--subset -1: must be in [0, 400]"), Error);
  // A validation fraction that holds out nothing, or leaves fewer than 2 samples to train on.
  CHECK_THROWS_WITH_AS(check_pool({10, 0.01, 0}, kN), doctest::Contains("holds out 0"), Error);
  CHECK_THROWS_WITH_AS(check_pool({3, 0.5, 0}, kN), doctest::Contains("holds out 2"), Error);
  CHECK_THROWS_AS(draw_pool({0, 0.6, 0}, kN), Error);  // every draw checks its pool
  CHECK_THROWS_AS(make_split(parse_scenario("random:0.1"), train_set(), kClasses, 0, {kN + 1, 0, 0}), Error);
}

TEST_CASE("data pool: a split drawn in the pool partitions its training samples") {
  const PoolIndices p = draw_pool(kPool, kN);
  const int64_t* labels = train_set().labels.data<int64_t>();
  for (const char* name : {"random:0.1", "class:1", "mislabeled:0.1", "backdoor:0.1:2"}) {
    CAPTURE(name);
    const Split s = make_split(parse_scenario(name), train_set(), kClasses, 5, kPool);
    CHECK(s.pool == kPool);
    CHECK(s.train_size == kN);
    CHECK(joined(s.forget, s.retain) == p.training);
    CHECK(s.validation == p.validation);
    CHECK(disjoint(s.validation, s.forget));
    CHECK(disjoint(s.validation, s.retain));
    CHECK(s.poisoned_labels.size() == (s.scenario.poisons() ? s.forget.size() : 0));
    CHECK_NOTHROW(check_split_fits(s, train_set(), kClasses, name));
  }
  // A fraction is of the pool's 180 training samples, not of the 400.
  CHECK(make_split(parse_scenario("random:0.1"), train_set(), kClasses, 5, kPool).forget.size() == 18);
  // A class split forgets the pool's samples of its classes, and only those.
  const Split cls = make_split(parse_scenario("class:1"), train_set(), kClasses, 5, kPool);
  std::vector<int64_t> of_class;
  std::copy_if(p.training.begin(), p.training.end(), std::back_inserter(of_class),
               [&](int64_t i) { return labels[i] == 1; });
  CHECK(cls.forget == of_class);

  // check_split_fits counts in the pool: a class split of all the class's samples is not the pool's.
  Split whole_class = cls;
  whole_class.forget.clear();
  for (int64_t i = 1; i < kN; i += 4) whole_class.forget.push_back(i);
  CHECK_THROWS_WITH_AS(check_split_fits(whole_class, train_set(), kClasses, "cls"),
                       doctest::Contains("must forget exactly"), Error);
}

TEST_CASE("data pool: the trivial pool draws the splits and digests of before pools") {
  // Digests pinned from lethe before pools existed (the same draws on band_task(400)).
  const std::vector<std::pair<const char*, const char*>> pinned = {{"random:0.1", "d616146ea3c1456e"},
                                                                   {"class:1,3", "8f07ed927ecf9d05"},
                                                                   {"mislabeled:0.2", "5c9ce4286f401db8"},
                                                                   {"backdoor:0.1:2", "8689bd843f467bbb"}};
  for (const auto& [name, digest] : pinned) {
    const std::string scenario = name;  // clang 14 captures no structured binding (CAPTURE's lambda)
    CAPTURE(scenario);
    const Split old = make_split(parse_scenario(name), train_set(), kClasses, 5);
    const Split seeded = make_split(parse_scenario(name), train_set(), kClasses, 5, {0, 0, 9});
    CHECK(old.digest() == digest);
    CHECK(seeded.pool == Pool{});  // one spelling of the trivial pool
    CHECK(seeded.forget == old.forget);
    CHECK(seeded.retain == old.retain);
    CHECK(seeded.digest() == old.digest());
    CHECK(old.validation.empty());
  }
  // A pool of every sample draws the same forget set, but is another pool: the digest says so.
  const Split old = make_split(parse_scenario("random:0.1"), train_set(), kClasses, 5);
  const Split every = make_split(parse_scenario("random:0.1"), train_set(), kClasses, 5, {kN, 0, 0});
  CHECK(every.forget == old.forget);
  CHECK(every.digest() != old.digest());
  Split other_validation = make_split(parse_scenario("random:0.1"), train_set(), kClasses, 5, kPool);
  const std::string digest = other_validation.digest();
  std::swap(other_validation.validation.front(), other_validation.retain.front());
  CHECK(other_validation.digest() != digest);  // the validation indices are in the digest
}

TEST_CASE("data pool: split files keep the pool, and refuse one that does not match its indices") {
  test::TempDir dir;
  const Split s = make_split(parse_scenario("mislabeled:0.1"), train_set(), kClasses, 9, kPool);
  const std::string path = dir.file("s.json");
  save_split(path, s);
  const Split r = load_split(path);
  CHECK(r.pool == s.pool);
  CHECK(r.validation == s.validation);
  CHECK(r.forget == s.forget);
  CHECK(r.retain == s.retain);
  CHECK(r.digest() == s.digest());

  // A file without a pool is the trivial pool's, as written before pools existed.
  const std::string plain = dir.file("plain.json");
  save_split(plain, make_split(parse_scenario("mislabeled:0.1"), train_set(), kClasses, 9));
  std::ifstream in(plain);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("\"pool\"") == std::string::npos);
  CHECK(text.find("\"validation\"") == std::string::npos);
  CHECK(load_split(plain).pool == Pool{});

  // Edited splits, saved with their own (matching) digests: only the pool's draw can tell.
  auto refused = [&](const Split& edited, const char* why) {
    CAPTURE(why);
    const std::string file = dir.file("edited.json");
    save_split(file, edited);
    CHECK_THROWS_WITH_AS(load_split(file), doctest::Contains(why), Error);
  };
  const std::vector<int64_t> every = all_below(kN), in_pool = joined(s.validation, joined(s.forget, s.retain));
  std::vector<int64_t> outside;  // samples in no part of the pool
  std::set_difference(every.begin(), every.end(), in_pool.begin(), in_pool.end(), std::back_inserter(outside));
  REQUIRE(!outside.empty());
  Split edited = s;
  edited.validation.front() = outside.front();  // a validation sample swapped for one outside the pool
  std::sort(edited.validation.begin(), edited.validation.end());
  refused(edited,
          "validation (20 indices) is not the 20 validation samples of the pool subset=200,validation=0.1,seed=3");
  edited = s;  // a validation sample also retained, a retain sample dropped
  edited.retain.front() = s.validation.front();
  std::sort(edited.retain.begin(), edited.retain.end());
  refused(edited, "forget and retain are not a partition of the training samples of the pool");
  edited = s;  // another seed: other samples
  edited.pool.seed = 4;
  refused(edited, "not a partition");
  edited = s;  // another fraction: other sizes
  edited.pool.validation = 0.2;
  refused(edited, "forget and retain do not add up to the 160 training samples");
  edited = s;
  edited.pool.validation = 0.7;
  refused(edited, "pool: --validation 0.7: must be in [0, 0.5]");

  // Hand-edited text: a pool without its validation, a validation list without a pool.
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  auto refused_text = [&](const nlohmann::json& edited_json, const char* why) {
    CAPTURE(why);
    const std::string file = dir.file("text.json");
    std::ofstream(file) << edited_json.dump();
    CHECK_THROWS_WITH_AS(load_split(file), doctest::Contains(why), Error);
  };
  nlohmann::json no_validation = j;
  no_validation.erase("validation");
  refused_text(no_validation, "validation (0 indices)");
  nlohmann::json bad_pool = j;
  bad_pool["pool"]["validation"] = "0.1";
  refused_text(bad_pool, "pool must be an object with subset, validation (a number) and seed");
  nlohmann::json huge = j;
  huge["train_size"] = int64_t{1} << 40;
  refused_text(huge, "train_size 1099511627776 is over");
}

TEST_CASE("data pool: validation_set copies the validation samples with their clean labels") {
  const Split s = make_split(parse_scenario("mislabeled:0.2"), train_set(), kClasses, 1, kPool);
  const data::Dataset v = validation_set(s, train_set());
  REQUIRE(v.size() == 20);
  CHECK(v.images.shape() == Shape{20, 1, 8, 8});
  const uint8_t* src = train_set().images.data<uint8_t>();
  const uint8_t* got = v.images.data<uint8_t>();
  for (size_t k = 0; k < s.validation.size(); ++k) {
    const int64_t i = s.validation[k];
    CHECK(v.labels.data<int64_t>()[k] == i % kClasses);
    CHECK(std::equal(got + static_cast<int64_t>(k) * 64, got + static_cast<int64_t>(k + 1) * 64, src + i * 64));
  }
  CHECK(got != src + s.validation.front() * 64);  // a copy, not a view
  CHECK_THROWS_WITH_AS(validation_set(make_split(parse_scenario("random:0.1"), train_set(), kClasses, 1), train_set()),
                       doctest::Contains("no validation samples"), Error);
  CHECK_THROWS_WITH_AS(validation_set(s, *test::band_task(100, 8, kClasses)),
                       doctest::Contains("this training set has only 100"), Error);
}

TEST_CASE("data pool: load_data reads no test file when the test set is not needed") {
  // Fashion-MNIST's training files alone (plain IDX under the .gz names, which the reader accepts):
  // 3 images 28×28 of classes 0, 5, 9; no t10k files.
  test::TempDir dir;
  write_idx(dir.file("train-images-idx3-ubyte.gz"), 0x803, {3, 28, 28}, std::vector<uint8_t>(3 * 28 * 28, 7));
  write_idx(dir.file("train-labels-idx1-ubyte.gz"), 0x801, {3}, {0, 5, 9});
  const data::DataSource s = data::load_data("fashion-mnist", dir.path.string(), true, false);
  REQUIRE(s.train);
  CHECK(s.train->size() == 3);
  CHECK(s.test == nullptr);
  CHECK(s.channels == 1);  // the geometry from the training set
  CHECK(s.image_size == 28);
  CHECK(s.classes == 10);
  CHECK_THROWS_WITH_AS(data::load_data("fashion-mnist", dir.path.string(), true, true), doctest::Contains("t10k"),
                       Error);
  CHECK_THROWS_WITH_AS(data::load_data("fashion-mnist", dir.path.string(), false, false),
                       doctest::Contains("neither the training nor the test set"), Error);
}

TEST_CASE("data pool: the commands' split resolution and checkpoint check") {
  test::TempDir dir;
  data::DataSource source;
  source.train = test::band_task(kN, 8, kClasses);
  source.classes = kClasses;
  study::ScenarioArgs args;
  args.scenario = "random:0.1";
  args.subset = kPool.subset;
  args.validation = kPool.validation;
  args.pool_seed = kPool.seed;
  const Split drawn = study::resolve_split(args, source);
  CHECK(drawn.pool == kPool);
  CHECK(drawn.forget == make_split(parse_scenario("random:0.1"), *source.train, kClasses, 0, kPool).forget);
  args.limit = 300;  // a pool is drawn over the whole training set
  CHECK_THROWS_WITH_AS(study::resolve_split(args, source), doctest::Contains("--split-limit and a pool"), Error);

  // --split FILE: the file says its pool; flags for another one are refused.
  study::ScenarioArgs reuse;
  reuse.split = dir.file("p.json");
  save_split(reuse.split, drawn);
  CHECK(study::resolve_split(reuse, source).digest() == drawn.digest());
  reuse.subset = kPool.subset;
  reuse.validation = kPool.validation;
  reuse.pool_seed = kPool.seed;
  CHECK(study::resolve_split(reuse, source).digest() == drawn.digest());  // the same pool, said twice
  reuse.pool_seed = 4;
  CHECK_THROWS_WITH_AS(study::resolve_split(reuse, source),
                       doctest::Contains("was drawn in the pool subset=200,validation=0.1,seed=3, not in "
                                         "subset=200,validation=0.1,seed=4"),
                       Error);
  // A pool drawn (by the library) over the leading samples only is not a pool the commands draw.
  study::ScenarioArgs leading;
  leading.split = dir.file("leading.json");
  save_split(leading.split,
             make_split(parse_scenario("random:0.1"), leading_samples(*source.train, 300), kClasses, 0, kPool));
  CHECK_THROWS_WITH_AS(study::resolve_split(leading, source), doctest::Contains("over the first 300 training samples"),
                       Error);

  // A model must come from the split's pool, for every scenario.
  nn::CheckpointInfo info;
  const Split plain = make_split(parse_scenario("random:0.1"), *source.train, kClasses, 0);
  CHECK_NOTHROW(study::check_trained_for(info, "plain", plain));
  CHECK_THROWS_WITH_AS(study::check_trained_for(info, "plain", drawn),
                       doctest::Contains("plain was trained in the pool all, but the split (random:0.1) was drawn in "
                                         "the pool subset=200,validation=0.1,seed=3"),
                       Error);
  info.extra[study::kPoolKey] = kPool.str();
  CHECK_NOTHROW(study::check_trained_for(info, "pooled", drawn));
  const Split other = make_split(parse_scenario("class:1"), *source.train, kClasses, 0, {0, 0.1, 3});
  CHECK_THROWS_WITH_AS(study::check_trained_for(info, "pooled", other),
                       doctest::Contains("pooled was trained in the pool subset=200,validation=0.1,seed=3"), Error);
  CHECK(study::recorded_pool(info) == kPool.str());
  CHECK(study::recorded_pool({}) == "all");
}
