#include <doctest/doctest.h>
#include <unistd.h>

#include <bit>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/safetensors.h"
#include "harness.h"
#include "temp_dir.h"

using namespace lethe;
namespace fs = std::filesystem;

namespace {

using test::TempDir;

// The tensor's elements as bytes, row-major.
std::string bytes_of(const Tensor& t) {
  const Tensor c = t.to(Device::cpu()).contiguous();
  return c.nbytes() == 0 ? "" : std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
}

void check_same(const NamedTensors& got, const NamedTensors& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(want[i].first);
    CHECK(got[i].first == want[i].first);
    CHECK(got[i].second.str() == want[i].second.to(Device::cpu()).str());
    CHECK(bytes_of(got[i].second) == bytes_of(want[i].second));
  }
}

// A file from a hand-written header (not padded) and data.
std::string crafted(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i)));
  return out + header + data;
}

std::string length_field(uint64_t n) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  return out;
}

doctest::Contains says(const std::string& origin, const std::string& what) {
  return doctest::Contains(("safetensors: " + origin + ": " + what).c_str());
}

// One tensor of every dtype, with a 0-d and two empty ones.
NamedTensors every_dtype() {
  return {{"conv.weight", Tensor::randn({2, 3}, 7, 0, DType::f32)},
          {"fc.bias", Tensor::randn({4}, 7, 1, DType::f64)},
          {"step", Tensor::from_vector<int32_t>({-5}, {})},
          {"bn.num_batches_tracked", Tensor::from_vector<int64_t>({1, -2, int64_t{1} << 40}, {3})},
          {"empty", Tensor::empty({0, 5}, DType::i64)},
          {"mask", Tensor::from_vector<uint8_t>({0, 1, 255, 7, 8, 9}, {3, 1, 2})},
          {"none", Tensor::empty({0}, DType::f32)}};
}

const std::map<std::string, std::string> kMetadata = {
    {"model", "cnn-s"}, {"config", "{\"width\": 32}"}, {"step", "1200"}, {"note", "ünïcode, \"quotes\"\n"}};

// A valid one-tensor header for the corruption tests, with its 8 data bytes.
const std::string kData8(8, '\x01');

}  // namespace

TEST_CASE("safetensors: round trip of every dtype, 0-d and empty tensors, in memory and on disk") {
  const NamedTensors tensors = every_dtype();
  const SafetensorsFile parsed = parse_safetensors(serialize_safetensors(tensors, kMetadata), "mem");
  check_same(parsed.tensors, tensors);
  CHECK(parsed.metadata == kMetadata);

  TempDir dir;
  save_safetensors(dir.file("a.safetensors"), tensors, kMetadata);
  const SafetensorsFile loaded = load_safetensors(dir.file("a.safetensors"));
  check_same(loaded.tensors, tensors);
  CHECK(loaded.metadata == kMetadata);
  CHECK(dir.names() == std::set<std::string>{"a.safetensors"});

  const SafetensorsFile nothing = parse_safetensors(serialize_safetensors({}, {}), "mem");
  CHECK(nothing.tensors.empty());
  CHECK(nothing.metadata.empty());
}

TEST_CASE("safetensors: non-contiguous and CUDA tensors are written row-major") {
  const Tensor base = Tensor::arange(0, 24, 1, DType::f32).view({2, 3, 4});
  const NamedTensors views = {{"transposed", base.transpose(0, 2)},
                              {"narrowed", base.narrow(2, 1, 2)},
                              {"expanded", Tensor::arange(0, 3, 1, DType::i64).unsqueeze(0).expand({2, 3})}};
  const SafetensorsFile back = parse_safetensors(serialize_safetensors(views, {}), "mem");
  NamedTensors contiguous;
  for (const auto& [name, t] : views) contiguous.emplace_back(name, t.contiguous());
  check_same(back.tensors, contiguous);
  CHECK(back.tensors[0].second.to_vector<float>()[1] == 12);  // [0,0,1] of the view is [1,0,0] of base

  // Writing needs no gradient and records none.
  const Tensor param = Tensor::randn({3}, 1).set_requires_grad();
  check_same(parse_safetensors(serialize_safetensors({{"p", param}}, {}), "mem").tensors, {{"p", param.detach()}});

  if (!test::cuda_or_skip("safetensors from cuda tensors")) return;
  NamedTensors on_cuda;
  for (const auto& [name, t] : every_dtype()) on_cuda.emplace_back(name, t.to(Device::cuda()));
  on_cuda.emplace_back("cuda_view", base.to(Device::cuda()).transpose(0, 1));
  CHECK(serialize_safetensors(on_cuda, kMetadata) ==
        serialize_safetensors([&] {
          NamedTensors host;
          for (const auto& [name, t] : on_cuda) host.emplace_back(name, t.to(Device::cpu()).contiguous());
          return host;
        }(), kMetadata));
}

