#pragma once
// Internals of the image pipeline, shared by engine/core/image*.cpp and the tests. Not part of the
// public API.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/image.hpp"

namespace tern::image_detail {

enum class Container { jpeg, png, other };

// What the first bytes say. For `other`, `label` names the format ("GIF", "WebP", "TIFF", ...) or
// is empty when nothing is recognised.
struct Sniffed {
  Container container = Container::other;
  std::string label;
};
Sniffed sniff_image_format(const uint8_t* data, size_t size);

// Walks the JPEG marker structure the way stb_image 2.27 reads it (including the entropy-coded
// data between scans) and throws tern::Error ("<name>: corrupt JPEG: ...") on anything stb would
// mis-handle: DHT tables whose 16 code-length counts sum past 256, overflow the canonical code
// space, or run past their segment; segments running past the end of the data; a missing
// end-of-image marker; more than kMaxJpegScans scans. Also rejects what Tern does not decode the
// way PIL would (CMYK/YCCK, 12-bit, arithmetic, lossless) as "unsupported".
inline constexpr int kMaxJpegScans = 1000;
void validate_jpeg_structure(const uint8_t* data, size_t size, const std::string& name);

// PIL's resize of `src` to out_w x out_h, evaluated only on the output window
// [x0, x0 + win_w) x [y0, y0 + win_h) (which must lie inside the output). Identical to cropping
// resize_like_pil()'s result, without computing the rest: every output pixel depends only on its
// own coordinates.
Image resize_window_like_pil(const Image& src, int out_w, int out_h, ResizeFilter filter, int x0,
                             int y0, int win_w, int win_h);

}  // namespace tern::image_detail
