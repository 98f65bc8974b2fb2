// Format sniffing and the JPEG structure check that runs before stb_image sees a byte.
//
// Why the JPEG walk: Debian's stb_image 2.27 trusts DHT segments. A table whose 16 code-length
// counts sum past 256 makes stbi__build_huffman write past its 257-entry size array (the 21-byte
// file in tests/test_image.cpp). So every DHT that stb would parse is checked here first, and the
// walk follows stb's reading order exactly: segments by their length, padding between header
// segments, and the entropy-coded data after each SOS up to the next real marker (FF followed by
// a byte other than 00, FF or a restart marker). Where stb would stop earlier (an error, or its
// "IP Kamera" resync), this walk keeps going and checks more than stb reads, never less.
#include <cstring>

#include "engine/core/error.hpp"
#include "engine/core/image_internal.hpp"

namespace tern::image_detail {
namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n, size_t at = 0) {
  return size >= at + n && std::memcmp(data + at, magic, n) == 0;
}

// XML/SVG/HTML start with '<' after optional BOM and whitespace.
bool looks_like_markup(const uint8_t* data, size_t size) {
  size_t i = 0;
  if (starts_with(data, size, "\xEF\xBB\xBF", 3)) i = 3;
  while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) ++i;
  return i < size && data[i] == '<';
}

bool looks_like_text(const uint8_t* data, size_t size) {
  const size_t n = size < 512 ? size : 512;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = data[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
    if (c == 0x7F) return false;
  }
  return n > 0;
}

std::string iso_bmff_label(const uint8_t* data, size_t size) {
  if (!starts_with(data, size, "ftyp", 4, 4) || size < 12) return "";
  const std::string brand(reinterpret_cast<const char*>(data + 8), 4);
  if (brand == "avif" || brand == "avis") return "AVIF";
  if (brand == "heic" || brand == "heix" || brand == "hevc" || brand == "hevx" || brand == "heim" ||
      brand == "heis" || brand == "mif1" || brand == "msf1")
    return "HEIC/HEIF";
  if (brand == "jp2 " || brand == "jpx ") return "JPEG 2000";
  if (brand == "crx ") return "Canon CR3 raw";
  return "ISO media (ftyp '" + brand + "')";
}

}  // namespace

Sniffed sniff_image_format(const uint8_t* data, size_t size) {
  Sniffed s;
  if (starts_with(data, size, "\xFF\xD8\xFF", 3)) {
    s.container = Container::jpeg;
    s.label = "JPEG";
    return s;
  }
  if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8)) {
    s.container = Container::png;
    s.label = "PNG";
    return s;
  }
  struct Magic {
    const char* bytes;
    size_t n, at;
    const char* label;
  };
  static const Magic kMagics[] = {
      {"GIF87a", 6, 0, "GIF"},
      {"GIF89a", 6, 0, "GIF"},
      {"WEBP", 4, 8, "WebP"},
      {"II*\0", 4, 0, "TIFF"},
      {"MM\0*", 4, 0, "TIFF"},
      {"II+\0", 4, 0, "BigTIFF"},
      {"MM\0+", 4, 0, "BigTIFF"},
      {"BM", 2, 0, "BMP"},
      {"\0\0\0\x0CjP  \r\n\x87\n", 12, 0, "JPEG 2000"},
      {"\xFF\x4F\xFF\x51", 4, 0, "JPEG 2000"},
      {"\xFF\x0A", 2, 0, "JPEG XL"},
      {"\0\0\0\x0CJXL \r\n\x87\n", 12, 0, "JPEG XL"},
      {"\0\0\1\0", 4, 0, "ICO"},
      {"\0\0\2\0", 4, 0, "CUR"},
      {"8BPS", 4, 0, "PSD"},
      {"qoif", 4, 0, "QOI"},
      {"#?RADIANCE", 10, 0, "Radiance HDR"},
      {"#?RGBE", 6, 0, "Radiance HDR"},
      {"\x76\x2F\x31\x01", 4, 0, "OpenEXR"},
      {"%PDF", 4, 0, "PDF"},
      {"\xFF\xD8", 2, 0, "JPEG (truncated header)"},
  };
  for (const Magic& m : kMagics) {
    if (starts_with(data, size, m.bytes, m.n, m.at)) {
      // "RIFF....WEBP": the WEBP tag alone at offset 8 is not enough.
      if (std::strcmp(m.label, "WebP") == 0 && !starts_with(data, size, "RIFF", 4)) continue;
      s.label = m.label;
      return s;
    }
  }
  if (starts_with(data, size, "RIFF", 4)) {
    s.label = "RIFF container";
    return s;
  }
  if (size >= 3 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7' &&
      (data[2] == ' ' || data[2] == '\n' || data[2] == '\r' || data[2] == '\t')) {
    s.label = "PNM (PBM/PGM/PPM)";
    return s;
  }
  s.label = iso_bmff_label(data, size);
  if (!s.label.empty()) return s;
  if (looks_like_markup(data, size)) {
    s.label = "SVG/XML/HTML text";
    return s;
  }
  if (looks_like_text(data, size)) s.label = "text";
  return s;
}