TEST_CASE("safetensors: writing is deterministic") {
  const std::string once = serialize_safetensors(every_dtype(), kMetadata);
  CHECK(serialize_safetensors(every_dtype(), kMetadata) == once);  // separately built, equal tensors
  TempDir dir;
  save_safetensors(dir.file("1"), every_dtype(), kMetadata);
  save_safetensors(dir.file("2"), every_dtype(), kMetadata);
  CHECK(read_file(dir.file("1")) == once);
  CHECK(read_file(dir.file("2")) == once);
  // The header is padded with spaces to 8 bytes, and the data follows in the order given.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<uint8_t>(once[i])} << (8 * i);
  CHECK(n % 8 == 0);
  const auto names = parse_safetensors(once, "mem").tensors;
  for (size_t i = 0; i < names.size(); ++i) CHECK(names[i].first == every_dtype()[i].first);
}

TEST_CASE("safetensors: a tiny file byte for byte") {
  const NamedTensors tensors = {{"b", Tensor::from_vector<uint8_t>({1, 2, 3}, {3})},
                                {"a", Tensor::from_vector<float>({1.5f}, {})}};
  const std::string header =
      R"({"__metadata__":{"step":"7"},"b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
      R"("a":{"dtype":"F32","shape":[],"data_offsets":[3,7]}})";
  REQUIRE(header.size() == 133);
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + header + "   " +
                               std::string("\x01\x02\x03\x00\x00\xc0\x3f", 7);  // 1.5f = 0x3fc00000
  CHECK(serialize_safetensors(tensors, {{"step", "7"}}) == expected);

  // Whitespace and key order are the writer's choice; the reader takes any.
  const SafetensorsFile f = parse_safetensors(
      crafted("{\n  \"a\": {\"data_offsets\": [3, 7], \"shape\": [], \"dtype\": \"F32\"},\n"
              "  \"b\": {\"shape\": [3], \"dtype\": \"U8\", \"data_offsets\": [0, 3]}\n}  ",
              std::string("\x01\x02\x03\x00\x00\xc0\x3f", 7)),
      "mem");
  check_same(f.tensors, tensors);  // in data order: b first
  CHECK(f.metadata.empty());
  // The same bytes without metadata: no __metadata__ entry.
  CHECK(serialize_safetensors({}, {}) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
}

TEST_CASE("safetensors: BF16 is read as F32, exactly, and named as converted") {
  // 1.0, -2.5, the largest finite bfloat16 and the smallest subnormal one, little-endian.
  const std::string data("\x80\x3f\x20\xc0\x7f\x7f\x01\x00", 8);
  const SafetensorsFile f = parse_safetensors(crafted(R"({"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})", data), "mem");
  REQUIRE(f.tensors.size() == 1);
  CHECK(f.tensors[0].second.dtype() == DType::f32);
  CHECK(f.tensors[0].second.shape() == Shape{2, 2});
  const std::vector<float> values = f.tensors[0].second.to_vector<float>();
  CHECK(values[0] == 1.0f);
  CHECK(values[1] == -2.5f);
  CHECK(values[2] == std::bit_cast<float>(uint32_t{0x7f7f0000}));
  CHECK(values[3] == std::bit_cast<float>(uint32_t{0x00010000}));
  CHECK(f.widened == std::map<std::string, std::string>{{"w", "BF16"}});
}

TEST_CASE("safetensors: corrupt header length and JSON") {
  const std::string o = "bad";
  CHECK_THROWS_WITH_AS(parse_safetensors("abc", o), says(o, "truncated: 3 bytes, too short for the 8-byte header length"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(length_field(100) + "{}        ", o),
                       says(o, "header length 100 runs past the end of the file (10 bytes follow the length)"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(length_field(200'000'000) + "{}", o),
                       says(o, "header length 200000000 is above the limit of 100000000 bytes"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(length_field(uint64_t{1} << 63) + "{}", o), doctest::Contains("is above the limit"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(length_field(1) + "{", o), says(o, "header length 1 is too small for a JSON object"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"w": nope})"), o), says(o, "header is not valid JSON: parse error at line 1, column"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"w":{})"), o), says(o, "header is not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{\"\xff\":{}}"), o), says(o, "header is not valid JSON"), Error);  // not UTF-8
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(std::string("{}\0\0", 4)), o), says(o, "header is not valid JSON: NUL byte at offset 2"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(std::string("{}\0]", 4)), o), says(o, "header is not valid JSON: NUL byte"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("[1, 2]"), o), says(o, "header is not a JSON object: it starts with '['"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(" {}"), o), says(o, "header is not a JSON object: it starts with ' '"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(std::string("\0{}", 3)), o), says(o, "header is not a JSON object: it starts with byte 0"), Error);
}

