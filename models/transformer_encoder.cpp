#include "models/transformer_encoder.hpp"

#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "kernels/attention/attention.hpp"
#include "kernels/norm/layer_norm.hpp"

namespace tern::transformer {

Linear load_linear(const WeightFile& file, Isa isa, const std::string& name, int64_t out,
                   int64_t in) {
  Linear l;
  const Tensor w = file.get(name + ".weight", {out, in});
  l.w = gemm::PackedB::pack(isa, w.f32(), in, out, in, /*b_is_nk=*/true);
  l.b = file.get(name + ".bias", {out});
  l.in = in;
  l.out = out;
  return l;
}

void linear(Parallel* par, const Linear& l, int64_t rows, const float* x, float* y,
            const float* residual, gemm::Activation act) {
  gemm::Epilogue ep;
  ep.bias = l.b.f32();
  ep.residual = residual;
  ep.ldr = l.out;
  ep.act = act;
  gemm::gemm(par, rows, x, l.in, l.w, y, l.out, ep);
}

Norm load_norm(const WeightFile& file, const std::string& name, int64_t dim, float eps) {
  return Norm{file.get(name + ".weight", {dim}), file.get(name + ".bias", {dim}), eps};
}

void layer_norm(Isa isa, Parallel* par, const Norm& n, int64_t rows, int64_t dim, const float* x,
                float* y) {
  norm::layer_norm(isa, par, rows, dim, x, dim, n.gamma.f32(), n.beta.f32(), n.eps, y, dim);
}

EncoderLayer load_encoder_layer(const WeightFile& file, Isa isa, const std::string& prefix,
                                const EncoderDims& d, float eps) {
  EncoderLayer l;
  l.qkv = load_linear(file, isa, prefix + "attn.qkv", 3 * d.dim, d.dim);
  l.out = load_linear(file, isa, prefix + "attn.out", d.dim, d.dim);
  l.attn_norm = load_norm(file, prefix + "attn_norm", d.dim, eps);
  l.fc1 = load_linear(file, isa, prefix + "mlp.fc1", d.hidden, d.dim);
  l.fc2 = load_linear(file, isa, prefix + "mlp.fc2", d.dim, d.hidden);
  l.mlp_norm = load_norm(file, prefix + "mlp_norm", d.dim, eps);
  return l;
}

EncoderScratch::EncoderScratch(int64_t rows, const EncoderDims& d)
    : qkv(static_cast<size_t>(rows * 3 * d.dim)),
      ctx(static_cast<size_t>(rows * d.dim)),
      tmp(static_cast<size_t>(rows * d.dim)),
      mlp(static_cast<size_t>(rows * d.hidden)) {}

namespace {

// The kept rows (keep, above) of the sequences that have rows, as row indices into x.
std::vector<int64_t> kept_rows(const EncoderInput& in, const int64_t* keep) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < in.batch; ++b) {
    const int64_t first = in.offsets ? in.offsets[b] : b * in.seq_len;
    const int64_t count = in.offsets ? in.offsets[b + 1] - first : in.seq_len;
    if (count > 0) rows.push_back(first + keep[b]);
  }
  return rows;
}

// dst[i] = src[rows[i]] (gather) or dst[rows[i]] = src[i] (scatter), rows of dim floats; the
// scattered side's rows ld floats apart.
void gather(const std::vector<int64_t>& rows, int64_t dim, const float* src, float* dst) {
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(dst + int64_t(i) * dim, src + rows[i] * dim, sizeof(float) * dim);
}
void scatter(const std::vector<int64_t>& rows, int64_t dim, const float* src, float* dst,
             int64_t ld) {
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(dst + rows[i] * ld, src + int64_t(i) * dim, sizeof(float) * dim);
}

// qkv [rows, 3D] = x · Wqkvᵀ + b. With kept rows, the queries (columns [0, D)) of those rows only,
// the keys and values of every row (when D starts a column panel of the packed weight; else all).
void qkv_projection(Parallel* par, const Linear& l, const EncoderInput& in,
                    const std::vector<int64_t>* kept, int64_t D, const float* x, float* qkv) {
  if (!kept || D % gemm::columns_per_panel(l.w.isa()) != 0) {
    linear(par, l, in.rows(), x, qkv);
    return;
  }
  gemm::Epilogue ep;
  ep.bias = l.b.f32();
  gemm::gemm_columns(par, in.rows(), x, D, l.w, D, 3 * D, qkv, 3 * D, ep);
  const int64_t n = int64_t(kept->size());
  ScratchBuffer buf(static_cast<size_t>(2 * n * D));
  float *xk = buf.data(), *q = xk + n * D;
  gather(*kept, D, x, xk);
  gemm::gemm_columns(par, n, xk, D, l.w, 0, D, q, D, ep);
  scatter(*kept, D, q, qkv, 3 * D);
}

