#pragma once
// The weight file's "config" metadata (a JSON object of hyper-parameters), read with checks: every
// architecture parses its config through this one class, so every bad value is reported the same
// way: "PATH: ARCH config \"KEY\" must be ...".
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/weights.hpp"

namespace tern {

class ModelConfig {
 public:
  // Parses file.metadata("config"); `arch` names the architecture in messages.
  ModelConfig(const WeightFile& file, const std::string& arch);
  ~ModelConfig();

  bool has(const char* key) const;
  // An integer in [lo, hi]; required, or `fallback` when the key is absent.
  int64_t integer(const char* key, int64_t lo, int64_t hi) const;
  int64_t integer(const char* key, int64_t lo, int64_t hi, int64_t fallback) const;
  // A number in (lo, hi]; `fallback` when absent.
  float number(const char* key, double lo, double hi, float fallback) const;
  // A list of exactly `count` integers in [lo, hi] (count 0: any length >= 1); `fallback` when
  // absent.
  std::vector<int64_t> integers(const char* key, size_t count, int64_t lo, int64_t hi,
                                std::vector<int64_t> fallback) const;
  // A string from `allowed`; `fallback` when absent.
  std::string choice(const char* key, std::initializer_list<const char*> allowed,
                     const std::string& fallback) const;

  // Throws "PATH: ARCH config: WHAT".
  [[noreturn]] void invalid(const std::string& what) const;

 private:
  struct Json;
  std::unique_ptr<Json> json_;
  std::string where_;  // "PATH: ARCH config"
};

}  // namespace tern
