// CLIP's two towers on Tern's kernels. Tensor names and config keys: docs/FORMAT.md, "clip".
#include "models/clip.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/bpe_tokenizer.hpp"
#include "engine/core/error.hpp"
#include "models/common.hpp"
#include "models/config.hpp"
#include "models/transformer_encoder.hpp"

namespace tern {

namespace {

struct ClipConfig {
  int64_t embed_dim = 0;
  // vision
  int64_t image_size = 0, patch_size = 0, vision_width = 0, vision_layers = 0, vision_heads = 0,
          vision_mlp = 0;
  // text
  int64_t context_length = 0, vocab_size = 0, text_width = 0, text_layers = 0, text_heads = 0,
          text_mlp = 0;
  gemm::Activation act = gemm::Activation::quick_gelu;
  float eps = 1e-5f;
  int64_t grid() const { return image_size / patch_size; }
  int64_t tokens() const { return 1 + grid() * grid(); }
};

ClipConfig parse_config(const WeightFile& file) {
  const ModelConfig j(file, "clip");
  ClipConfig c;
  c.embed_dim = j.integer("embed_dim", 1, 1 << 16);
  c.image_size = j.integer("image_size", 1, 8192);
  c.patch_size = j.integer("patch_size", 1, 8192);
  c.vision_width = j.integer("vision_width", 1, 1 << 16);
  c.vision_layers = j.integer("vision_layers", 1, 1024);
  c.vision_heads = j.integer("vision_heads", 1, 1024);
  c.vision_mlp = j.integer("vision_mlp", 1, 1 << 18);
  c.context_length = j.integer("context_length", 2, 1 << 16);
  c.vocab_size = j.integer("vocab_size", 1, 1 << 24);
  c.text_width = j.integer("text_width", 1, 1 << 16);
  c.text_layers = j.integer("text_layers", 1, 1024);
  c.text_heads = j.integer("text_heads", 1, 1024);
  c.text_mlp = j.integer("text_mlp", 1, 1 << 18);
  const std::string act = j.choice("activation", {"quick_gelu", "gelu"}, "quick_gelu");
  c.act = act == "gelu" ? gemm::Activation::gelu : gemm::Activation::quick_gelu;
  c.eps = j.number("eps", 0, 1, c.eps);
  if (c.image_size % c.patch_size != 0)
    j.invalid("image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " +
              std::to_string(c.patch_size));
  if (c.vision_width % c.vision_heads != 0)
    j.invalid("vision_width " + std::to_string(c.vision_width) +
              " is not a multiple of vision_heads " + std::to_string(c.vision_heads));
  if (c.text_width % c.text_heads != 0)
    j.invalid("text_width " + std::to_string(c.text_width) + " is not a multiple of text_heads " +
              std::to_string(c.text_heads));
  if (c.grid() * c.grid() > (1 << 20)) j.invalid("too many patches");
  return c;
}

// The "clip" preprocessing profile: OpenAI's _transform(S): Resize(S, BICUBIC) of the shorter
// side on the PIL image (antialiased), center crop S, CLIP's mean and std. The exporter writes it
// in full into the file's "preprocess" ({"profile": "clip", ...}); this is the default for a file
// without one. (It lives with the model, not in engine/core's profile table, which names no
// architecture.)
PreprocessConfig clip_profile(int64_t image_size) {
  PreprocessConfig cfg;
  cfg.profile = "clip";
  cfg.resize = static_cast<int>(image_size);
  cfg.crop = static_cast<int>(image_size);
  cfg.filter = ResizeFilter::bicubic;
  const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  std::copy(mean, mean + 3, cfg.mean);
  std::copy(std, std + 3, cfg.std);
  return cfg;
}

// A bias-free projection y[rows, out] = x[rows, in] · Wᵀ, W [out, in].
struct Projection {
  gemm::PackedB w;
  int64_t in = 0, out = 0;
};

Projection load_projection(const WeightFile& file, Isa isa, const std::string& name, int64_t out,
                           int64_t in) {
  const Tensor w = file.get(name, {out, in});
  return {gemm::PackedB::pack(isa, w.f32(), in, out, in, /*b_is_nk=*/true), in, out};
}

void project(Parallel* par, const Projection& p, int64_t rows, const float* x, float* y) {
  gemm::gemm(par, rows, x, p.in, p.w, y, p.out);
}

std::vector<transformer::EncoderLayer> load_layers(const WeightFile& file, Isa isa,
                                                   const std::string& prefix, int64_t count,
                                                   const transformer::EncoderDims& dims, float eps,
                                                   const char* key) {
  std::vector<transformer::EncoderLayer> layers;
  for (int64_t i = 0; i < count; ++i)
    layers.push_back(transformer::load_encoder_layer(
        file, isa, prefix + "layers." + std::to_string(i) + ".", dims, eps));
  if (file.has(prefix + "layers." + std::to_string(count) + ".attn.qkv.weight"))
    fail(file.path(), ": clip config says ", key, " = ", count, " but the file has more layers");
  return layers;
}

}  // namespace

std::unique_ptr<TextTokenizer> load_clip_tokenizer(const WeightFile& file) {
  return std::make_unique<BpeTokenizer>(file.metadata("vocab"), file.metadata("merges"),
                                        BpeConfig::from_json(file.metadata("tokenizer")));
}

struct Clip::Impl {
  Isa isa;
  ClipConfig cfg;
  // vision
  transformer::EncoderDims vdims;
  Projection patch_embed;  // conv1 as [W, 3·P·P] over flattened patches, no bias
  Tensor class_token;      // [W]
  Tensor vpos;             // [1 + G², W]
  transformer::Norm ln_pre, ln_post;
  std::vector<transformer::EncoderLayer> vlayers;
  Projection vproj;  // [E, W]
  PreprocessConfig preprocess;
  // text
  transformer::EncoderDims tdims;
  Tensor token_embed;  // [V, Wt]
  Tensor tpos;         // [context, Wt]
  std::vector<transformer::EncoderLayer> tlayers;
  transformer::Norm ln_final;
  Projection tproj;  // [E, Wt]
  std::unique_ptr<TextTokenizer> tokenizer;
  float logit_scale = 0.f;  // exp of the stored value; 0 when the file has none