TEST_CASE("safetensors: corrupt tensor entries") {
  const std::string o = "bad";
  const auto entry = [](const std::string& body) { return crafted(R"({"w":)" + body + "}", kData8); };
  const auto rejects = [&](const std::string& body, const std::string& what) {
    CAPTURE(body);
    CHECK_THROWS_WITH_AS(parse_safetensors(entry(body), o), says(o, what), Error);
  };
  REQUIRE(parse_safetensors(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})"), o).tensors.size() == 1);

  rejects("[1]", "tensor 'w': entry must be an object, got [1]");
  rejects(R"({"dtype":"F32","shape":[2]})", "tensor 'w': missing key 'data_offsets'");
  rejects(R"({"shape":[2],"data_offsets":[0,8]})", "tensor 'w': missing key 'dtype'");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1})",
          "tensor 'w': unexpected key 'extra' (expected dtype, shape, data_offsets)");
  rejects(R"({"dtype":"BF16","shape":[2],"data_offsets":[0,8]})",
          "tensor 'w': shape [2] of BF16 needs 4 bytes but data_offsets [0,8] hold 8");
  rejects(R"({"dtype":"F16","shape":[4],"data_offsets":[0,8]})",
          "tensor 'w': unsupported dtype F16 (lethe reads F32, F64, BF16, I32, I64, U8)");
  rejects(R"({"dtype":"BOOL","shape":[8],"data_offsets":[0,8]})", "tensor 'w': unsupported dtype BOOL");
  rejects(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})", "tensor 'w': unknown dtype 'Q4'");
  rejects(R"({"dtype":"f32","shape":[2],"data_offsets":[0,8]})", "tensor 'w': unknown dtype 'f32'");
  rejects(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})", "tensor 'w': dtype must be a string, got 4");
  rejects(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", "tensor 'w': negative dim in shape [-2]");
  rejects(R"({"dtype":"F32","shape":[2.0],"data_offsets":[0,8]})",
          "tensor 'w': shape [2.0] must hold non-negative integers below 2^63");
  rejects(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})", "tensor 'w': shape [9223372036854775808] must hold non-negative integers below 2^63");
  rejects(R"({"dtype":"F32","shape":"2","data_offsets":[0,8]})", "tensor 'w': shape must be an array, got \"2\"");
  rejects(R"({"dtype":"F32","shape":[1,1,1,1,1,1,2],"data_offsets":[0,8]})",
          "tensor 'w': shape [1,1,1,1,1,1,2] has 7 dims, lethe tensors have at most 6");
  rejects(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})",
          "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0,8] hold 8");
  rejects(R"({"dtype":"F64","shape":[2,0],"data_offsets":[0,8]})", "tensor 'w': shape [2,0] of F64 needs 0 bytes");
  rejects(R"({"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]})",
          "tensor 'w': shape [4294967296,4294967296,4294967296] of F32 needs more than 2^64 bytes but data_offsets [0,8] hold 8");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", "tensor 'w': data_offsets [8,0] end before they begin");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":[-1,7]})",
          "tensor 'w': data_offsets must be [begin, end] with non-negative integers, got [-1,7]");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,16]})", "tensor 'w': data_offsets must be [begin, end] with non-negative integers, got [0,8,16]");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":{"begin":0}})", "tensor 'w': data_offsets must be [begin, end] with non-negative integers, got {\"begin\":0}");
  rejects(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})",
          "tensor 'w': data_offsets [0,16] reach past the end of the 8-byte data section");
  rejects(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"U8","shape":[8],"data_offsets":[0,8]})",
          "header has a duplicate key 'w'");
  rejects(R"({"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]})", "header has a duplicate key 'shape'");
}

