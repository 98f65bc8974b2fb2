// Image pipeline: hardened decoding (ROBUSTNESS.md "Images" I1-I10), resampling invariants,
// torchvision crop rules, preprocessing profiles. Exactness against PIL + torchvision on real
// files is tested in tests/python/test_preprocess.py.
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/image_internal.hpp"
#include "test_util.hpp"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

using namespace tern;
using Bytes = std::vector<uint8_t>;

namespace {

// ---- test data writers ------------------------------------------------------------------------

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

void png_chunk(Bytes& out, const char* tag, const Bytes& data, bool bad_crc = false) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  Bytes td(tag, tag + 4);
  td.insert(td.end(), data.begin(), data.end());
  out.insert(out.end(), td.begin(), td.end());
  put_be32(out, crc32(td.data(), td.size()) ^ (bad_crc ? 1u : 0u));
}

// zlib stream of stored (uncompressed) blocks.
Bytes zlib_stored(const Bytes& raw) {
  Bytes z = {0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    z.push_back(n & 0xFF);
    z.push_back(n >> 8);
    z.push_back(~n & 0xFF);
    z.push_back((~n >> 8) & 0xFF);
    z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + n);
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_be32(z, (b << 16) | a);
  return z;
}

// Raw DEFLATE bits inside a zlib wrapper: fields LSB first, Huffman codes MSB first.
struct DeflateWriter {
  Bytes z = {0x78, 0x01};
  uint64_t acc = 0;
  int nbits = 0;
  void put(uint32_t v, int n) {
    acc |= uint64_t(v) << nbits;
    nbits += n;
    while (nbits >= 8) z.push_back(acc & 0xFF), acc >>= 8, nbits -= 8;
  }
  void put_code(uint32_t code, int n) {
    for (int i = n - 1; i >= 0; --i) put((code >> i) & 1, 1);
  }
  Bytes finish() {
    if (nbits > 0) put(0, 8 - nbits);
    put_be32(z, 1);  // Adler-32 of nothing: decoders fail before reaching it
    return z;
  }
};

struct PngSpec {
  uint32_t width, height;
  int color_type, bit_depth;
  Bytes rows;  // filter byte 0 + row data, per row
  Bytes plte, trns;
  bool bad_crc = false;
};

Bytes make_png(const PngSpec& s, const Bytes* idat_override = nullptr) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_be32(ihdr, s.width);
  put_be32(ihdr, s.height);
  ihdr.insert(ihdr.end(), {uint8_t(s.bit_depth), uint8_t(s.color_type), 0, 0, 0});
  png_chunk(out, "IHDR", ihdr, s.bad_crc);
  if (!s.plte.empty()) png_chunk(out, "PLTE", s.plte);
  if (!s.trns.empty()) png_chunk(out, "tRNS", s.trns);
  png_chunk(out, "IDAT", idat_override ? *idat_override : zlib_stored(s.rows), s.bad_crc);
  png_chunk(out, "IEND", {});
  return out;
}

// An RGB8 PNG of w x h with pixel (x, y) channel c = f(x, y, c).
template <typename F>
Bytes rgb_png(uint32_t w, uint32_t h, F f) {
  PngSpec s{w, h, 2, 8, {}, {}, {}};
  for (uint32_t y = 0; y < h; ++y) {
    s.rows.push_back(0);
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) s.rows.push_back(static_cast<uint8_t>(f(x, y, c)));
  }
  return make_png(s);
}

Bytes noise_png(uint32_t w, uint32_t h, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return rgb_png(w, h, [&](uint32_t, uint32_t, int) { return rng() & 0xFF; });
}

