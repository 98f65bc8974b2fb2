// The .tern reader (engine/core/weights.cpp): valid files load with the right values, and every
// malformed file of ROBUSTNESS.md W1-W17 is a tern::Error with a specific message.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/weights.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

// A scratch directory for one test case, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tern_weights_test_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// Length prefix + header (space-padded so the data starts 64-aligned, unless pad is false) + data.
std::string with_header(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((64 - (8 + h.size()) % 64) % 64, ' ');
  return le64(h.size()) + h + data;
}

const char kMeta[] =
    R"("__metadata__":{"format":"tern","format_version":"1","architecture":"toy"})";

struct Spec {
  std::string name;
  std::string dtype;  // "F32" or "BF16" (values are taken from `values`)
  std::vector<int64_t> shape;
  std::vector<float> values;
};

uint16_t bf16_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

// A valid .tern file like the Python writer makes: 64-byte aligned tensors with U8 padding
// entries (align = false packs them back to back instead).
std::string build_file(const std::vector<Spec>& specs, bool align = true,
                       const std::string& meta = kMeta) {
  std::string header = "{" + meta, data;
  int pad_index = 0;
  for (const Spec& s : specs) {
    if (align && data.size() % 64 != 0) {
      const size_t gap = 64 - data.size() % 64;
      header += ",\"__pad" + std::to_string(pad_index++) + "__\":{\"dtype\":\"U8\",\"shape\":[" +
                std::to_string(gap) + "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
                std::to_string(data.size() + gap) + "]}";
      data.append(gap, '\0');
    }
    const size_t begin = data.size();
    for (float v : s.values) {
      if (s.dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&v), 4);
      } else {
        const uint16_t h = bf16_bits(v);
        data.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    std::string shape;
    for (int64_t d : s.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    header += ",\"" + s.name + "\":{\"dtype\":\"" + s.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(data.size()) +
              "]}";
  }
  return with_header(header + "}", data);
}

// A file with one tensor entry `entry` (JSON object text) over `data_bytes` zero bytes.
std::string one_entry(const std::string& entry, size_t data_bytes) {
  return with_header("{" + std::string(kMeta) + ",\"t\":" + entry + "}", std::string(data_bytes, '\0'));
}

// Opening `bytes` (written to a file) fails with a message containing `expected`.
void check_error_file(const std::string& path, const std::string& expected) {
  try {
    WeightFile::open(path);
    FAIL_CHECK("no error for ", path, "; expected one containing: ", expected);
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO("message: ", msg);
    CHECK_MESSAGE(msg.find(expected) != std::string::npos, "expected: ", expected);
  }
}

void check_error(const TempDir& dir, const std::string& bytes, const std::string& expected) {
  const std::string path = dir.file("bad.tern");
  write_bytes(path, bytes);
  check_error_file(path, expected);
}

std::shared_ptr<const WeightFile> open_bytes(const TempDir& dir, const std::string& bytes,
                                             const std::string& name = "ok.tern") {
  write_bytes(dir.file(name), bytes);
  return WeightFile::open(dir.file(name));
}

int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

int count_mappings_of(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find(path) != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("weights: a valid file loads; F32 views, BF16 widening, copies, metadata") {
  TempDir dir;
  const auto a = test::random_floats(15, 1);
  const auto b = test::random_floats(7, 2, -1e3f, 1e3f);
  const std::vector<float> nonfinite = {NAN, INFINITY, -INFINITY, -0.f, 1e-40f};
  const auto bytes = build_file({{"a", "F32", {3, 5}, a},
                                 {"b.weight", "BF16", {7}, b},
                                 {"scalar", "F32", {}, {2.5f}},
                                 {"empty", "F32", {0, 4}, {}},
                                 {"w13.nonfinite", "F32", {5}, nonfinite},
                                 {"last", "F32", {2}, {1.f, 2.f}}});
  std::shared_ptr<const WeightFile> w = open_bytes(dir, bytes);
  CHECK(w->format_version() == 1);
  CHECK(w->architecture() == "toy");
  CHECK(w->file_size() == bytes.size());
  CHECK(w->metadata("format") == "tern");
  CHECK_FALSE(w->has_metadata("config"));
  CHECK_THROWS_WITH_AS(w->metadata("config"), doctest::Contains("has no metadata entry 'config'"),
                       Error);
  REQUIRE(w->tensors().size() == 6);  // padding entries hidden
  for (size_t i = 1; i < w->tensors().size(); ++i)
    CHECK(w->tensors()[i - 1].begin <= w->tensors()[i].begin);
  CHECK(w->info("b.weight").dtype == DType::bf16);

  Tensor ta = w->get("a", {3, 5});
  const auto* base = reinterpret_cast<const char*>(w.get());
  (void)base;
  CHECK(reinterpret_cast<uintptr_t>(ta.f32()) % kTensorAlignment == 0);
  for (int i = 0; i < 15; ++i) CHECK(ta.f32()[i] == a[i]);
  Tensor tb = w->get("b.weight", {7});
  for (int i = 0; i < 7; ++i) {
    const uint32_t bits = uint32_t{bf16_bits(b[i])} << 16;
    float expect;
    std::memcpy(&expect, &bits, 4);
    CHECK(tb.f32()[i] == expect);
    CHECK(std::fabs(tb.f32()[i] - b[i]) <= std::fabs(b[i]) / 256);
  }
  CHECK(w->get("scalar", {}).f32()[0] == 2.5f);
  CHECK(w->get("empty", {0, 4}).numel() == 0);
  Tensor nf = w->get("w13.nonfinite", {5});  // W13: non-finite weights load as they are
  CHECK(std::isnan(nf.f32()[0]));
  CHECK(nf.f32()[1] == INFINITY);
  CHECK(nf.f32()[2] == -INFINITY);
  CHECK(std::signbit(nf.f32()[3]));
  CHECK(nf.f32()[4] == 1e-40f);
  // The last tensor has fewer than kTensorSlackBytes after it: a copy, so over-reads stay inside.
  Tensor last = w->get("last", {2});
  CHECK(last.f32()[1] == 2.f);

  // A view outlives the WeightFile: it holds the mapping.
  w.reset();
  CHECK(ta.f32()[14] == a[14]);
}

TEST_CASE("weights: misaligned tensors (no padding) are copied correctly") {
  TempDir dir;
  const auto a = test::random_floats(3, 3), b = test::random_floats(33, 4);
  auto w = open_bytes(dir, build_file({{"a", "F32", {3}, a}, {"b", "F32", {33}, b}}, false));
  Tensor tb = w->get("b", {33});
  CHECK(reinterpret_cast<uintptr_t>(tb.f32()) % kTensorAlignment == 0);
  for (int i = 0; i < 33; ++i) CHECK(tb.f32()[i] == b[i]);
}

TEST_CASE("weights W11: missing tensor, wrong shape") {
  TempDir dir;
  auto w = open_bytes(dir, build_file({{"a", "F32", {2, 3}, test::random_floats(6, 5)},
                                       {"unused.extra", "F32", {1}, {0.f}}}));
  CHECK_FALSE(w->has("nope"));
  CHECK_THROWS_WITH_AS(w->get("nope", {2, 3}),
                       doctest::Contains(("tensor 'nope' is missing from " + dir.file("ok.tern")).c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(w->get("a", {3, 2}),
                       doctest::Contains("tensor 'a' has shape [2, 3], expected [3, 2]"), Error);
  CHECK_THROWS_WITH_AS(w->info("nope"), doctest::Contains("tensor 'nope' is missing"), Error);
}

TEST_CASE("weights W1/W2: short files and bad header lengths") {
  TempDir dir;
  check_error(dir, "", "is empty");
  check_error(dir, "abc", "is 3 bytes, too short");
  check_error(dir, le64(2), "header length 2 is larger than the file (8 bytes)");
  check_error(dir, le64(0) + "{}", "header length is 0");
  check_error(dir, le64(~uint64_t{0}) + "{}", "exceeds the limit of 104857600 bytes");
  check_error(dir, le64(200ull << 20) + "{}", "exceeds the limit");
  check_error(dir, le64(100) + "{}", "header length 100 is larger than the file (10 bytes)");
}

TEST_CASE("weights W3: header not UTF-8, not JSON, not an object, trailing bytes, NUL") {
  TempDir dir;
  const std::string meta = kMeta;
  check_error(dir, with_header("{" + meta + ",\"a\xff\":{}}", ""), "invalid UTF-8");
  check_error(dir, with_header("{" + meta + ",\"\xc0\xaf\":{}}", ""), "invalid UTF-8");  // overlong
  check_error(dir, with_header("{" + meta + ",\"\xed\xa0\x80\":{}}", ""), "invalid UTF-8");
  check_error(dir, with_header("{" + meta + ",\"\xf4\x90\x80\x80\":{}}", ""), "invalid UTF-8");
  check_error(dir, with_header("{" + meta + ",\"\\ud800\":{}}", ""), "lone high surrogate");
  check_error(dir, with_header("hello", ""), "expected the header to be a JSON object");
  check_error(dir, with_header("[1,2]", ""), "expected the header to be a JSON object, found an array");
  check_error(dir, with_header("{" + meta + "}x", ""), "unexpected bytes after the end");
  check_error(dir, with_header("{" + meta + "}{}", ""), "unexpected bytes after the end");
  check_error(dir, with_header(std::string("{\0}", 3), ""), "found byte 0x00 at byte 1");
  check_error(dir, with_header("{" + meta + std::string(",\"a\0b\":{}}", 10), ""),
              "control character inside a string");
  check_error(dir, with_header("{" + meta + std::string("}\0", 2), ""), "unexpected bytes");
  check_error(dir, with_header("{" + meta, ""), "expected ',' or '}'");
  check_error(dir, with_header("{\"__metadata__\":{\"format\":\"te", "", false), "unterminated");
}

TEST_CASE("weights W4: deep nesting, a million keys, a 50 MB string") {
  TempDir dir;
  const std::string deep(100000, '[');
  check_error(dir, with_header(deep, ""), "expected the header to be a JSON object");
  check_error(dir, with_header("{\"__metadata__\":{\"format\":" + deep, ""),
              "(a string), found an array");
  check_error(dir, with_header("{\"t\":{\"shape\":" + deep, ""), "found an array");
  check_error(dir, with_header("{\"t\":" + std::string(100000, '{'), ""), "found an object");

  std::string many = "{\"__metadata__\":{\"format\":\"tern\",\"format_version\":\"1\","
                     "\"architecture\":\"toy\"";
  for (int i = 0; i < 1000000; ++i) many += ",\"k" + std::to_string(i) + "\":\"\"";
  auto w = open_bytes(dir, with_header(many + "}}", ""), "many.tern");
  CHECK(w->all_metadata().size() == 1000003);
  w.reset();

  const std::string big(50u << 20, 'x');
  w = open_bytes(dir,
                 with_header("{\"__metadata__\":{\"format\":\"tern\",\"format_version\":\"1\","
                             "\"architecture\":\"toy\",\"config\":\"" + big + "\"}}", ""),
                 "big.tern");
  CHECK(w->metadata("config").size() == big.size());
}

TEST_CASE("weights W5: duplicate tensor names and metadata keys") {
  TempDir dir;
  const std::string e = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  check_error(dir, with_header("{" + std::string(kMeta) + ",\"a\":" + e + ",\"a\":" + e + "}",
                               std::string(8, '\0')),
              "duplicate tensor name 'a'");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format":"tern"}})", ""),
              "duplicate metadata key 'format'");
  check_error(dir, with_header("{" + std::string(kMeta) + "," + kMeta + "}", ""),
              "duplicate __metadata__");
  check_error(dir, one_entry(R"({"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]})", 4),
              "duplicate field 'dtype'");
}

