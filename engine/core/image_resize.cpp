// PIL-exact resampling (Pillow's libImaging/Resample.c semantics, written from its description):
// - separable: a horizontal pass into a temporary image, then a vertical pass; a pass is skipped
//   when that dimension keeps its size (box = the whole image, as Image.resize passes);
// - filter support scaled by the downscale factor (antialiasing), taps from
//   int(center -/+ support + 0.5) clipped to the image, weights normalised to sum 1 in double;
// - weights to fixed point with PRECISION_BITS = 22, rounding half away from zero, truncation;
// - accumulators start at 1 << 21 (round half up), >> 22 and clip to 0..255 after each pass.
// Every output sample depends only on its own index, so evaluating a window of the output gives
// exactly the cropped full result; preprocess() relies on that to resize only what it keeps.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/image_internal.hpp"

namespace tern {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_weight(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_weight(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point taps for outputs [begin, begin + count) of an in_size -> out_size resample.
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;  // per output: first input index, number of taps
  std::vector<int32_t> weights;   // per output: ksize weights, the first `count` used
};

Taps compute_taps(int in_size, int out_size, ResizeFilter filter, int begin, int count) {
  double (*weight)(double) = filter == ResizeFilter::bicubic ? bicubic_weight : bilinear_weight;
  const double filter_support = filter == ResizeFilter::bicubic ? 2.0 : 1.0;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  Taps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(count);
  t.count.resize(count);
  t.weights.assign(size_t(count) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int i = 0; i < count; ++i) {
    const int xx = begin + i;
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = weight((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &t.weights[size_t(i) * t.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    t.first[i] = xmin;
    t.count[i] = xmax;
  }
  return t;
}

inline uint8_t clip8(int64_t acc) {
  const int64_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// rows x src_w RGB -> rows x taps.first.size() RGB.
void horizontal_pass(const uint8_t* src, int src_w, int rows, const Taps& taps, uint8_t* dst) {
  const int out_w = static_cast<int>(taps.first.size());
  for (int y = 0; y < rows; ++y) {
    const uint8_t* in = src + size_t(y) * src_w * 3;
    uint8_t* out = dst + size_t(y) * out_w * 3;
    for (int i = 0; i < out_w; ++i) {
      const int32_t* k = &taps.weights[size_t(i) * taps.ksize];
      const uint8_t* p = in + size_t(taps.first[i]) * 3;
      int64_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0, n = taps.count[i]; x < n; ++x) {
        s0 += int64_t(p[3 * x + 0]) * k[x];
        s1 += int64_t(p[3 * x + 1]) * k[x];
        s2 += int64_t(p[3 * x + 2]) * k[x];
      }
      out[3 * i + 0] = clip8(s0);
      out[3 * i + 1] = clip8(s1);
      out[3 * i + 2] = clip8(s2);
    }
  }
}

// src rows start at input row `row0`; output row i uses taps for its own index.
void vertical_pass(const uint8_t* src, int width, int row0, const Taps& taps, uint8_t* dst) {
  const size_t stride = size_t(width) * 3;
  std::vector<int64_t> acc(stride);
  for (size_t i = 0; i < taps.first.size(); ++i) {
    std::fill(acc.begin(), acc.end(), int64_t{1} << (kPrecisionBits - 1));
    const int32_t* k = &taps.weights[i * taps.ksize];
    for (int t = 0; t < taps.count[i]; ++t) {
      const uint8_t* row = src + size_t(taps.first[i] + t - row0) * stride;
      const int64_t kt = k[t];
      for (size_t e = 0; e < stride; ++e) acc[e] += int64_t(row[e]) * kt;
    }
    uint8_t* out = dst + i * stride;
    for (size_t e = 0; e < stride; ++e) out[e] = clip8(acc[e]);
  }
}

void check_image(const Image& img, const char* what) {
  if (img.width <= 0 || img.height <= 0)
    fail(what, ": image has no pixels (", img.width, "x", img.height, ")");
  if (img.rgb.size() != size_t(img.width) * img.height * 3)
    fail(what, ": pixel buffer holds ", img.rgb.size(), " bytes, ", img.width, "x", img.height,
         " RGB needs ", size_t(img.width) * img.height * 3);
}

}  // namespace

namespace image_detail {

Image resize_window_like_pil(const Image& src, int out_w, int out_h, ResizeFilter filter, int x0,
                             int y0, int win_w, int win_h) {
  check_image(src, "resize");
  if (out_w <= 0 || out_h <= 0) fail("resize: target size ", out_w, "x", out_h, " is empty");
  if (win_w <= 0 || win_h <= 0 || x0 < 0 || y0 < 0 || x0 > out_w - win_w || y0 > out_h - win_h)
    fail("resize: window ", win_w, "x", win_h, "+", x0, "+", y0, " is outside the ", out_w, "x",
         out_h, " output");
  const bool need_h = out_w != src.width;
  const bool need_v = out_h != src.height;

  // Input rows the window needs.
  Taps vtaps;
  int row_lo = y0, row_hi = y0 + win_h;
  if (need_v) {
    vtaps = compute_taps(src.height, out_h, filter, y0, win_h);
    row_lo = vtaps.first.front();
    row_hi = 0;
    for (int i = 0; i < win_h; ++i) {
      row_lo = std::min(row_lo, vtaps.first[i]);
      row_hi = std::max(row_hi, vtaps.first[i] + vtaps.count[i]);
    }
  }
  const int rows = row_hi - row_lo;

  // Horizontal pass (or a plain column crop) over those rows.
  std::vector<uint8_t> temp(size_t(rows) * win_w * 3);
  const uint8_t* rows_begin = src.rgb.data() + size_t(row_lo) * src.width * 3;
  if (need_h) {
    const Taps htaps = compute_taps(src.width, out_w, filter, x0, win_w);
    horizontal_pass(rows_begin, src.width, rows, htaps, temp.data());
  } else {
    for (int y = 0; y < rows; ++y)
      std::memcpy(&temp[size_t(y) * win_w * 3], rows_begin + (size_t(y) * src.width + x0) * 3,
                  size_t(win_w) * 3);
  }

  Image out;
  out.width = win_w;
  out.height = win_h;
  if (!need_v) {
    out.rgb = std::move(temp);
    return out;
  }
  out.rgb.resize(size_t(win_w) * win_h * 3);
  vertical_pass(temp.data(), win_w, row_lo, vtaps, out.rgb.data());
  return out;
}

}  // namespace image_detail

Image resize_like_pil(const Image& src, int width, int height, ResizeFilter filter) {
  if (width <= 0 || height <= 0) fail("resize: target size ", width, "x", height, " is empty");
  if (width > kMaxImageSide || height > kMaxImageSide || int64_t(width) * height > kMaxImagePixels)
    fail("resize: target size ", width, "x", height, " is over the image limits (", kMaxImageSide,
         " per side, ", kMaxImagePixels, " pixels)");
  return image_detail::resize_window_like_pil(src, width, height, filter, 0, 0, width, height);
}

}  // namespace tern
