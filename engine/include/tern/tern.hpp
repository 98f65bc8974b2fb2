#pragma once
// Tern's C++ API.
//
//   #include <tern/tern.hpp>
//   auto model = tern::Model::load("resnet50.tern");            // once
//   tern::Embedding e = model->embed_image_file("photo.jpg");  // e.shape == {2048}
//
// Errors: every function throws tern::Error (tern/error.hpp) with a one-line message naming the
// input and the reason. Nothing else is thrown for bad input; std::bad_alloc only on exhaustion.
//
// Threads: a loaded Model is safe to use from several threads at once and gives the same results
// as serial use. Each Model owns a pool of `threads` workers; calls from several threads share it
// (the parallel parts of their forward passes take turns), so for throughput from many threads
// load one Model per thread with threads = 1.
//
// Results never depend on the thread count or on how inputs are batched (within 1e-5 relative).
// A non-finite result (NaN/Inf, e.g. from a corrupt weight file) is an error, never returned.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tern/error.hpp"
#include "tern/version.hpp"

namespace tern {

struct Options {
  int threads = 0;      // 0 = every core available to the process; negative or over
                        // max_threads() is an error, and so is a thread the system cannot create
  std::string isa;      // "" = best the CPU supports (or TERN_ISA); else cap: scalar|avx2|avx512
};

enum class Pooling {
  model_default,  // the weight file's default (Model::default_pooling(); `tern info` shows it)
  none,           // every token: [T, D] (text: start and end tokens included; ViT: all patches
                  // and the class token); convolutional models: the feature map [C, H, W]
  cls,            // the first token: [D]
  mean,           // mean over real tokens (text) or patch tokens (ViT); a CNN's global average pool
  max,            // per-channel max over the same tokens as mean
  mean_sqrt_len,  // the sum over those tokens divided by sqrt(their count)
};

// "default", "none", "cls", "mean", "max", "mean_sqrt_len"; parse_pooling throws tern::Error for
// anything else, naming the valid values.
const char* pooling_name(Pooling p);
Pooling parse_pooling(const std::string& name);

struct EmbedOptions {
  Pooling pooling = Pooling::model_default;
  bool normalize = false;  // L2-normalise each output vector (each token row when unpooled)
  bool logits = false;     // image models exported with --keep-head: class scores instead
  bool truncate = false;   // text over max_length: cut instead of an error
  int max_length = 0;      // text: 0 = the model's (tokenizer max_length), else 2 up to it.
                           // A sentence-transformers file: 0 = its max_seq_length, and longer
                           // texts are cut there (as sentence-transformers does) whatever truncate
  int batch = 8;           // inputs per forward pass
  std::string layer;       // "" = the model's usual output; else one of Model::layers() (and
                           // for transformers -k, counting back from the last block)
  // Text: prepended to every text by embed_texts and tokenize(text, opts). prompt names one of
  // the file's prompts (sentence-transformers config_sentence_transformers.json; a file may also
  // have a default one); prompt_text gives the text itself. Not both. Where the file says
  // include_prompt = false, mean / max pooling leave the prompt's tokens out, as
  // sentence-transformers does (embed_texts does that itself; see pool_skip_tokens).
  std::string prompt;
  std::string prompt_text;
  // embed_token_ids: the first N tokens of every input take no part in mean / max pooling.
  // For ids from tokenize(text, opts), prompt_tokens(opts) is the N sentence-transformers uses.
  int pool_skip_tokens = 0;
};

struct Embedding {
  std::vector<int64_t> shape;  // [D] pooled, [T, D] unpooled tokens, [C, H, W] a feature map
  std::vector<float> values;   // row-major, product(shape) floats
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& path, const Options& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& architecture() const;  // the file's architecture (see architectures())
  bool is_image_model() const;
  bool is_text_model() const;
  int64_t dim() const;           // width of the default embedding (2048, 768, ...)
  Pooling default_pooling() const;  // what Pooling::model_default means for this file
  std::vector<std::string> layers() const;  // valid EmbedOptions::layer values, in order
  bool has_head() const;         // exported with --keep-head: EmbedOptions::logits works
  // CLIP: exp(logit_scale), the factor on cosine similarities in zero-shot logits (about 100
  // for OpenAI's weights); 0 for models without one.
  float logit_scale() const;
  int max_length() const;        // text models: tokens per text, start/end included (a
                                 // sentence-transformers file: its max_seq_length); else 0
  int image_size() const;        // image models: the side of the model's input (the crop)
  int threads() const;
  std::string isa() const;       // the instruction set this model's kernels run
  // FLOPs of one forward pass over `batch` inputs of `seq_len` tokens (text) or h×w pixels
  // (images): convolutions, linear layers, attention matmuls (1 multiply-add = 2 FLOP).
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h, int64_t image_w) const;

