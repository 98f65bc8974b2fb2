// The architecture table: a weight file's "architecture" -> its model. One line per architecture;
// nothing else in Tern switches on the name. (A plain table, not static self-registration, which a
// static library drops at link time.)
#include "models/bert.hpp"
#include "models/clip.hpp"
#include "models/common.hpp"
#include "models/distilbert.hpp"
#include "models/model.hpp"
#include "models/resnet50.hpp"
#include "models/vit.hpp"

namespace tern {

namespace {

template <typename M>
std::unique_ptr<EmbeddingModel> load(const WeightFile& file, Isa isa) {
  return std::make_unique<M>(file, isa);
}

std::unique_ptr<TextTokenizer> wordpiece(const WeightFile& file) {
  return load_wordpiece(file);
}

const Architecture kArchitectures[] = {
    {"resnet50", "torchvision ResNet50 image embeddings (2048-d global average pool)",
     load<ResNet50>, nullptr},
    {"vit_b_16", "torchvision ViT image embeddings (class token after the final LayerNorm)",
     load<ViT>, nullptr},
    {"distilbert", "Hugging Face DistilBERT text embeddings (one vector per token)",
     load<DistilBert>, wordpiece},
    {"bert", "Hugging Face BERT text embeddings (sentence-transformers: all-MiniLM, bge, e5, gte)",
     load<Bert>, wordpiece},
    {"clip", "CLIP image and text embeddings in one space (projected; OpenAI, open_clip, HF)",
     load<Clip>, load_clip_tokenizer},
};

}  // namespace

std::span<const Architecture> registered_architectures() {
  return kArchitectures;
}

const Architecture* find_architecture(const std::string& name) {
  for (const Architecture& a : kArchitectures)
    if (name == a.name) return &a;
  return nullptr;
}

std::string architecture_names() {
  std::string s;
  for (const Architecture& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

}  // namespace tern
