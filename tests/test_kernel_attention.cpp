// Self-attention kernels against the double-precision reference, every ISA this binary can run.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/thread_pool.hpp"
#include "kernels/attention/attention.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

struct Case {
  int64_t batch, seq_len, heads, head_dim;
  std::vector<int32_t> lengths;  // empty = all valid
  float magnitude = 1.f;         // scales q so scores get large
  int64_t row_pad = 0;           // extra elements per row of the qkv buffer and out
  // Scores carry fp32 rounding of about 1e-7 · |score| (PyTorch's too), which moves the softmax
  // weights by as much: large scores need a bound that grows with them.
  double tol = 4e-6;
  bool causal = false;
};

std::string describe(Isa isa, const Case& c) {
  std::string s = std::string(isa_name(isa)) + " batch=" + std::to_string(c.batch) +
                  " seq_len=" + std::to_string(c.seq_len) + " heads=" + std::to_string(c.heads) +
                  " head_dim=" + std::to_string(c.head_dim) +
                  " magnitude=" + std::to_string(c.magnitude) +
                  " row_pad=" + std::to_string(c.row_pad) + " causal=" +
                  std::to_string(c.causal) + " lengths=";
  for (int32_t l : c.lengths) s += std::to_string(l) + ",";
  return s;
}

// A fused-QKV buffer [batch, seq_len, 3·D + row_pad] as a model produces it, and its Params.
struct Setup {
  std::vector<float> qkv, out, ref;
  std::vector<int32_t> lengths;
  attention::Params p;
};

Setup make(const Case& c, uint64_t seed) {
  Setup s;
  const int64_t D = c.heads * c.head_dim, ld = 3 * D + c.row_pad, ld_out = D + c.row_pad;
  s.qkv = test::random_floats(c.batch * c.seq_len * ld, seed);
  for (int64_t t = 0; t < c.batch * c.seq_len; ++t)
    for (int64_t i = 0; i < D; ++i) s.qkv[t * ld + i] *= c.magnitude;
  s.out.assign(c.batch * c.seq_len * ld_out, 777.f);
  s.ref = s.out;
  auto& p = s.p;
  p.batch = c.batch;
  p.seq_len = c.seq_len;
  p.heads = c.heads;
  p.head_dim = c.head_dim;
  p.q = s.qkv.data();
  p.k = s.qkv.data() + D;
  p.v = s.qkv.data() + 2 * D;
  p.ld_q = p.ld_k = p.ld_v = ld;
  p.seq_stride = c.seq_len * ld;
  p.out = s.out.data();
  p.ld_out = ld_out;
  p.out_seq_stride = c.seq_len * ld_out;
  s.lengths = c.lengths;
  p.key_lengths = s.lengths.empty() ? nullptr : s.lengths.data();
  p.scale = 1.f / std::sqrt(float(c.head_dim));
  p.causal = c.causal;
  return s;
}

// Params over a fused-QKV buffer (rows of ld floats: q, k, v side by side) with out rows of
// ld_out floats; layout fields (batch, seq_len / offsets, strides) left to the caller.
attention::Params fused_qkv(const std::vector<float>& qkv, int64_t heads, int64_t dh, int64_t ld,
                            int64_t ld_out, float scale) {
  attention::Params p;
  const int64_t D = heads * dh;
  p.heads = heads;
  p.head_dim = dh;
  p.q = qkv.data();
  p.k = qkv.data() + D;
  p.v = qkv.data() + 2 * D;
  p.ld_q = p.ld_k = p.ld_v = ld;
  p.ld_out = ld_out;
  p.scale = scale;
  return p;
}