TEST_CASE("safetensors: data ranges must tile the data section") {
  const std::string o = "bad";
  const auto f32 = [](const std::string& name, int n, int begin) {
    return detail::concat("\"", name, "\":{\"dtype\":\"F32\",\"shape\":[", n, "],\"data_offsets\":[", begin, ",",
                          begin + 4 * n, "]}");
  };
  const std::string twelve(12, '\0');
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{" + f32("a", 2, 0) + "," + f32("b", 2, 4) + "}", twelve), o),
                       says(o, "tensors 'a' [0,8] and 'b' [4,12] overlap"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{" + f32("a", 3, 0) + "," + f32("empty", 0, 4) + "}", twelve), o),
                       says(o, "tensors 'a' [0,12] and 'empty' [4,4] overlap"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{" + f32("a", 1, 0) + "," + f32("b", 1, 8) + "}", twelve), o),
                       says(o, "hole in the data: bytes [4,8) belong to no tensor"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{" + f32("b", 1, 8) + "}", twelve), o),
                       says(o, "hole in the data: bytes [0,8) belong to no tensor"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{" + f32("a", 2, 0) + "}", twelve + "xyz"), o),
                       says(o, "trailing bytes: 7 bytes after the last tensor's data"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted("{}", "x"), o), says(o, "trailing bytes: 1 bytes"), Error);
  // Out of order in the header and with empty tensors at shared offsets is fine.
  const SafetensorsFile ok =
      parse_safetensors(crafted("{" + f32("z", 1, 8) + "," + f32("e", 0, 8) + "," + f32("a", 2, 0) + "}", twelve), o);
  REQUIRE(ok.tensors.size() == 3);
  CHECK(ok.tensors[0].first == "a");
  CHECK(ok.tensors[1].first == "e");
  CHECK(ok.tensors[2].first == "z");

  // A real file cut short: in its data, then in its header.
  const std::string whole = serialize_safetensors(every_dtype(), kMetadata);
  CHECK_THROWS_WITH_AS(parse_safetensors(whole.substr(0, whole.size() - 3), o),
                       says(o, "tensor 'mask': data_offsets [84,90] reach past the end of the 87-byte data section "
                               "(truncated file or wrong offsets)"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(whole.substr(0, 40), o), says(o, "header length 552 runs past the end of the file (32 bytes follow the length)"), Error);
}

TEST_CASE("safetensors: metadata must map strings to strings") {
  const std::string o = "bad";
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"__metadata__":{"step":7}})"), o),
                       says(o, "__metadata__ value of 'step' must be a string, got 7"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"__metadata__":{"a":{"b":"c"}}})"), o),
                       says(o, "__metadata__ value of 'a' must be a string, got {\"b\":\"c\"}"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"__metadata__":["x"]})"), o),
                       says(o, "__metadata__ must be an object, got [\"x\"]"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"__metadata__":{"a":"1","a":"2"}})"), o),
                       says(o, "header has a duplicate key 'a'"), Error);
  CHECK_THROWS_WITH_AS(parse_safetensors(crafted(R"({"__metadata__":{},"__metadata__":{}})"), o),
                       says(o, "header has a duplicate key '__metadata__'"), Error);
  CHECK(parse_safetensors(crafted(R"({"__metadata__":{}})"), o).metadata.empty());
}

TEST_CASE("safetensors: the writer refuses what it cannot write") {
  const Tensor x = Tensor::zeros({2});
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"x", x}, {"x", x}}, {}), says("<memory>", "duplicate tensor name 'x'"), Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"__metadata__", x}}, {}), says("<memory>", "a tensor cannot be named __metadata__"), Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"u", Tensor()}}, {}), says("<memory>", "tensor 'u' is undefined"), Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"bad\xff", x}}, {}), says("<memory>", "cannot write the header (names and metadata must be UTF-8)"), Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({}, {{"k", "\xc3"}}), says("<memory>", "cannot write the header"), Error);

  TempDir dir;
  const std::string path = dir.file("missing/ck.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"x", x}}), says(path, "cannot create a temporary file in " + dir.file("missing") + ": No such file or directory"), Error);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("d"), {{"x", x}, {"x", x}}), says(dir.file("d"), "duplicate tensor name 'x'"), Error);
  CHECK_THROWS_WITH_AS(load_safetensors(dir.file("nope")), says(dir.file("nope"), "cannot open: No such file or directory"), Error);
  write_file_atomically(dir.file("junk"), "abc");
  CHECK_THROWS_WITH_AS(load_safetensors(dir.file("junk")), says(dir.file("junk"), "truncated: 3 bytes"), Error);
  CHECK(dir.names() == std::set<std::string>{"junk"});
}

