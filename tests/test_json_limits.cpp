// Input limits of the readers (issue 13): JSON parsed with a size limit, a nesting limit and, where
// asked, no duplicate keys (engine/json.h); messages that quote untrusted input quote a bounded
// excerpt of it (engine/error.h); the study config's integers are range-checked before they are
// narrowed; the IDX reader's in-memory entry point.
#include <doctest/doctest.h>
#include <zlib.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "nn/data/idx.h"
#include "unlearn/study/report.h"
#include "unlearn/study/study_config.h"
#include "unlearn/study/toml_config.h"
#include "unlearn/scenario.h"

using namespace lethe;
using nlohmann::json;

namespace {

// A safetensors file whose header is `header` (padded to 8 bytes), with no data.
std::string safetensors_with(std::string header) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i)));
  return out + header;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  FAIL("no lethe::Error");
  return "";
}

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string gzip(const std::string& bytes) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("json limits: excerpt bounds, quotes and escapes untrusted text") {
  CHECK(excerpt("dtype") == "\"dtype\"");
  CHECK(excerpt("w", 80, '\'') == "'w'");
  CHECK(excerpt("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(excerpt(std::string("x\n\t\r\x1b[2J\0y", 10)) == "\"x\\n\\t\\r\\x1b[2J\\x00y\"");
  CHECK(excerpt("caf\xc3\xa9") == "\"caf\xc3\xa9\"");         // UTF-8 stays
  CHECK(excerpt("bad\xff\xc3") == "\"bad\\xff\\xc3\"");       // broken UTF-8 does not
  CHECK(excerpt("\xe2\x80\xae" "evil") == "\"\\xe2\\x80\\xaeevil\"");  // a bidirectional override is escaped
  const std::string big(100'000, 'a');
  const std::string e = excerpt(big);
  CHECK(e.size() <= 100);
  CHECK(e.rfind("\"aaaa", 0) == 0);
  CHECK(e.find("(100000 bytes)") != std::string::npos);
  // Escapes count towards the bound.
  CHECK(excerpt(std::string(100'000, '\x01')).size() < 110);
}

TEST_CASE("json limits: nesting deeper than the limit is refused before anything is built") {
  CHECK(parse_json(nested(64), "t").is_array());
  CHECK_THROWS_WITH_AS(parse_json(nested(65), "t"), "t nests arrays and objects deeper than 64 levels (at byte 64)",
                       Error);
  JsonLimits shallow;
  shallow.max_depth = 2;
  CHECK_THROWS_AS(parse_json(R"({"a":{"b":[1]}})", "t", shallow), Error);
  CHECK(parse_json(R"({"a":"[[[[[{{{{", "b":[1]})", "t", shallow).is_object());  // brackets in strings do not nest
  CHECK(parse_json(R"(["\"[[[["])", "t", shallow).is_array());                    // nor after an escaped quote
  // 100,000 levels: an error, not a stack overflow (copying or dumping such a value recurses).
  const std::string deep = nested(100'000);
  CHECK_THROWS_AS(parse_json(deep, "t"), Error);
  // In a safetensors header, a split and results.json alike.
  const std::string header = R"({"w":)" + deep + "}";
  CHECK_THROWS_WITH_AS(parse_safetensors(safetensors_with(header), "m"),
                       doctest::Contains("safetensors: m: header nests arrays and objects deeper than 64 levels"), Error);
  CHECK_THROWS_AS(unlearn::parse_split(R"({"format":"lethe-split","version":)" + deep + "}", "s"), Error);
  CHECK_THROWS_AS(study::parse_results(deep, "r"), Error);
}

TEST_CASE("json limits: size limit, NUL bytes and bounded parse errors") {
  JsonLimits small;
  small.max_bytes = 16;
  CHECK(parse_json("[1,2,3]", "t", small).size() == 3);
  CHECK_THROWS_WITH_AS(parse_json("[1,2,3,4,5,6,7,8,9]", "t", small), "t is 19 bytes, above the limit of 16 bytes",
                       Error);
  CHECK_THROWS_WITH_AS(parse_json(std::string("{}\0{", 4), "t"), "t is not valid JSON: NUL byte at offset 2 (JSON has none)",
                       Error);
  // nlohmann quotes the token it stopped at whole ("last read: '...'"): here 100 kB.
  const std::string long_token = "[\"" + std::string(100'000, 'x');
  const std::string m = message_of([&] { parse_json(long_token, "t"); });
  CHECK(m.rfind("t is not valid JSON: parse error at line 1, column", 0) == 0);
  CHECK(m.size() < 300);
  const std::string number = message_of([&] { parse_json("1" + std::string(100'000, '0') + "e999999", "t"); });
  CHECK(number.size() < 300);
}

TEST_CASE("json limits: duplicate keys") {
  CHECK(parse_json(R"({"a":1,"a":2})", "t").at("a") == 2);  // nlohmann keeps the last: allowed unless refused
  JsonLimits strict;
  strict.refuse_duplicate_keys = true;
  CHECK_THROWS_WITH_AS(parse_json(R"({"a":1,"b":{"a":1,"a":2}})", "t", strict), "t has a duplicate key 'a'", Error);
  CHECK(parse_json(R"({"a":{"x":1},"b":{"x":1}})", "t", strict).size() == 2);  // the same key in two objects
  // A split repeats no key.
  CHECK_THROWS_WITH_AS(unlearn::parse_split(R"({"format":"lethe-split","format":"lethe-split"})", "s"),
                       doctest::Contains("duplicate key 'format'"), Error);
}

TEST_CASE("json limits: checked integers") {
  CHECK(json_int(json::parse("-5"), "n") == -5);
  CHECK(json_int(json::parse("9223372036854775807"), "n") == INT64_MAX);
  CHECK_THROWS_WITH_AS(json_int(json::parse("9223372036854775808"), "n"),
                       "n must be an integer in [-9223372036854775808, 9223372036854775807], got 9223372036854775808",
                       Error);
  CHECK_THROWS_WITH_AS(json_int(json::parse("1e300"), "n", 0, 10), "n must be an integer in [0, 10], got 1e+300", Error);
  CHECK_THROWS_AS(json_int(json::parse("2.5"), "n"), Error);
  CHECK_THROWS_AS(json_int(json::parse("\"3\""), "n"), Error);
  CHECK_THROWS_AS(json_int(json::parse("11"), "n", 0, 10), Error);
  CHECK(json_uint(json::parse("18446744073709551615"), "n") == UINT64_MAX);
  CHECK_THROWS_AS(json_uint(json::parse("-1"), "n"), Error);
  CHECK(json_excerpt(json::parse("[1,2]")) == "[1,2]");
  CHECK(json_excerpt(json(std::string(1000, 'z'))).size() < 110);
}

TEST_CASE("json limits: readers quote at most an excerpt of what they reject") {
  const std::string big(100'000, 'q');
  const auto short_error = [](const std::string& m) {
    CAPTURE(m.substr(0, 400));
    CHECK(m.size() < 300);
  };
  // safetensors: a long tensor name, dtype, key and value, and a header that is not JSON.
  short_error(message_of([&] { parse_safetensors(safetensors_with("{\"" + big + "\":5}"), "m"); }));
  short_error(message_of([&] {
    parse_safetensors(safetensors_with(R"({"w":{"dtype":")" + big + R"(","shape":[],"data_offsets":[0,0]}})"), "m");
  }));
  short_error(message_of([&] {
    parse_safetensors(safetensors_with(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,0],")" + big + "\":1}}"), "m");
  }));
  short_error(message_of([&] {
    parse_safetensors(safetensors_with(R"({"w":{"dtype":[")" + big + R"("],"shape":[],"data_offsets":[0,0]}})"), "m");
  }));
  short_error(message_of([&] { parse_safetensors(safetensors_with("{\"" + big + "\":{},\"" + big + "\":{}}"), "m"); }));
  short_error(message_of([&] { parse_safetensors(safetensors_with("{\"w\":\"" + big), "m"); }));
  // A split: its scenario and digest.
  short_error(message_of([&] { unlearn::parse_split(R"({"format":"lethe-split","version":1,"scenario":")" + big + "\"}", "s"); }));
  short_error(message_of([&] {
    unlearn::parse_split(R"({"format":"lethe-split","version":1,"scenario":"random:0.5","seed":0,"train_size":2,)"
                         R"("classes":2,"forget":[0],"retain":[1],"digest":")" + big + "\"}", "s");
  }));
  // A fraction where an index belongs is an error, not an unchecked conversion.
  CHECK_THROWS_WITH_AS(unlearn::parse_split(R"({"format":"lethe-split","version":1,"scenario":"random:0.5","seed":0,)"
                                            R"("train_size":2,"classes":2,"forget":[1e300],"retain":[1]})", "s"),
                       doctest::Contains("split: s: forget element must be an integer"), Error);
}

// The study config `text` is refused with an error containing `message`.
void study_refused(const char* text, const char* message) {
  CAPTURE(text);
  CHECK_THROWS_WITH_AS(study::parse_study(text, "s.toml"), doctest::Contains(message), Error);
}

TEST_CASE("study config: integers out of range are refused with their range") {
  CHECK(study::parse_study("[study]\nthreads = 3\n", "s.toml").run.threads == 3);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nthreads = 5000000000\n", "s.toml"),
                       "run: s.toml: [study] threads = 5000000000: must be in [1, 1024]", Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nthreads = 0\n", "s.toml"), doctest::Contains("must be in [1, 1024]"),
                       Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nreplicates = 1000000000000\n", "s.toml"),
                       "run: s.toml: [study] replicates = 1000000000000: must be in [1, 1000]", Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nstudy_seed = -1\n", "s.toml"),
                       doctest::Contains("study_seed = -1: must be in [0, 9223372036854775807]"), Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nmargin = nan\n", "s.toml"), doctest::Contains("margin"), Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[study]\nname = [\n", "s.toml"), doctest::Contains("TOML error at line"), Error);
  CHECK_THROWS_WITH_AS(study::parse_study("[" + std::string(100'000, 'k') + "]\n", "s.toml"),
                       doctest::Contains("unknown table"), Error);
  CHECK(message_of([] { study::parse_study("[" + std::string(100'000, 'k') + "]\n", "s.toml"); }).size() < 300);
  const study::Study s = study::parse_study("[study]\nname = \"x\"\nreplicates = 3\n[train]\nepochs = 2\n", "s.toml");
  CHECK(s.replicates == 3);
  CHECK(s.train == std::vector<std::string>{"--epochs=2"});
  CHECK(s.config.at("study").at("name") == "x");
}

TEST_CASE("study config: [tune], its spaces and the pool, every bad value refused by its key") {
  const study::Study s = study::parse_study(
      "[study]\nsubset = 10000\nstudy_seed = 4\n[tune]\ntrials = 4\nvalidation = 0.2\nrcd-weight = 0.5\n"
      "[tune.space.ft]\nlr = [0.001, 0.01]\nsteps = 200\n[tune.space.ieu]\n",
      "s.toml");
  REQUIRE(s.tune.has_value());
  CHECK(s.tune->trials == 4);
  CHECK(s.tune->validation == 0.2);
  CHECK(s.tune->rcd_weight == 0.5);
  CHECK(s.tune->search_seed == 0);
  CHECK(s.spaces.at("ft").at("lr") == std::pair<double, double>{0.001, 0.01});
  CHECK(s.spaces.at("ft").at("steps") == std::pair<double, double>{200, 200});  // one number: pinned
  CHECK(s.spaces.at("ieu").empty());  // kept, so the search refuses the empty space by name
  CHECK(study::pool_flags(s) == std::vector<std::string>{"--subset=10000", "--validation=0.2", "--pool-seed=4"});
  CHECK(study::pool_flags(study::parse_study("[study]\nname = \"x\"\n", "s.toml")).empty());
  CHECK_FALSE(study::parse_study("[study]\nname = \"x\"\n", "s.toml").tune.has_value());
  study_refused("[tune]\ntrials = 0\n", "--trials");
  study_refused("[tune]\ntrials = 0\n", "[1, 100000]");
  study_refused("[tune]\nvalidation = 0.7\n", "(0, 0.5]");
  study_refused("[tune]\nvalidation = 0\n", "(0, 0.5]");
  study_refused("[tune]\nwidth = 3\n", "width");
  study_refused("[tune.space.ft]\nlr = \"fast\"\n", "[tune.space.ft] 'lr' must be [lo, hi]");
  study_refused("[tune.space.ft]\nlr = [0.1]\n", "[tune.space.ft] 'lr' must be [lo, hi]");
  study_refused("[tune.space.nosuch]\nlr = [0.1, 0.2]\n", "nosuch");
  study_refused("[tune]\nspace = 3\n", "[tune.space.METHOD]");
  study_refused("[study]\nsubset = -1\n", "[study] subset = -1: must be in [0, 2147483648]");
}

TEST_CASE("study config: [slurm] holds lethe run's --slurm options, every bad value refused by its key") {
  const study::Study s = study::parse_study(
      "[slurm]\npartition = \"gpu\"\naccount = \"lab\"\ntime = \"1:00:00\"\ncpus-per-task = 4\ngpus = 2\n"
      "sbatch-args = \"--mem=8G --qos=short\"\npoll = 30\n",
      "s.toml");
  CHECK(s.slurm.partition == "gpu");
  CHECK(s.slurm.account == "lab");
  CHECK(s.slurm.time == "1:00:00");
  CHECK(s.slurm.cpus_per_task == 4);
  CHECK(s.slurm.gpus == 2);
  CHECK(s.slurm.sbatch_args == "--mem=8G --qos=short");
  CHECK(s.slurm.poll == 30);
  const study::SlurmOptions defaults = study::parse_study("[study]\nname = \"x\"\n", "s.toml").slurm;
  CHECK((defaults.partition.empty() && defaults.cpus_per_task == 0 && defaults.gpus == -1 && defaults.poll == 5));
  study_refused("[slurm]\npoll = 0\n", "[1, 3600]");
  study_refused("[slurm]\ngpus = -2\n", "[-1, 64]");
  study_refused("[slurm]\nnodes = 3\n", "nodes");
  study_refused("[slurms]\npoll = 3\n", "unknown table [slurms]");
}

TEST_CASE("study config: text on which toml++ 3.3 has undefined behaviour is refused before it parses") {
  // Each reaches __builtin_unreachable() in toml++ 3.3's whitespace check (found by tests/fuzz).
  for (const char* text : {"[\xc4\xbe]\n", "\xcc\xaa", "a = 1\xc3\xa9\n", "s = \"\"\"\\\n\xc2\xa7\"\"\"\n",
                           "s = \"\"\"\\ \xc2\xa7\n\"\"\"\n", "s = \"\\\xc2\xa7\"\n", "c = 1'''\xc3\xa9\n",
                           "s =0.\"\xc3\xa9\"\n", "a = 1=\"\xc3\xa9\"\n"}) {
    CAPTURE(text);
    CHECK(study::toml_unsafe_text(text).has_value());
    CHECK_THROWS_WITH_AS(study::parse_study(text, "s.toml"), doctest::Contains("run: s.toml: TOML error at line"), Error);
  }
  CHECK(*study::toml_unsafe_text("a = 1\n\nb = 2 \xc3\xa9") ==
        "line 3, column 7: a non-ASCII character outside a string or comment (TOML allows none there)");
  // Non-ASCII text in strings, in quoted keys and in comments is fine, as is a byte-order mark.
  for (const char* text : {"s = \"caf\xc3\xa9\" # caf\xc3\xa9\n", "\"k\xc3\xa9\" = 2\n", "m = \"\"\"\\\n  x\xc3\xa9\"\"\"\n",
                           "l = 'a\\\xc3\xa9'\n", "m = '''\xc3\xa9''''\n", "q = \"\"\"a\"\"\"\"\nr = \"\xc3\xa9\"\n",
                           "e = \"\"\nr = \"\xc3\xa9\"\n", "\xef\xbb\xbf[study]\n", "a.\"\xc3\xa9\" = 1\n[b . '\xc3\xa9']\n",
                           "t = { k.\"\xc3\xa9\" = \"\xc3\xa9\", l = [1, '\xc3\xa9'] }\n",
                           "arr = [\n  \"\xc3\xa9\", # c\xc3\xa9\n  '\xc3\xa9', [\"\xc3\xa9\"],\n]\nx = \"\xc3\xa9\"\n"}) {
    CAPTURE(text);
    CHECK_FALSE(study::toml_unsafe_text(text).has_value());
  }
  CHECK(study::parse_study("\xef\xbb\xbf[study]\nname = \"\xc3\xa9t\xc3\xa9\" # \xe2\x80\x94\n", "s.toml").name ==
        "\xc3\xa9t\xc3\xa9");
}

TEST_CASE("idx: parsed from bytes in memory, plain and gzip") {
  std::string file("\0\0\x08\x03\0\0\0\x02\0\0\0\x01\0\0\0\x02", 16);
  file += std::string("\x01\x02\x03\x04", 4);
  const Tensor plain = data::parse_idx_images(file, "mem");
  CHECK(plain.shape() == Shape{2, 1, 2});
  CHECK(data::parse_idx_images(gzip(file), "mem").to_vector<uint8_t>() == plain.to_vector<uint8_t>());
  // Two gzip members are one stream, as with gunzip.
  CHECK(data::parse_idx_images(gzip(file.substr(0, 10)) + gzip(file.substr(10)), "mem").numel() == 4);
  // After the gzip stream nothing else may follow, and the stream may not stop in its trailer.
  CHECK_THROWS_WITH_AS(data::parse_idx_images(gzip(file) + "xyz", "mem"),
                       "idx: 'mem': trailing garbage: 3 bytes after the end of the gzip stream", Error);
  const std::string gz = gzip(file);
  CHECK_THROWS_WITH_AS(data::parse_idx_images(gz.substr(0, gz.size() - 2), "mem"),
                       doctest::Contains("the gzip stream ends early"), Error);
  std::string labels("\0\0\x08\x01\0\0\0\x02\x01\x07", 10);
  CHECK_THROWS_WITH_AS(data::parse_idx_labels(labels, "mem", 5), doctest::Contains("label 7 at index 1"), Error);
  // A header that announces far more data than there is: refused before the tensor is allocated.
  CHECK_THROWS_WITH_AS(data::parse_idx_images(std::string("\0\0\x08\x03\0\0\x03\xe8\0\0\0\x64\0\0\0\x64", 16), "mem"),
                       "idx: 'mem': truncated data: shape [1000,100,100] needs 10000000 bytes after the header, found 0",
                       Error);
}
