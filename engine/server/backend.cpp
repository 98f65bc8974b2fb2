// The compute backend (see backend.hpp).
#include "engine/server/backend.hpp"

#include <algorithm>

#include "engine/server/protocol.hpp"

namespace tern::server {

Backend::Backend(std::unique_ptr<Model> model, int64_t image_tokens, int max_decodes,
                 bool per_token)
    : model_(std::move(model)),
      image_tokens_(image_tokens),
      max_decodes_(std::max(1, max_decodes)),
      per_token_(per_token),
      text_skip_(model_->is_text_model() ? model_->prompt_tokens(EmbedOptions{}) : 0) {}

Input Backend::text_input(const std::string& value, bool truncate, const std::string& what) const {
  if (!text()) throw ApiError(422, ErrorKind::validation, what + ": this is an image model");
  Input in;
  try {
    // As embed_texts tokenizes: the file's default prompt and max_seq_length apply.
    EmbedOptions opts;
    opts.truncate = truncate;
    in.ids = model_->tokenize(value, opts);
  } catch (const Error& e) {
    const bool utf8 = std::string_view(e.what()).find("UTF-8") != std::string_view::npos;
    throw ApiError(422, utf8 ? ErrorKind::tokenizer : ErrorKind::validation,
                   what + ": " + e.what());
  }
  in.tokens = static_cast<int64_t>(in.ids.size());
  return in;
}

Input Backend::ids_input(std::vector<int32_t> ids, bool truncate, const std::string& what) const {
  if (!text()) throw ApiError(422, ErrorKind::validation, what + ": this is an image model");
  const int64_t vocab = model_->vocab_size();
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= vocab)
      throw ApiError(422, ErrorKind::validation,
                     what + "[" + std::to_string(i) + "]: token id " + std::to_string(ids[i]) +
                         " is outside the vocabulary (" + std::to_string(vocab) + " tokens)");
  const size_t max = static_cast<size_t>(model_->max_length());
  if (ids.size() > max) {
    if (!truncate)
      throw ApiError(422, ErrorKind::validation,
                     what + ": " + std::to_string(ids.size()) +
                         " tokens, more than the maximum of " + std::to_string(max) +
                         " (send \"truncate\": true or start the server "
                         "with --auto-truncate)");
    const int32_t last = ids.back();  // keep the closing [SEP], as the tokenizer's cut does
    ids.resize(max);
    ids.back() = last;
  }
  Input in;
  in.ids = std::move(ids);
  in.tokens = static_cast<int64_t>(in.ids.size());
  return in;
}

Input Backend::image_input(const std::string& encoded, const std::string& what) const {
  if (text()) throw ApiError(422, ErrorKind::validation, what + ": this is a text model");
  const std::string bytes = decode_image_input(encoded, what);
  {
    std::unique_lock<std::mutex> lock(decode_mutex_);
    decode_cv_.wait(lock, [&] { return decoding_ < max_decodes_; });
    ++decoding_;
  }
  struct Release {
    const Backend* b;
    ~Release() {
      std::lock_guard<std::mutex> lock(b->decode_mutex_);
      --b->decoding_;
      b->decode_cv_.notify_one();
    }
  } release{this};
  Input in;
  try {
    Embedding x = model_->preprocess_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                 bytes.size());
    in.pixels = std::move(x.values);
  } catch (const Error& e) {
    throw ApiError(422, ErrorKind::validation, what + ": " + e.what());
  }
  in.tokens = image_tokens_;
  return in;
}

std::vector<Embedding> Backend::run(const BatchKey& key,
                                    const std::vector<const Input*>& inputs) const {
  EmbedOptions opts;
  opts.pooling = key.pooling;
  opts.normalize = key.normalize;
  opts.batch = static_cast<int>(std::max<size_t>(inputs.size(), 1));
  opts.pool_skip_tokens = key.skip;
  if (text()) {
    std::vector<std::vector<int32_t>> ids;
    ids.reserve(inputs.size());
    for (const Input* in : inputs) ids.push_back(in->ids);
    return model_->embed_token_ids(ids, opts);
  }
  const size_t plane = inputs.at(0)->pixels.size();
  int64_t side = 1;
  while (3 * (side + 1) * (side + 1) <= static_cast<int64_t>(plane)) ++side;
  std::vector<float> nchw;
  nchw.reserve(plane * inputs.size());
  for (const Input* in : inputs) nchw.insert(nchw.end(), in->pixels.begin(), in->pixels.end());
  return model_->embed_preprocessed(nchw.data(), static_cast<int64_t>(inputs.size()), side, side,
                                    opts);
}

}  // namespace tern::server