  int64_t depth() const { return std::max(cfg.vision_layers, cfg.text_layers); }
  // Blocks to run in a tower of `layers` blocks for the request; checks the request.
  int64_t blocks(const ForwardRequest& req, int64_t layers, const char* tower) const;
};

int64_t Clip::Impl::blocks(const ForwardRequest& req, int64_t layers, const char* tower) const {
  if (req.logits) fail("clip has no classification head: --logits does not apply");
  if (req.layer == ForwardRequest::kFinal) return layers;
  if (req.pool == PoolMode::automatic)
    fail(
        "clip: the projected embedding comes from the final layer; with --layer give --pooling "
        "(none, cls, mean or max) for the ",
        tower, " tower's tokens");
  if (req.layer > layers)
    fail("layer ", req.layer, " does not exist in clip's ", tower, " tower (0..", layers, ")");
  return req.layer;
}

Clip::Clip(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
  const ClipConfig& c = m.cfg;
  const int64_t W = c.vision_width, P = c.patch_size, Wt = c.text_width, E = c.embed_dim;
  // vision
  m.vdims = {W, c.vision_heads, c.vision_mlp};
  {
    // The conv weight [W, 3, P, P] is a [W, 3·P·P] matrix over patches flattened as (c, y, x).
    const Tensor w = file.get("visual.patch_embed.weight", {W, 3, P, P});
    m.patch_embed = {gemm::PackedB::pack(isa, w.f32(), 3 * P * P, W, 3 * P * P, true), 3 * P * P,
                     W};
  }
  m.class_token = file.get("visual.class_token", {W});
  m.vpos = file.get("visual.pos_embed", {c.tokens(), W});
  m.ln_pre = transformer::load_norm(file, "visual.ln_pre", W, c.eps);
  m.vlayers = load_layers(file, isa, "visual.", c.vision_layers, m.vdims, c.eps, "vision_layers");
  m.ln_post = transformer::load_norm(file, "visual.ln_post", W, c.eps);
  m.vproj = load_projection(file, isa, "visual.proj.weight", E, W);
  m.preprocess = file.has_metadata("preprocess")
                     ? PreprocessConfig::from_json(file.metadata("preprocess"))
                     : clip_profile(c.image_size);
  if (m.preprocess.crop != c.image_size)
    fail(file.path(), ": clip preprocess crop ", m.preprocess.crop, " differs from image_size ",
         c.image_size);
  // text
  m.tdims = {Wt, c.text_heads, c.text_mlp};
  m.token_embed = file.get("text.token_embed", {c.vocab_size, Wt});
  m.tpos = file.get("text.pos_embed", {c.context_length, Wt});
  m.tlayers = load_layers(file, isa, "text.", c.text_layers, m.tdims, c.eps, "text_layers");
  m.ln_final = transformer::load_norm(file, "text.ln_final", Wt, c.eps);
  m.tproj = load_projection(file, isa, "text.proj.weight", E, Wt);
  if (file.has("logit_scale")) {
    const float s = file.get("logit_scale", {1}).f32()[0];
    if (!std::isfinite(s) || s > 20.f)
      fail(file.path(), ": clip logit_scale ", s, " is out of range (log scale, at most 20)");
    m.logit_scale = std::exp(s);
  }
  m.tokenizer = load_clip_tokenizer(file);
  if (m.tokenizer->vocab_size() != static_cast<size_t>(c.vocab_size))
    fail(file.path(), ": clip vocab has ", m.tokenizer->vocab_size(),
         " tokens but the config says vocab_size = ", c.vocab_size);
  if (m.tokenizer->max_length() > c.context_length)
    fail(file.path(), ": clip tokenizer max_length ", m.tokenizer->max_length(),
         " exceeds context_length ", c.context_length);
}

Clip::~Clip() = default;

int64_t Clip::dim() const {
  return impl_->cfg.embed_dim;
}
std::vector<std::string> Clip::layers() const {
  return numbered_layers(impl_->depth());
}
int64_t Clip::fixed_image_size() const {
  return impl_->cfg.image_size;
}
const PreprocessConfig* Clip::preprocess() const {
  return &impl_->preprocess;
}
const TextTokenizer* Clip::tokenizer() const {
  return impl_->tokenizer.get();
}
int64_t Clip::max_positions() const {
  return impl_->cfg.context_length;
}
float Clip::logit_scale() const {
  return impl_->logit_scale;
}

double Clip::forward_flops(int64_t batch, int64_t seq_len, int64_t h, int64_t w) const {
  const ClipConfig& c = impl_->cfg;
  double macs = 0;
  if (h > 0 && w > 0) {
    const double patches = double(h / c.patch_size) * double(w / c.patch_size);
    macs += patches * c.vision_width * 3 * c.patch_size * c.patch_size +
            c.vision_layers * encoder_block_macs(patches + 1, c.vision_width, c.vision_mlp) +
            double(c.vision_width) * c.embed_dim;
  }
  if (seq_len > 0)
    macs += c.text_layers * encoder_block_macs(double(seq_len), c.text_width, c.text_mlp) +
            double(c.text_width) * c.embed_dim;
  return 2.0 * macs * double(batch);
}

ForwardOutput Clip::forward_images(Parallel* par, const Tensor& x,
                                   const ForwardRequest& req) const {
  const Impl& m = *impl_;
  const ClipConfig& c = m.cfg;
  const int64_t S = c.image_size, P = c.patch_size, G = c.grid(), T = c.tokens();
  const int64_t W = c.vision_width, K = 3 * P * P, E = c.embed_dim;
  if (x.rank() != 4 || x.dim(1) != 3 || x.dim(2) != S || x.dim(3) != S)
    fail("clip: input must be [N, 3, ", S, ", ", S, "], got ", x.shape_string());
  if (!x.is_contiguous()) fail("clip: input tensor must be contiguous");
  const int64_t blocks = m.blocks(req, c.vision_layers, "vision");
  const bool final = req.layer == ForwardRequest::kFinal;
  const bool projected = req.pool == PoolMode::automatic;
  const int64_t N = x.dim(0);
  Tensor h({N, T, W});
  if (N == 0) {
    if (projected) return ForwardOutput{ForwardOutput::Kind::pooled, Tensor({0, E}), {}};
    return token_output(std::move(h), nullptr, req, 1);
  }
  const float* img = x.f32();

  // patches [N·G², 3·P·P]: non-overlapping P×P patches, each flattened (c, y, x) like the conv
  // weight, patch index gy·G + gx
  std::vector<float> patches(static_cast<size_t>(N * G * G * K));
  image_patches(par, img, N, S, P, patches.data());
  // tok [N·G², W] = patches · Wconvᵀ   (conv1, stride P, no bias)
  std::vector<float> tok(static_cast<size_t>(N * G * G * W));
  project(par, m.patch_embed, N * G * G, patches.data(), tok.data());

  // h [N, T, W]: h[n, 0] = class + pos[0]; h[n, 1 + p] = tok[n, p] + pos[1 + p]
  float* hp = h.f32();
  const float* pos = m.vpos.f32();
  const float* cls = m.class_token.f32();
  for (int64_t n = 0; n < N; ++n) {
    float* hn = hp + n * T * W;
    for (int64_t i = 0; i < W; ++i) hn[i] = cls[i] + pos[i];
    const float* tn = tok.data() + n * G * G * W;
    for (int64_t i = 0; i < G * G * W; ++i) hn[W + i] = tn[i] + pos[W + i];
  }
  // h = ln_pre(h)
  transformer::layer_norm(m.isa, par, m.ln_pre, N * T, W, hp, hp);

  // pre-norm blocks: h += Attn(LN_1(h)); h += MLP(LN_2(h)). When only the class token is read
  // (the projected embedding, --pooling cls), the last block computes it alone
  // (transformer_encoder.hpp, keep): the other rows of h stay stale.
  transformer::EncoderScratch scratch(N * T, m.vdims);
  const transformer::EncoderInput in{N, T, nullptr};
  const bool cls_only = (projected || req.pool == PoolMode::cls) && blocks > 0;
  const std::vector<int64_t> cls_pos(static_cast<size_t>(N), 0);
  for (int64_t i = 0; i < blocks; ++i)
    transformer::pre_norm_layer(m.isa, par, m.vlayers[i], m.vdims, in, hp, scratch, c.act,
                                cls_only && i + 1 == blocks ? cls_pos.data() : nullptr);

  if (!cls_only) {
    // explicit pooling: every token through ln_post at the final layer, then pool
    if (final) transformer::layer_norm(m.isa, par, m.ln_post, N * T, W, hp, hp);
    return token_output(std::move(h), nullptr, req, /*mean skips the class token*/ 1);
  }
  // cls [N, W] = ln_post(h[:, 0]) (at the final layer);  out [N, E] = cls · projᵀ
  Tensor cls_rows({N, W});
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(cls_rows.f32() + n * W, hp + n * T * W, sizeof(float) * W);
  if (final) transformer::layer_norm(m.isa, par, m.ln_post, N, W, cls_rows.f32(), cls_rows.f32());
  if (!projected) return ForwardOutput{ForwardOutput::Kind::pooled, std::move(cls_rows), {}};
  ForwardOutput out;
  out.values = Tensor({N, E});
  project(par, m.vproj, N, cls_rows.f32(), out.values.f32());
  return out;
}

ForwardOutput Clip::forward_tokens(Parallel* par, const TokenBatch& tb,
                                   const ForwardRequest& req) const {
  const Impl& m = *impl_;
  const ClipConfig& c = m.cfg;
  const int64_t Wt = c.text_width, E = c.embed_dim, batch = tb.n, seq_len = tb.seq_len;
  const int32_t* ids = tb.ids;
  const int64_t blocks = m.blocks(req, c.text_layers, "text");
  const bool final = req.layer == ForwardRequest::kFinal;
  const bool projected = req.pool == PoolMode::automatic;
  if (batch < 0 || seq_len < 0) fail("clip: negative batch or sequence length");
  if (seq_len > c.context_length)
    fail("clip: sequence length ", seq_len, " exceeds the context length ", c.context_length);
  std::vector<int32_t> lens(static_cast<size_t>(batch), static_cast<int32_t>(seq_len));
  std::vector<int64_t> eot(static_cast<size_t>(batch), 0);
  for (int64_t b = 0; b < batch; ++b) {
    if (tb.lengths) lens[b] = tb.lengths[b];
    if (lens[b] < 0 || lens[b] > seq_len)
      fail("clip: length ", lens[b], " of sequence ", b, " is outside [0, ", seq_len, "]");
    if (projected && lens[b] == 0) fail("clip: sequence ", b, " has no tokens");
    for (int64_t t = 0; t < lens[b]; ++t) {
      const int32_t id = ids[b * seq_len + t];
      if (id < 0 || id >= c.vocab_size)
        fail("clip: token id ", id, " at sequence ", b, " position ", t,
             " is outside the vocabulary [0, ", c.vocab_size, ")");
      // text.argmax(dim=-1): the first position of the highest id (the end-of-text token)
      if (id > ids[b * seq_len + eot[b]]) eot[b] = t;
    }
  }
  const int64_t rows = batch * seq_len;
  Tensor h({batch, seq_len, Wt});
  if (rows == 0) {
    if (projected) return ForwardOutput{ForwardOutput::Kind::pooled, Tensor({batch, E}), {}};
    return token_output(std::move(h), lens.data(), req, 0);
  }
  float* x = h.f32();

  // x [B·T, Wt] = token_embedding[ids] + positional_embedding[t]; padded rows stay 0
  const float* tok = m.token_embed.f32();
  const float* pos = m.tpos.f32();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < lens[b]; ++t) {
      const float* w = tok + int64_t{ids[b * seq_len + t]} * Wt;
      const float* p = pos + t * Wt;
      float* xr = x + (b * seq_len + t) * Wt;
      for (int64_t i = 0; i < Wt; ++i) xr[i] = w[i] + p[i];
    }

