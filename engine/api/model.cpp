// The public C++ API: loading a weight file into its model (through the registry), batching,
// preprocessing, tokenizing, normalisation and the non-finite check. What is particular to an
// architecture (default pooling, which tokens a mean skips, layers) lives with its model.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/api/sentence_defaults.hpp"
#include "engine/api/tokenize_checked.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/core/thread_pool.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/weights.hpp"
#include "models/model.hpp"
#include "tern/tern.hpp"

namespace tern {

struct Model::Impl {
  std::shared_ptr<const WeightFile> file;
  std::string arch;
  Isa isa = Isa::scalar;
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<EmbeddingModel> model;
  const PreprocessConfig* preprocess = nullptr;  // image models
  const TextTokenizer* tokenizer = nullptr;      // text models
  // A sentence-transformers file's defaults (pooling, Dense, Normalize, max_length, prompts), or
  // null (engine/api/sentence_defaults.hpp).
  std::unique_ptr<SentenceDefaults> st;

  bool image() const { return model->takes_images(); }
  bool text() const { return model->takes_texts(); }
  ForwardRequest request(const EmbedOptions& opts) const;
  std::vector<Embedding> finish_all(ForwardOutput out, const EmbedOptions& opts,
                                    const std::vector<std::string>& names) const;

  // [n, 3, s, s] -> per-input embeddings.
  std::vector<Embedding> run_images(const Tensor& x, const EmbedOptions& opts,
                                    const std::vector<std::string>& names) const;
  // pool_from: per input, the leading tokens mean / max pooling skip (a prompt); empty: none.
  std::vector<Embedding> run_tokens(const std::vector<std::vector<int32_t>>& ids,
                                    const EmbedOptions& opts, const std::vector<std::string>& names,
                                    const std::vector<int32_t>& pool_from) const;
  std::vector<Embedding> embed_ids(const std::vector<std::vector<int32_t>>& ids,
                                   const EmbedOptions& opts,
                                   const std::vector<int32_t>& pool_from) const;
  // The sentence-transformers head (Dense layers, Normalize) applies to pooled outputs of the
  // model's final layer.
  std::string prompt_for(const EmbedOptions& opts) const;
  bool head_applies(const ForwardRequest& req) const {
    return st && req.pool != PoolMode::none && req.layer == ForwardRequest::kFinal && !req.logits;
  }
};

namespace {

void l2_normalize_rows(Embedding& e) {
  // Each token row of [T, D]; a feature map [C, H, W] as one vector.
  const int64_t d = e.shape.size() == 3 ? static_cast<int64_t>(e.values.size()) : e.shape.back();
  for (size_t r = 0; r < e.values.size() / d; ++r) {
    float* row = e.values.data() + r * d;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += double(row[i]) * row[i];
    const double norm = std::sqrt(ss);
    if (norm > 0)
      for (int64_t i = 0; i < d; ++i) row[i] = static_cast<float>(row[i] / norm);
  }
}

void finish(Embedding& e, const EmbedOptions& opts, const std::string& name) {
  for (float v : e.values)
    if (!std::isfinite(v))
      fail(name, ": the embedding is not finite (NaN or Inf): the input or the weights are out of range");
  if (opts.normalize) l2_normalize_rows(e);
}

PoolMode to_pool_mode(Pooling p) {
  switch (p) {
    case Pooling::model_default: return PoolMode::automatic;
    case Pooling::none: return PoolMode::none;
    case Pooling::cls: return PoolMode::cls;
    case Pooling::mean: return PoolMode::mean;
    case Pooling::max: return PoolMode::max;
    case Pooling::mean_sqrt_len: return PoolMode::mean_sqrt_len;
  }
  return PoolMode::automatic;
}

Pooling to_pooling(PoolMode p) {
  switch (p) {
    case PoolMode::automatic: return Pooling::model_default;
    case PoolMode::none: return Pooling::none;
    case PoolMode::cls: return Pooling::cls;
    case PoolMode::mean: return Pooling::mean;
    case PoolMode::max: return Pooling::max;
    case PoolMode::mean_sqrt_len: return Pooling::mean_sqrt_len;
  }
  return Pooling::model_default;
}

std::vector<std::string> default_names(size_t n, const char* what) {
  std::vector<std::string> names(n);
  for (size_t i = 0; i < n; ++i) names[i] = std::string(what) + " " + std::to_string(i + 1);
  return names;
}

}  // namespace

const char* pooling_name(Pooling p) {
  return pool_mode_name(to_pool_mode(p));
}

Pooling parse_pooling(const std::string& name) {
  for (Pooling p : {Pooling::model_default, Pooling::none, Pooling::cls, Pooling::mean, Pooling::max,
                    Pooling::mean_sqrt_len})
    if (name == pooling_name(p)) return p;
  fail("pooling '", name, "' is not one of none, cls, mean, max, mean_sqrt_len (or default)");
}

std::vector<ArchitectureInfo> architectures() {
  std::vector<ArchitectureInfo> out;
  for (const Architecture& a : registered_architectures()) out.push_back({a.name, a.description});
  return out;
}

ForwardRequest Model::Impl::request(const EmbedOptions& opts) const {
  ForwardRequest req;
  req.layer = model->resolve_layer(opts.layer);
  req.pool = to_pool_mode(opts.pooling);
  // The model's default (a sentence-transformers file: the directory's); where that is
  // `automatic` too (CLIP's own projected embedding), the model receives `automatic` and
  // produces its own output.
  if (req.pool == PoolMode::automatic)
    req.pool = st ? to_pool_mode(parse_pooling(st->pooling)) : model->default_pool();
  req.logits = opts.logits;
  if (opts.logits && !opts.layer.empty()) fail("--logits takes the model's output: --layer does not apply");
  return req;
}

std::vector<Embedding> Model::Impl::finish_all(ForwardOutput out, const EmbedOptions& opts,
                                               const std::vector<std::string>& names) const {
  const Tensor& v = out.values;
  const int64_t n = v.dim(0);
  std::vector<Embedding> result;
  result.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    Embedding e;
    if (out.kind == ForwardOutput::Kind::tokens) {
      const int64_t T = v.dim(1), D = v.dim(2), len = out.lengths[i];
      e.shape = {len, D};
      e.values.assign(v.f32() + i * T * D, v.f32() + (i * T + len) * D);
    } else {
      e.shape.assign(v.shape().begin() + 1, v.shape().end());
      const int64_t row = v.numel() / n;
      e.values.assign(v.f32() + i * row, v.f32() + (i + 1) * row);
    }
    finish(e, opts, names[i]);
    result.push_back(std::move(e));
  }
  return result;
}

