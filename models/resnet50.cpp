// torchvision ResNet50 (v1.5) forward on Tern's kernels. Activations are NHWC throughout: a 1×1
// conv is a GEMM on [N·H·W, C], the 3×3 and 7×7 convs go through im2col tiles (kernels/conv).
// BatchNorm is folded into every conv by the exporter, so each conv has a bias.
#include "models/resnet50.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "kernels/conv/conv.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/pool/pool.hpp"

namespace tern {

namespace {

struct ResNetConfig {
  std::vector<int64_t> layers{3, 4, 6, 3};  // bottlenecks per stage
  int64_t width = 64;                       // planes of the first stage (and stem channels)
  int64_t expansion = 4;                    // bottleneck output = planes · expansion
  int64_t num_classes = 0;                  // > 0 when the file keeps the fc head

  int64_t planes(size_t stage) const { return width << stage; }
  int64_t features() const { return planes(layers.size() - 1) * expansion; }
};

int64_t config_int(const nlohmann::json& j, const char* key, int64_t fallback, int64_t lo,
                   int64_t hi, const std::string& path) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(path, ": resnet50 config \"", key, "\" must be an integer in [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

ResNetConfig parse_config(const WeightFile& file) {
  const std::string& path = file.path();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(file.metadata("config"));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": resnet50 config is not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": resnet50 config must be a JSON object");
  ResNetConfig cfg;
  if (j.contains("layers")) {
    const auto& l = j.at("layers");
    if (!l.is_array() || l.size() != 4)
      fail(path, ": resnet50 config \"layers\" must be a list of 4 block counts");
    cfg.layers.clear();
    for (const auto& v : l) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 256)
        fail(path, ": resnet50 config \"layers\" entries must be integers in [1, 256]");
      cfg.layers.push_back(v.get<int64_t>());
    }
  }
  if (j.contains("block") && j.at("block") != "bottleneck")
    fail(path,
         ": resnet50 config \"block\" must be \"bottleneck\" (basic blocks are not supported)");
  cfg.width = config_int(j, "width", 64, 1, 1024, path);
  cfg.expansion = config_int(j, "expansion", 4, 1, 16, path);
  cfg.num_classes = config_int(j, "num_classes", 0, 0, 1 << 20, path);
  return cfg;
}

struct Bottleneck {
  conv::Conv2d conv1, conv2, conv3;  // 1×1 reduce + ReLU, 3×3 (stride) + ReLU, 1×1 expand
  conv::Conv2d downsample;           // 1×1 (stride) projection on the shortcut, first block only
  bool has_downsample = false;
};

// A conv with BatchNorm folded in: NAME.weight [OC, C, k, k], NAME.bias [OC].
conv::Conv2d load_conv(const WeightFile& file, Isa isa, const std::string& name, int64_t C,
                       int64_t OC, int64_t k, int64_t stride, int64_t pad) {
  const Tensor w = file.get(name + ".weight", {OC, C, k, k});
  const Tensor b = file.get(name + ".bias", {OC});
  return conv::Conv2d::pack(isa, {C, OC, k, k, stride, pad}, w.f32(), b.f32());
}

// An NHWC activation inside one of the per-call buffers.
struct Act {
  float* data;
  int64_t H, W, C;
};

}  // namespace

struct ResNet50::Impl {
  Isa isa = Isa::scalar;
  ResNetConfig cfg;
  conv::Conv2d stem;  // 7×7 stride 2 pad 3, 3 -> width
  std::vector<std::vector<Bottleneck>> stages;
  gemm::PackedB fc;  // [features, classes] when the head is kept
  std::vector<float> fc_bias;