// Baseline 4:2:0 JPEG from stb_image_write: a gradient with some noise.
Bytes make_jpeg(int w, int h, int quality, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[(size_t(y) * w + x) * 3 + c] =
            static_cast<uint8_t>((x * 5 + y * 3 + c * 70) + (rng() & 15));
  Bytes out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* b = static_cast<Bytes*>(ctx);
        if (size <= 0) return;
        const size_t old = b->size();
        b->resize(old + size_t(size));
        std::memcpy(b->data() + old, data, size_t(size));
      },
      &out, w, h, 3, px.data(), quality);
  return out;
}

// Offset of the first marker `m` (FF m) in a JPEG, or npos.
size_t find_marker(const Bytes& j, uint8_t m) {
  for (size_t i = 2; i + 1 < j.size(); ++i)
    if (j[i] == 0xFF && j[i + 1] == m) return i;
  return std::string::npos;
}

Image decode(const Bytes& b, const std::string& name = "test.img") {
  return decode_image(b.data(), b.size(), name);
}

std::string error_of(const Bytes& b, const std::string& name = "test.img") {
  try {
    decode(b, name);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string temp_file(const std::string& name, const Bytes& data) {
  const std::string path = "/tmp/tern_test_image_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

}  // namespace

// ---- decoding: hostile inputs -------------------------------------------------------------------

TEST_CASE("image: the 21-byte JPEG that overflows stb 2.27's Huffman builder is a clean error") {
  // base64 /9j/xAAFANhgMAAF2PsABQUODgAA
  const Bytes poc = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x05, 0x00, 0xD8, 0x60, 0x30, 0x00,
                     0x05, 0xD8, 0xFB, 0x00, 0x05, 0x05, 0x0E, 0x0E, 0x00, 0x00};
  const std::string err = error_of(poc, "poc.jpg");
  INFO(err);
  CHECK(contains(err, "poc.jpg: corrupt JPEG"));
  CHECK(contains(err, "Huffman"));
}

TEST_CASE("image: DHT tables with too many symbols or an overflowing code space are rejected") {
  const Bytes good = make_jpeg(16, 16, 90, 1);
  REQUIRE_NOTHROW(decode(good));
  const size_t dht = find_marker(good, 0xC4);
  REQUIRE(dht != std::string::npos);
  const size_t counts = dht + 5;  // FF C4, length (2), class/id, then 16 counts
  {
    Bytes b = good;  // three codes of length 1: only two fit
    b[counts] = 3;
    const std::string err = error_of(b);
    INFO(err);
    CHECK(contains(err, "code space"));
  }
  {
    Bytes b = good;  // 257 codes of lengths 15 and 16: they fit the code space, not the tables
    for (int i = 0; i < 16; ++i) b[counts + i] = 0;
    b[counts + 14] = 2;
    b[counts + 15] = 255;
    const std::string err = error_of(b);
    INFO(err);
    CHECK(contains(err, "declares 257 symbols"));
  }
  {
    Bytes b = good;  // table class 2
    b[dht + 4] = 0x20;
    CHECK(contains(error_of(b), "Huffman table class"));
  }
}

TEST_CASE("image: empty, one byte and text named .jpg are errors naming the input") {
  CHECK(contains(error_of({}, "empty.jpg"), "empty.jpg: empty"));
  CHECK(contains(error_of({0xFF}, "one.jpg"), "one.jpg:"));
  const std::string text = "this is not an image, just words\n";
  const std::string path = temp_file("text.jpg", Bytes(text.begin(), text.end()));
  try {
    load_image(path);
    FAIL("text file decoded");
  } catch (const Error& e) {
    CHECK(contains(e.what(), path));
    CHECK(contains(e.what(), "text"));
  }
  std::remove(path.c_str());
  CHECK_THROWS_AS(load_image("/nonexistent/dir/x.png"), Error);
  CHECK_THROWS_AS(load_image("/tmp"), Error);  // a directory
}

TEST_CASE("image: JPEG and PNG truncated at 10%, 50% and 90% are errors") {
  const Bytes jpeg = make_jpeg(64, 48, 90, 2);
  const Bytes png = noise_png(64, 48, 3);
  for (const Bytes* full : {&jpeg, &png}) {
    REQUIRE_NOTHROW(decode(*full));
    for (int pct : {10, 50, 90}) {
      const Bytes cut(full->begin(), full->begin() + full->size() * pct / 100);
      const std::string err = error_of(cut, "cut");
      INFO(pct, "% of ", (full == &jpeg ? "JPEG" : "PNG"), ": ", err);
      CHECK(contains(err, "cut: "));
    }
  }
}

TEST_CASE("image: PNG CRCs are not checked (stb ignores them); bad zlib data is an error") {
  PngSpec s{3, 2, 2, 8, {}, {}, {}};
  for (int y = 0; y < 2; ++y) {
    s.rows.push_back(0);
    for (int i = 0; i < 9; ++i) s.rows.push_back(static_cast<uint8_t>(y * 9 + i));
  }
  const Image good = decode(make_png(s));
  s.bad_crc = true;  // documented behaviour: same pixels, as stb_image does not verify CRCs
  const Image bad_crc = decode(make_png(s));
  CHECK(bad_crc.rgb == good.rgb);
  s.bad_crc = false;
  const Bytes z = zlib_stored(s.rows);
  Bytes bad_header = z;
  bad_header[0] = 0x77;  // not deflate
  CHECK(contains(error_of(make_png(s, &bad_header)), "cannot decode PNG"));
  Bytes bad_block = z;
  bad_block[2] = 0x07;  // final block of reserved type 3
  CHECK(contains(error_of(make_png(s, &bad_block)), "cannot decode PNG"));
  DeflateWriter bad_code;  // fixed-Huffman block holding length symbol 286, which is invalid
  bad_code.put(1, 1);
  bad_code.put(1, 2);
  bad_code.put_code(0xC6, 8);
  const Bytes bad_code_z = bad_code.finish();
  CHECK(contains(error_of(make_png(s, &bad_code_z)), "cannot decode PNG"));
}

TEST_CASE("image: zero-length IDAT chunks (legal, empty) decode like the file without them") {
  // stb 2.27 memcpy'd the 0 bytes of a leading empty IDAT into a null buffer (UBSan, image_fuzz;
  // tests/fuzz/regressions/image_fuzz/stb_empty_idat_memcpy_null.png).
  PngSpec s{3, 2, 2, 8, {}, {}, {}};
  for (int y = 0; y < 2; ++y) {
    s.rows.push_back(0);
    for (int i = 0; i < 9; ++i) s.rows.push_back(uint8_t(40 * y + 7 * i));
  }
  const Bytes plain = make_png(s);
  Bytes split = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  Bytes ihdr;
  put_be32(ihdr, 3);
  put_be32(ihdr, 2);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  png_chunk(split, "IHDR", ihdr);
  png_chunk(split, "IDAT", {});
  png_chunk(split, "IDAT", zlib_stored(s.rows));
  png_chunk(split, "IDAT", {});
  png_chunk(split, "IEND", {});
  const Image a = decode_image(plain.data(), plain.size(), "plain.png");
  const Image b = decode_image(split.data(), split.size(), "split.png");
  CHECK(b.width == 3);
  CHECK(b.height == 2);
  CHECK(a.rgb == b.rgb);
}

TEST_CASE("image: a PNG that inflates past its declared size fails within a bounded allocation") {
  // 1x1 RGB image whose IDAT is a fixed-Huffman stream repeating (length 258, distance 1): about
  // 160x expansion, 64 MB from 400 kB. stb grows its output buffer by doubling; the per-decode
  // allocation cap stops it near 1 MB.
  DeflateWriter w;
  w.put(1, 1);
  w.put(1, 2);          // final block, fixed Huffman
  w.put_code(0x30, 8);  // literal 0
  for (int i = 0; i < 250000; ++i) {
    w.put_code(0xC5, 8);  // length symbol 285 (258 bytes)
    w.put_code(0, 5);     // distance code 0 (1 byte back)
  }
  w.put_code(0, 7);  // end of block
  const Bytes z = w.finish();
  PngSpec s{1, 1, 2, 8, {}, {}, {}};
  const std::string err = error_of(make_png(s, &z), "bomb.png");
  INFO(err);
  CHECK(contains(err, "bomb.png: cannot decode PNG"));
}

TEST_CASE("image: size claims over the limits fail before decoding") {
  PngSpec s{65535, 65535, 2, 8, {0, 1, 2, 3}, {}, {}};
  const std::string e1 = error_of(make_png(s), "huge.png");
  INFO(e1);
  CHECK(contains(e1, "huge.png: "));
  s.width = s.height = 16000;  // within the side limit, over the pixel budget
  const std::string e2 = error_of(make_png(s), "big.png");
  INFO(e2);
  CHECK(contains(e2, "pixel budget"));
  Bytes jpeg = make_jpeg(8, 8, 90, 4);
  const size_t sof = find_marker(jpeg, 0xC0);
  REQUIRE(sof != std::string::npos);
  jpeg[sof + 5] = jpeg[sof + 6] = jpeg[sof + 7] = jpeg[sof + 8] = 0xFF;  // 65535 x 65535
  CHECK(contains(error_of(jpeg, "huge.jpg"), "huge.jpg: "));
  const Bytes over_cap(kMaxImageBytes + 1, 0);
  CHECK(contains(error_of(over_cap, "big.bin"), "size cap"));
}

TEST_CASE("image: other formats are named as unsupported") {
  const std::vector<std::pair<Bytes, std::string>> cases = {
      {{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}, "GIF"},
      {{'R', 'I', 'F', 'F', 8, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '}, "WebP"},
      {{'I', 'I', 42, 0, 8, 0, 0, 0}, "TIFF"},
      {{'M', 'M', 0, 42, 0, 0, 0, 8}, "TIFF"},
      {{'B', 'M', 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0}, "BMP"},
      {{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c', 0, 0, 0, 0}, "HEIC"},
      {{0, 0, 0, 0x1C, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f', 0, 0, 0, 0}, "AVIF"},
  };
  for (const auto& c : cases) {
    const Bytes& bytes = c.first;
    const std::string& label = c.second;
    const std::string err = error_of(bytes, "x.jpg");
    INFO(label, ": ", err);
    CHECK(contains(err, "x.jpg: unsupported image format: " + label));
  }
  const std::string svg = "\xEF\xBB\xBF  <svg xmlns=\"http://www.w3.org/2000/svg\"></svg>";
  CHECK(contains(error_of(Bytes(svg.begin(), svg.end())), "unsupported image format: SVG"));
  Bytes cmyk = make_jpeg(8, 8, 90, 5);
  const size_t sof = find_marker(cmyk, 0xC0);
  cmyk[sof + 9] = 4;  // component count
  CHECK(contains(error_of(cmyk), "unsupported image format: CMYK"));
  Bytes arithmetic = make_jpeg(8, 8, 90, 6);
  arithmetic[find_marker(arithmetic, 0xC0) + 1] = 0xC9;
  CHECK(contains(error_of(arithmetic), "unsupported image format: JPEG (SOF9"));
}

TEST_CASE("image: a JPEG whose scan leaves components undecoded is still deterministic") {
  // Replace the interleaved 3-component scan of a baseline JPEG by a scan of component 1 only,
  // with all-zero entropy data (decodable with any table): stb never writes the other two
  // planes. Tern zero-fills stb's buffers, so the pixels do not depend on what the heap held.
  const Bytes good = make_jpeg(40, 24, 90, 31);
  const size_t sos = find_marker(good, 0xDA);
  REQUIRE(sos != std::string::npos);
  REQUIRE(good[sos + 4] == 3);
  Bytes b(good.begin(), good.begin() + long(sos));
  const Bytes header = {0xFF,          0xDA,          0x00, 0x08, 0x01,
                        good[sos + 5], good[sos + 6], 0x00, 0x3F, 0x00};
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), 256, 0x00);
  b.insert(b.end(), {0xFF, 0xD9});
  const Image first = decode(b);
  for (int i = 0; i < 20; ++i) {
    Bytes noise = noise_png(40 + i, 24, 200 + i);
    decode(noise);  // leaves freed heap blocks full of pixel data
    CHECK(decode(b).rgb == first.rgb);
  }
}

// ---- decoding: colour conversion like PIL's convert("RGB") ------------------------------------

TEST_CASE("image: gray, gray+alpha, palette+tRNS and 16-bit PNGs become RGB as PIL does") {
  {  // gray + alpha: gray replicated, alpha dropped (not composited)
    PngSpec s{2, 1, 4, 8, {0, 10, 0, 200, 128}, {}, {}};
    CHECK(decode(make_png(s)).rgb == Bytes{10, 10, 10, 200, 200, 200});
  }
  {  // palette with tRNS: palette colours, transparency ignored
    PngSpec s{3, 1, 3, 8, {0, 0, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 128}};
    CHECK(decode(make_png(s)).rgb == Bytes{1, 2, 3, 4, 5, 6, 7, 8, 9});
  }
  {  // RGBA: alpha dropped
    PngSpec s{1, 1, 6, 8, {0, 50, 60, 70, 0}, {}, {}};
    CHECK(decode(make_png(s)).rgb == Bytes{50, 60, 70});
  }
  {  // 16-bit RGB: high byte
    PngSpec s{1, 1, 2, 16, {0, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF}, {}, {}};
    CHECK(decode(make_png(s)).rgb == Bytes{0x12, 0xAB, 0x00});
  }
  {  // 16-bit gray: PIL opens it as mode "I" and clips to 0..255
    PngSpec s{3, 1, 0, 16, {0, 0x00, 0x07, 0x00, 0xFF, 0x01, 0x00}, {}, {}};
    CHECK(decode(make_png(s)).rgb == Bytes{7, 7, 7, 255, 255, 255, 255, 255, 255});
  }
  {  // 2-bit gray: 0x55 steps
    PngSpec s{4, 1, 0, 2, {0, 0b00011011}, {}, {}};
    CHECK(decode(make_png(s)).rgb == Bytes{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255});
  }
}

TEST_CASE("image: 1000 decodes on 4 threads are deterministic") {
  const Bytes png = noise_png(37, 23, 7);
  const Bytes jpeg = make_jpeg(45, 31, 85, 8);
  const Image ref_png = decode(png), ref_jpeg = decode(jpeg);
  std::atomic<int> mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        try {
          const bool use_png = (i + t) % 2 == 0;
          const Image img = decode(use_png ? png : jpeg);
          if (img.rgb != (use_png ? ref_png : ref_jpeg).rgb) ++mismatches;
          if (i % 50 == 0 && !error_of({0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x02}).size()) ++errors;
        } catch (...) {
          ++errors;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
  CHECK(errors.load() == 0);
}

// ---- resampling and preprocessing ---------------------------------------------------------------

TEST_CASE("image: a resized window equals the same window of the full resize") {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    Image src;
    src.width = 1 + int(rng() % 90);
    src.height = 1 + int(rng() % 90);
    src.rgb.resize(size_t(src.width) * src.height * 3);
    for (auto& v : src.rgb) v = rng() & 0xFF;
    const int ow = 1 + int(rng() % 120), oh = 1 + int(rng() % 120);
    const ResizeFilter f = trial % 2 ? ResizeFilter::bicubic : ResizeFilter::bilinear;
    const Image full = resize_like_pil(src, ow, oh, f);
    const int x0 = int(rng() % ow), y0 = int(rng() % oh);
    const int ww = 1 + int(rng() % (ow - x0)), wh = 1 + int(rng() % (oh - y0));
    const Image win = image_detail::resize_window_like_pil(src, ow, oh, f, x0, y0, ww, wh);
    bool same = true;
    for (int y = 0; y < wh && same; ++y)
      same = std::memcmp(&win.rgb[size_t(y) * ww * 3], &full.rgb[(size_t(y0 + y) * ow + x0) * 3],
                         size_t(ww) * 3) == 0;
    INFO(src.width, "x", src.height, " -> ", ow, "x", oh, " window ", ww, "x", wh, "+", x0, "+",
         y0);
    CHECK(same);
  }
}

TEST_CASE("image: resize keeps constant images constant and the same size is a copy") {
  for (ResizeFilter f : {ResizeFilter::bilinear, ResizeFilter::bicubic}) {
    for (const auto& dims : std::vector<std::array<int, 4>>{
             {1, 1, 224, 224}, {1, 9, 5, 300}, {300, 2, 17, 1}, {64, 64, 3, 3}}) {
      const int w = dims[0], h = dims[1], ow = dims[2], oh = dims[3];
      Image src{w, h, Bytes(size_t(w) * h * 3)};
      for (size_t i = 0; i < src.rgb.size(); ++i) src.rgb[i] = uint8_t(40 + 70 * (i % 3));
      const Image out = resize_like_pil(src, ow, oh, f);
      bool constant = true;
      for (size_t i = 0; i < out.rgb.size(); ++i)
        constant &= out.rgb[i] == uint8_t(40 + 70 * (i % 3));
      INFO(w, "x", h, " -> ", ow, "x", oh);
      CHECK(constant);
    }
    const Image src = decode(noise_png(13, 7, 12));
    CHECK(resize_like_pil(src, 13, 7, f).rgb == src.rgb);
  }
  Image src{2, 2, Bytes(12, 1)};
  CHECK_THROWS_AS(resize_like_pil(src, 0, 5, ResizeFilter::bilinear), Error);
  CHECK_THROWS_AS(resize_like_pil(src, 100000, 100000, ResizeFilter::bilinear), Error);
  Image broken{4, 4, Bytes(5)};
  CHECK_THROWS_AS(resize_like_pil(broken, 2, 2, ResizeFilter::bilinear), Error);
}

TEST_CASE("image: center crop offsets round half to even, like Python's round()") {
  // resize == short side, so no resampling: the crop is a plain window of the source.
  PreprocessConfig cfg = PreprocessConfig::from_profile("torchvision-v1");
  cfg.resize = 4;
  cfg.crop = 4;
  for (const auto& wo : std::vector<std::pair<int, int>>{{5, 0}, {7, 2}, {9, 2}, {11, 4}}) {
    const int width = wo.first, offset = wo.second;
    const Image src = decode(rgb_png(width, 4, [](uint32_t x, uint32_t, int) { return x; }));
    const Image crop = resize_and_crop(src, cfg);
    INFO("width ", width);
    CHECK(crop.rgb[0] == offset);  // (width - 4) / 2 = 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4
  }
}

TEST_CASE("image: tiny images (1x1, 1xN, Nx1, 2x2) preprocess to [3, 224, 224]") {
  for (const auto& wh :
       std::vector<std::pair<int, int>>{{1, 1}, {1, 9}, {9, 1}, {2, 2}, {1, 300}}) {
    const int w = wh.first, h = wh.second;
    const Image src = decode(noise_png(w, h, 100 + w * 7 + h));
    for (const char* profile : {"torchvision-v1", "torchvision-v2", "timm"}) {
      const PreprocessConfig cfg = PreprocessConfig::from_profile(profile);
      const Tensor t = preprocess(src, cfg);
      INFO(w, "x", h, " ", profile);
      REQUIRE(t.shape() == std::vector<int64_t>{3, 224, 224});
      bool finite = true;
      for (int64_t i = 0; i < t.numel(); ++i) finite &= std::isfinite(t.f32()[i]);
      CHECK(finite);
      if (w == 1 && h == 1) {  // upscaling a single pixel gives that pixel everywhere
        const Image crop = resize_and_crop(src, cfg);
        bool same = true;
        for (size_t i = 0; i < crop.rgb.size(); ++i) same &= crop.rgb[i] == src.rgb[i % 3];
        CHECK(same);
      }
    }
  }
}

TEST_CASE("image: preprocess normalises as ToTensor + Normalize in float") {
  const Image src = decode(noise_png(224, 224, 21));
  PreprocessConfig cfg = PreprocessConfig::from_profile("torchvision-v1");
  cfg.resize = 224;  // no resampling, no crop offset: the tensor is the source, normalised
  const Tensor t = preprocess(src, cfg);
  const int64_t n = 224 * 224;
  for (int64_t i = 0; i < n; i += 997)
    for (int c = 0; c < 3; ++c) {
      const float expect = (float(src.rgb[3 * i + c]) / 255.0f - cfg.mean[c]) / cfg.std[c];
      CHECK(t.f32()[c * n + i] == expect);
    }
}

TEST_CASE("image: preprocess profiles and their JSON") {
  const auto v1 = PreprocessConfig::from_profile("torchvision-v1");
  CHECK((v1.resize == 256 && v1.crop == 224 && v1.filter == ResizeFilter::bilinear));
  const auto v2 = PreprocessConfig::from_profile("torchvision-v2");
  CHECK((v2.resize == 232 && v2.crop == 224 && v2.filter == ResizeFilter::bilinear));
  const auto timm = PreprocessConfig::from_profile("timm");
  CHECK((timm.resize == 235 && timm.crop == 224 && timm.filter == ResizeFilter::bicubic));
  CHECK(timm.mean[0] == 0.485f);
  CHECK(timm.std[2] == 0.225f);
  CHECK_THROWS_AS(PreprocessConfig::from_profile("imagenet"), Error);

  const std::string js = timm.to_json();
  CHECK(contains(js, "\"mean\":[0.485,0.456,0.406]"));
  const auto back = PreprocessConfig::from_json(js);
  CHECK((back.profile == "timm" && back.resize == 235 && back.filter == ResizeFilter::bicubic));
  for (int c = 0; c < 3; ++c) CHECK((back.mean[c] == timm.mean[c] && back.std[c] == timm.std[c]));
  CHECK(PreprocessConfig::from_json(R"({"profile": "torchvision-v2"})").resize == 232);
  // What weights_tools/archs/resnet50.py writes (json.dumps).
  const auto exported = PreprocessConfig::from_json(
      R"({"profile": "torchvision-v1", "resize": 256, "interpolation": "bilinear", "crop": 224, )"
      R"("mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})");
  CHECK((exported.resize == 256 && exported.crop == 224 && exported.std[1] == 0.224f));
  const auto custom = PreprocessConfig::from_json(
      R"({"profile": "mine", "resize": 300, "interpolation": "bicubic", "crop": 288,)"
      R"( "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})");
  CHECK((custom.resize == 300 && custom.crop == 288 && custom.mean[1] == 0.5f));

  for (const char* bad :
       {"", "[]", "{", R"({"profile": 3})", R"({"profile": "mine"})",
        R"({"profile": "timm", "resize": 0})", R"({"profile": "timm", "resize": 2.5})",
        R"({"profile": "timm", "interpolation": "nearest"})",
        R"({"profile": "timm", "mean": [1, 2]})", R"({"profile": "timm", "std": [1, 0, 1]})",
        R"({"profile": "timm", "antialias": false})",
        R"({"profile": "timm", "resize": 200, "resize": 300})",
        R"({"profile": "timm", "mean": [[[[[[1]]]]]]})"}) {
    INFO(bad);
    CHECK_THROWS_AS(PreprocessConfig::from_json(bad), Error);
  }
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_AS(PreprocessConfig::from_json(deep), Error);
}