std::vector<Embedding> Model::Impl::run_images(const Tensor& x, const EmbedOptions& opts,
                                               const std::vector<std::string>& names) const {
  DenormalsFlushScope ftz;  // the same floating-point mode as the pool's workers
  const ForwardRequest req = request(opts);
  return finish_all(model->forward_images(pool.get(), x, req), opts, names);
}

std::vector<Embedding> Model::Impl::run_tokens(const std::vector<std::vector<int32_t>>& ids,
                                               const EmbedOptions& opts,
                                               const std::vector<std::string>& names,
                                               const std::vector<int32_t>& pool_from) const {
  DenormalsFlushScope ftz;
  if (opts.logits && !model->has_head())
    fail("--logits needs a file exported with --keep-head (image classifiers, the BERT pooler)");
  ForwardRequest req = request(opts);
  req.pool_from = pool_from;
  const int64_t n = static_cast<int64_t>(ids.size());
  int64_t T = 1;
  for (const auto& row : ids) T = std::max<int64_t>(T, static_cast<int64_t>(row.size()));
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i].empty()) fail(names[i], ": no tokens");
    if (static_cast<int64_t>(ids[i].size()) > model->max_positions())
      fail(names[i], ": ", ids[i].size(), " tokens, more than the model's ", model->max_positions(),
           " positions");
  }
  std::vector<int32_t> flat(n * T, tokenizer ? tokenizer->pad_id() : 0), lengths(n);
  for (int64_t i = 0; i < n; ++i) {
    std::copy(ids[i].begin(), ids[i].end(), flat.begin() + i * T);
    lengths[i] = static_cast<int32_t>(ids[i].size());
  }
  const TokenBatch batch{flat.data(), n, T, lengths.data()};
  ForwardOutput out = model->forward_tokens(pool.get(), batch, req);
  if (!head_applies(req)) return finish_all(std::move(out), opts, names);
  // sentence-transformers: Dense layers on the pooled vectors, then Normalize (or --normalize)
  out.values = st->apply_dense(out.values.f32(), n);
  EmbedOptions head_opts = opts;
  head_opts.normalize = opts.normalize || st->normalize;
  return finish_all(std::move(out), head_opts, names);
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path, const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->isa = options.isa.empty() ? active_isa() : parse_isa(options.isa);
  if (!isa_supported(impl->isa))
    fail("ISA ", isa_name(impl->isa), " is not supported by this CPU (best: ",
         isa_name(best_supported_isa()), ")");
  if (options.threads < 0) fail("threads must be >= 0 (0 = all cores), got ", options.threads);
  if (options.threads > max_threads())
    fail("threads ", options.threads, " is over the maximum of ", max_threads(), " (",
         kThreadsPerCoreMax, " x the cores available)");
  impl->file = WeightFile::open(path);
  const WeightFile& f = *impl->file;
  impl->arch = f.architecture();
  const Architecture* arch = find_architecture(impl->arch);
  if (!arch)
    fail(path, ": unknown architecture '", impl->arch, "' (expected ", architecture_names(), ")");
  impl->model = arch->load(f, impl->isa);
  impl->preprocess = impl->model->preprocess();
  impl->tokenizer = impl->model->tokenizer();
  if (impl->tokenizer)
    impl->st = SentenceDefaults::load(f, impl->model->dim(), impl->tokenizer->max_length());
  f.release_resident_pages();  // the models hold packed copies of what they use
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

