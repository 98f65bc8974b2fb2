// Fuzz findings as regression tests: every input under tests/fuzz/regressions/<target>/ goes
// through the library entry points its fuzz target exercises, in the ordinary build and in the
// sanitizer build (scripts/sanitize.sh), and must end in a result or a tern::Error — never a
// crash, a sanitizer report or another exception type. tests/fuzz/regressions/README.md says what
// each file once broke.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/safetensors_header.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/weights.hpp"
#include "test_util.hpp"

using namespace tern;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read ", p.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::vector<fs::path> inputs(const std::string& target) {
  std::vector<fs::path> out;
  const fs::path dir = test::source_path("tests/fuzz/regressions/" + target);
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs f(); passes when it returns or throws tern::Error (then the message must say something).
template <typename F>
void survives(const fs::path& input, F&& f) {
  CAPTURE(input.string());
  try {
    f();
  } catch (const Error& e) {
    CHECK(std::string(e.what()).size() > 0);
  } catch (const std::exception& e) {
    FAIL("not a tern::Error: ", e.what());
  }
}

}  // namespace

TEST_CASE("regressions: image_fuzz inputs decode and preprocess or fail cleanly") {
  const auto files = inputs("image_fuzz");
  CHECK(!files.empty());  // at least the stb_image Huffman overflow (ROBUSTNESS.md I3)
  for (const auto& p : files) {
    const std::string bytes = slurp(p);
    survives(p, [&] {
      const Image img =
          decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), p.string());
      for (const char* profile : {"torchvision-v1", "timm"}) {
        const PreprocessConfig cfg = PreprocessConfig::from_profile(profile);
        CHECK(preprocess(img, cfg).numel() == 3 * int64_t(cfg.crop) * cfg.crop);
      }
    });
  }
  // The stb_image 2.27 Huffman overflow in particular is an error, not an image.
  const std::string bad = slurp(test::source_path(
      "tests/fuzz/regressions/image_fuzz/stb_huffman_overflow.jpg"));
  CHECK_THROWS_AS(decode_image(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), "bad"),
                  Error);
}

TEST_CASE("regressions: weights_fuzz inputs parse and load or fail cleanly") {
  for (const auto& p : inputs("weights_fuzz")) {
    const std::string bytes = slurp(p);
    survives(p, [&] { parse_safetensors_header(bytes); });
    survives(p, [&] {
      auto w = WeightFile::open(p.string());
      for (const TensorInfo& t : w->tensors()) w->get(t.name, t.shape);
    });
  }
}

TEST_CASE("regressions: tokenizer_fuzz inputs tokenize or fail cleanly") {
  const auto files = inputs("tokenizer_fuzz");
  if (files.empty()) return;
  const std::string cased = slurp(test::source_path("data/vocab/bert-base-cased-vocab.txt"));
  const std::string uncased = slurp(test::source_path("data/vocab/bert-base-uncased-vocab.txt"));
  TokenizerConfig lower;
  lower.lowercase = lower.strip_accents = true;
  const WordPieceTokenizer tokenizers[] = {WordPieceTokenizer(cased, TokenizerConfig{}),
                                           WordPieceTokenizer(uncased, lower)};
  for (const auto& p : files) {
    // As in tests/fuzz/tokenizer_fuzz.cpp: the first byte chooses what the rest is fed to.
    const std::string bytes = slurp(p);
    if (bytes.empty()) continue;
    const std::string rest = bytes.substr(1);
    const auto mode = static_cast<uint8_t>(bytes[0]);
    for (const auto& tok : tokenizers) {
      survives(p, [&] { tok.encode(rest, true); });
      survives(p, [&] { tok.encode(rest, false); });
    }
    if (mode >= 0xE0) {
      survives(p, [&] { WordPieceTokenizer(rest, TokenizerConfig{}).encode(rest, true); });
      survives(p, [&] { TokenizerConfig::from_json(rest); });
    }
  }
}
