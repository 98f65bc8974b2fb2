// Test tool: runs Tern's image pipeline on one input and writes the results as .npy files, so the
// Python tests can compare them with PIL + torchvision.
//
//   tern_image_dump decode IMAGE OUT.npy                     uint8 [H, W, 3]
//   tern_image_dump resize IN.npy W H bilinear|bicubic OUT.npy
//   tern_image_dump preprocess IMAGE PROFILE CROP.npy TENSOR.npy
//
// IMAGE is an encoded JPEG/PNG file, or a uint8 [H, W, 3] .npy (pixels as PIL decoded them, to
// test resampling apart from decoding). PROFILE is a profile name or a JSON text ("{...}").
// Errors: the message on stderr, exit status 1.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"

using namespace tern;

namespace {

void write_npy(const std::string& path, const char* descr, const std::vector<int64_t>& shape,
               const void* data, size_t bytes) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header =
      "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.put(static_cast<char>(len & 0xFF));
  f.put(static_cast<char>(len >> 8));
  f << header;
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!f) fail(path, ": write failed");
}

// Reads a C-order uint8 [H, W, 3] .npy as written by numpy.save.
Image read_npy_rgb(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  if (s.size() < 10 || s.compare(0, 6, "\x93NUMPY") != 0) fail(path, ": not a .npy file");
  const size_t hlen = static_cast<uint8_t>(s[8]) | (size_t(static_cast<uint8_t>(s[9])) << 8);
  const std::string header = s.substr(10, hlen);
  if (header.find("'|u1'") == std::string::npos || header.find("False") == std::string::npos)
    fail(path, ": expected a C-order uint8 array");
  int h = 0, w = 0, c = 0;
  const size_t p = header.find("'shape': (");
  if (p == std::string::npos ||
      std::sscanf(header.c_str() + p, "'shape': (%d, %d, %d)", &h, &w, &c) != 3 || c != 3)
    fail(path, ": expected shape (H, W, 3)");
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(s.begin() + 10 + hlen, s.end());
  if (img.rgb.size() != size_t(w) * h * 3) fail(path, ": data size does not match the shape");
  return img;
}

Image read_input(const std::string& path) {
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0) return read_npy_rgb(path);
  return load_image(path);
}

void write_image(const std::string& path, const Image& img) {
  write_npy(path, "|u1", {img.height, img.width, 3}, img.rgb.data(), img.rgb.size());
}

int run(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "decode" && argc == 4) {
    write_image(argv[3], read_input(argv[2]));
    return 0;
  }
  if (cmd == "resize" && argc == 7) {
    const std::string f = argv[5];
    if (f != "bilinear" && f != "bicubic") fail("filter must be bilinear or bicubic");
    const Image out =
        resize_like_pil(read_input(argv[2]), std::stoi(argv[3]), std::stoi(argv[4]),
                        f == "bicubic" ? ResizeFilter::bicubic : ResizeFilter::bilinear);
    write_image(argv[6], out);
    return 0;
  }
  if (cmd == "preprocess" && argc == 6) {
    const std::string profile = argv[3];
    const PreprocessConfig cfg = profile.size() && profile[0] == '{'
                                     ? PreprocessConfig::from_json(profile)
                                     : PreprocessConfig::from_profile(profile);
    const Image img = read_input(argv[2]);
    write_image(argv[4], resize_and_crop(img, cfg));
    const Tensor t = preprocess(img, cfg);
    write_npy(argv[5], "<f4", t.shape(), t.f32(), size_t(t.numel()) * sizeof(float));
    return 0;
  }
  std::cerr << "usage: tern_image_dump decode IMAGE OUT.npy\n"
               "       tern_image_dump resize IN.npy W H bilinear|bicubic OUT.npy\n"
               "       tern_image_dump preprocess IMAGE PROFILE CROP.npy TENSOR.npy\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
