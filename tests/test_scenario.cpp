// Forgetting scenarios: parsing, the seeded splits and their files, the poisoned training sets.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>

#include "engine/error.h"
#include "tests/temp_dir.h"
#include "unlearn/scenario.h"

using namespace lethe;
using namespace lethe::unlearn;

namespace {

// 200 images 1×9×9 of 4 classes (label i % 4), pixel value i % 251.
data::Dataset small_set(int64_t n = 200) {
  std::vector<uint8_t> pixels(static_cast<size_t>(n) * 81);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = i % 4;
    std::fill_n(pixels.begin() + i * 81, 81, static_cast<uint8_t>(i % 251));
  }
  return {Tensor::from_vector(pixels, {n, 1, 9, 9}), Tensor::from_vector(labels, {n})};
}

void check_partition(const Split& s) {
  std::vector<int64_t> all(s.forget);
  all.insert(all.end(), s.retain.begin(), s.retain.end());
  std::sort(all.begin(), all.end());
  REQUIRE(static_cast<int64_t>(all.size()) == s.train_size);
  for (int64_t i = 0; i < s.train_size; ++i) CHECK(all[static_cast<size_t>(i)] == i);
  CHECK(std::is_sorted(s.forget.begin(), s.forget.end()));
}

}  // namespace

TEST_CASE("scenario: parse and canonical spelling") {
  CHECK(parse_scenario("random:0.1").str() == "random:0.1");
  CHECK(parse_scenario("random:0.10").str() == "random:0.1");
  CHECK(parse_scenario("class:3,1").str() == "class:1,3");
  CHECK(parse_scenario("mislabeled:0.25").kind == ScenarioKind::mislabeled);
  const Scenario b = parse_scenario("backdoor:0.05:7");
  CHECK(b.kind == ScenarioKind::backdoor);
  CHECK(b.target == 7);
  CHECK(b.str() == "backdoor:0.05:7");
  CHECK(parse_scenario("backdoor:0.05").str() == "backdoor:0.05");
  for (const char* bad : {"random", "random:0", "random:1", "random:x", "random:0.1:2", "class:", "class:a",
                          "class:1,1", "class:-1", "forget:0.1", "backdoor:0.1:x"})
    CHECK_THROWS_AS(parse_scenario(bad), Error);
}

TEST_CASE("scenario: random split is a seeded partition") {
  const data::Dataset d = small_set();
  const Split a = make_split(parse_scenario("random:0.1"), d, 4, 5);
  CHECK(a.forget.size() == 20);
  check_partition(a);
  CHECK(make_split(parse_scenario("random:0.1"), d, 4, 5).forget == a.forget);
  CHECK(make_split(parse_scenario("random:0.1"), d, 4, 6).forget != a.forget);
  CHECK(a.poisoned_labels.empty());
}

TEST_CASE("scenario: class-wise forgets exactly the classes") {
  const Split s = make_split(parse_scenario("class:1,3"), small_set(), 4, 0);
  check_partition(s);
  CHECK(s.forget.size() == 100);
  for (const int64_t i : s.forget) CHECK(i % 2 == 1);
  CHECK_THROWS_AS(make_split(parse_scenario("class:4"), small_set(), 4, 0), Error);
}

TEST_CASE("scenario: mislabeled flips to another class, backdoor relabels non-target samples") {
  const data::Dataset d = small_set();
  const Split m = make_split(parse_scenario("mislabeled:0.2"), d, 4, 1);
  check_partition(m);
  REQUIRE(m.poisoned_labels.size() == m.forget.size());
  std::vector<int> seen(4, 0);
  for (size_t k = 0; k < m.forget.size(); ++k) {
    CHECK(m.poisoned_labels[k] != m.forget[k] % 4);
    ++seen[static_cast<size_t>(m.poisoned_labels[k])];
  }
  CHECK(std::count(seen.begin(), seen.end(), 0) == 0);  // 40 flips spread over the classes

  const Split b = make_split(parse_scenario("backdoor:0.1:2"), d, 4, 1);
  check_partition(b);
  CHECK(b.forget.size() == 20);
  for (size_t k = 0; k < b.forget.size(); ++k) {
    CHECK(b.forget[k] % 4 != 2);
    CHECK(b.poisoned_labels[k] == 2);
  }
  CHECK(b.trigger.size == 1);  // 9×9 images: a 1-pixel trigger

  const auto clean = std::make_shared<const data::Dataset>(d);
  const auto poisoned = scenario_training_set(b, clean);
  const uint8_t* px = poisoned->images.data<uint8_t>();
  const int64_t* labels = poisoned->labels.data<int64_t>();
  for (int64_t i = 0; i < d.size(); ++i) {
    const bool forgotten = std::binary_search(b.forget.begin(), b.forget.end(), i);
    CHECK(labels[i] == (forgotten ? 2 : i % 4));
    CHECK(px[i * 81 + 80] == (forgotten ? 255 : i % 251));  // the bottom-right pixel
    CHECK(px[i * 81] == i % 251);                           // the rest untouched
  }
  CHECK(clean->images.data<uint8_t>()[b.forget[0] * 81 + 80] == b.forget[0] % 251);  // the clean set too
  CHECK(scenario_training_set(make_split(parse_scenario("random:0.1"), d, 4, 0), clean) == clean);

  const data::Dataset triggered = triggered_test_set(b, d);
  CHECK(triggered.size() == 150);
  for (int64_t i = 0; i < triggered.size(); ++i) {
    CHECK(triggered.labels.data<int64_t>()[i] != 2);
    CHECK(triggered.images.data<uint8_t>()[i * 81 + 80] == 255);
  }
}

