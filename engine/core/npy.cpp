#include "engine/core/npy.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/core/error.hpp"

namespace tern {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::as_f32() const {
  if (descr != "<f4") fail("expected a float32 array, got dtype ", descr);
  std::vector<float> out(numel());
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

std::vector<int32_t> NpyArray::as_i32() const {
  std::vector<int32_t> out(numel());
  if (descr == "<i4") {
    std::memcpy(out.data(), bytes.data(), out.size() * 4);
  } else if (descr == "<i8") {
    for (size_t i = 0; i < out.size(); ++i) {
      int64_t v;
      std::memcpy(&v, bytes.data() + 8 * i, 8);
      if (v < INT32_MIN || v > INT32_MAX) fail("integer value ", v, " out of int32 range");
      out[i] = static_cast<int32_t>(v);
    }
  } else {
    fail("expected an int32 or int64 array, got dtype ", descr);
  }
  return out;
}

static std::string header_value(const std::string& header, const std::string& key) {
  const auto k = header.find("'" + key + "'");
  if (k == std::string::npos) fail("npy header has no '", key, "'");
  auto p = header.find(':', k);
  if (p == std::string::npos) fail("npy header: malformed '", key, "'");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p >= header.size()) fail("npy header: malformed '", key, "'");
  if (header[p] == '\'') {
    const auto e = header.find('\'', p + 1);
    if (e == std::string::npos) fail("npy header: malformed '", key, "'");
    return header.substr(p + 1, e - p - 1);
  }
  if (header[p] == '(') {
    const auto e = header.find(')', p);
    if (e == std::string::npos) fail("npy header: malformed '", key, "'");
    return header.substr(p, e - p + 1);
  }
  const auto e = header.find_first_of(",}", p);
  return header.substr(p, e - p);
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open: ", std::strerror(errno));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() < 10 || all.compare(0, 6, "\x93NUMPY") != 0) fail(path, ": not a .npy file");
  const int major = static_cast<uint8_t>(all[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<uint8_t>(all[8]) | (static_cast<uint8_t>(all[9]) << 8);
    offset = 10;
  } else {
    if (all.size() < 12) fail(path, ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<uint8_t>(all[8 + i])) << (8 * i);
    offset = 12;
  }
  if (offset + header_len > all.size()) fail(path, ": truncated .npy header");
  const std::string header = all.substr(offset, header_len);
  NpyArray a;
  a.descr = header_value(header, "descr");
  if (a.descr != "<f4" && a.descr != "<i4" && a.descr != "<i8")
    fail(path, ": unsupported dtype ", a.descr, " (float32, int32 or int64 expected)");
  if (header_value(header, "fortran_order") != "False") fail(path, ": Fortran-order arrays are not supported");
  std::string shape = header_value(header, "shape");
  for (char& c : shape)
    if (c == '(' || c == ')' || c == ',') c = ' ';
  std::istringstream ss(shape);
  for (int64_t d; ss >> d;) {
    if (d < 0) fail(path, ": negative dimension");
    a.shape.push_back(d);
  }
  const size_t elem = a.descr == "<i8" ? 8 : 4;
  const size_t need = static_cast<size_t>(a.numel()) * elem;
  if (all.size() - offset - header_len != need)
    fail(path, ": data size ", all.size() - offset - header_len, " does not match shape (", need, " bytes)");
  a.bytes.assign(all.begin() + offset + header_len, all.end());
  return a;
}

}  // namespace tern
