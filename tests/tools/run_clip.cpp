// Test tool for the CLIP tests (tests/python/test_clip_*.py): drives a two-tower model through the
// public API on .npy inputs, so the Python references and Tern see the very same numbers.
//   tern_run_clip MODEL images IN.npy OUT.npy [options]     IN float32 [N,3,S,S] (preprocessed)
//   tern_run_clip MODEL image-files IMG OUT.npy [options]   one image file
//   (Model::embed_image_files) tern_run_clip MODEL ids IDS.npy LENS.npy OUT.npy [opts]  IDS int
//   [N,T], LENS int [N] tern_run_clip MODEL tokenize TEXTS OUT.txt [--truncate]  TEXTS: texts
//   separated by NUL bytes;
//                                                            OUT: a line per text, ids or "error: "
//   tern_run_clip MODEL similarity A.npy B.npy OUT.npy [--softmax]   A [n,D], B [m,D] float32:
//                                                            cosine_matrix (or zero-shot softmax
//                                                            with the model's logit_scale)
// options: --pooling P (default: the model's), --layer L, --batch N, --threads N, --normalize.
// Outputs: pooled [N, D]; unpooled tokens [N, T, D] with rows past a text's length zero.
// The ISA comes from TERN_ISA.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/npy.hpp"
#include "engine/frontend/output.hpp"
#include "tern/tern.hpp"

namespace {

std::vector<float> stack(const std::vector<tern::Embedding>& embs, std::vector<int64_t>* shape) {
  const int64_t n = static_cast<int64_t>(embs.size());
  int64_t rows = 1, d = 0;
  for (const auto& e : embs) {
    d = e.shape.back();
    if (e.shape.size() == 2) rows = std::max(rows, e.shape[0]);
  }
  const bool tokens = !embs.empty() && embs[0].shape.size() == 2;
  *shape = tokens ? std::vector<int64_t>{n, rows, d} : std::vector<int64_t>{n, d};
  std::vector<float> out(n * (tokens ? rows : 1) * d, 0.f);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out.data() + i * (tokens ? rows : 1) * d, embs[i].values.data(),
                embs[i].values.size() * sizeof(float));
  return out;
}

std::vector<tern::Embedding> as_embeddings(const tern::NpyArray& a) {
  if (a.shape.size() != 2) throw tern::Error("similarity inputs must be [n, D]");
  const std::vector<float> v = a.as_f32();
  std::vector<tern::Embedding> out(a.shape[0]);
  for (int64_t i = 0; i < a.shape[0]; ++i) {
    out[i].shape = {a.shape[1]};
    out[i].values.assign(v.begin() + i * a.shape[1], v.begin() + (i + 1) * a.shape[1]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 5) {
      std::fprintf(stderr, "usage: %s MODEL images|ids|tokenize|similarity ...\n", argv[0]);
      return 2;
    }
    const std::string mode = argv[2];
    const int positional = mode == "ids" || mode == "similarity" ? 3 : 2;
    tern::Options options;
    tern::EmbedOptions opts;
    bool softmax = false;
    for (int i = 3 + positional; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--pooling" && i + 1 < argc)
        opts.pooling = tern::parse_pooling(argv[++i]);
      else if (a == "--layer" && i + 1 < argc)
        opts.layer = argv[++i];
      else if (a == "--batch" && i + 1 < argc)
        opts.batch = std::stoi(argv[++i]);
      else if (a == "--threads" && i + 1 < argc)
        options.threads = std::stoi(argv[++i]);
      else if (a == "--normalize")
        opts.normalize = true;
      else if (a == "--truncate")
        opts.truncate = true;
      else if (a == "--softmax")
        softmax = true;
      else
        throw tern::Error("unknown argument " + a);
    }
    auto model = tern::Model::load(argv[1], options);
    std::vector<int64_t> shape;
    std::vector<float> out;
    if (mode == "images") {
      const tern::NpyArray in = tern::read_npy(argv[3]);
      if (in.shape.size() != 4 || in.shape[1] != 3) throw tern::Error("input must be [N,3,H,W]");
      const std::vector<float> x = in.as_f32();
      out = stack(model->embed_preprocessed(x.data(), in.shape[0], in.shape[2], in.shape[3], opts),
                  &shape);
      tern::frontend::write_npy_f32(argv[4], out.data(), shape);
    } else if (mode == "image-files") {
      out = stack(model->embed_image_files({argv[3]}, opts), &shape);
      tern::frontend::write_npy_f32(argv[4], out.data(), shape);
    } else if (mode == "ids") {
      const tern::NpyArray in = tern::read_npy(argv[3]);
      if (in.shape.size() != 2) throw tern::Error("ids must be [N,T]");
      const int64_t n = in.shape[0], t = in.shape[1];
      const std::vector<int32_t> ids = in.as_i32(), lens = tern::read_npy(argv[4]).as_i32();
      std::vector<std::vector<int32_t>> rows(n);
      for (int64_t i = 0; i < n; ++i)
        rows[i].assign(ids.begin() + i * t, ids.begin() + i * t + lens.at(i));
      out = stack(model->embed_token_ids(rows, opts), &shape);
      tern::frontend::write_npy_f32(argv[5], out.data(), shape);
    } else if (mode == "tokenize") {
      std::ifstream f(argv[3], std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      const std::string all = ss.str();
      std::string result;
      size_t pos = 0;
      while (pos <= all.size()) {
        size_t end = all.find('\0', pos);
        if (end == std::string::npos) end = all.size();
        try {
          for (int32_t id : model->tokenize(all.substr(pos, end - pos), opts.truncate))
            result += std::to_string(id) + " ";
        } catch (const tern::Error& e) {
          result += std::string("error: ") + e.what();
        }
        result += "\n";
        pos = end + 1;
      }
      std::ofstream(argv[4], std::ios::binary) << result;
    } else if (mode == "similarity") {
      const auto a = as_embeddings(tern::read_npy(argv[3]));
      const auto b = as_embeddings(tern::read_npy(argv[4]));
      out = tern::cosine_matrix(a, b);
      if (softmax)
        out = tern::zero_shot_softmax(out, static_cast<int64_t>(b.size()), model->logit_scale());
      shape = {static_cast<int64_t>(a.size()), static_cast<int64_t>(b.size())};
      tern::frontend::write_npy_f32(argv[5], out.data(), shape);
      std::printf("logit_scale %.9g\n", model->logit_scale());
    } else {
      throw tern::Error("unknown mode " + mode);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern_run_clip: error: %s\n", e.what());
    return 1;
  }
}