void run_case(Isa isa, const Case& c, uint64_t seed, Parallel* par = nullptr) {
  Setup s = make(c, seed);
  attention::attention(isa, par, s.p);
  attention::Params pr = s.p;
  pr.out = s.ref.data();
  attention::attention_reference(pr);
  INFO(describe(isa, c));
  const int64_t D = c.heads * c.head_dim, ld_out = D + c.row_pad;
  for (int64_t t = 0; t < c.batch * c.seq_len; ++t) {
    const float* got = s.out.data() + t * ld_out;
    const float* want = s.ref.data() + t * ld_out;
    for (int64_t h = 0; h < c.heads; ++h) {
      INFO("token " << t << " head " << h);
      const float* g = got + h * c.head_dim;
      for (int64_t d = 0; d < c.head_dim; ++d) REQUIRE(std::isfinite(g[d]));
      // Outputs are convex combinations of v (values in [-1, 1]): the error is measured against
      // that scale, since an average of many values can itself be near zero.
      CHECK(test::max_rel_diff(g, want + h * c.head_dim, c.head_dim, 1.0) <= c.tol);
    }
    for (int64_t i = D; i < ld_out; ++i) REQUIRE(got[i] == 777.f);  // padding untouched
  }
}

}  // namespace

TEST_CASE("kernel attention: matches the reference over lengths, head sizes and heads") {
  uint64_t seed = 1;
  for (Isa isa : test::supported_isas())
    for (int64_t seq_len : {1, 2, 7, 31, 33, 64, 65, 128, 197})
      for (int64_t head_dim : {64, 24, 1, 33})
        for (int64_t heads : {1, 3}) run_case(isa, {1, seq_len, heads, head_dim, {}}, ++seed);
}

TEST_CASE("kernel attention: key padding mask, padded rows and batches") {
  uint64_t seed = 500;
  for (Isa isa : test::supported_isas()) {
    run_case(isa, {3, 7, 2, 64, {7, 1, 4}, 1.f, 5}, ++seed);
    run_case(isa, {4, 128, 2, 64, {128, 1, 65, 100}}, ++seed);
    run_case(isa, {2, 197, 2, 24, {197, 130}, 1.f, 3}, ++seed);
    run_case(isa, {2, 300, 1, 64, {300, 17}}, ++seed);
    // three key tiles on every ISA (the online rescale across tiles), the last one partial
    run_case(isa, {2, 600, 1, 64, {600, 513}}, ++seed);
    run_case(isa, {1, 530, 2, 24, {}}, ++seed);
  }
}

TEST_CASE("kernel attention: fully masked sequences give finite zeros") {
  for (Isa isa : test::supported_isas()) {
    run_case(isa, {3, 9, 2, 24, {0, 9, 0}}, 900);
    Setup s = make({2, 40, 2, 64, {0, 40}}, 901);
    attention::attention(isa, nullptr, s.p);
    INFO(isa_name(isa));
    for (int64_t t = 0; t < 40; ++t)
      for (int64_t i = 0; i < 128; ++i) REQUIRE(s.out[t * 128 + i] == 0.f);
  }
}

TEST_CASE("kernel attention: large scores stay stable (online max)") {
  uint64_t seed = 700;
  for (Isa isa : test::supported_isas()) {
    run_case(isa, {1, 130, 2, 64, {}, 60.f, 0, 2e-5}, ++seed);  // scores in the hundreds
    run_case(isa, {2, 77, 1, 24, {77, 50}, 4000.f, 0, 1e-3},
             ++seed);  // exp(score) overflows without the max
  }
}

TEST_CASE("kernel attention: results do not depend on the thread count") {
  const Case c{2, 197, 4, 64, {197, 150}};
  for (Isa isa : test::supported_isas()) {
    Setup a = make(c, 42), b = make(c, 42);
    ThreadPool one(1), three(3);
    attention::attention(isa, &one, a.p);
    attention::attention(isa, &three, b.p);
    INFO(isa_name(isa));
    CHECK(std::memcmp(a.out.data(), b.out.data(), sizeof(float) * a.out.size()) == 0);
  }
}

