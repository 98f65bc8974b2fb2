// torchvision VisionTransformer on Tern's kernels. Tensor names: docs/FORMAT.md.
#include "models/vit.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "models/config.hpp"
#include "models/common.hpp"
#include "models/transformer_encoder.hpp"

namespace tern {

namespace {

struct VitConfig {
  int64_t image_size = 0, patch_size = 0, num_layers = 0, num_heads = 0, hidden_dim = 0,
          mlp_dim = 0, num_classes = 0;
  float eps = 1e-6f;
  int64_t grid() const { return image_size / patch_size; }
  int64_t tokens() const { return 1 + grid() * grid(); }
};

VitConfig parse_config(const WeightFile& file) {
  const ModelConfig j(file, "vit");
  VitConfig c;
  c.image_size = j.integer("image_size", 1, 8192);
  c.patch_size = j.integer("patch_size", 1, 8192);
  c.num_layers = j.integer("num_layers", 1, 1024);
  c.num_heads = j.integer("num_heads", 1, 1024);
  c.hidden_dim = j.integer("hidden_dim", 1, 1 << 16);
  c.mlp_dim = j.integer("mlp_dim", 1, 1 << 18);
  c.num_classes = j.integer("num_classes", 0, 1 << 24, 0);
  if (c.image_size % c.patch_size != 0)
    j.invalid("image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " +
              std::to_string(c.patch_size));
  if (c.hidden_dim % c.num_heads != 0)
    j.invalid("hidden_dim " + std::to_string(c.hidden_dim) + " is not a multiple of num_heads " +
              std::to_string(c.num_heads));
  if (c.grid() * c.grid() > (1 << 20)) j.invalid("too many patches");
  c.eps = j.number("eps", 0, 1, c.eps);
  return c;
}

}  // namespace

struct ViT::Impl {
  Isa isa;
  VitConfig cfg;
  transformer::EncoderDims dims;
  transformer::Linear patch_embed;  // conv_proj as [D, 3·P·P] over flattened patches
  Tensor class_token;               // [D]
  Tensor pos_embed;                 // [1 + G², D]
  std::vector<transformer::EncoderLayer> layers;
  transformer::Norm norm;
  transformer::Linear head;  // [classes, D], when kept
  PreprocessConfig preprocess;
};

ViT::ViT(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
  m.preprocess = preprocess_from_file(file, "torchvision-v1");
  const VitConfig& c = m.cfg;
  const int64_t D = c.hidden_dim, P = c.patch_size;
  m.dims = {D, c.num_heads, c.mlp_dim};
  {
    // The conv weight [D, 3, P, P] is a [D, 3·P·P] matrix over patches flattened as (c, y, x).
    const Tensor w = file.get("patch_embed.weight", {D, 3, P, P});
    m.patch_embed.w = gemm::PackedB::pack(isa, w.f32(), 3 * P * P, D, 3 * P * P, true);
    m.patch_embed.b = file.get("patch_embed.bias", {D});
    m.patch_embed.in = 3 * P * P;
    m.patch_embed.out = D;
  }
  m.class_token = file.get("class_token", {D});
  m.pos_embed = file.get("pos_embed", {c.tokens(), D});
  for (int64_t i = 0; i < c.num_layers; ++i)
    m.layers.push_back(transformer::load_encoder_layer(
        file, isa, "layers." + std::to_string(i) + ".", m.dims, c.eps));
  if (file.has("layers." + std::to_string(c.num_layers) + ".attn.qkv.weight"))
    fail(file.path(), ": vit config says num_layers = ", c.num_layers,
         " but the file has more layers");
  m.norm = transformer::load_norm(file, "norm", D, c.eps);
  if (c.num_classes > 0) m.head = transformer::load_linear(file, isa, "head", c.num_classes, D);
}

ViT::~ViT() = default;

bool ViT::has_head() const {
  return impl_->cfg.num_classes > 0;
}
int64_t ViT::fixed_image_size() const {
  return impl_->cfg.image_size;
}
int64_t ViT::dim() const {
  return impl_->cfg.hidden_dim;
}
std::vector<std::string> ViT::layers() const {
  return numbered_layers(impl_->cfg.num_layers);
}
const PreprocessConfig* ViT::preprocess() const {
  return &impl_->preprocess;
}

double ViT::forward_flops(int64_t batch, int64_t, int64_t h, int64_t w) const {
  const VitConfig& c = impl_->cfg;
  const double patches = double(h / c.patch_size) * double(w / c.patch_size);
  const double macs = patches * c.hidden_dim * 3 * c.patch_size * c.patch_size  // patch conv
                      + c.num_layers * encoder_block_macs(patches + 1, c.hidden_dim, c.mlp_dim);
  return 2.0 * macs * double(batch);
}

ForwardOutput ViT::forward_images(Parallel* par, const Tensor& x, const ForwardRequest& req) const {
  const Impl& m = *impl_;
  const VitConfig& c = m.cfg;
  const int64_t S = c.image_size, P = c.patch_size, G = c.grid(), T = c.tokens();
  const int64_t D = c.hidden_dim, K = 3 * P * P;
  if (x.rank() != 4 || x.dim(1) != 3 || x.dim(2) != S || x.dim(3) != S)
    fail("vit: input must be [N, 3, ", S, ", ", S, "], got ", x.shape_string());
  if (!x.is_contiguous()) fail("vit: input tensor must be contiguous");
  const bool final = req.layer == ForwardRequest::kFinal;
  const int64_t blocks = final ? c.num_layers : req.layer;
  if (req.logits) {
    if (!final || (req.pool != PoolMode::cls))
      fail("--logits uses the final class token; --pooling ", pool_mode_name(req.pool),
           final ? "" : " and --layer", " do not apply");
    if (!has_head())
      fail("vit: this weight file has no classification head (export with --keep-head)");
  }
  const int64_t N = x.dim(0);
  Tensor out({N, T, D});
  if (N == 0) return token_output(std::move(out), nullptr, req, 1);
  const float* img = x.f32();

  // patches [N·G², 3·P·P]: non-overlapping P×P patches, each flattened (c, y, x) like the conv
  // weight; patch index gy·G + gx (torchvision's flatten(2) order)
  std::vector<float> patches(static_cast<size_t>(N * G * G * K));
  image_patches(par, img, N, S, P, patches.data());
  // tok [N·G², D] = patches · Wconvᵀ + b   (conv_proj, stride P)
  std::vector<float> tok(static_cast<size_t>(N * G * G * D));
  transformer::linear(par, m.patch_embed, N * G * G, patches.data(), tok.data());

  // h [N, T, D]: h[n, 0] = class_token + pos[0]; h[n, 1 + p] = tok[n, p] + pos[1 + p]
  float* h = out.f32();
  const float* pos = m.pos_embed.f32();
  const float* cls = m.class_token.f32();
  for (int64_t n = 0; n < N; ++n) {
    float* hn = h + n * T * D;
    for (int64_t i = 0; i < D; ++i) hn[i] = cls[i] + pos[i];
    const float* tn = tok.data() + n * G * G * D;
    for (int64_t i = 0; i < G * G * D; ++i) hn[D + i] = tn[i] + pos[D + i];
  }

  // pre-norm blocks (all, or up to the requested one): h += Attn(LN_1(h)); h += MLP(LN_2(h)).
  // When only the class token is read (--pooling cls, the default, and the logits), the last
  // block computes it alone (transformer_encoder.hpp, keep): the other rows of h stay stale.
  transformer::EncoderScratch scratch(N * T, m.dims);
  const transformer::EncoderInput in{N, T, nullptr};
  const bool cls_only = req.pool == PoolMode::cls && blocks > 0;
  const std::vector<int64_t> cls_pos(static_cast<size_t>(N), 0);
  for (int64_t i = 0; i < blocks; ++i)
    transformer::pre_norm_layer(m.isa, par, m.layers[i], m.dims, in, h, scratch,
                                gemm::Activation::gelu,
                                cls_only && i + 1 == blocks ? cls_pos.data() : nullptr);
  if (!cls_only) {
    // h = LN(h)   (encoder.ln, every token), for the model's usual output
    if (final) transformer::layer_norm(m.isa, par, m.norm, N * T, D, h, h);
    return token_output(std::move(out), nullptr, req, /*mean skips cls*/ 1);
  }
  // cls [N, D] = LN(h[:, 0])   (encoder.ln at the final layer)
  Tensor cls_tokens({N, D});
  for (int64_t n = 0; n < N; ++n) std::memcpy(cls_tokens.f32() + n * D, h + n * T * D, D * 4);
  if (final) transformer::layer_norm(m.isa, par, m.norm, N, D, cls_tokens.f32(), cls_tokens.f32());
  if (!req.logits) return ForwardOutput{ForwardOutput::Kind::pooled, std::move(cls_tokens), {}};

  // logits [N, classes] = cls · headᵀ + b
  ForwardOutput scores;
  scores.values = Tensor({N, c.num_classes});
  transformer::linear(par, m.head, N, cls_tokens.f32(), scores.values.f32());
  return scores;
}

}  // namespace tern
