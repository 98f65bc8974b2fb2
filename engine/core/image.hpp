#pragma once
// Images: decoding (hardened stb_image: JPEG and PNG only, caps on bytes and pixels, JPEG Huffman
// tables validated first), conversion to RGB as PIL's convert("RGB") does, PIL-exact resampling,
// torchvision center crop, normalisation to a CHW float tensor.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"

namespace tern {

// Limits (enforced; documented in the README).
inline constexpr size_t kMaxImageBytes = 64u << 20;      // encoded input
inline constexpr int64_t kMaxImagePixels = 64 * 1024 * 1024 / 1;  // width * height
inline constexpr int kMaxImageSide = 16384;

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // interleaved RGB8, row-major, width*height*3
};

// `name` is used in error messages ("photo.jpg: ...").
Image decode_image(const uint8_t* data, size_t size, const std::string& name);
Image load_image(const std::string& path);

enum class ResizeFilter { bilinear, bicubic };

// PIL's Image.resize(..., filter) with antialiasing (reducing_gap=None), bit-exact on RGB8.
Image resize_like_pil(const Image& src, int width, int height, ResizeFilter filter);

struct PreprocessConfig {
  std::string profile = "torchvision-v1";
  int resize = 256;                     // shorter side is resized to this
  ResizeFilter filter = ResizeFilter::bilinear;
  int crop = 224;                       // center crop, torchvision rounding
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float std[3] = {0.229f, 0.224f, 0.225f};

  static PreprocessConfig from_profile(const std::string& profile);  // throws for unknown
  static PreprocessConfig from_json(const std::string& json_text);   // the weight file's "preprocess"
  std::string to_json() const;
};

// resize shorter side (torchvision Resize(int) size rule), center crop, /255, normalise.
// Returns [3, crop, crop] float.
Tensor preprocess(const Image& image, const PreprocessConfig& cfg);
// The uint8 crop before normalisation (for tests against PIL): crop x crop x 3.
Image resize_and_crop(const Image& image, const PreprocessConfig& cfg);

}  // namespace tern
