#pragma once
// The compute backend: one loaded tern::Model behind the public API. The HTTP threads call the
// preparation functions (tokenizing, decoding and resizing images) in parallel; the batcher
// thread alone calls run(), on inputs already checked, so one client's bad input never fails
// a batch that holds other clients' inputs.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tern/tern.hpp"

namespace tern::server {

// Inputs run together only if they agree on all of these.
struct BatchKey {
  Pooling pooling = Pooling::mean;
  bool normalize = true;
  int skip = 0;  // leading tokens mean / max pooling leave out (the file's prompt; texts only)
  bool operator==(const BatchKey&) const = default;
};

// One checked input: token ids ([CLS] ... [SEP]) or a preprocessed image [3, S, S].
struct Input {
  std::vector<int32_t> ids;
  std::vector<float> pixels;
  int64_t tokens = 0;  // what it costs against --max-batch-tokens
};

class Backend {
 public:
  // image_tokens: the token cost of one image; max_decodes: images decoded at once (each may
  // hold up to 64 Mi pixels while it is resized).
  // per_token: the model's unpooled output is token vectors ([T, D]; /embed_all applies).
  Backend(std::unique_ptr<Model> model, int64_t image_tokens, int max_decodes, bool per_token);

  const Model& model() const { return *model_; }
  bool text() const { return model_->is_text_model(); }
  int64_t image_tokens() const { return image_tokens_; }
  bool per_token() const { return per_token_; }
  // For inputs given as text: the leading tokens (the file's default prompt, where its
  // sentence-transformers config says include_prompt = false) that pooling leaves out.
  int text_skip() const { return text_skip_; }
  int max_length() const { return text() ? model_->max_length() : 0; }

  // Each throws ApiError (422) naming `what` ("inputs[2]").
  Input text_input(const std::string& text, bool truncate, const std::string& what) const;
  Input ids_input(std::vector<int32_t> ids, bool truncate, const std::string& what) const;
  Input image_input(const std::string& encoded, const std::string& what) const;

  // One forward pass over `inputs` (all text or all images). Throws tern::Error.
  std::vector<Embedding> run(const BatchKey& key, const std::vector<const Input*>& inputs) const;

 private:
  std::unique_ptr<Model> model_;
  int64_t image_tokens_;
  int max_decodes_;
  bool per_token_;
  int text_skip_ = 0;
  mutable std::mutex decode_mutex_;
  mutable std::condition_variable decode_cv_;
  mutable int decoding_ = 0;
};

}  // namespace tern::server