TEST_CASE("weights W6: dtypes, missing fields, wrong JSON types, bad numbers") {
  TempDir dir;
  check_error(dir, one_entry(R"({"dtype":"F64","shape":[1],"data_offsets":[0,8]})", 8),
              "unsupported dtype 'F64' for tensor 't'");
  check_error(dir, one_entry(R"({"dtype":"Q4_K","shape":[1],"data_offsets":[0,8]})", 8),
              "unsupported dtype 'Q4_K' for tensor 't'");
  check_error(dir, one_entry(R"({"dtype":"U8","shape":[4],"data_offsets":[0,4]})", 4),
              "unsupported dtype 'U8' for tensor 't'");
  check_error(dir, one_entry(R"({"shape":[1],"data_offsets":[0,4]})", 4), "tensor 't' has no dtype");
  check_error(dir, one_entry(R"({"dtype":"F32","data_offsets":[0,4]})", 4), "tensor 't' has no shape");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1]})", 4), "tensor 't' has no data_offsets");
  check_error(dir, one_entry(R"({"dtype":5,"shape":[1],"data_offsets":[0,4]})", 4),
              "expected tensor 't' dtype (a string), found a number");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})", 4),
              "expected tensor 't' shape array");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":{}})", 4),
              "expected tensor 't' data_offsets array");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})", 4),
              "unknown field 'x'");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", 4),
              "data_offsets must not be negative");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1e300],"data_offsets":[0,4]})", 4),
              "shape must be an integer");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})", 4),
              "shape must be an integer");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]})", 4),
              "does not fit in 64 bits");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[01],"data_offsets":[0,4]})", 4),
              "leading zero");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 4),
              "data_offsets must have 2 entries");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1],"data_offsets":[0,4,8]})", 4),
              "data_offsets has more than 2 entries");
  check_error(dir, one_entry("[]", 0), "entry of tensor 't' must be an object, found an array");
  check_error(dir, with_header(R"({"__metadata__":{"format":1}})", ""),
              "expected metadata 'format' (a string), found a number");
  check_error(dir, with_header(R"({"__metadata__":[]})", ""), "expected __metadata__ to be an object");
}