TEST_CASE("kernel attention: causal mask, alone and with key padding, across tile edges") {
  uint64_t seed = 1200;
  for (Isa isa : test::supported_isas()) {
    // up to three key tiles of every ISA (128 or 256 keys), edges included
    for (int64_t seq_len : {1, 2, 31, 32, 33, 64, 65, 77, 130, 255, 257, 300, 520}) {
      Case c{1, seq_len, 2, 64, {}};
      c.causal = true;
      run_case(isa, c, ++seed);
    }
    Case c{3, 77, 2, 33, {77, 5, 40}, 1.f, 3};
    c.causal = true;
    run_case(isa, c, ++seed);
    Case big{2, 140, 1, 24, {140, 70}, 60.f, 0, 2e-5};
    big.causal = true;
    run_case(isa, big, ++seed);
  }
}

TEST_CASE("kernel attention: causal outputs do not see later tokens") {
  // The reference too: query 0 sees key 0 only, so its output is v[0]; changing the last token's
  // k and v changes no earlier output row.
  for (Isa isa : test::supported_isas()) {
    Case c{1, 70, 2, 24, {}};
    c.causal = true;
    Setup a = make(c, 77), b = make(c, 77);
    const int64_t D = 2 * 24, ld = 3 * D;
    for (int64_t i = D; i < 3 * D; ++i) b.qkv[69 * ld + i] += 0.5f;
    attention::attention(isa, nullptr, a.p);
    attention::attention(isa, nullptr, b.p);
    attention::Params pr = a.p;
    pr.out = a.ref.data();
    attention::attention_reference(pr);
    INFO(isa_name(isa));
    for (int64_t d = 0; d < D; ++d) {
      CHECK(a.ref[d] == doctest::Approx(a.qkv[2 * D + d]).epsilon(1e-6));
      CHECK(a.out[d] == doctest::Approx(a.qkv[2 * D + d]).epsilon(1e-5));
    }
    CHECK(std::memcmp(a.out.data(), b.out.data(), sizeof(float) * 69 * D) == 0);
    CHECK(std::memcmp(a.out.data() + 69 * D, b.out.data() + 69 * D, sizeof(float) * D) != 0);
  }
}

TEST_CASE("kernel attention: packed sequences of their own lengths, in one call") {
  // Rows of several sequences back to back (as the encoder runs a mixed batch on its real tokens):
  // one call with offsets must give, bit for bit, what one call per sequence gives, match the
  // reference, and not depend on the thread count (both tiling schemes: few and many heads).
  const std::vector<int64_t> lens = {5, 0, 33, 1, 70, 16};
  for (int64_t heads : {1, 12})
    for (Isa isa : test::supported_isas()) {
      const int64_t dh = 24, D = heads * dh, ld = 3 * D + 2, ld_out = D + 1;
      std::vector<int64_t> off = {0};
      for (int64_t n : lens) off.push_back(off.back() + n);
      const int64_t rows = off.back();
      const std::vector<float> qkv = test::random_floats(rows * ld, 77 + heads);
      attention::Params p = fused_qkv(qkv, heads, dh, ld, ld_out, 0.2f);
      p.batch = int64_t(lens.size());
      p.offsets = off.data();
      std::vector<float> packed(rows * ld_out, 777.f), many = packed, single = packed, ref = packed;
      ThreadPool one(1), three(3);
      p.out = packed.data();
      attention::attention(isa, &three, p);
      p.out = many.data();
      attention::attention(isa, &one, p);
      p.out = ref.data();
      attention::attention_reference(p);
      for (size_t b = 0; b < lens.size(); ++b) {  // one padded-layout call per sequence
        attention::Params s = p;
        s.offsets = nullptr;
        s.batch = 1;
        s.seq_len = lens[b];
        s.q = p.q + off[b] * ld;
        s.k = p.k + off[b] * ld;
        s.v = p.v + off[b] * ld;
        s.seq_stride = lens[b] * ld;
        s.out = single.data() + off[b] * ld_out;
        s.out_seq_stride = lens[b] * ld_out;
        attention::attention(isa, nullptr, s);
      }
      INFO(isa_name(isa) << " heads " << heads);
      CHECK(std::memcmp(packed.data(), single.data(), sizeof(float) * packed.size()) == 0);
      CHECK(std::memcmp(packed.data(), many.data(), sizeof(float) * packed.size()) == 0);
      for (int64_t r = 0; r < rows; ++r) {
        REQUIRE(packed[r * ld_out + D] == 777.f);  // padding untouched
        CHECK(test::max_rel_diff(packed.data() + r * ld_out, ref.data() + r * ld_out, D, 1.0) <=
              4e-6);
      }
    }
}