namespace {

class JpegWalker {
 public:
  JpegWalker(const uint8_t* data, size_t size, const std::string& name)
      : d_(data), n_(size), name_(name) {}

  void run() {
    if (n_ < 2 || d_[0] != 0xFF || d_[1] != 0xD8) corrupt(0, "no start-of-image marker");
    size_t pos = 2;
    bool seen_frame = false;
    int scans = 0;
    bool first = true;
    for (;;) {
      // Before the frame header stb skips stray bytes between segments (not right after SOI).
      if (!seen_frame && !first) {
        while (pos < n_ && d_[pos] != 0xFF) ++pos;
      }
      first = false;
      if (pos >= n_) corrupt(pos, "truncated: no end-of-image marker");
      if (d_[pos] != 0xFF) corrupt(pos, "expected a marker");
      const size_t marker_at = pos;
      while (pos < n_ && d_[pos] == 0xFF) ++pos;
      if (pos >= n_) corrupt(pos, "truncated: no end-of-image marker");
      const uint8_t m = d_[pos++];
      if (m == 0xD9) {
        if (!seen_frame) corrupt(marker_at, "end-of-image before the frame header");
        if (scans == 0) corrupt(marker_at, "end-of-image before any scan");
        return;
      }
      if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7))
        corrupt(marker_at, "unexpected marker 0x", hex(m));
      if (pos + 2 > n_) corrupt(marker_at, "truncated segment length");
      const size_t len = (size_t(d_[pos]) << 8) | d_[pos + 1];
      if (len < 2) corrupt(marker_at, "segment length ", len, " is below 2");
      if (len > n_ - pos)
        corrupt(marker_at, "segment 0x", hex(m), " runs past the end of the data");
      const uint8_t* payload = d_ + pos + 2;
      const size_t plen = len - 2;
      const size_t payload_at = pos + 2;
      pos += len;

      if (m == 0xC4) {
        check_dht(payload, plen, payload_at);
      } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {
        if (seen_frame) corrupt(marker_at, "a second frame header");
        check_frame(payload, plen, marker_at);
        seen_frame = true;
      } else if ((m >= 0xC3 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        unsupported(kind_of_sof(m));
      } else if (m == 0xDA) {
        if (!seen_frame) corrupt(marker_at, "scan before the frame header");
        if (++scans > kMaxJpegScans)
          fail(name_, ": corrupt JPEG: more than ", kMaxJpegScans, " scans");
        pos = skip_entropy_coded_data(pos);
      } else if (m == 0xDB || m == 0xDD || m == 0xDC || (m >= 0xE0 && m <= 0xEF) || m == 0xFE) {
        // DQT, DRI, DNL, APPn, COM: stb reads them within their length or rejects them.
      } else {
        corrupt(marker_at, "unknown marker 0x", hex(m));
      }
    }
  }