  // 1×1 → 3×3(stride) → 1×1 + shortcut, ReLU. x holds the block input and receives the output;
  // t1, t2, sc are scratch buffers of the same capacity.
  Act bottleneck(Parallel* par, const Bottleneck& b, int64_t N, Act x, float* t1, float* t2,
                 float* sc) const {
    const int64_t s = b.conv2.params().stride;
    const int64_t OH = conv::conv_out_size(x.H, 3, s, 1), OW = conv::conv_out_size(x.W, 3, s, 1);
    const int64_t out_c = b.conv3.params().out_channels;
    // t1 [N, H, W, planes] = relu(conv1(x))
    b.conv1.run(par, N, x.H, x.W, x.data, t1, nullptr, /*relu=*/true);
    // t2 [N, OH, OW, planes] = relu(conv2(t1)), stride s
    b.conv2.run(par, N, x.H, x.W, t1, t2, nullptr, /*relu=*/true);
    if (b.has_downsample) {
      // sc [N, OH, OW, out_c] = downsample(x); out = relu(conv3(t2) + sc), in place in sc
      b.downsample.run(par, N, x.H, x.W, x.data, sc, nullptr, /*relu=*/false);
      b.conv3.run(par, N, OH, OW, t2, sc, sc, /*relu=*/true);
      return {sc, OH, OW, out_c};
    }
    // x [N, H, W, out_c] = relu(conv3(t2) + x), in place
    b.conv3.run(par, N, OH, OW, t2, x.data, x.data, /*relu=*/true);
    return {x.data, OH, OW, out_c};
  }
};

ResNet50::ResNet50(const WeightFile& file, Isa isa) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.isa = isa;
  m.cfg = parse_config(file);
  const ResNetConfig& cfg = m.cfg;
  m.stem = load_conv(file, isa, "conv1", 3, cfg.width, 7, 2, 3);
  int64_t in_c = cfg.width;
  for (size_t s = 0; s < cfg.layers.size(); ++s) {
    const int64_t planes = cfg.planes(s), out_c = planes * cfg.expansion;
    std::vector<Bottleneck> blocks(cfg.layers[s]);
    for (int64_t i = 0; i < cfg.layers[s]; ++i) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      const int64_t stride = (i == 0 && s > 0) ? 2 : 1;
      Bottleneck& b = blocks[i];
      b.conv1 = load_conv(file, isa, p + "conv1", in_c, planes, 1, 1, 0);
      b.conv2 = load_conv(file, isa, p + "conv2", planes, planes, 3, stride, 1);
      b.conv3 = load_conv(file, isa, p + "conv3", planes, out_c, 1, 1, 0);
      b.has_downsample = i == 0;  // torchvision: stride != 1 or in_c != out_c, true for block 0
      if (b.has_downsample)
        b.downsample = load_conv(file, isa, p + "downsample", in_c, out_c, 1, stride, 0);
      in_c = out_c;
    }
    m.stages.push_back(std::move(blocks));
  }
  if (cfg.num_classes > 0) {
    const Tensor w = file.get("fc.weight", {cfg.num_classes, cfg.features()});
    const Tensor b = file.get("fc.bias", {cfg.num_classes});
    m.fc = gemm::PackedB::pack(isa, w.f32(), cfg.features(), cfg.num_classes, cfg.features(),
                               /*b_is_nk=*/true);
    m.fc_bias.assign(b.f32(), b.f32() + cfg.num_classes);
  } else if (file.has("fc.weight")) {
    fail(file.path(), ": resnet50 has fc.weight but its config has no num_classes");
  }
}

ResNet50::~ResNet50() = default;