TEST_CASE("weights W7: rank, negative and huge dimensions, element count overflow") {
  TempDir dir;
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]})", 4),
              "tensor 't' shape has more than 8 entries");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", 4),
              "shape must not be negative");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]})", 4),
              "is too large");
  check_error(dir, one_entry(R"({"dtype":"F32","shape":[4611686018427387905],"data_offsets":[0,4]})", 4),
              "dimension 4611686018427387905 is too large");
  check_error(dir, one_entry(R"({"dtype":"BF16","shape":[4294967296,4294967296,4],"data_offsets":[0,4]})", 4),
              "overflows 64 bits");
  auto w = open_bytes(dir, one_entry(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1],"data_offsets":[0,4]})", 4));
  CHECK(w->info("t").shape.size() == 8);
}

TEST_CASE("weights W8/W9: byte ranges") {
  TempDir dir;
  const std::string m = "{" + std::string(kMeta);
  auto entry = [](const std::string& name, int begin, int end, int n = 1) {
    return ",\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) +
           "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
  };
  check_error(dir, with_header(m + entry("a", 4, 0) + "}", std::string(4, '\0')),
              "tensor 'a' data_offsets end 0 is before begin 4");
  check_error(dir, with_header(m + entry("a", 0, 8, 2) + "}", std::string(4, '\0')),
              "tensor 'a' data_offsets [0, 8] run past the end of the data section (4 bytes");
  check_error(dir, with_header(m + entry("a", 0, 8, 2) + entry("b", 4, 8) + "}", std::string(8, '\0')),
              "tensor 'b' (bytes 4..8) overlaps tensor 'a' (bytes 0..8)");
  check_error(dir, with_header(m + entry("a", 0, 4) + entry("b", 8, 12) + "}", std::string(12, '\0')),
              "hole of 4 bytes in the data section before tensor 'b' (data offset 4)");
  check_error(dir, with_header(m + entry("a", 4, 8) + "}", std::string(8, '\0')),
              "hole of 4 bytes in the data section before tensor 'a' (data offset 0)");
  check_error(dir, with_header(m + entry("a", 0, 8) + "}", std::string(8, '\0')),  // W9
              "tensor 'a' data_offsets [0, 8] hold 8 bytes, but shape [1] F32 needs 4");
  check_error(dir, with_header(m + ",\"__pad0__\":{\"dtype\":\"U8\",\"shape\":[64],"
                                   "\"data_offsets\":[0,64]}}", std::string(64, '\0')),
              "padding entry '__pad0__' must be a U8 vector shorter than 64 bytes");
  // Out of order in the header but a valid tiling once sorted: OK.
  std::string data(12, '\0');
  const float v[3] = {1.f, 2.f, 3.f};
  std::memcpy(data.data(), v, 12);
  auto w = open_bytes(dir, with_header(m + entry("c", 8, 12) + entry("a", 0, 4) + entry("b", 4, 8) +
                                           "}", data));
  CHECK(w->tensors()[0].name == "a");
  CHECK(w->get("c", {1}).f32()[0] == 3.f);
  CHECK(w->get("b", {1}).f32()[0] == 2.f);
}

