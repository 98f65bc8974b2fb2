// torchvision VisionTransformer on Tern's kernels. Tensor names: docs/FORMAT.md.
#include "models/vit.hpp"

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
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

int64_t config_int(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi,
                   const std::string& path, const int64_t* fallback = nullptr) {
  if (!j.contains(key)) {
    if (fallback) return *fallback;
    fail(path, ": vit config has no \"", key, "\"");
  }
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(path, ": vit config \"", key, "\" must be an integer in [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

VitConfig parse_config(const WeightFile& file) {
  const std::string& path = file.path();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file.metadata("config"));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": vit config is not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": vit config must be a JSON object");
  VitConfig c;
  c.image_size = config_int(j, "image_size", 1, 8192, path);
  c.patch_size = config_int(j, "patch_size", 1, 8192, path);
  c.num_layers = config_int(j, "num_layers", 1, 1024, path);
  c.num_heads = config_int(j, "num_heads", 1, 1024, path);
  c.hidden_dim = config_int(j, "hidden_dim", 1, 1 << 16, path);
  c.mlp_dim = config_int(j, "mlp_dim", 1, 1 << 18, path);
  const int64_t no_head = 0;
  c.num_classes = config_int(j, "num_classes", 0, 1 << 24, path, &no_head);
  if (c.image_size % c.patch_size != 0)
    fail(path, ": vit config: image_size ", c.image_size, " is not a multiple of patch_size ",
         c.patch_size);
  if (c.hidden_dim % c.num_heads != 0)
    fail(path, ": vit config: hidden_dim ", c.hidden_dim, " is not a multiple of num_heads ",
         c.num_heads);
  if (c.grid() * c.grid() > (1 << 20)) fail(path, ": vit config: too many patches");
  if (j.contains("eps")) {
    const auto& e = j.at("eps");
    if (!e.is_number() || !(e.get<double>() > 0) || e.get<double>() > 1)
      fail(path, ": vit config \"eps\" must be a number in (0, 1]");
    c.eps = e.get<float>();
  }
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
};

ViT::ViT(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
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
int64_t ViT::image_size() const {
  return impl_->cfg.image_size;
}
int64_t ViT::hidden() const {
  return impl_->cfg.hidden_dim;
}

Tensor ViT::forward(Parallel* par, const Tensor& x) const {
  const Impl& m = *impl_;
  const VitConfig& c = m.cfg;
  const int64_t S = c.image_size, P = c.patch_size, G = c.grid(), T = c.tokens();
  const int64_t D = c.hidden_dim, K = 3 * P * P;
  if (x.rank() != 4 || x.dim(1) != 3 || x.dim(2) != S || x.dim(3) != S)
    fail("vit: input must be [N, 3, ", S, ", ", S, "], got ", x.shape_string());
  if (!x.is_contiguous()) fail("vit: input tensor must be contiguous");
  const int64_t N = x.dim(0);
  Tensor out({N, T, D});
  if (N == 0) return out;
  const float* img = x.f32();

  // patches [N·G², 3·P·P]: non-overlapping P×P patches, each flattened (c, y, x) like the conv
  // weight; patch index gy·G + gx (torchvision's flatten(2) order)
  std::vector<float> patches(static_cast<size_t>(N * G * G * K));
  parallel_for(par, N * G, [&](int64_t task) {
    const int64_t n = task / G, gy = task % G;
    for (int64_t gx = 0; gx < G; ++gx) {
      float* dst = patches.data() + ((n * G + gy) * G + gx) * K;
      for (int64_t ch = 0; ch < 3; ++ch)
        for (int64_t py = 0; py < P; ++py)
          std::memcpy(dst + (ch * P + py) * P, img + ((n * 3 + ch) * S + gy * P + py) * S + gx * P,
                      sizeof(float) * P);
    }
  });
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

  // num_layers pre-norm blocks: h += Attn(LN_1(h)); h += MLP(LN_2(h))
  transformer::EncoderScratch scratch(N * T, m.dims);
  const transformer::EncoderInput in{N, T, nullptr};
  for (const auto& layer : m.layers)
    transformer::pre_norm_layer(m.isa, par, layer, m.dims, in, h, scratch);

  // h = LN(h)   (encoder.ln, every token)
  transformer::layer_norm(m.isa, par, m.norm, N * T, D, h, h);
  return out;
}

Tensor ViT::logits(Parallel* par, const Tensor& cls_tokens) const {
  const Impl& m = *impl_;
  if (!has_head())
    fail("vit: this weight file has no classification head (export with --keep-head)");
  const int64_t D = m.cfg.hidden_dim;
  if (cls_tokens.rank() != 2 || cls_tokens.dim(1) != D)
    fail("vit: logits take [N, ", D, "] class tokens, got ", cls_tokens.shape_string());
  if (!cls_tokens.is_contiguous()) fail("vit: class tokens must be contiguous");
  const int64_t N = cls_tokens.dim(0);
  Tensor out({N, m.cfg.num_classes});
  if (N > 0) transformer::linear(par, m.head, N, cls_tokens.f32(), out.f32());
  return out;
}

}  // namespace tern
