"""BERT and sentence-transformers parity: `tern embed` against torch references on the same
random weights (fixtures: tests/python/bert_testlib.py).

- The encoder: tern_run_model (every ISA this machine has) against TorchBert, per token, at
  several lengths and in a padded batch; directories with and without the `bert.` prefix; the
  all-MiniLM-L6 shape and a 2-layer bert-base shape.
- sentence-transformers defaults: `tern embed MODEL --text ...` with no flags against ST's
  pipeline (Pooling cls / mean / max / mean_sqrt_len, Dense with and without tanh, Normalize),
  prompts with include_prompt true and false, truncation at max_seq_length, texts of different
  lengths in one batch, and flags that override the defaults.
Fidelity (PRODUCT.md): cosine >= 0.99999 and max |diff| <= 1e-4 * max |reference| per vector; a
text inside a batch equals it alone within 1e-5 relative. The reference tokens are Tern's own
(`tern tokenize`; the tokenizer is tested against HF in test_bert_tokenizer.py and C++).
Env: TERN_BIN, TERN_BUILD_DIR (tests/tern_run_model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bert_testlib as bt  # noqa: E402

BUILD = Path(os.environ.get("TERN_BUILD_DIR", bt.ROOT / "build"))
TERN = Path(os.environ.get("TERN_BIN", BUILD / "tern"))
RUN_MODEL = BUILD / "tests" / "tern_run_model"
EXPORT = bt.ROOT / "weights_tools" / "export.py"
# head_dim 24 (not a multiple of the vector width), 512 positions for the long-sequence cases.
SMALL = {"hidden_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 192, "max_position_embeddings": 512, "type_vocab_size": 2,
         "layer_norm_eps": 1e-12}
TEXTS = ["A cat.", "The quick brown fox jumps over the lazy dog, twice, near the river bank.",
         "Crème brûlée", "embeddings for search: one vector per sentence, mean pooled"]


def machine_isas() -> list[str]:
    out = subprocess.run([str(TERN), "--version"], capture_output=True, text=True,
                         check=True).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


def assert_close(test, got: np.ndarray, want: np.ndarray, what: str):
    """Per vector (last axis): cosine >= 0.99999, max |diff| <= 1e-4 * max |want|."""
    test.assertEqual(got.shape, want.shape, what)
    for i, (g, w) in enumerate(zip(got.reshape(-1, got.shape[-1]),
                                   want.reshape(-1, want.shape[-1]))):
        test.assertTrue(np.isfinite(g).all(), f"{what}: vector {i} is not finite")
        cos = float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w)))
        diff, scale = float(np.abs(g - w).max()), float(np.abs(w).max())
        test.assertGreaterEqual(cos, 0.99999, f"{what}: vector {i} cosine {cos:.7f}")
        test.assertLessEqual(diff, 1e-4 * scale, f"{what}: vector {i} max|diff| {diff:.3g} vs "
                                                 f"max|ref| {scale:.3g}")


def run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)


@unittest.skipUnless(TERN.exists(), f"no tern binary at {TERN}")
class BertParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = Path(cls._tmp.name)
        cls.state = bt.random_bert(SMALL, bt.VOCAB_UNCASED, 21)
        cls.torch = bt.TorchBert(cls.state, SMALL)
        cls.isas = machine_isas()
        cls.rng = np.random.default_rng(21)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    # ---- helpers ---------------------------------------------------------------------------------

    def path(self, stem: str) -> Path:
        type(self).n += 1
        return self.tmp / f"{stem}_{self.n}"

    def export(self, source: Path, arch: str = "bert", *extra) -> Path:
        out = source.with_suffix(".tern")
        r = run([sys.executable, EXPORT, arch, source, "-o", out, *extra])
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def st_model(self, state=None, cfg=SMALL, **kw) -> Path:
        state = self.state if state is None else state
        d = bt.write_st_dir(self.path("st"), lambda p: bt.write_hf_dir(
            p, state, cfg, bt.VOCAB_UNCASED, tokenizer_config={"do_lower_case": True}), **kw)
        return self.export(d)

    def embed(self, model: Path, texts: list[str], *flags) -> np.ndarray:
        out = self.path("out").with_suffix(".npy")
        r = run([TERN, "embed", model, "--text", *texts, *flags, "--quiet", "-o", out])
        self.assertEqual(r.returncode, 0, r.stderr)
        return np.load(out)

    def tokenize(self, model: Path, texts: list[str], *flags) -> list[list[int]]:
        r = run([TERN, "tokenize", model, "--text", *texts, *flags])
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line)["ids"] for line in r.stdout.strip().splitlines()]

    def reference(self, ids: list[list[int]], mode: str, prompt_len: int = 0, dense=(),
                  normalize=False, model=None) -> np.ndarray:
        """sentence-transformers' encode on these ids: one padded batch through the encoder,
        then Pooling, Dense, Normalize."""
        model = model or self.torch
        lengths = [len(r) for r in ids]
        padded = np.zeros((len(ids), max(lengths)), dtype=np.int64)
        for i, r in enumerate(ids):
            padded[i, :len(r)] = r
        tokens = bt.run_bert(model, padded, lengths)
        return np.stack([bt.st_head(bt.st_pool(tokens[i], n, mode, prompt_len), list(dense),
                                    normalize) for i, n in enumerate(lengths)]).astype(np.float32)

    def run_model(self, model: Path, ids: np.ndarray, isa: str, lengths=None, threads=2):
        d = self.path("rm")
        d.mkdir()
        np.save(d / "ids.npy", ids.astype(np.int32))
        argv = [RUN_MODEL, model, d / "ids.npy", d / "out.npy", "--threads", str(threads)]
        if lengths is not None:
            np.save(d / "len.npy", np.asarray(lengths, dtype=np.int32))
            argv += ["--lengths", d / "len.npy"]
        r = run(argv, env=dict(os.environ, TERN_ISA=isa))
        self.assertEqual(r.returncode, 0, f"tern_run_model ({isa}): {r.stderr}")
        return np.load(d / "out.npy")

    def random_ids(self, n: int, t: int) -> np.ndarray:
        ids = self.rng.integers(1999, 30522, size=(n, t))
        ids[:, 0] = 101
        ids[:, -1] = 102
        return ids

    # ---- the encoder ---------------------------------------------------------------------------

    def test_encoder_tokens_every_isa_with_and_without_prefix(self):
        plain = self.export(bt.write_hf_dir(self.path("hf"), self.state, SMALL, bt.VOCAB_UNCASED))
        prefixed = self.export(bt.write_hf_dir(self.path("hf"), self.state, SMALL,
                                               bt.VOCAB_UNCASED, prefix="bert.", fmt="bin",
                                               head="pretraining"))
        for t in (1, 2, 7, 130, 512):
            ids = self.random_ids(1, t)
            want = bt.run_bert(self.torch, ids, [t])
            for isa in self.isas:
                for name, model in (("plain", plain), ("bert.", prefixed)):
                    if name == "bert." and isa != self.isas[-1]:
                        continue
                    with self.subTest(isa=isa, tokens=t, layout=name):
                        got = self.run_model(model, ids, isa)
                        assert_close(self, got, want, f"{name} {isa} {t} tokens")

    def test_padded_batch_equals_single_runs(self):
        model = self.export(bt.write_hf_dir(self.path("hf"), self.state, SMALL, bt.VOCAB_UNCASED))
        lengths = [7, 1, 130, 512, 2]
        ids = self.random_ids(len(lengths), 512)
        for i, n in enumerate(lengths):
            ids[i, n - 1] = 102
            ids[i, n:] = 0
        want = bt.run_bert(self.torch, ids, lengths)
        isa = self.isas[-1]
        got = self.run_model(model, ids, isa, lengths=lengths, threads=3)
        for i, n in enumerate(lengths):
            assert_close(self, got[i, :n], want[i, :n], f"row {i} (len {n})")
            alone = self.run_model(model, ids[i:i + 1, :n], isa, threads=1)[0]
            rel = np.abs(got[i, :n] - alone).max() / np.abs(alone).max()
            self.assertLessEqual(rel, 1e-5, f"row {i} in the batch vs alone: {rel:.3g}")

    def test_keep_head_logits_are_the_pooler_output(self):
        d = bt.write_hf_dir(self.path("hf"), self.state, SMALL, bt.VOCAB_UNCASED)
        model = self.export(d, "bert", "--keep-head")
        ids = self.tokenize(model, TEXTS)
        lengths = [len(r) for r in ids]
        padded = np.zeros((len(ids), max(lengths)), dtype=np.int64)
        for i, r in enumerate(ids):
            padded[i, :len(r)] = r
        cls = torch.from_numpy(bt.run_bert(self.torch, padded, lengths)[:, 0]).double()
        w, b = self.state["pooler.dense.weight"].double(), self.state["pooler.dense.bias"].double()
        want = torch.tanh(cls @ w.T + b).float().numpy()
        assert_close(self, self.embed(model, TEXTS, "--logits"), want, "pooler_output")
        plain = self.export(bt.write_hf_dir(self.path("hf"), self.state, SMALL, bt.VOCAB_UNCASED))
        r = run([TERN, "embed", plain, "--text", "x", "--logits"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--keep-head", r.stderr)

    def test_layers(self):
        """--layer 0 (the embeddings after their LayerNorm), 1, -1 (= 2, the default output): HF
        hidden_states[k]; on a sentence-transformers file a layer is pooled without the Dense
        layers."""
        model = self.export(bt.write_hf_dir(self.path("hf"), self.state, SMALL, bt.VOCAB_UNCASED))
        lengths = [9, 4]
        ids = self.random_ids(2, 9)
        ids[1, 3], ids[1, 4:] = 102, 0
        t = torch.from_numpy(ids)
        m = self.torch
        with torch.inference_mode():
            h = [m.norm(m.word[t] + m.pos[:9][None] + m.types[0])]
            pad = torch.arange(9)[None, :] >= torch.tensor(lengths)[:, None]
            for layer in m.layers:
                h.append(layer(h[-1], src_key_padding_mask=pad))
        for name, k in (("0", 0), ("1", 1), ("-1", 2), ("2", 2)):
            with self.subTest(layer=name):
                d = self.path("rm")
                d.mkdir()
                np.save(d / "ids.npy", ids.astype(np.int32))
                np.save(d / "len.npy", np.array(lengths, dtype=np.int32))
                r = run([RUN_MODEL, model, d / "ids.npy", d / "out.npy", "--lengths",
                         d / "len.npy", "--layer", name])
                self.assertEqual(r.returncode, 0, r.stderr)
                got = np.load(d / "out.npy")
                for i, n in enumerate(lengths):
                    assert_close(self, got[i, :n], h[k][i, :n].numpy(), f"layer {name} row {i}")
        dn = bt.random_dense(SMALL["hidden_size"], 16, True, "tanh", 2)
        st = self.st_model(pooling="mean", dense=[dn], normalize=True)
        tok = self.tokenize(st, TEXTS[:2])
        lens = [len(r) for r in tok]
        padded = np.zeros((2, max(lens)), dtype=np.int64)
        for i, r in enumerate(tok):
            padded[i, :len(r)] = r
        d = self.path("rm")
        d.mkdir()
        np.save(d / "ids.npy", padded.astype(np.int32))
        np.save(d / "len.npy", np.array(lens, dtype=np.int32))
        r = run([RUN_MODEL, st, d / "ids.npy", d / "out.npy", "--lengths", d / "len.npy",
                 "--layer", "1", "--pooling", "mean"])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = np.load(d / "out.npy")
        self.assertEqual(got.shape, (2, SMALL["hidden_size"]))
        t = torch.from_numpy(padded)
        with torch.inference_mode():
            x = m.norm(m.word[t] + m.pos[:padded.shape[1]][None] + m.types[0])
            pad = torch.arange(padded.shape[1])[None, :] >= torch.tensor(lens)[:, None]
            x = m.layers[0](x, src_key_padding_mask=pad).numpy()
        want = np.stack([bt.st_pool(x[i], n, "mean") for i, n in enumerate(lens)])
        assert_close(self, got, want.astype(np.float32), "st --layer 1")

    def test_minilm_and_bert_base_shapes(self):
        for name, cfg in (("minilm", bt.MINILM), ("base2", bt.BASE_2L)):
            with self.subTest(name):
                state = bt.random_bert(cfg, bt.VOCAB_UNCASED, 5)
                model = self.st_model(state, cfg, pooling="mean", normalize=True,
                                      max_seq_length=256)
                texts = [TEXTS[1] * 6, TEXTS[0]]
                ids = self.tokenize(model, texts)
                self.assertGreater(len(ids[0]), 100)
                want = self.reference(ids, "mean", normalize=True,
                                      model=bt.TorchBert(state, cfg))
                assert_close(self, self.embed(model, texts), want, name)

    # ---- sentence-transformers defaults -------------------------------------------------------

    def test_each_pooling_mode_is_the_default(self):
        for mode in ("cls", "mean", "max", "mean_sqrt_len"):
            with self.subTest(mode):
                model = self.st_model(pooling=mode)
                ids = self.tokenize(model, TEXTS)
                got = self.embed(model, TEXTS)  # no flags: the file's defaults
                assert_close(self, got, self.reference(ids, mode), mode)
                for i, text in enumerate(TEXTS):
                    alone = self.embed(model, [text], "--batch", "1")[0]
                    rel = np.abs(got[i] - alone).max() / np.abs(alone).max()
                    self.assertLessEqual(rel, 1e-5, f"{mode}: text {i} in a batch vs alone")

    def test_dense_and_normalize(self):
        h = SMALL["hidden_size"]
        d_tanh = bt.random_dense(h, 48, True, "tanh", 1)
        d_id = bt.random_dense(48, 24, False, "identity", 2)
        cases = [
            ("tanh", dict(pooling="mean", dense=[d_tanh]), [d_tanh], False),
            ("identity_nobias", dict(pooling="cls", dense=[bt.random_dense(h, 32, False,
                                                                         "identity", 3)]),
             None, False),
            ("two_norm_nested_bin", dict(pooling="max", dense=[d_tanh, d_id], normalize=True,
                                         nested=True, fmt="bin"), [d_tanh, d_id], True),
            ("normalize_only", dict(pooling="mean_sqrt_len", normalize=True), [], True),
        ]
        for name, kw, dense, normalize in cases:
            with self.subTest(name):
                dense = kw["dense"] if dense is None else dense
                model = self.st_model(**kw)
                ids = self.tokenize(model, TEXTS)
                got = self.embed(model, TEXTS)
                want = self.reference(ids, kw["pooling"], dense=dense, normalize=normalize)
                self.assertEqual(got.shape, (len(TEXTS), dense[-1]["weight"].shape[0] if dense
                                             else h))
                assert_close(self, got, want, name)
                if normalize:
                    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
                info = run([TERN, "info", model, "--json"])
                self.assertEqual(info.returncode, 0, info.stderr)

    def test_prompts_include_prompt_both_ways(self):
        prompts = {"query": "query: ", "passage": "passage: "}
        for include in (True, False):
            with self.subTest(include_prompt=include):
                model = self.st_model(pooling="mean", include_prompt=include, prompts=prompts,
                                      normalize=True)
                plen = len(self.tokenize(model, ["query: "])[0]) - 1 if not include else 0
                want = self.reference(self.tokenize(model, ["query: " + t for t in TEXTS]),
                                      "mean", prompt_len=plen, normalize=True)
                assert_close(self, self.embed(model, TEXTS, "--prompt", "query"), want,
                             f"--prompt query, include_prompt {include}")
                text = "Represent this sentence for searching relevant passages: "
                plen = len(self.tokenize(model, [text])[0]) - 1 if not include else 0
                want = self.reference(self.tokenize(model, [text + t for t in TEXTS]), "mean",
                                      prompt_len=plen, normalize=True)
                assert_close(self, self.embed(model, TEXTS, "--prompt-text", text), want,
                             f"--prompt-text, include_prompt {include}")
                # without a prompt: the plain texts
                want = self.reference(self.tokenize(model, TEXTS), "mean", normalize=True)
                assert_close(self, self.embed(model, TEXTS), want, "no prompt")
        model = self.st_model(prompts=prompts)
        r = run([TERN, "embed", model, "--text", "x", "--prompt", "nope"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope", r.stderr)
        self.assertIn("passage, query", r.stderr)
        r = run([TERN, "embed", model, "--text", "x", "--prompt", "query", "--prompt-text", "q"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--prompt", r.stderr)

    def test_default_prompt(self):
        model = self.st_model(pooling="mean", include_prompt=False,
                              prompts={"query": "query: ", "doc": "passage: "},
                              default_prompt="query")
        plen = len(self.tokenize(model, ["query: "])[0]) - 1
        want = self.reference(self.tokenize(model, ["query: " + t for t in TEXTS]), "mean",
                              prompt_len=plen)
        assert_close(self, self.embed(model, TEXTS), want, "default prompt")
        plen = len(self.tokenize(model, ["passage: "])[0]) - 1
        want = self.reference(self.tokenize(model, ["passage: " + t for t in TEXTS]), "mean",
                              prompt_len=plen)
        assert_close(self, self.embed(model, TEXTS, "--prompt", "doc"), want, "--prompt doc")

    def test_truncation_at_max_seq_length(self):
        model = self.st_model(pooling="mean", max_seq_length=16, normalize=True)
        long_text = TEXTS[1] * 3
        full = self.tokenize(model, [long_text])[0]
        self.assertGreater(len(full), 16)
        cut = full[:15] + [full[-1]]  # HF: the first 14 pieces between [CLS] and [SEP]
        self.assertEqual(self.tokenize(model, [long_text], "--truncate", "--max-length", "16")[0],
                         cut)
        texts = [long_text, TEXTS[0]]
        want = self.reference([cut, self.tokenize(model, [TEXTS[0]])[0]], "mean", normalize=True)
        assert_close(self, self.embed(model, texts), want, "truncated at max_seq_length")
        # An explicit --max-length cuts shorter (the file's max_seq_length is the model's limit:
        # Model::max_length(), which front ends check --max-length against).
        cut12 = full[:11] + [full[-1]]
        want = self.reference([cut12], "mean", normalize=True)
        assert_close(self, self.embed(model, [long_text], "--max-length", "12", "--truncate"),
                     want, "--max-length 12")
        r = run([TERN, "embed", model, "--text", long_text, "--max-length", "12"])
        self.assertNotEqual(r.returncode, 0)  # explicit --max-length: longer is an error again
        self.assertIn("--truncate", r.stderr)

    def test_flags_override_the_defaults(self):
        dn = bt.random_dense(SMALL["hidden_size"], 40, True, "tanh", 7)
        model = self.st_model(pooling="mean", dense=[dn], normalize=False)
        ids = self.tokenize(model, TEXTS)
        for flag, mode in (("cls", "cls"), ("max", "max"), ("mean", "mean")):
            with self.subTest(pooling=flag):
                want = self.reference(ids, mode, dense=[dn])
                assert_close(self, self.embed(model, TEXTS, "--pooling", flag), want, flag)
        want = self.reference(ids, "mean", dense=[dn], normalize=True)
        assert_close(self, self.embed(model, TEXTS, "--normalize"), want, "--normalize")
        # --pooling none: the encoder's token vectors (no Dense: it maps sentence vectors)
        tokens = self.embed(model, [TEXTS[1]], "--pooling", "none")
        padded = np.array([ids[1]])
        assert_close(self, tokens, bt.run_bert(self.torch, padded, [len(ids[1])])[0], "none")

    def test_bf16_file(self):
        """--dtype bf16 (encoder and Dense weights): cosine >= 0.999 against the F32 file."""
        dn = bt.random_dense(SMALL["hidden_size"], 32, True, "tanh", 4)
        d = bt.write_st_dir(self.path("st_bf16"), lambda p: bt.write_hf_dir(
            p, self.state, SMALL, bt.VOCAB_UNCASED), pooling="mean", dense=[dn], normalize=True)
        f32 = self.export(d)
        bf16 = d.with_name(d.name + "_bf16").with_suffix(".tern")
        r = run([sys.executable, EXPORT, "bert", d, "--dtype", "bf16", "-o", bf16])
        self.assertEqual(r.returncode, 0, r.stderr)
        a, b = self.embed(f32, TEXTS), self.embed(bf16, TEXTS)
        for i in range(len(TEXTS)):
            cos = float(np.dot(a[i], b[i]) / (np.linalg.norm(a[i]) * np.linalg.norm(b[i])))
            self.assertGreaterEqual(cos, 0.999, f"text {i}: bf16 cosine {cos:.5f}")
        self.assertFalse(np.array_equal(a, b))  # the weights really are rounded

    def test_distilbert_directory(self):
        from weights_tools.archs import distilbert

        class A:
            layers, dim, heads, hidden_dim, max_positions = 2, 64, 4, 128, 128
            vocab = str(bt.VOCAB_CASED)

        src = distilbert.random_source(8, A())

        def write(p: Path):
            p.mkdir(parents=True, exist_ok=True)
            torch.save({"distilbert." + k: v for k, v in src.state_dict.items()},
                       p / "pytorch_model.bin")
            (p / "config.json").write_text(json.dumps(src.hf_config))
            (p / "vocab.txt").write_bytes(bt.VOCAB_CASED.read_bytes())
            (p / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))

        dn = bt.random_dense(64, 16, True, "tanh", 9)
        d = bt.write_st_dir(self.path("st_distil"), write, pooling="mean", dense=[dn],
                            normalize=True, max_seq_length=100)
        model = self.export(d, "auto")
        ids = self.tokenize(model, TEXTS)
        # DistilBERT = BERT without token types: the same reference with a zero type embedding.
        s = {k: v for k, v in src.state_dict.items()}
        cfg = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "intermediate_size": 128, "max_position_embeddings": 128, "type_vocab_size": 1,
               "layer_norm_eps": 1e-12}
        bs = {"embeddings.word_embeddings.weight": s["embeddings.word_embeddings.weight"],
              "embeddings.position_embeddings.weight": s["embeddings.position_embeddings.weight"],
              "embeddings.token_type_embeddings.weight": torch.zeros(1, 64),
              "embeddings.LayerNorm.weight": s["embeddings.LayerNorm.weight"],
              "embeddings.LayerNorm.bias": s["embeddings.LayerNorm.bias"]}
        names = {"attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
                 "attention.self.value": "attention.v_lin",
                 "attention.output.dense": "attention.out_lin",
                 "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
                 "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm"}
        for i in range(2):
            for new, old in names.items():
                for p in ("weight", "bias"):
                    bs[f"encoder.layer.{i}.{new}.{p}"] = s[f"transformer.layer.{i}.{old}.{p}"]
        want = self.reference(ids, "mean", dense=[dn], normalize=True,
                              model=bt.TorchBert(bs, cfg))
        assert_close(self, self.embed(model, TEXTS), want, "distilbert st")


class BenchPeer(unittest.TestCase):
    """bench/torch_bert.py (the benchmark's PyTorch / ONNX peer) computes the reference's
    function: HF key names load strictly, padded batches agree."""

    def test_torch_bert_matches_the_reference(self):
        sys.path.insert(0, str(bt.ROOT / "bench"))
        import torch_bert

        state = bt.random_bert(SMALL, bt.VOCAB_UNCASED, 3)
        peer = torch_bert.from_state_dict({"bert." + k: v for k, v in state.items()}, SMALL)
        ref = bt.TorchBert(state, SMALL)
        ids = torch.randint(2000, 30000, (3, 20))
        lengths = torch.tensor([20, 9, 1])
        mask = (torch.arange(20)[None] < lengths[:, None]).long()
        with torch.inference_mode():
            a, b = peer(ids, mask), ref(ids, lengths)
        for i, n in enumerate(lengths.tolist()):
            np.testing.assert_allclose(a[i, :n].numpy(), b[i, :n].numpy(), rtol=0,
                                       atol=1e-5 * float(b[i, :n].abs().max()))

@unittest.skipUnless(TERN.exists(), f"no tern binary at {TERN}")
class Bench(unittest.TestCase):
    def test_tern_bench_counts_the_benchmarks_flops(self):
        """`tern bench` on a bert file (MiniLM-L6 shape) runs and reports the FLOPs that
        bench/flops.py (the comparison runner) counts for that config."""
        sys.path.insert(0, str(bt.ROOT / "bench"))
        import flops

        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "minilm.tern"
            r = run([sys.executable, EXPORT, "bert", "--random-init", "--hidden-size", "384",
                     "--layers", "6", "--heads", "12", "--intermediate", "1536", "--vocab",
                     bt.VOCAB_UNCASED, "-o", model])
            self.assertEqual(r.returncode, 0, r.stderr)
            r = run([TERN, "bench", model, "--json", "--iters", "1", "--warmup", "0",
                     "--seq-len", "32", "--batch", "2", "--threads", "1"])
            self.assertEqual(r.returncode, 0, r.stderr)
            j = json.loads(r.stdout.strip().splitlines()[-1])
            self.assertEqual(j["architecture"], "bert")
            cfg = {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536}
            self.assertAlmostEqual(j["gflop_per_forward"],
                                   flops.forward_flops("bert", cfg, 2, seq_len=32) / 1e9, places=6)

@unittest.skipUnless(TERN.exists(), f"no tern binary at {TERN}")
class EmbeddingMetadataRobustness(unittest.TestCase):
    """A file whose `embedding` metadata is malformed or disagrees with its tensors is refused at
    load with one line naming the file and the field (files edited after export)."""

    def test_bad_metadata_is_refused(self):
        from weights_tools import tern_format
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            state = bt.random_bert(bt.TINY, bt.VOCAB_UNCASED, 2)
            dn = bt.random_dense(bt.TINY["hidden_size"], 8, True, "tanh", 1)
            d = bt.write_st_dir(tmp / "st", lambda p: bt.write_hf_dir(
                p, state, bt.TINY, bt.VOCAB_UNCASED), pooling="mean", dense=[dn])
            good = tmp / "good.tern"
            r = run([sys.executable, EXPORT, "bert", d, "-o", good])
            self.assertEqual(r.returncode, 0, r.stderr)
            tensors, meta = tern_format.read_tern(str(good))
            emb = json.loads(meta["embedding"])

            def edited(**changes):
                e = json.loads(json.dumps(emb))
                for k, v in changes.items():
                    if k.startswith("dense0_"):
                        e["dense"][0][k[len("dense0_"):]] = v
                    elif v is None:
                        del e[k]
                    else:
                        e[k] = v
                return e

            cases = [
                ("pooling", edited(pooling="weighted"), None, ["pooling", "weighted"]),
                ("no_pooling", edited(pooling=None), None, ["pooling", "missing"]),
                ("max_length", edited(max_length=100000), None, ["max_length"]),
                ("normalize", edited(normalize="yes"), None, ["normalize"]),
                ("dense_in", edited(dense0_in=7), None, ["dense[0]", "7"]),
                ("activation", edited(dense0_activation="relu"), None, ["relu"]),
                ("prompt", edited(default_prompt="q"), None, ["default_prompt"]),
                ("json", "{", None, ["embedding metadata", "JSON"]),
                ("tensor", emb, "head.dense.0.bias", ["head.dense.0.bias"]),
            ]
            for name, value, drop, expect in cases:
                with self.subTest(name):
                    m = dict(meta, embedding=value if isinstance(value, str) else json.dumps(value))
                    t = {k: v for k, v in tensors.items() if k != drop}
                    bad = tmp / f"{name}.tern"
                    tern_format.write_tern(str(bad), t, m)
                    r = run([TERN, "embed", bad, "--text", "hello"])
                    self.assertNotEqual(r.returncode, 0)
                    lines = r.stderr.strip().splitlines()
                    self.assertEqual(len(lines), 1, r.stderr)
                    for e in [str(bad)] + expect:
                        self.assertIn(e, lines[0])
            r = run([TERN, "embed", good, "--text", "hello", "--prompt", "query"])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("it has none", r.stderr)


if __name__ == "__main__":
    unittest.main()