const std::string& Model::architecture() const { return impl_->arch; }
bool Model::is_image_model() const { return impl_->image(); }
bool Model::is_text_model() const { return impl_->text(); }
int Model::threads() const { return impl_->pool->num_threads(); }
std::string Model::isa() const { return isa_name(impl_->isa); }
int64_t Model::dim() const { return impl_->st ? impl_->st->dim : impl_->model->dim(); }
Pooling Model::default_pooling() const {
  return impl_->st ? parse_pooling(impl_->st->pooling) : to_pooling(impl_->model->default_pool());
}
std::vector<std::string> Model::layers() const { return impl_->model->layers(); }
bool Model::has_head() const { return impl_->model->has_head(); }
int Model::max_length() const {
  if (impl_->st) return impl_->st->max_length;  // sentence-transformers' max_seq_length
  return impl_->tokenizer ? impl_->tokenizer->max_length() : 0;
}
int Model::image_size() const { return impl_->preprocess ? impl_->preprocess->crop : 0; }
float Model::logit_scale() const { return impl_->model->logit_scale(); }
double Model::forward_flops(int64_t batch, int64_t seq_len, int64_t image_h, int64_t image_w) const {
  return impl_->model->forward_flops(batch, seq_len, image_h, image_w);
}

static void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

static int batch_size(const EmbedOptions& opts) {
  if (opts.batch < 1) fail("batch size must be >= 1, got ", opts.batch);
  return opts.batch;
}