TEST_CASE("kernel attention: one query row per sequence gives that row of the full call") {
  // query_rows (an encoder's last block when only one token is read): the row picked must be, bit
  // for bit, the full call's row, with every other out row untouched; padded and packed layouts,
  // key padding and the causal mask, one thread and three (both tiling schemes: 1 and 12 heads).
  for (bool causal : {false, true})
    for (bool packed_layout : {false, true})
      for (int64_t heads : {1, 12})
        for (Isa isa : test::supported_isas()) {
          const std::vector<int64_t> lens = {5, 70, 1, 33};
          const int64_t B = int64_t(lens.size()), T = 70, dh = 24, D = heads * dh;
          const int64_t ld = 3 * D + 2, ld_out = D + 1;
          std::vector<int64_t> off = {0};
          for (int64_t n : lens) off.push_back(off.back() + n);
          const int64_t rows = packed_layout ? off.back() : B * T;
          const std::vector<float> qkv = test::random_floats(rows * ld, 91 + heads);
          std::vector<int32_t> key_lengths(lens.begin(), lens.end());
          attention::Params p = fused_qkv(qkv, heads, dh, ld, ld_out, 0.3f);
          p.batch = B;
          p.seq_len = T;
          p.seq_stride = T * ld;
          p.out_seq_stride = T * ld_out;
          if (packed_layout)
            p.offsets = off.data();
          else
            p.key_lengths = key_lengths.data();
          p.causal = causal;
          // a last real token, a first one, one in the middle (padded: also a padded row)
          const std::vector<int64_t> pick = {4, packed_layout ? 69 : 50, 0,
                                             packed_layout ? 17 : 60};
          std::vector<float> full(rows * ld_out, 777.f), one_thread = full, three_threads = full,
                                                         ref = full;
          p.out = full.data();
          attention::attention(isa, nullptr, p);
          attention::Params q = p;
          q.query_rows = pick.data();
          ThreadPool one(1), three(3);
          q.out = one_thread.data();
          attention::attention(isa, &one, q);
          q.out = three_threads.data();
          attention::attention(isa, &three, q);
          q.out = ref.data();
          attention::attention_reference(q);
          INFO(isa_name(isa) << " heads " << heads << " causal " << causal << " packed "
                             << packed_layout);
          CHECK(std::memcmp(one_thread.data(), three_threads.data(),
                            sizeof(float) * one_thread.size()) == 0);
          for (int64_t b = 0; b < B; ++b) {
            const int64_t base = packed_layout ? off[b] : b * T;
            const int64_t n = packed_layout ? lens[b] : T;
            for (int64_t t = 0; t < n; ++t) {
              const float* got = one_thread.data() + (base + t) * ld_out;
              if (t == pick[b]) {
                CHECK(std::memcmp(got, full.data() + (base + t) * ld_out, sizeof(float) * D) == 0);
                CHECK(test::max_rel_diff(got, ref.data() + (base + t) * ld_out, D, 1.0) <= 4e-6);
              } else {
                for (int64_t d = 0; d < D; ++d) REQUIRE(got[d] == 777.f);
              }
              REQUIRE(got[D] == 777.f);
            }
          }
        }
}