Tensor ResNet50::forward(Parallel* par, const Tensor& x) const {
  const Impl& m = *impl_;
  constexpr int64_t kMaxSide = 16384, kMaxBatch = 4096;
  if (x.dtype() != DType::f32 || x.rank() != 4 || x.dim(1) != 3 || !x.is_contiguous())
    fail("resnet50: input must be a contiguous float32 tensor [N, 3, H, W], got ",
         x.shape_string());
  const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
  if (N < 1 || N > kMaxBatch || H < 1 || W < 1 || H > kMaxSide || W > kMaxSide)
    fail("resnet50: input ", x.shape_string(), " must have 1 <= N <= ", kMaxBatch,
         " and 1 <= H, W <= ", kMaxSide);

  // Capacity of each activation buffer: the largest activation of the network at this size.
  const int64_t H1 = conv::conv_out_size(H, 7, 2, 3), W1 = conv::conv_out_size(W, 7, 2, 3);
  const pool::PoolParams maxpool{3, 2, 1};
  int64_t h = pool::pool_out_size(H1, maxpool), w = pool::pool_out_size(W1, maxpool);
  int64_t cap = std::max(H * W * 3, H1 * W1 * m.cfg.width);
  for (size_t s = 0; s < m.stages.size(); ++s) {
    const int64_t planes = m.cfg.planes(s);
    cap = std::max({cap, h * w * planes, h * w * planes * m.cfg.expansion});
    if (s > 0) h = conv::conv_out_size(h, 3, 2, 1), w = conv::conv_out_size(w, 3, 2, 1);
    cap = std::max(cap, h * w * planes * m.cfg.expansion);
  }
  cap *= N;
  const size_t bytes = static_cast<size_t>(cap) * sizeof(float);
  auto b0 = aligned_alloc_bytes(bytes), b1 = aligned_alloc_bytes(bytes);
  auto b2 = aligned_alloc_bytes(bytes), b3 = aligned_alloc_bytes(bytes);
  float* buf[4] = {reinterpret_cast<float*>(b0.get()), reinterpret_cast<float*>(b1.get()),
                   reinterpret_cast<float*>(b2.get()), reinterpret_cast<float*>(b3.get())};

  // [N, 3, H, W] -> [N, H, W, 3]
  conv::nchw_to_nhwc(par, N, 3, H, W, x.f32(), buf[0]);
  // stem: [N, H, W, 3] -> [N, H1, W1, width], 7×7 stride 2 + ReLU
  m.stem.run(par, N, H, W, buf[0], buf[1], nullptr, /*relu=*/true);
  // maxpool: -> [N, H2, W2, width], 3×3 stride 2 pad 1
  Act a{buf[0], pool::pool_out_size(H1, maxpool), pool::pool_out_size(W1, maxpool), m.cfg.width};
  pool::max_pool2d_nhwc(m.isa, par, maxpool, N, H1, W1, m.cfg.width, buf[1], a.data);
  // stages (3, 4, 6, 3): -> [N, h, w, width·8·expansion], stride 2 at the start of stages 2-4
  for (const auto& stage : m.stages)
    for (const Bottleneck& b : stage) {
      float* scratch[3];
      int k = 0;
      for (float* p : buf)
        if (p != a.data) scratch[k++] = p;
      a = m.bottleneck(par, b, N, a, scratch[0], scratch[1], scratch[2]);
    }
  // global average pool: [N, h, w, F] -> [N, F]
  Tensor out({N, a.C});
  pool::global_avg_pool_nhwc(m.isa, par, N, a.H * a.W, a.C, a.data, out.f32());
  return out;
}

bool ResNet50::has_head() const {
  return !impl_->fc.empty();
}

Tensor ResNet50::logits(Parallel* par, const Tensor& features) const {
  const Impl& m = *impl_;
  if (!has_head())
    fail("resnet50: this weight file has no classification head (export with --keep-head)");
  const int64_t F = m.cfg.features();
  if (features.dtype() != DType::f32 || features.rank() != 2 || features.dim(1) != F ||
      !features.is_contiguous())
    fail("resnet50: logits expects float32 features [N, ", F, "], got ", features.shape_string());
  // [N, F] · fc^T + b -> [N, classes]
  Tensor out({features.dim(0), m.cfg.num_classes});
  gemm::Epilogue ep;
  ep.bias = m.fc_bias.data();
  gemm::gemm(par, features.dim(0), features.f32(), F, m.fc, out.f32(), m.cfg.num_classes, ep);
  return out;
}

int64_t ResNet50::feature_dim() const {
  return impl_->cfg.features();
}

}  // namespace tern
