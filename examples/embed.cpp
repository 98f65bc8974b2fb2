// Embeds images or texts with Tern's C++ API: ./embed MODEL.tern INPUT...
#include <cmath>
#include <cstdio>
#include <tern/tern.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.tern IMAGE-OR-TEXT...\n", argv[0]);
    return 2;
  }
  try {
    auto model = tern::Model::load(argv[1], {.threads = 2});
    tern::EmbedOptions opts;
    opts.pooling = tern::Pooling::mean;  // one vector per input
    opts.normalize = true;
    for (int i = 2; i < argc; ++i) {
      tern::Embedding e = model->is_text_model() ? model->embed_text(argv[i], opts)
                                                 : model->embed_image_file(argv[i], opts);
      std::printf("%s: %lld floats, first %.6f\n", argv[i], (long long)e.values.size(), e.values[0]);
    }
  } catch (const tern::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
