/* Embeds one text or image with Tern's C API: ./embed_c MODEL.tern INPUT */
#include <stdio.h>
#include <string.h>
#include <tern/tern_c.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.tern IMAGE-OR-TEXT\n", argv[0]);
    return 2;
  }
  tern_model* model = NULL;
  if (tern_model_load(argv[1], 2, NULL, &model) != TERN_OK) {
    fprintf(stderr, "error: %s\n", tern_last_error());
    return 1;
  }
  tern_embed_options opts = tern_embed_options_default();
  opts.pooling = TERN_POOLING_MEAN;
  tern_embedding* e = NULL;
  tern_status s = strcmp(tern_model_architecture(model), "distilbert") == 0
                      ? tern_embed_text(model, argv[2], &opts, &e)
                      : tern_embed_image_file(model, argv[2], &opts, &e);
  if (s != TERN_OK) {
    fprintf(stderr, "error: %s\n", tern_last_error());
    tern_model_free(model);
    return 1;
  }
  printf("%s: %lld floats, first %.6f\n", argv[2], (long long)e->shape[0], e->values[0]);
  tern_embedding_free(e);
  tern_model_free(model);
  return 0;
}
