#pragma once
// The one interface every architecture implements, and the registry that maps a weight file's
// "architecture" to it (models/registry.cpp). The public API (engine/api) talks to models only
// through this header: it batches, preprocesses, tokenizes, checks and normalises; a model runs
// its forward pass up to the requested layer and pools what it computed.
//
// Adding an architecture: docs/ADDING_AN_ARCHITECTURE.md.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/core/image.hpp"
#include "engine/core/tensor.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/weights.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern {

// How per-token (or per-position) outputs become one vector per input. The API resolves
// `automatic` to the model's default_pool() first; a model whose default_pool() is `automatic`
// itself (CLIP: its own projected embedding, which is no pooling of the tokens) receives it.
enum class PoolMode { automatic, none, cls, mean, max, mean_sqrt_len };
const char* pool_mode_name(PoolMode p);

// What one forward call computes.
struct ForwardRequest {
  static constexpr int kFinal = -1;  // the model's usual output (e.g. after ViT's final norm)
  int layer = kFinal;                // else an index from EmbeddingModel::resolve_layer
  PoolMode pool = PoolMode::none;    // resolved
  bool logits = false;               // class scores (files exported with --keep-head)
  // Text only: tokens [0, pool_from[i]) of input i take no part in mean / max pooling (a prompt
  // excluded from the mean, as sentence-transformers' include_prompt = false). Empty: 0 for all.
  std::vector<int32_t> pool_from;
};

// What one forward call returns for n inputs.
//   pooled:  values [n, D]
//   tokens:  values [n, T, D]; input i has lengths[i] valid rows (the rest are unspecified)
//   map:     values [n, C, H, W] (a convolutional feature map, PyTorch's layout)
struct ForwardOutput {
  enum class Kind { pooled, tokens, map } kind = Kind::pooled;
  Tensor values;
  std::vector<int32_t> lengths;  // tokens only
};

// A batch of token ids: ids [n, T] row-major, row i valid up to lengths[i] (ids past it ignored).
struct TokenBatch {
  const int32_t* ids = nullptr;
  int64_t n = 0, seq_len = 0;
  const int32_t* lengths = nullptr;
};

class EmbeddingModel {
 public:
  virtual ~EmbeddingModel() = default;

  virtual bool takes_images() const { return false; }
  virtual bool takes_texts() const { return false; }
  virtual int64_t dim() const = 0;  // width of the default output vector
  virtual PoolMode default_pool() const = 0;
  virtual bool has_head() const { return false; }
  // The factor CLIP-style models put on cosine similarities for zero-shot logits
  // (exp(logit_scale)); 0 for a model without one.
  virtual float logit_scale() const { return 0.f; }

  // Layers a caller may stop at, in order ("stem", "layer1", ... or "0", "1", ...). Transformers
  // number their blocks: "0" the embeddings, "k" the output of block k.
  virtual std::vector<std::string> layers() const = 0;
  // "" -> ForwardRequest::kFinal; a name from layers() -> its index; for numbered layers a
  // negative k counts from the end (-1 = the last block). Anything else: tern::Error naming the
  // valid layers.
  int resolve_layer(const std::string& name) const;

  // Image models: the input side the model needs (0: any size; a crop from the preprocessing),
  // and the preprocessing profile (from the file's "preprocess", or the model's own default).
  virtual int64_t fixed_image_size() const { return 0; }
  virtual const PreprocessConfig* preprocess() const { return nullptr; }
  // x [n, 3, H, W], normalised NCHW.
  virtual ForwardOutput forward_images(Parallel* par, const Tensor& x,
                                       const ForwardRequest& req) const;

  // Text models: the tokenizer (owned by the model) and the forward pass over token ids.
  virtual const TextTokenizer* tokenizer() const { return nullptr; }
  virtual int64_t max_positions() const { return 0; }
  virtual ForwardOutput forward_tokens(Parallel* par, const TokenBatch& batch,
                                       const ForwardRequest& req) const;

  // FLOPs (1 MAC = 2 FLOP) of one forward pass: convolutions, linear layers and the attention
  // matmuls; elementwise work left out (the usual published figures).
  virtual double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                               int64_t image_w) const = 0;
};

// One row of the registry: the weight file's "architecture" and how to load it.
struct Architecture {
  const char* name;
  const char* description;  // one line, for `tern info` and --help
  std::unique_ptr<EmbeddingModel> (*load)(const WeightFile& file, Isa isa);
  // Text models: the tokenizer alone, from the file's metadata (no tensor data read); else null.
  std::unique_ptr<TextTokenizer> (*load_tokenizer)(const WeightFile& file);
};

std::span<const Architecture> registered_architectures();
// The row for `name`, or nullptr.
const Architecture* find_architecture(const std::string& name);
// "resnet50, vit_b_16, ..." for messages.
std::string architecture_names();

}  // namespace tern