TEST_CASE("weights W10: truncated by one byte, one extra trailing byte") {
  TempDir dir;
  const std::string good = build_file({{"a", "F32", {100}, test::random_floats(100, 6)}});
  CHECK_NOTHROW(open_bytes(dir, good));
  check_error(dir, good.substr(0, good.size() - 1), "is the file truncated?");
  check_error(dir, good + "x", "1 trailing bytes after the last tensor");
}

TEST_CASE("weights W14: directory, FIFO, /dev/zero, missing, unreadable") {
  TempDir dir;
  check_error_file(dir.path, "is a directory, not a weight file");
  const std::string fifo = dir.file("fifo.tern");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  check_error_file(fifo, "is not a regular file");  // must not block waiting for a writer
  check_error_file("/dev/zero", "/dev/zero is not a regular file");
  check_error_file(dir.file("missing.tern"), "No such file or directory");
  if (::geteuid() != 0) {  // root reads anything
    const std::string locked = dir.file("locked.tern");
    write_bytes(locked, build_file({{"a", "F32", {1}, {1.f}}}));
    ::chmod(locked.c_str(), 0);
    check_error_file(locked, "Permission denied");
  }
}

TEST_CASE("weights W15: other formats and versions are named") {
  TempDir dir;
  check_error(dir, "GGUF" + std::string("\x03\0\0\0", 4) + std::string(64, '\0'), "is a GGUF file");
  check_error(dir, std::string("\x08\x07\x12\x07pytorch", 12) + std::string(64, '\0'), "is an ONNX model");
  check_error(dir, std::string("PK\x03\x04", 4) + std::string(64, '\0'), "is a zip archive");
  check_error(dir, std::string("\x80\x02}q\0", 5) + std::string(64, '\0'), "is a Python pickle");
  check_error(dir, with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                               std::string(4, '\0')),
              "not a Tern weight file (safetensors without __metadata__.format=tern)");
  check_error(dir, with_header(R"({"__metadata__":{"format":"pt"}})", ""),
              "not a Tern weight file (__metadata__.format is 'pt', expected 'tern')");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format_version":"2","architecture":"x"}})", ""),
              "file format version 2 is newer than this build supports (1)");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format_version":"1.0"}})", ""),
              "format_version '1.0' is not a version number");
  // Ten and more digits: an error, not an int overflow on the way (found by weights_fuzz)
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format_version":"2222222222"}})", ""),
              "format_version '2222222222' is not a version number");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format_version":"99999999999999999999"}})", ""),
              "is not a version number");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","architecture":"x"}})", ""),
              "has no format_version");
  check_error(dir, with_header(R"({"__metadata__":{"format":"tern","format_version":"1"}})", ""),
              "has no architecture");
}

