// Decoding: the only translation unit that compiles stb_image (Debian's libstb-dev, v2.27).
//
// Hardening, in order: a cap on encoded bytes; the format named from its magic (only JPEG and
// PNG reach stb); JPEG marker structure and Huffman tables checked by Tern before stb parses them
// (image_format.cpp); stbi_info first and the pixel budget enforced before any pixel is decoded;
// every stb allocation capped, so a zlib bomb in a PNG fails instead of growing without bound, and
// zero-filled, so corrupt files decode deterministically.
// stb's global settings (vertical flip, iPhone de-premultiply) are never touched, and its failure
// reason is thread-local, so decodes on several threads at once are safe.
//
// Colour conversion matches PIL's Image.open(...).convert("RGB"):
// - gray, gray+alpha, RGBA, palette (with or without tRNS): alpha dropped, never composited;
// - 16-bit RGB/RGBA/gray+alpha PNG: the high byte of each sample (PIL's "RGB;16B" unpacking);
// - 16-bit gray PNG: PIL opens it as mode "I" and convert("RGB") clips to 0..255, so does Tern;
// - 1/2/4-bit gray scaled to 0..255 (0x55, 0x11 steps), as both stb and PIL do.
// EXIF orientation is ignored, as PIL does without ImageOps.exif_transpose.
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/image_internal.hpp"

namespace {

// Largest single allocation stb may make: 16-bit RGBA at the pixel budget plus PNG filter bytes.
constexpr size_t kMaxStbAllocation =
    static_cast<size_t>(tern::kMaxImagePixels) * 8 + tern::kMaxImageSide * 8 + 4096;

// Per decode, the cap drops to what an image of the header's size can need (8 bytes per pixel
// with block padding, plus slack): stb grows its zlib output buffer by doubling, so a PNG whose
// IDAT inflates past its declared size fails after at most twice that size.
thread_local size_t t_stb_allocation_cap = kMaxStbAllocation;

// Zero-filled: stb 2.27 leaves some buffers uninitialised (a JPEG component that no scan covers,
// progressive coefficients of a missing DC scan) and would copy heap garbage into the pixels.
void* capped_malloc(size_t n) {
  return n > t_stb_allocation_cap ? nullptr : std::calloc(n, 1);
}
void* capped_realloc(void* p, size_t old_n, size_t n) {
  if (n > t_stb_allocation_cap) return nullptr;
  void* q = std::realloc(p, n);
  if (q != nullptr && n > old_n) std::memset(static_cast<char*>(q) + old_n, 0, n - old_n);
  return q;
}

class AllocationCapScope {
 public:
  AllocationCapScope(int w, int h) {
    const size_t need = size_t(w + 32) * size_t(h + 32) * 8 + (size_t{1} << 20);
    t_stb_allocation_cap = need < kMaxStbAllocation ? need : kMaxStbAllocation;
  }
  ~AllocationCapScope() { t_stb_allocation_cap = kMaxStbAllocation; }
  AllocationCapScope(const AllocationCapScope&) = delete;
  AllocationCapScope& operator=(const AllocationCapScope&) = delete;
};

}  // namespace

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS 16384
#define STBI_MALLOC(sz) capped_malloc(sz)
#define STBI_REALLOC_SIZED(p, old_sz, sz) capped_realloc(p, old_sz, sz)
#define STBI_FREE(p) std::free(p)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#elif defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunused-parameter"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#pragma clang diagnostic ignored "-Wsign-compare"
#pragma clang diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#elif defined(__clang__)
#pragma clang diagnostic pop
#endif

static_assert(STBI_MAX_DIMENSIONS == tern::kMaxImageSide);

