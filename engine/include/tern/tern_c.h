/* Tern's C API, for binding from other languages.
 *
 * Conventions:
 * - Every function returns a tern_status: TERN_OK (0) or an error code. On error, the message
 *   (one line naming the input and the reason) is available from tern_last_error() on the same
 *   thread until the next call on that thread.
 * - Handles are opaque. A tern_model is safe to use from several threads at once.
 * - Results (tern_embedding) are library-owned and freed with tern_embedding_free(). Inputs are
 *   caller-owned and only read during the call.
 */
#ifndef TERN_C_H
#define TERN_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TERN_OK = 0,
  TERN_ERROR = 1,            /* bad input, bad file, unsupported request */
  TERN_INVALID_ARGUMENT = 2, /* null pointer, zero length, out-of-range option */
  TERN_OUT_OF_MEMORY = 3
} tern_status;

typedef enum {
  TERN_POOLING_DEFAULT = 0, /* the weight file's default */
  TERN_POOLING_NONE,
  TERN_POOLING_CLS,
  TERN_POOLING_MEAN,
  TERN_POOLING_MAX,
  TERN_POOLING_MEAN_SQRT_LEN
} tern_pooling;

typedef struct tern_model tern_model;

typedef struct {
  int64_t rank;      /* 1: [dim], 2: [tokens, dim], 3: a feature map [channels, height, width] */
  int64_t shape[3];  /* entries past rank are 0 */
  float* values;     /* the product of shape[0 .. rank) floats, row-major */
} tern_embedding;

typedef struct {
  tern_pooling pooling;
  int normalize;   /* nonzero: L2-normalise each vector */
  int truncate;    /* text: cut over-long texts instead of failing */
  int max_length;  /* text: 0 = the model's, else 2 up to it */
  const char* layer; /* NULL or "" = the model's usual output; else a layer name (tern info) */
  /* text: prepended to every text, NULL or "" = none (or the file's default prompt). prompt names
     one of the file's prompts (sentence-transformers), prompt_text is the text itself; not both. */
  const char* prompt;
  const char* prompt_text;
} tern_embed_options;

/* Defaults: pooling default, no normalisation, no truncation, the usual output layer. */
tern_embed_options tern_embed_options_default(void);

/* threads: 0 = all cores. isa: NULL or "" = best available, else "scalar" | "avx2" | "avx512". */
tern_status tern_model_load(const char* path, int threads, const char* isa, tern_model** out);
void tern_model_free(tern_model* model);

/* The weight file's architecture (see tern info); valid while the model lives. */
const char* tern_model_architecture(const tern_model* model);
int64_t tern_model_dim(const tern_model* model);

tern_status tern_embed_image_file(const tern_model* model, const char* path,
                                  const tern_embed_options* options, tern_embedding** out);
tern_status tern_embed_image_bytes(const tern_model* model, const uint8_t* data, size_t size,
                                   const tern_embed_options* options, tern_embedding** out);
tern_status tern_embed_image_rgb(const tern_model* model, const uint8_t* rgb, int width, int height,
                                 const tern_embed_options* options, tern_embedding** out);
/* text: NUL-terminated UTF-8. */
tern_status tern_embed_text(const tern_model* model, const char* text,
                            const tern_embed_options* options, tern_embedding** out);
/* Writes up to capacity ids into ids and the count into *count (the full count even when it
 * exceeds capacity, in which case TERN_INVALID_ARGUMENT is returned). */
tern_status tern_tokenize(const tern_model* model, const char* text, int32_t* ids, size_t capacity,
                          size_t* count);

void tern_embedding_free(tern_embedding* embedding);

/* The message of the last failed call on this thread ("" if none). */
const char* tern_last_error(void);

/* CLIP: exp(logit_scale), the factor on cosine similarities in zero-shot logits (about 100 for
 * OpenAI's weights); 0 for a model without one (or a NULL model). */
float tern_model_logit_scale(const tern_model* model);

/* out[i * nb + j] = cos(a_i, b_j) for a [na, dim] and b [nb, dim], row-major floats (a zero vector
 * gives 0). softmax_scale > 0: each row i instead becomes softmax_j(softmax_scale * cos(a_i, b_j)),
 * CLIP's zero-shot probabilities with softmax_scale = tern_model_logit_scale(). 0: the cosines. */
tern_status tern_cosine_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t dim,
                               float softmax_scale, float* out);

#ifdef __cplusplus
}
#endif

#endif /* TERN_C_H */