 private:
  template <typename... Parts>
  [[noreturn]] void corrupt(size_t offset, Parts&&... parts) {
    fail(name_, ": corrupt JPEG at byte ", offset, ": ", std::forward<Parts>(parts)...);
  }
  [[noreturn]] void unsupported(const std::string& what) {
    fail(name_, ": unsupported image format: ", what, " (Tern reads baseline and progressive ",
         "8-bit JPEG with 1 or 3 components)");
  }
  static std::string hex(uint8_t v) {
    const char* digits = "0123456789ABCDEF";
    return std::string{digits[v >> 4], digits[v & 15]};
  }
  static std::string kind_of_sof(uint8_t m) {
    std::string kind = "JPEG (SOF" + std::to_string(m - 0xC0) + ": ";
    if (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF) return kind + "lossless)";
    if (m >= 0xC9) return kind + "arithmetic coding)";
    return kind + "hierarchical)";
  }

  // 16 code-length counts, summing to at most 256, whose canonical code fits at every length,
  // then that many symbol values, all inside the segment; several tables may share a segment.
  void check_dht(const uint8_t* p, size_t len, size_t at) {
    size_t off = 0;
    while (off < len) {
      if (len - off < 17)
        corrupt(at + off, "Huffman table header needs 17 bytes, the DHT segment has ", len - off,
                " left");
      const int table_class = p[off] >> 4, table_id = p[off] & 15;
      if (table_class > 1 || table_id > 3)
        corrupt(at + off, "Huffman table class ", table_class, " id ", table_id, " (max 1 and 3)");
      uint32_t total = 0, code = 0;
      for (int bits = 1; bits <= 16; ++bits) {
        const uint32_t count = p[off + bits];
        total += count;
        code += count;
        if (code > (1u << bits))
          corrupt(at + off, "Huffman table has more codes of length ", bits,
                  " than the code space holds");
        code <<= 1;
      }
      if (total > 256) corrupt(at + off, "Huffman table declares ", total, " symbols (max 256)");
      if (len - off - 17 < total)
        corrupt(at + off, "Huffman table values run past the DHT segment");
      off += 17 + total;
    }
  }

  void check_frame(const uint8_t* p, size_t len, size_t at) {
    if (len < 6) corrupt(at, "frame header too short");
    const int precision = p[0];
    const int components = p[5];
    if (precision != 8) unsupported(std::to_string(precision) + "-bit JPEG");
    if (components == 4) unsupported("CMYK/YCCK JPEG");
    if (components != 1 && components != 3)
      corrupt(at, "frame header declares ", components, " components");
    // stb refuses a side over its limit with a reason that does not say so: name the limit.
    const int h = (p[1] << 8) | p[2], w = (p[3] << 8) | p[4];
    if (w > kMaxImageSide || h > kMaxImageSide)
      fail(name_, ": ", w, "x", h, " image is over the side limit of ", kMaxImageSide, " pixels");
  }

  // From the first byte after an SOS header to the next marker that is not a restart marker:
  // returns the offset of that marker's first 0xFF. Running out of data is a truncated file.
  size_t skip_entropy_coded_data(size_t pos) {
    while (pos < n_) {
      const void* hit = std::memchr(d_ + pos, 0xFF, n_ - pos);
      if (hit == nullptr) break;
      const size_t ff = static_cast<size_t>(static_cast<const uint8_t*>(hit) - d_);
      size_t q = ff + 1;
      while (q < n_ && d_[q] == 0xFF) ++q;
      if (q >= n_) break;
      const uint8_t c = d_[q];
      if (c == 0x00 || (c >= 0xD0 && c <= 0xD7)) {
        pos = q + 1;
        continue;
      }
      return q - 1;
    }
    corrupt(n_, "truncated inside entropy-coded data (no end-of-image marker)");
  }

  const uint8_t* d_;
  size_t n_;
  const std::string& name_;
};

}  // namespace

void validate_jpeg_structure(const uint8_t* data, size_t size, const std::string& name) {
  JpegWalker(data, size, name).run();
}

}  // namespace tern::image_detail