  // causal pre-norm blocks: token t sees tokens <= t (so padding after a text changes nothing)
  transformer::EncoderScratch scratch(rows, m.tdims);
  transformer::EncoderInput in{batch, seq_len, lens.data()};
  in.causal = true;
  // The projected embedding reads the end-of-text token alone: the last block computes it alone
  // (transformer_encoder.hpp, keep).
  for (int64_t i = 0; i < blocks; ++i)
    transformer::pre_norm_layer(m.isa, par, m.tlayers[i], m.tdims, in, x, scratch, c.act,
                                projected && i + 1 == blocks ? eot.data() : nullptr);

  if (!projected) {
    if (final) transformer::layer_norm(m.isa, par, m.ln_final, rows, Wt, x, x);
    for (int64_t b = 0; b < batch; ++b)  // rows past each length are zero
      std::memset(x + (b * seq_len + lens[b]) * Wt, 0, sizeof(float) * (seq_len - lens[b]) * Wt);
    return token_output(std::move(h), lens.data(), req, 0);
  }
  // feats [B, Wt] = ln_final(x[b, eot_b]);  out [B, E] = feats · text_projectionᵀ
  std::vector<float> feats(static_cast<size_t>(batch * Wt));
  for (int64_t b = 0; b < batch; ++b)
    std::memcpy(feats.data() + b * Wt, x + (b * seq_len + eot[b]) * Wt, sizeof(float) * Wt);
  transformer::layer_norm(m.isa, par, m.ln_final, batch, Wt, feats.data(), feats.data());
  ForwardOutput out;
  out.values = Tensor({batch, E});
  project(par, m.tproj, batch, feats.data(), out.values.f32());
  return out;
}

}  // namespace tern