  // Image models. Decoding and preprocessing follow the profile stored in the file.
  Embedding embed_image_file(const std::string& path, const EmbedOptions& opts = {}) const;
  std::vector<Embedding> embed_image_files(const std::vector<std::string>& paths,
                                           const EmbedOptions& opts = {}) const;
  Embedding embed_image_bytes(const uint8_t* data, size_t size, const EmbedOptions& opts = {}) const;
  // Raw interleaved RGB8 pixels, height rows of width*3 bytes.
  Embedding embed_image_rgb(const uint8_t* rgb, int width, int height,
                            const EmbedOptions& opts = {}) const;
  // Already-preprocessed input: float [n, 3, h, w] (normalised, NCHW as torchvision gives).
  std::vector<Embedding> embed_preprocessed(const float* nchw, int64_t n, int64_t h, int64_t w,
                                            const EmbedOptions& opts = {}) const;
  // Decodes and preprocesses encoded image bytes exactly as embed_image_bytes does and returns
  // the model's input, float [3, S, S] (in a plain buffer with a shape). embed_preprocessed on
  // it gives embed_image_bytes' result bit for bit: callers can decode in parallel, batch later.
  Embedding preprocess_image_bytes(const uint8_t* data, size_t size) const;

  // Text models.
  Embedding embed_text(const std::string& text, const EmbedOptions& opts = {}) const;
  std::vector<Embedding> embed_texts(const std::vector<std::string>& texts,
                                     const EmbedOptions& opts = {}) const;
  // [CLS] ... [SEP]; max_length 0 = the model's, else 2 up to it (the one rule of every front end).
  std::vector<int32_t> tokenize(const std::string& text, bool truncate = false,
                                int max_length = 0) const;
  // What embed_texts tokenizes: the prompt (opts.prompt / prompt_text / the file's default)
  // prepended, cut at max_length as opts and the file's sentence-transformers defaults say.
  std::vector<int32_t> tokenize(const std::string& text, const EmbedOptions& opts) const;
  // The leading tokens of tokenize(text, opts) that mean / max pooling leave out: [CLS] and the
  // prompt's pieces where the file says include_prompt = false, else 0. Checks the prompt
  // options (an unknown prompt name is an error).
  int prompt_tokens(const EmbedOptions& opts) const;
  // Already-tokenized input ([CLS] ... [SEP] included).
  std::vector<Embedding> embed_token_ids(const std::vector<std::vector<int32_t>>& ids,
                                         const EmbedOptions& opts = {}) const;
  int64_t vocab_size() const;                 // token ids are 0 .. vocab_size() - 1
  std::string token_text(int32_t id) const;   // the vocabulary entry ("##ing", "[CLS]")
  bool is_special_token(int32_t id) const;    // [CLS], [SEP], [PAD], [MASK]

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The architectures this build of Tern can run: the weight file's "architecture" and a line about it.
struct ArchitectureInfo {
  std::string name, description;
};
std::vector<ArchitectureInfo> architectures();

// Similarity of embeddings (one D-vector each, e.g. pooled or CLIP's default output).
// cosine_matrix: [a.size(), b.size()] row-major, cos(a_i, b_j) computed in double (a zero vector
// gives 0). Widths must agree and every input must be one vector: else tern::Error.
std::vector<float> cosine_matrix(const std::vector<Embedding>& a, const std::vector<Embedding>& b);
// CLIP's zero-shot probabilities: per row of `cosine` ([rows, cols]),
// softmax_j(logit_scale · cosine[i, j]) (Model::logit_scale()). A logit_scale <= 0: tern::Error.
std::vector<float> zero_shot_softmax(const std::vector<float>& cosine, int64_t cols,
                                     float logit_scale);

// CPU features and the active ISA, as `tern --version` prints them.
std::string describe_cpu();

// This machine's FMA peak in GFLOP/s: `threads` threads (>= 1) each running a register-only loop
// of independent fused multiply-adds at `isa` ("" = the active ISA, as Options::isa), the fastest
// of 10 short runs (about 0.4 s in all). Benchmarks report achieved GFLOP/s as a fraction of it.
// Throws tern::Error for threads < 1 or an unknown or unsupported ISA.
double fma_peak_gflops(int threads, const std::string& isa = "");

// The largest Options::threads accepted: 8 x the cores available to this process.
int max_threads();

// Only the tokenizer of a text model's weight file: reads the file's header and its "tokenizer"
// and "vocab" metadata, no tensor data (what `tern tokenize` needs).
class Tokenizer {
 public:
  static std::unique_ptr<Tokenizer> load(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  // As Model::tokenize: [CLS] ... [SEP]; max_length 0 = the model's, else 2..the model's.
  std::vector<int32_t> tokenize(const std::string& text, bool truncate = false,
                                int max_length = 0) const;
  int max_length() const;  // the model's, [CLS] and [SEP] included

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A weight file's header, validated as Model::load validates it (what `tern info` shows).
struct FileTensor {
  std::string name;
  std::string dtype;            // as stored: "F32", "BF16"
  std::vector<int64_t> shape;
  uint64_t offset = 0;          // of its data, inside the data section
  uint64_t bytes = 0;
};
struct FileInfo {
  std::string path;
  uint64_t file_size = 0;
  int format_version = 0;
  std::string architecture;
  std::vector<std::pair<std::string, std::string>> metadata;  // every key and its text, by key
  std::vector<FileTensor> tensors;                            // by data offset
  const std::string* find(const std::string& key) const;      // metadata value or nullptr
};
FileInfo describe_file(const std::string& path);
// One tensor's values as float32 (BF16 widened), row-major. Throws naming an absent tensor.
std::vector<float> read_tensor_f32(const std::string& path, const std::string& name);

}  // namespace tern
