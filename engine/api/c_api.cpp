// The C API: a thin shell over the C++ API that turns exceptions into status codes.
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "tern/tern.hpp"
#include "tern/tern_c.h"

struct tern_model {
  std::unique_ptr<tern::Model> model;
};

namespace {

thread_local std::string g_last_error;

tern_status set_error(tern_status status, const std::string& message) {
  g_last_error = message;
  return status;
}

template <typename F>
tern_status guarded(F&& f) {
  try {
    g_last_error.clear();
    return f();
  } catch (const tern::Error& e) {
    return set_error(TERN_ERROR, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(TERN_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return set_error(TERN_ERROR, std::string("internal error: ") + e.what());
  }
}

tern::EmbedOptions to_cpp(const tern_embed_options* o) {
  tern::EmbedOptions opts;
  if (o == nullptr) return opts;
  // Read as an int: a C caller may pass any value, and loading an out-of-range enum is UB.
  static_assert(sizeof(tern_pooling) == sizeof(int));
  int pooling = 0;
  std::memcpy(&pooling, &o->pooling, sizeof pooling);
  switch (pooling) {
    case TERN_POOLING_DEFAULT: opts.pooling = tern::Pooling::model_default; break;
    case TERN_POOLING_NONE: opts.pooling = tern::Pooling::none; break;
    case TERN_POOLING_CLS: opts.pooling = tern::Pooling::cls; break;
    case TERN_POOLING_MEAN: opts.pooling = tern::Pooling::mean; break;
    case TERN_POOLING_MAX: opts.pooling = tern::Pooling::max; break;
    case TERN_POOLING_MEAN_SQRT_LEN: opts.pooling = tern::Pooling::mean_sqrt_len; break;
    default: throw tern::Error("invalid pooling value " + std::to_string(pooling));
  }
  opts.normalize = o->normalize != 0;
  opts.truncate = o->truncate != 0;
  opts.max_length = o->max_length;
  if (o->layer) opts.layer = o->layer;
  if (o->prompt) opts.prompt = o->prompt;
  if (o->prompt_text) opts.prompt_text = o->prompt_text;
  return opts;
}

tern_status emit(const tern::Embedding& e, tern_embedding** out) {
  auto* r = new tern_embedding{};
  r->rank = static_cast<int64_t>(e.shape.size());
  for (size_t i = 0; i < 3; ++i) r->shape[i] = i < e.shape.size() ? e.shape[i] : 0;
  r->values = new float[e.values.size()];
  std::memcpy(r->values, e.values.data(), e.values.size() * sizeof(float));
  *out = r;
  return TERN_OK;
}

#define TERN_REQUIRE(cond, what) \
  if (!(cond)) return set_error(TERN_INVALID_ARGUMENT, what)

}  // namespace

extern "C" {

tern_embed_options tern_embed_options_default(void) {
  return tern_embed_options{TERN_POOLING_DEFAULT, 0, 0, 0, nullptr, nullptr, nullptr};
}

tern_status tern_model_load(const char* path, int threads, const char* isa, tern_model** out) {
  TERN_REQUIRE(path != nullptr && out != nullptr, "tern_model_load: path and out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    tern::Options options;
    options.threads = threads;
    options.isa = isa ? isa : "";
    auto m = tern::Model::load(path, options);
    *out = new tern_model{std::move(m)};
    return TERN_OK;
  });
}

void tern_model_free(tern_model* model) { delete model; }

const char* tern_model_architecture(const tern_model* model) {
  return model ? model->model->architecture().c_str() : "";
}

int64_t tern_model_dim(const tern_model* model) { return model ? model->model->dim() : 0; }

tern_status tern_embed_image_file(const tern_model* model, const char* path,
                                  const tern_embed_options* options, tern_embedding** out) {
  TERN_REQUIRE(model && path && out, "tern_embed_image_file: model, path and out must not be NULL");
  return guarded([&] { return emit(model->model->embed_image_file(path, to_cpp(options)), out); });
}

tern_status tern_embed_image_bytes(const tern_model* model, const uint8_t* data, size_t size,
                                   const tern_embed_options* options, tern_embedding** out) {
  TERN_REQUIRE(model && data && out, "tern_embed_image_bytes: model, data and out must not be NULL");
  TERN_REQUIRE(size > 0, "tern_embed_image_bytes: size must not be 0");
  return guarded([&] { return emit(model->model->embed_image_bytes(data, size, to_cpp(options)), out); });
}

tern_status tern_embed_image_rgb(const tern_model* model, const uint8_t* rgb, int width, int height,
                                 const tern_embed_options* options, tern_embedding** out) {
  TERN_REQUIRE(model && rgb && out, "tern_embed_image_rgb: model, rgb and out must not be NULL");
  TERN_REQUIRE(width > 0 && height > 0, "tern_embed_image_rgb: width and height must be positive");
  return guarded([&] { return emit(model->model->embed_image_rgb(rgb, width, height, to_cpp(options)), out); });
}

tern_status tern_embed_text(const tern_model* model, const char* text,
                            const tern_embed_options* options, tern_embedding** out) {
  TERN_REQUIRE(model && text && out, "tern_embed_text: model, text and out must not be NULL");
  return guarded([&] { return emit(model->model->embed_text(text, to_cpp(options)), out); });
}

tern_status tern_tokenize(const tern_model* model, const char* text, int32_t* ids, size_t capacity,
                          size_t* count) {
  TERN_REQUIRE(model && text && count, "tern_tokenize: model, text and count must not be NULL");
  TERN_REQUIRE(ids || capacity == 0, "tern_tokenize: ids is NULL but capacity is not 0");
  return guarded([&] {
    const auto v = model->model->tokenize(text);
    *count = v.size();
    if (v.size() > capacity)
      return set_error(TERN_INVALID_ARGUMENT, "tern_tokenize: " + std::to_string(v.size()) +
                                                  " ids do not fit in capacity " + std::to_string(capacity));
    std::memcpy(ids, v.data(), v.size() * sizeof(int32_t));
    return TERN_OK;
  });
}

void tern_embedding_free(tern_embedding* embedding) {
  if (embedding == nullptr) return;
  delete[] embedding->values;
  delete embedding;
}

const char* tern_last_error(void) { return g_last_error.c_str(); }

float tern_model_logit_scale(const tern_model* model) {
  return model ? model->model->logit_scale() : 0.f;
}

tern_status tern_cosine_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                               float softmax_scale, float* out) {
  TERN_REQUIRE(a && b && out, "tern_cosine_matrix: a, b and out must not be NULL");
  TERN_REQUIRE(na >= 1 && nb >= 1 && dim >= 1, "tern_cosine_matrix: na, nb and dim must be >= 1");
  TERN_REQUIRE(softmax_scale >= 0, "tern_cosine_matrix: softmax_scale must be >= 0");
  return guarded([&] {
    auto rows = [dim](const float* p, int64_t n) {
      std::vector<tern::Embedding> e(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        e[i] = {{dim}, std::vector<float>(p + i * dim, p + (i + 1) * dim)};
      return e;
    };
    std::vector<float> m = tern::cosine_matrix(rows(a, na), rows(b, nb));
    if (softmax_scale > 0) m = tern::zero_shot_softmax(m, nb, softmax_scale);
    std::memcpy(out, m.data(), m.size() * sizeof(float));
    return TERN_OK;
  });
}

}  // extern "C"