// Preprocesses `count` images produced by get(i) in batches and runs them.
template <typename GetImage>
static std::vector<Embedding> embed_images(const Model::Impl& m, size_t count, GetImage get,
                                           const EmbedOptions& opts,
                                           const std::vector<std::string>& names) {
  require(m.image(), "this is a text model: use embed_text");
  const int64_t s = m.preprocess->crop, plane = 3 * s * s;
  const size_t bs = static_cast<size_t>(batch_size(opts));
  std::vector<Embedding> out;
  out.reserve(count);
  for (size_t b = 0; b < count; b += bs) {
    const size_t n = std::min(bs, count - b);
    Tensor x({static_cast<int64_t>(n), 3, s, s});
    for (size_t i = 0; i < n; ++i) {
      Tensor one = preprocess(get(b + i), *m.preprocess);
      std::memcpy(x.f32() + i * plane, one.f32(), plane * sizeof(float));
    }
    std::vector<std::string> batch_names(names.begin() + b, names.begin() + b + n);
    for (auto& e : m.run_images(x, opts, batch_names)) out.push_back(std::move(e));
  }
  return out;
}

Embedding Model::embed_image_file(const std::string& path, const EmbedOptions& opts) const {
  return embed_image_files({path}, opts).at(0);
}

std::vector<Embedding> Model::embed_image_files(const std::vector<std::string>& paths,
                                                const EmbedOptions& opts) const {
  return embed_images(
      *impl_, paths.size(), [&](size_t i) { return load_image(paths[i]); }, opts, paths);
}

Embedding Model::embed_image_bytes(const uint8_t* data, size_t size, const EmbedOptions& opts) const {
  if (data == nullptr || size == 0) fail("image bytes: empty input");
  return embed_images(
             *impl_, 1, [&](size_t) { return decode_image(data, size, "image bytes"); }, opts,
             {"image bytes"})
      .at(0);
}

Embedding Model::embed_image_rgb(const uint8_t* rgb, int width, int height,
                                 const EmbedOptions& opts) const {
  if (rgb == nullptr) fail("raw RGB image: null pixel pointer");
  if (width < 1 || height < 1 || int64_t(width) * height > kMaxImagePixels)
    fail("raw RGB image: size ", width, "x", height, " is out of range");
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.assign(rgb, rgb + size_t(width) * height * 3);
  return embed_images(*impl_, 1, [&](size_t) { return img; }, opts, {"raw RGB image"}).at(0);
}

std::vector<Embedding> Model::embed_preprocessed(const float* nchw, int64_t n, int64_t h, int64_t w,
                                                 const EmbedOptions& opts) const {
  require(impl_->image(), "this is a text model: embed_preprocessed takes images");
  if (nchw == nullptr || n < 1 || h < 1 || w < 1)
    fail("preprocessed input: null data or empty shape [", n, ", 3, ", h, ", ", w, "]");
  const int64_t fixed = impl_->model->fixed_image_size();
  if (fixed && (h != fixed || w != fixed))
    fail("preprocessed input: ", impl_->arch, " takes ", fixed, "x", fixed, " images, got ", h, "x",
         w);
  const int64_t bs = batch_size(opts), plane = 3 * h * w;
  const auto names = default_names(n, "image");
  std::vector<Embedding> out;
  for (int64_t b = 0; b < n; b += bs) {
    const int64_t k = std::min(bs, n - b);
    Tensor x({k, 3, h, w});
    std::memcpy(x.f32(), nchw + b * plane, k * plane * sizeof(float));
    std::vector<std::string> batch_names(names.begin() + b, names.begin() + b + k);
    for (auto& e : impl_->run_images(x, opts, batch_names)) out.push_back(std::move(e));
  }
  return out;
}

Embedding Model::preprocess_image_bytes(const uint8_t* data, size_t size) const {
  require(impl_->image(), "this is a text model: it takes no images");
  if (data == nullptr || size == 0) fail("image bytes: empty input");
  Tensor x = preprocess(decode_image(data, size, "image bytes"), *impl_->preprocess);
  Embedding e;
  e.shape = {x.dim(0), x.dim(1), x.dim(2)};
  e.values.assign(x.f32(), x.f32() + x.numel());
  return e;
}

