// torchvision ResNet50 (v1.5) forward on Tern's kernels. Activations are NHWC throughout: a 1×1
// conv is a GEMM on [N·H·W, C], the 3×3 stride-1 convs of stages 1-3 run by Winograd F(4,3), the
// other 3×3 and the 7×7 convs through im2col tiles (kernels/conv).
// BatchNorm is folded into every conv by the exporter, so each conv has a bias.
#include "models/resnet50.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/scratch.hpp"
#include "kernels/conv/conv.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/pool/pool.hpp"
#include "models/config.hpp"
#include "models/common.hpp"

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

ResNetConfig parse_config(const WeightFile& file) {
  const ModelConfig j(file, "resnet50");
  ResNetConfig cfg;
  cfg.layers = j.integers("layers", 4, 1, 256, cfg.layers);
  if (j.choice("block", {"bottleneck"}, "bottleneck") != "bottleneck")
    j.invalid("basic blocks are not supported");
  cfg.width = j.integer("width", 1, 1024, 64);
  cfg.expansion = j.integer("expansion", 1, 16, 4);
  cfg.num_classes = j.integer("num_classes", 0, 1 << 20, 0);
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
  Isa isa;
  ResNetConfig cfg;
  conv::Conv2d stem;  // 7×7 stride 2 pad 3, 3 -> width
  std::vector<std::vector<Bottleneck>> stages;
  gemm::PackedB fc;  // [features, classes] when the head is kept
  std::vector<float> fc_bias;
  PreprocessConfig preprocess;

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
  m.preprocess = preprocess_from_file(file, "torchvision-v1");
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

ForwardOutput ResNet50::forward_images(Parallel* par, const Tensor& x,
                                       const ForwardRequest& req) const {
  const Impl& m = *impl_;
  constexpr int64_t kMaxSide = 16384, kMaxBatch = 4096;
  if (x.dtype() != DType::f32 || x.rank() != 4 || x.dim(1) != 3 || !x.is_contiguous())
    fail("resnet50: input must be a contiguous float32 tensor [N, 3, H, W], got ",
         x.shape_string());
  const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3);
  if (N < 1 || N > kMaxBatch || H < 1 || W < 1 || H > kMaxSide || W > kMaxSide)
    fail("resnet50: input ", x.shape_string(), " must have 1 <= N <= ", kMaxBatch,
         " and 1 <= H, W <= ", kMaxSide);
  if (req.pool != PoolMode::mean && req.pool != PoolMode::none)
    fail("resnet50 pools its feature maps by their mean (the default), or gives them whole with "
         "--pooling none: --pooling ", pool_mode_name(req.pool), " does not apply");
  // The stage to stop after: 0 the stem (after the max pool), s the output of stage s.
  const int64_t stop = req.layer == ForwardRequest::kFinal ? int64_t(m.stages.size()) : req.layer;
  if (req.logits && (stop != int64_t(m.stages.size()) || req.pool != PoolMode::mean))
    fail("resnet50: --logits takes the pooled output of the last stage");

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
  const ScratchBuffer b0(cap), b1(cap), b2(cap), b3(cap);  // reused across calls
  float* buf[4] = {b0.data(), b1.data(), b2.data(), b3.data()};

  // [N, 3, H, W] -> [N, H, W, 3]
  conv::nchw_to_nhwc(par, N, 3, H, W, x.f32(), buf[0]);
  // stem: [N, H, W, 3] -> [N, H1, W1, width], 7×7 stride 2 + ReLU
  m.stem.run(par, N, H, W, buf[0], buf[1], nullptr, /*relu=*/true);
  // maxpool: -> [N, H2, W2, width], 3×3 stride 2 pad 1
  Act a{buf[0], pool::pool_out_size(H1, maxpool), pool::pool_out_size(W1, maxpool), m.cfg.width};
  pool::max_pool2d_nhwc(m.isa, par, maxpool, N, H1, W1, m.cfg.width, buf[1], a.data);
  // stages (3, 4, 6, 3): -> [N, h, w, width·8·expansion], stride 2 at the start of stages 2-4
  for (int64_t s = 0; s < stop; ++s)
    for (const Bottleneck& b : m.stages[s]) {
      float* scratch[3];
      int k = 0;
      for (float* p : buf)
        if (p != a.data) scratch[k++] = p;
      a = m.bottleneck(par, b, N, a, scratch[0], scratch[1], scratch[2]);
    }
  ForwardOutput out;
  if (req.pool == PoolMode::none) {
    // the feature map [N, h, w, C] -> [N, C, h, w] (PyTorch's layout)
    out.kind = ForwardOutput::Kind::map;
    out.values = Tensor({N, a.C, a.H, a.W});
    conv::nhwc_to_nchw(N, a.C, a.H, a.W, a.data, out.values.f32());
    return out;
  }
  // global average pool: [N, h, w, C] -> [N, C]
  out.values = Tensor({N, a.C});
  pool::global_avg_pool_nhwc(m.isa, par, N, a.H * a.W, a.C, a.data, out.values.f32());
  if (req.logits) {
    // [N, F] · fc^T + b -> [N, classes]
    if (!has_head())
      fail("resnet50: this weight file has no classification head (export with --keep-head)");
    Tensor scores({N, m.cfg.num_classes});
    gemm::Epilogue ep;
    ep.bias = m.fc_bias.data();
    gemm::gemm(par, N, out.values.f32(), a.C, m.fc, scores.f32(), m.cfg.num_classes, ep);
    out.values = std::move(scores);
  }
  return out;
}

bool ResNet50::has_head() const {
  return !impl_->fc.empty();
}

int64_t ResNet50::dim() const {
  return impl_->cfg.features();
}

std::vector<std::string> ResNet50::layers() const {
  std::vector<std::string> names = {"stem"};
  for (size_t s = 0; s < impl_->stages.size(); ++s) names.push_back("layer" + std::to_string(s + 1));
  return names;
}

const PreprocessConfig* ResNet50::preprocess() const {
  return &impl_->preprocess;
}

double ResNet50::forward_flops(int64_t batch, int64_t, int64_t h, int64_t w) const {
  const ResNetConfig& c = impl_->cfg;
  double macs = 0;
  h = conv::conv_out_size(h, 7, 2, 3), w = conv::conv_out_size(w, 7, 2, 3);
  macs += double(h) * w * c.width * 3 * 49;                                // stem 7x7/2
  h = conv::conv_out_size(h, 3, 2, 1), w = conv::conv_out_size(w, 3, 2, 1);  // max pool 3x3/2
  int64_t in = c.width;
  for (size_t s = 0; s < c.layers.size(); ++s) {
    const int64_t planes = c.planes(s), out = planes * c.expansion;
    for (int64_t b = 0; b < c.layers[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const int64_t h2 = conv::conv_out_size(h, 3, stride, 1);
      const int64_t w2 = conv::conv_out_size(w, 3, stride, 1);
      macs += double(h) * w * in * planes;             // 1x1 reduce
      macs += double(h2) * w2 * planes * planes * 9;   // 3x3 (stride)
      macs += double(h2) * w2 * planes * out;          // 1x1 expand
      if (b == 0) macs += double(h2) * w2 * in * out;  // downsample 1x1 (stride)
      h = h2, w = w2, in = out;
    }
  }
  return 2.0 * macs * double(batch);
}

}  // namespace tern
