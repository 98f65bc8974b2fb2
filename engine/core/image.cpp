// Loading files, preprocessing profiles, torchvision's Resize(int) + CenterCrop + ToTensor +
// Normalize on top of the PIL-exact resampler.
#include "engine/core/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image_internal.hpp"

namespace tern {
namespace {

inline constexpr int kMaxCrop = 4096;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// torchvision's round((H - crop) / 2.0): Python rounds halves to even.
int center_offset(int size, int crop) {
  const int d = size - crop;
  const int q = d / 2;
  if (d % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

// A float as the shortest decimal that reads back as the same float ("0.485", not
// "0.48500001430511475"), stored in a double so the JSON shows that decimal.
double float_as_short_double(float v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  *res.ptr = '\0';
  return std::strtod(buf, nullptr);
}

const char* filter_name(ResizeFilter f) {
  return f == ResizeFilter::bicubic ? "bicubic" : "bilinear";
}

void check_config(const PreprocessConfig& cfg, const char* what) {
  if (cfg.resize < 1 || cfg.resize > kMaxImageSide)
    fail(what, ": resize ", cfg.resize, " is outside 1..", kMaxImageSide);
  if (cfg.crop < 1 || cfg.crop > kMaxCrop)
    fail(what, ": crop ", cfg.crop, " is outside 1..", kMaxCrop);
  for (int c = 0; c < 3; ++c) {
    if (!std::isfinite(cfg.mean[c])) fail(what, ": mean[", c, "] is not finite");
    if (!std::isfinite(cfg.std[c]) || !(cfg.std[c] > 0.f))
      fail(what, ": std[", c, "] = ", cfg.std[c], " must be finite and positive");
  }
}

// Nesting depth of JSON text, strings skipped; stops counting past `limit`. nlohmann's parser
// recurses, so deep input is refused before it parses.
int json_depth(const std::string& text, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[')
      max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']')
      --depth;
    if (max_depth > limit) break;
  }
  return max_depth;
}

}  // namespace

Image load_image(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxImageBytes)
    fail(path, ": ", st.st_size, " bytes is over the image size cap of ", kMaxImageBytes, " bytes");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(path, ": read error: ", std::strerror(errno));
    if (r == 0) break;  // the file shrank while reading; decode what is there
    got += static_cast<size_t>(r);
  }
  bytes.resize(got);
  return decode_image(bytes.data(), bytes.size(), path);
}

PreprocessConfig PreprocessConfig::from_profile(const std::string& profile) {
  PreprocessConfig cfg;
  cfg.profile = profile;
  if (profile == "torchvision-v1") {
    cfg.resize = 256;
    cfg.filter = ResizeFilter::bilinear;
  } else if (profile == "torchvision-v2") {
    cfg.resize = 232;
    cfg.filter = ResizeFilter::bilinear;
  } else if (profile == "timm") {
    cfg.resize = 235;
    cfg.filter = ResizeFilter::bicubic;
  } else {
    fail("unknown preprocess profile '", profile,
         "' (expected torchvision-v1, torchvision-v2 or timm)");
  }
  cfg.crop = 224;
  return cfg;
}

std::string PreprocessConfig::to_json() const {
  nlohmann::ordered_json j;
  j["profile"] = profile;
  j["resize"] = resize;
  j["interpolation"] = filter_name(filter);
  j["crop"] = crop;
  j["mean"] = {float_as_short_double(mean[0]), float_as_short_double(mean[1]),
               float_as_short_double(mean[2])};
  j["std"] = {float_as_short_double(std[0]), float_as_short_double(std[1]),
              float_as_short_double(std[2])};
  return j.dump();
}