int64_t Model::vocab_size() const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  return static_cast<int64_t>(impl_->tokenizer->vocab_size());
}

std::string Model::token_text(int32_t id) const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  if (id < 0 || id >= vocab_size()) fail("token id ", id, " is outside the vocabulary");
  return impl_->tokenizer->token(id);
}

bool Model::is_special_token(int32_t id) const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  return impl_->tokenizer->is_special(id);
}

std::vector<int32_t> Model::tokenize(const std::string& text, bool truncate, int max_length) const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  return tokenize_checked(*impl_->tokenizer, text, truncate, max_length);
}

Embedding Model::embed_text(const std::string& text, const EmbedOptions& opts) const {
  return embed_texts({text}, opts).at(0);
}

// The prompt prepended to every text: a named one of the file's, the text given, or the file's
// default prompt; "" for none.
std::string Model::Impl::prompt_for(const EmbedOptions& opts) const {
  if (!opts.prompt.empty() && !opts.prompt_text.empty())
    fail("give --prompt NAME or --prompt-text TEXT, not both");
  if (!opts.prompt.empty()) {
    if (!st)
      fail("prompt '", opts.prompt, "': this model has no named prompts (use --prompt-text)");
    return st->prompt(opts.prompt);
  }
  if (opts.prompt_text.empty() && st && !st->default_prompt.empty())
    return st->prompt(st->default_prompt);
  return opts.prompt_text;
}

std::vector<int32_t> Model::tokenize(const std::string& text, const EmbedOptions& opts) const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  // sentence-transformers cuts every text at its max_seq_length: the file's default unless
  // --max-length is given.
  bool truncate = opts.truncate;
  int max_length = opts.max_length;
  if (impl_->st && max_length == 0) {
    max_length = impl_->st->max_length;
    truncate = true;
  }
  return tokenize(impl_->prompt_for(opts) + text, truncate, max_length);
}

int Model::prompt_tokens(const EmbedOptions& opts) const {
  require(impl_->tokenizer != nullptr, "this is an image model: it has no tokenizer");
  const std::string prompt = impl_->prompt_for(opts);
  if (prompt.empty() || !impl_->st || impl_->st->include_prompt) return 0;
  // What tokenizing the prompt alone gives before its [SEP]: [CLS] and the prompt's pieces, the
  // positions sentence-transformers masks out of the pooling.
  return static_cast<int>(tokenize(prompt, true, 0).size()) - 1;
}

std::vector<Embedding> Model::embed_texts(const std::vector<std::string>& texts,
                                          const EmbedOptions& opts) const {
  require(is_text_model(), "this is an image model: use embed_image_*");
  EmbedOptions o = opts;
  o.pool_skip_tokens = prompt_tokens(opts);
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      ids.push_back(tokenize(texts[i], opts));
    } catch (const Error& e) {
      fail("text ", i + 1, ": ", e.what());
    }
  }
  return embed_token_ids(ids, o);
}

std::vector<Embedding> Model::embed_token_ids(const std::vector<std::vector<int32_t>>& ids,
                                              const EmbedOptions& opts) const {
  require(is_text_model(), "this is an image model: it takes no token ids");
  if (opts.pool_skip_tokens < 0)
    fail("pool_skip_tokens must be >= 0, got ", opts.pool_skip_tokens);
  const int32_t skip = opts.pool_skip_tokens;
  return impl_->embed_ids(ids, opts, std::vector<int32_t>(skip > 0 ? ids.size() : 0, skip));
}