// ctx[rows, D] = MultiHeadAttention(qkv[rows, 3D]) with heads of D / heads channels (only the
// rows keep picks, when given).
void self_attention(Isa isa, Parallel* par, const EncoderDims& d, const EncoderInput& in,
                    const float* qkv, float* ctx, const int64_t* keep) {
  attention::Params p;
  p.batch = in.batch;
  p.seq_len = in.seq_len;
  p.heads = d.heads;
  p.head_dim = d.dim / d.heads;
  p.q = qkv;
  p.k = qkv + d.dim;
  p.v = qkv + 2 * d.dim;
  p.ld_q = p.ld_k = p.ld_v = 3 * d.dim;
  p.seq_stride = in.seq_len * 3 * d.dim;
  p.out = ctx;
  p.ld_out = d.dim;
  p.out_seq_stride = in.seq_len * d.dim;
  p.key_lengths = in.key_lengths;
  p.causal = in.causal;
  p.scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
  // packed: every sequence of its own length, all in one call (one fork/join per layer)
  p.offsets = in.offsets;
  p.query_rows = keep;
  attention::attention(isa, par, p);
}

// The rows a block's second half runs on: all of x, ctx and tmp, or the n kept rows gathered
// into a buffer of their own, and put back by done().
struct BlockRows {
  int64_t n;
  float *x, *ctx, *tmp;
  const std::vector<int64_t>* kept;
  std::optional<ScratchBuffer> buf;

  BlockRows(const EncoderInput& in, const std::vector<int64_t>* kept_rows, int64_t D, float* x_all,
            EncoderScratch& s)
      : n(in.rows()), x(x_all), ctx(s.ctx.data()), tmp(s.tmp.data()), kept(kept_rows) {
    if (!kept) return;
    n = int64_t(kept->size());
    buf.emplace(static_cast<size_t>(3 * n * D));
    x = buf->data();
    ctx = x + n * D;
    tmp = ctx + n * D;
    gather(*kept, D, x_all, x);
    gather(*kept, D, s.ctx.data(), ctx);
  }
  void done(int64_t D, float* x_all) const {
    if (kept) scatter(*kept, D, x, x_all, D);
  }
};

}  // namespace

void post_norm_layer(Isa isa, Parallel* par, const EncoderLayer& l, const EncoderDims& d,
                     const EncoderInput& in, float* x, EncoderScratch& s, const int64_t* keep) {
  const int64_t D = d.dim;
  const std::vector<int64_t> kept = keep ? kept_rows(in, keep) : std::vector<int64_t>{};
  const std::vector<int64_t>* k = keep ? &kept : nullptr;
  // qkv [rows, 3D] = x · Wqkvᵀ + b
  qkv_projection(par, l.qkv, in, k, D, x, s.qkv.data());
  // ctx [rows, D] = softmax(q kᵀ / √dh, keys < length) v, per head
  self_attention(isa, par, d, in, s.qkv.data(), s.ctx.data(), keep);
  BlockRows r(in, k, D, x, s);
  // tmp [n, D] = ctx · Woᵀ + b + x;  x = LN_sa(tmp)
  linear(par, l.out, r.n, r.ctx, r.tmp, r.x);
  layer_norm(isa, par, l.attn_norm, r.n, D, r.tmp, r.x);
  // mlp [n, F] = gelu(x · W1ᵀ + b1)
  linear(par, l.fc1, r.n, r.x, s.mlp.data(), nullptr, gemm::Activation::gelu);
  // tmp [n, D] = mlp · W2ᵀ + b2 + x;  x = LN_out(tmp)
  linear(par, l.fc2, r.n, s.mlp.data(), r.tmp, r.x);
  layer_norm(isa, par, l.mlp_norm, r.n, D, r.tmp, r.x);
  r.done(D, x);
}

void pre_norm_layer(Isa isa, Parallel* par, const EncoderLayer& l, const EncoderDims& d,
                    const EncoderInput& in, float* x, EncoderScratch& s, gemm::Activation act,
                    const int64_t* keep) {
  const int64_t D = d.dim;
  const std::vector<int64_t> kept = keep ? kept_rows(in, keep) : std::vector<int64_t>{};
  const std::vector<int64_t>* k = keep ? &kept : nullptr;
  // tmp [rows, D] = LN_1(x);  qkv [rows, 3D] = tmp · Wqkvᵀ + b
  layer_norm(isa, par, l.attn_norm, in.rows(), D, x, s.tmp.data());
  qkv_projection(par, l.qkv, in, k, D, s.tmp.data(), s.qkv.data());
  // ctx [rows, D] = softmax(q kᵀ / √dh) v, per head
  self_attention(isa, par, d, in, s.qkv.data(), s.ctx.data(), keep);
  BlockRows r(in, k, D, x, s);
  // x [n, D] += ctx · Woᵀ + b
  linear(par, l.out, r.n, r.ctx, r.x, r.x);
  // tmp = LN_2(x);  mlp [n, F] = act(tmp · W1ᵀ + b1);  x += mlp · W2ᵀ + b2
  layer_norm(isa, par, l.mlp_norm, r.n, D, r.x, r.tmp);
  linear(par, l.fc1, r.n, r.tmp, s.mlp.data(), nullptr, act);
  linear(par, l.fc2, r.n, s.mlp.data(), r.x, r.x);
  r.done(D, x);
}

}  // namespace tern::transformer
