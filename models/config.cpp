#include "models/config.hpp"

#include <nlohmann/json.hpp>

#include "engine/core/error.hpp"

namespace tern {

struct ModelConfig::Json {
  nlohmann::json j;
};

ModelConfig::ModelConfig(const WeightFile& file, const std::string& arch)
    : json_(std::make_unique<Json>()), where_(file.path() + ": " + arch + " config") {
  try {
    json_->j = nlohmann::json::parse(file.metadata("config"));
  } catch (const nlohmann::json::exception& e) {
    fail(where_, " is not valid JSON: ", e.what());
  }
  if (!json_->j.is_object()) fail(where_, " must be a JSON object");
}

ModelConfig::~ModelConfig() = default;

bool ModelConfig::has(const char* key) const {
  return json_->j.contains(key);
}

void ModelConfig::invalid(const std::string& what) const {
  fail(where_, ": ", what);
}

int64_t ModelConfig::integer(const char* key, int64_t lo, int64_t hi) const {
  if (!has(key)) fail(where_, " has no \"", key, "\"");
  const auto& v = json_->j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(where_, " \"", key, "\" must be an integer in [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

int64_t ModelConfig::integer(const char* key, int64_t lo, int64_t hi, int64_t fallback) const {
  return has(key) ? integer(key, lo, hi) : fallback;
}

float ModelConfig::number(const char* key, double lo, double hi, float fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_->j.at(key);
  if (!v.is_number() || !(v.get<double>() > lo) || v.get<double>() > hi)
    fail(where_, " \"", key, "\" must be a number in (", lo, ", ", hi, "]");
  return v.get<float>();
}

std::vector<int64_t> ModelConfig::integers(const char* key, size_t count, int64_t lo, int64_t hi,
                                           std::vector<int64_t> fallback) const {
  if (!has(key)) return fallback;
  const auto& l = json_->j.at(key);
  if (!l.is_array() || (count ? l.size() != count : l.empty()))
    fail(where_, " \"", key, "\" must be a list of ",
         count ? std::to_string(count) : std::string("one or more"), " integers");
  std::vector<int64_t> out;
  for (const auto& v : l) {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      fail(where_, " \"", key, "\" entries must be integers in [", lo, ", ", hi, "]");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

std::string ModelConfig::choice(const char* key, std::initializer_list<const char*> allowed,
                                const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = json_->j.at(key);
  std::string names;
  for (const char* a : allowed) {
    if (v.is_string() && v.get<std::string>() == a) return a;
    names += (names.empty() ? "\"" : ", \"") + std::string(a) + "\"";
  }
  fail(where_, " \"", key, "\" must be one of ", names);
}

}  // namespace tern