PreprocessConfig PreprocessConfig::from_json(const std::string& json_text) {
  const char* what = "preprocess config";
  if (json_text.size() > (64u << 10)) fail(what, ": ", json_text.size(), " bytes is too long");
  if (json_depth(json_text, 4) > 3) fail(what, ": JSON nested too deeply");
  nlohmann::json j;
  std::vector<std::set<std::string>> keys;
  try {
    j = nlohmann::json::parse(json_text, [&](int, nlohmann::json::parse_event_t ev,
                                             nlohmann::json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (ev == E::object_start) keys.emplace_back();
      if (ev == E::object_end && !keys.empty()) keys.pop_back();
      if (ev == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second)
        fail(what, ": duplicate key \"", parsed.get<std::string>(), "\"");
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(what, ": expected a JSON object");

  PreprocessConfig cfg;
  const auto profile_it = j.find("profile");
  bool known_profile = false;
  if (profile_it != j.end()) {
    if (!profile_it->is_string()) fail(what, ": \"profile\" must be a string");
    const std::string name = profile_it->get<std::string>();
    known_profile = name == "torchvision-v1" || name == "torchvision-v2" || name == "timm";
    if (known_profile) cfg = from_profile(name);
    cfg.profile = name;
  }
  static const char* kFields[] = {"resize", "interpolation", "crop", "mean", "std"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "profile") continue;
    if (std::find_if(std::begin(kFields), std::end(kFields),
                     [&](const char* f) { return key == f; }) == std::end(kFields))
      fail(what, ": unknown key \"", key, "\" (expected profile, resize, interpolation, crop, ",
           "mean, std)");
  }
  if (!known_profile) {
    for (const char* f : kFields)
      if (!j.contains(f))
        fail(what, ": \"", f, "\" is required when the profile is not one of torchvision-v1, ",
             "torchvision-v2, timm");
  }
  auto read_int = [&](const char* key, int* out) {
    if (!j.contains(key)) return;
    const auto& v = j[key];
    if (!v.is_number_integer()) fail(what, ": \"", key, "\" must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < 1 || x > kMaxImageSide) fail(what, ": \"", key, "\" = ", x, " is out of range");
    *out = static_cast<int>(x);
  };
  read_int("resize", &cfg.resize);
  read_int("crop", &cfg.crop);
  if (j.contains("interpolation")) {
    const auto& v = j["interpolation"];
    const std::string name = v.is_string() ? v.get<std::string>() : "";
    if (name == "bilinear")
      cfg.filter = ResizeFilter::bilinear;
    else if (name == "bicubic")
      cfg.filter = ResizeFilter::bicubic;
    else
      fail(what, ": \"interpolation\" must be \"bilinear\" or \"bicubic\"");
  }
  auto read_triple = [&](const char* key, float* out) {
    if (!j.contains(key)) return;
    const auto& v = j[key];
    if (!v.is_array() || v.size() != 3) fail(what, ": \"", key, "\" must be an array of 3 numbers");
    for (int c = 0; c < 3; ++c) {
      if (!v[c].is_number()) fail(what, ": \"", key, "\"[", c, "] is not a number");
      out[c] = static_cast<float>(v[c].get<double>());
    }
  };
  read_triple("mean", cfg.mean);
  read_triple("std", cfg.std);
  check_config(cfg, what);
  return cfg;
}

Image resize_and_crop(const Image& image, const PreprocessConfig& cfg) {
  check_config(cfg, "preprocess");
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != size_t(image.width) * image.height * 3)
    fail("preprocess: invalid image (", image.width, "x", image.height, ", ", image.rgb.size(),
         " bytes)");
  // torchvision Resize(int): the shorter side becomes cfg.resize, the longer one
  // int(resize * long / short) (a double division, truncated).
  const int w = image.width, h = image.height;
  const int short_side = std::min(w, h), long_side = std::max(w, h);
  const double long_d = static_cast<double>(int64_t(cfg.resize) * long_side) / short_side;
  if (long_d >= double(1 << 30))
    fail("preprocess: ", w, "x", h, " image resized to ", cfg.resize, " gives a side too long");
  const int new_long = static_cast<int>(long_d);
  const int new_w = w <= h ? cfg.resize : new_long;
  const int new_h = w <= h ? new_long : cfg.resize;

  // CenterCrop: zero padding (left/top gets the floor half) where the image is smaller than the
  // crop, then offsets round((size - crop) / 2).
  struct Span {
    int src0, len, dst0;
  };
  auto span = [&](int size) {
    if (cfg.crop > size) return Span{0, size, (cfg.crop - size) / 2};
    return Span{center_offset(size, cfg.crop), cfg.crop, 0};
  };
  const Span sx = span(new_w), sy = span(new_h);
  const Image win = image_detail::resize_window_like_pil(image, new_w, new_h, cfg.filter, sx.src0,
                                                         sy.src0, sx.len, sy.len);
  if (sx.len == cfg.crop && sy.len == cfg.crop) return win;
  Image out;
  out.width = out.height = cfg.crop;
  out.rgb.assign(size_t(cfg.crop) * cfg.crop * 3, 0);
  for (int y = 0; y < sy.len; ++y)
    std::memcpy(&out.rgb[(size_t(y + sy.dst0) * cfg.crop + sx.dst0) * 3],
                &win.rgb[size_t(y) * sx.len * 3], size_t(sx.len) * 3);
  return out;
}

Tensor preprocess(const Image& image, const PreprocessConfig& cfg) {
  const Image crop = resize_and_crop(image, cfg);
  // ToTensor: x / 255 in float; Normalize: (x - mean) / std in float. A table per channel holds
  // exactly those values.
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      table[c][v] = (static_cast<float>(v) / 255.0f - cfg.mean[c]) / cfg.std[c];
  const int64_t n = int64_t(crop.width) * crop.height;
  Tensor t({3, crop.height, crop.width});
  float* out = t.f32();
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[c * n + i] = table[c][crop.rgb[3 * i + c]];
  return t;
}

}  // namespace tern