TEST_CASE("file: an atomic write replaces the target whole and leaves no temporary file") {
  TempDir dir;
  const std::string f = dir.file("ck");
  write_file_atomically(f, "first version, rather long");
  CHECK(read_file(f) == "first version, rather long");
  write_file_atomically(f, "second");
  CHECK(read_file(f) == "second");
  write_file_atomically(f, "");
  CHECK(read_file(f).empty());
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
  write_file_atomically(f, big);
  CHECK(read_file(f) == big);
  CHECK(dir.names() == std::set<std::string>{"ck"});

  // A path without a directory part is in the working directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  write_file_atomically("here", "x");
  fs::current_path(cwd);
  CHECK(read_file(dir.file("here")) == "x");
  CHECK(dir.names() == std::set<std::string>{"ck", "here"});
}

TEST_CASE("file: a failed write leaves the previous file and no temporary file") {
  TempDir dir;
  const std::string f = dir.file("ck");
  write_file_atomically(f, "old");

  // No such directory: nothing is created anywhere.
  const std::string lost = dir.file("no-such-dir/ck");
  CHECK_THROWS_WITH_AS(write_file_atomically(lost, "new"),
                       doctest::Contains(("file: " + lost + ": cannot create a temporary file in " + dir.file("no-such-dir") +
                                          ": No such file or directory").c_str()),
                       Error);
  CHECK(dir.names() == std::set<std::string>{"ck"});

  // The target is a directory: refused before anything is created (tests/test_file.cpp: devices, FIFOs).
  fs::create_directory(dir.file("sub"));
  write_file_atomically(dir.file("sub/inner"), "keep");
  CHECK_THROWS_WITH_AS(write_file_atomically(dir.file("sub"), "new"),
                       doctest::Contains("exists and is a directory, not a regular file; refusing to replace it"), Error);
  CHECK(dir.names() == std::set<std::string>{"ck", "sub"});
  CHECK(read_file(dir.file("sub/inner")) == "keep");
  CHECK_THROWS_WITH_AS(write_file_atomically(dir.file("sub/"), "new"), doctest::Contains("not a file name"), Error);

  // Failing mid-write: a file size limit (which binds root too) stops the data at 4 KiB.
  {
    const std::string message =
        test::error_under_file_limit<Error>(4096, [&] { write_file_atomically(f, std::string(10000, 'n')); });
    CHECK(message.find("file: " + f + ": cannot write " + dir.file(".ck.tmp-")) == 0);
    CHECK(message.find("(4096 of 10000 bytes written): File too large") != std::string::npos);
  }
  CHECK(read_file(f) == "old");
  CHECK(dir.names() == std::set<std::string>{"ck", "sub"});

  // A directory where creating files is refused: a read-only one; for root, whom permissions do
  // not stop (CI runs as root), one of sysfs, where no one can create files.
  if (geteuid() == 0) {
    if (!fs::is_directory("/sys")) {
      test::record_skip("the unwritable directory check: running as root, and no /sys to refuse root's writes");
      return;
    }
    const std::string refused = "/sys/lethe-test-ck";
    CHECK_THROWS_WITH_AS(write_file_atomically(refused, "new"),
                         doctest::Contains(("file: " + refused + ": cannot create a temporary file in /sys: ").c_str()), Error);
    CHECK(!fs::exists(refused));
    return;
  }
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  CHECK_THROWS_WITH_AS(write_file_atomically(f, "new"), doctest::Contains("cannot create a temporary file in"), Error);
  fs::permissions(dir.path, fs::perms::owner_all);
  CHECK(read_file(f) == "old");
  CHECK(dir.names() == std::set<std::string>{"ck", "sub"});
}

TEST_CASE("file: read_file errors and files of unknown size") {
  TempDir dir;
  const std::string missing = dir.file("missing");
  CHECK_THROWS_WITH_AS(read_file(missing), doctest::Contains(("file: " + missing + ": cannot open: No such file or directory").c_str()), Error);
  CHECK_THROWS_WITH_AS(read_file(dir.path.string(), "idx"),
                       doctest::Contains(("idx: " + dir.path.string() + ": read error: Is a directory").c_str()), Error);
  // /proc files report size 0 but have content: the buffer grows as it reads.
  const std::string status = read_file("/proc/self/status");
  CHECK(status.find("Name:") == 0);
}