TEST_CASE("weights W16: byte flips and truncations of a valid file never crash") {
  TempDir dir;
  const std::string good = build_file({{"a", "F32", {3, 5}, test::random_floats(15, 7)},
                                       {"b", "BF16", {9}, test::random_floats(9, 8)}});
  std::mt19937_64 rng(42);
  int errors = 0, loads = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = good;
    if (trial < 300) {
      bytes.resize(rng() % good.size());
    } else {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    write_bytes(dir.file("flip.tern"), bytes);
    try {
      auto w = WeightFile::open(dir.file("flip.tern"));
      for (const TensorInfo& t : w->tensors()) w->get(t.name, t.shape);
      ++loads;
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors > 300);  // every truncation fails
  CHECK(loads > 0);     // flips inside tensor data are harmless
}

TEST_CASE("weights W17: 1000 loads and 8 threads leak no descriptors or mappings") {
  TempDir dir;
  const std::string path = dir.file("shared.tern");
  const auto values = test::random_floats(4096, 9);
  write_bytes(path, build_file({{"a", "F32", {64, 64}, values}, {"b", "BF16", {64}, test::random_floats(64, 10)}}));
  const int fds = count_fds();
  CHECK(count_mappings_of(path) == 0);
  for (int i = 0; i < 1000; ++i) {
    auto w = WeightFile::open(path);
    Tensor t = w->get("a", {64, 64});
    REQUIRE(t.f32()[4095] == values[4095]);
  }
  CHECK(count_fds() == fds);
  CHECK(count_mappings_of(path) == 0);

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        try {
          auto w = WeightFile::open(path);
          if (w->get("a", {64, 64}).f32()[7] != values[7]) failures++;
          w->get("b", {64});
        } catch (...) {
          failures++;
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  CHECK(count_fds() == fds);
  CHECK(count_mappings_of(path) == 0);
}