TEST_CASE("scenario: a split drawn over the leading samples") {
  const data::Dataset d = small_set();
  const Split s = make_split(parse_scenario("random:0.25"), leading_samples(d, 40), 4, 0);
  CHECK(s.train_size == 40);
  CHECK(s.forget.size() == 10);
  const auto train = scenario_training_set(s, std::make_shared<const data::Dataset>(d));
  CHECK(train->size() == 40);
  CHECK_THROWS_AS(scenario_training_set(make_split(parse_scenario("random:0.1"), d, 4, 0),
                                        std::make_shared<const data::Dataset>(leading_samples(d, 50))),
                  Error);
}

TEST_CASE("scenario: split files round-trip, and damaged ones are refused") {
  test::TempDir dir;
  const Split s = make_split(parse_scenario("mislabeled:0.1"), small_set(), 4, 9);
  const std::string path = dir.file("s.json");
  save_split(path, s);
  const Split r = load_split(path);
  CHECK(r.scenario == s.scenario);
  CHECK(r.seed == 9);
  CHECK(r.forget == s.forget);
  CHECK(r.retain == s.retain);
  CHECK(r.poisoned_labels == s.poisoned_labels);
  CHECK(r.digest() == s.digest());

  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir.file(name)) << content;
    return dir.file(name);
  };
  CHECK_THROWS_AS(load_split(write("truncated.json", text.substr(0, text.size() / 2))), Error);
  std::string edited = text;
  const size_t at = edited.find("\"forget\":[") + 10;
  edited[at] = edited[at] == '1' ? '2' : '1';  // another first forget index
  CHECK_THROWS_AS(load_split(write("edited.json", edited)), Error);
  CHECK_THROWS_AS(load_split(write("other.json", "{\"format\": \"something\"}")), Error);
  CHECK_THROWS_AS(load_split(dir.file("missing.json")), Error);
}

TEST_CASE("scenario: a split must hold what its scenario says on the data it is used with") {
  const data::Dataset set = small_set();
  const Split cls = make_split(parse_scenario("class:3"), set, 10, 1);
  CHECK_NOTHROW(check_split_fits(cls, set, 10, "cls"));
  CHECK_THROWS_WITH_AS(check_split_fits(cls, set, 12, "cls"), doctest::Contains("10 classes"), Error);
  Split wrong = cls;  // a class split whose forget set is other samples
  wrong.forget = make_split(parse_scenario("random:0.1"), set, 10, 1).forget;
  wrong.retain.clear();
  CHECK_THROWS_WITH_AS(check_split_fits(wrong, set, 10, "wrong"), doctest::Contains("must forget exactly"), Error);

  const Split drawn = make_split(parse_scenario("random:0.1"), set, 10, 1);
  CHECK_NOTHROW(check_split_fits(drawn, set, 10, "drawn"));
  Split more = drawn;
  more.forget.push_back(more.retain.back());
  CHECK_THROWS_WITH_AS(check_split_fits(more, set, 10, "more"), doctest::Contains("the split has 21"), Error);

  Split backdoor = make_split(parse_scenario("backdoor:0.1:2"), set, 10, 1);
  CHECK_NOTHROW(check_split_fits(backdoor, set, 10, "bd"));
  backdoor.trigger.size = 29;
  CHECK_THROWS_WITH_AS(check_split_fits(backdoor, set, 10, "bd"), doctest::Contains("trigger"), Error);
  const std::string digest = backdoor.digest();
  backdoor.trigger.size = 3;
  CHECK(backdoor.digest() != digest);  // the trigger changes the training data, so the digest covers it

  // Every class forgotten leaves nothing to retain: refused when drawn, so no such file is written.
  CHECK_THROWS_WITH_AS(make_split(parse_scenario("class:0,1,2,3,4,5,6,7,8,9"), set, 10, 1),
                       doctest::Contains("no retain sample"), Error);
}