std::vector<Embedding> Model::Impl::embed_ids(const std::vector<std::vector<int32_t>>& ids,
                                              const EmbedOptions& opts,
                                              const std::vector<int32_t>& pool_from) const {
  const size_t bs = static_cast<size_t>(batch_size(opts));
  const int64_t vocab = static_cast<int64_t>(tokenizer->vocab_size());
  const auto names = default_names(ids.size(), "text");
  for (size_t i = 0; i < ids.size(); ++i)
    for (int32_t id : ids[i])
      if (id < 0 || id >= vocab) fail(names[i], ": token id ", id, " is outside the vocabulary (", vocab, ")");
  std::vector<Embedding> out;
  out.reserve(ids.size());
  for (size_t b = 0; b < ids.size(); b += bs) {
    const size_t n = std::min(bs, ids.size() - b);
    std::vector<std::vector<int32_t>> batch(ids.begin() + b, ids.begin() + b + n);
    std::vector<std::string> batch_names(names.begin() + b, names.begin() + b + n);
    std::vector<int32_t> from;
    if (!pool_from.empty()) from.assign(pool_from.begin() + b, pool_from.begin() + b + n);
    for (auto& e : run_tokens(batch, opts, batch_names, from)) out.push_back(std::move(e));
  }
  return out;
}

// ---- similarity --------------------------------------------------------------------------------

namespace {

// Rows of `e` as [n, D] (each Embedding one D-vector); `what` names the operand in messages.
int64_t check_vectors(const std::vector<Embedding>& e, const char* what, int64_t d) {
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i].shape.size() != 1)
      fail("similarity: ", what, " ", i + 1, " is not one vector (shape rank ", e[i].shape.size(),
           "): pool it first");
    if (d < 0) d = e[i].shape[0];
    if (e[i].shape[0] != d || static_cast<int64_t>(e[i].values.size()) != d)
      fail("similarity: ", what, " ", i + 1, " has width ", e[i].shape[0], ", expected ", d);
  }
  return d;
}

}  // namespace

std::vector<float> cosine_matrix(const std::vector<Embedding>& a, const std::vector<Embedding>& b) {
  const int64_t d = check_vectors(a, "row", -1);
  check_vectors(b, "column", a.empty() ? -1 : d);
  std::vector<double> inv_b(b.size());
  for (size_t j = 0; j < b.size(); ++j) {
    double ss = 0;
    for (float v : b[j].values) ss += double(v) * v;
    inv_b[j] = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
  }
  std::vector<float> out(a.size() * b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    double ss = 0;
    for (float v : a[i].values) ss += double(v) * v;
    const double inv_a = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
    for (size_t j = 0; j < b.size(); ++j) {
      double dot = 0;
      for (int64_t k = 0; k < d; ++k) dot += double(a[i].values[k]) * b[j].values[k];
      out[i * b.size() + j] = static_cast<float>(dot * inv_a * inv_b[j]);
    }
  }
  return out;
}

std::vector<float> zero_shot_softmax(const std::vector<float>& cosine, int64_t cols,
                                     float logit_scale) {
  if (cols < 1 || cosine.size() % static_cast<size_t>(cols) != 0)
    fail("zero_shot_softmax: ", cosine.size(), " values are not rows of ", cols, " columns");
  if (!(logit_scale > 0) || !std::isfinite(logit_scale))
    fail("zero_shot_softmax: logit scale ", logit_scale,
         " must be positive (this model has no logit_scale; CLIP's is about 100)");
  std::vector<float> out(cosine.size());
  for (size_t r = 0; r < cosine.size() / cols; ++r) {
    const float* c = cosine.data() + r * cols;
    double mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, double(logit_scale) * c[j]);
    double sum = 0;
    std::vector<double> e(static_cast<size_t>(cols));
    for (int64_t j = 0; j < cols; ++j) sum += (e[j] = std::exp(double(logit_scale) * c[j] - mx));
    for (int64_t j = 0; j < cols; ++j) out[r * cols + j] = static_cast<float>(e[j] / sum);
  }
  return out;
}

}  // namespace tern