namespace tern {
namespace {

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

[[noreturn]] void fail_stb(const std::string& name, const char* kind) {
  fail(name, ": cannot decode ", kind, ": ", stb_reason());
}

// A zero-length IDAT chunk is legal PNG and carries no data, but stb 2.27 copies its 0 bytes into
// the image data buffer before any IDAT has allocated it: memcpy to a null pointer, undefined
// behaviour (found by image_fuzz). Returns the file without its zero-length IDAT chunks, or an
// empty vector when it has none (stb does not check CRCs, so dropping whole chunks is safe). A
// zero-length IDAT header cut off before its CRC, at the end of the file, is dropped too (stb
// reads it before noticing the truncation). The chunk walk stops at the first chunk that does
// not fit; stb reports the truncation.
std::vector<uint8_t> without_empty_idat(const uint8_t* data, size_t size) {
  std::vector<uint8_t> out;
  bool dropped = false;
  size_t pos = 8, kept = 0;  // [kept, pos) is still to be copied
  while (size - pos >= 8) {
    const uint32_t len = (uint32_t(data[pos]) << 24) | (uint32_t(data[pos + 1]) << 16) |
                         (uint32_t(data[pos + 2]) << 8) | uint32_t(data[pos + 3]);
    if (len == 0 && std::memcmp(data + pos + 4, "IDAT", 4) == 0) {
      out.insert(out.end(), data + kept, data + pos);
      pos += std::min<size_t>(12, size - pos);
      kept = pos;
      dropped = true;
      continue;
    }
    if (size - pos < 12 || len > size - pos - 12) break;
    pos += 12 + size_t(len);
  }
  if (!dropped) return {};
  out.insert(out.end(), data + kept, data + size);
  return out;
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  using image_detail::Container;
  if (size == 0 || data == nullptr) fail(name, ": empty image data (0 bytes)");
  if (size > kMaxImageBytes)
    fail(name, ": ", size, " bytes is over the image size cap of ", kMaxImageBytes, " bytes");
  const image_detail::Sniffed fmt = image_detail::sniff_image_format(data, size);
  if (fmt.container == Container::other) {
    if (fmt.label.empty())
      fail(name, ": not a JPEG or PNG image (unrecognised header, ", size, " bytes)");
    if (fmt.label == "text")
      fail(name, ": not an image: the data is text (Tern reads JPEG and PNG)");
    fail(name, ": unsupported image format: ", fmt.label, " (Tern reads JPEG and PNG)");
  }
  const char* kind = fmt.container == Container::jpeg ? "JPEG" : "PNG";
  if (fmt.container == Container::jpeg) {
    image_detail::validate_jpeg_structure(data, size, name);
  } else if (size >= 16 && std::memcmp(data + 12, "CgBI", 4) == 0) {
    fail(name, ": unsupported image format: Apple CgBI PNG (not a standard PNG)");
  }
  std::vector<uint8_t> cleaned;
  if (fmt.container == Container::png && !(cleaned = without_empty_idat(data, size)).empty()) {
    data = cleaned.data();
    size = cleaned.size();
  }

  const int len = static_cast<int>(size);  // size <= kMaxImageBytes < INT_MAX
  int w = 0, h = 0, channels = 0;
  // stb refuses a side over its limit as "unknown image type": name the limit from IHDR.
  if (fmt.container == Container::png && size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0) {
    const auto be32 = [&](size_t at) {
      return (uint32_t(data[at]) << 24) | (uint32_t(data[at + 1]) << 16) |
             (uint32_t(data[at + 2]) << 8) | uint32_t(data[at + 3]);
    };
    const uint32_t pw = be32(16), ph = be32(20);
    if (pw > uint32_t(kMaxImageSide) || ph > uint32_t(kMaxImageSide))
      fail(name, ": ", pw, "x", ph, " image is over the side limit of ", kMaxImageSide, " pixels");
  }
  if (!stbi_info_from_memory(data, len, &w, &h, &channels)) fail_stb(name, kind);
  if (w <= 0 || h <= 0) fail(name, ": image has no pixels (", w, "x", h, ")");
  if (w > kMaxImageSide || h > kMaxImageSide)
    fail(name, ": ", w, "x", h, " image is over the side limit of ", kMaxImageSide, " pixels");
  if (int64_t(w) * h > kMaxImagePixels)
    fail(name, ": ", w, "x", h, " image is over the pixel budget of ", kMaxImagePixels, " pixels");

  const AllocationCapScope cap(w, h);
  Image out;
  out.width = w;
  out.height = h;
  out.rgb.resize(size_t(w) * h * 3);
  int dw = 0, dh = 0, dc = 0;
  const bool gray16 =
      fmt.container == Container::png && channels == 1 && stbi_is_16_bit_from_memory(data, len);
  if (gray16) {
    std::unique_ptr<stbi_us, StbFree> px(stbi_load_16_from_memory(data, len, &dw, &dh, &dc, 1));
    if (!px) fail_stb(name, kind);
    if (dw != w || dh != h) fail(name, ": decoded size differs from the header");
    for (size_t i = 0, n = size_t(w) * h; i < n; ++i) {
      const uint8_t v = px.get()[i] > 255 ? 255 : static_cast<uint8_t>(px.get()[i]);
      out.rgb[3 * i] = out.rgb[3 * i + 1] = out.rgb[3 * i + 2] = v;
    }
    return out;
  }
  std::unique_ptr<stbi_uc, StbFree> px(stbi_load_from_memory(data, len, &dw, &dh, &dc, 3));
  if (!px) fail_stb(name, kind);
  if (dw != w || dh != h) fail(name, ": decoded size differs from the header");
  std::memcpy(out.rgb.data(), px.get(), out.rgb.size());
  return out;
}

}  // namespace tern
