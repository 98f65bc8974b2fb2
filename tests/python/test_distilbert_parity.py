"""DistilBERT parity: Tern against PyTorch on the same random weights and the same token ids.

Hugging Face transformers is not installed here, so the reference is built from torch.nn:
HF's DistilBERT block is
    sa = sa_layer_norm(x + out_lin(MHA(q_lin x, k_lin x, v_lin x)))
    y  = output_layer_norm(sa + lin2(gelu(lin1(sa))))
and torch.nn.TransformerEncoderLayer(norm_first=False, activation="gelu", layer_norm_eps=1e-12)
computes x = norm1(x + self_attn(x)); x = norm2(x + linear2(gelu(linear1(x)))): the same function
once in_proj_weight = [q_lin; k_lin; v_lin] and out_proj = out_lin (see TorchDistilBert). In front:
LayerNorm(word_embeddings[ids] + position_embeddings[t]), eps 1e-12, as HF's Embeddings.

The model comes from the exporter's --random-init (the module's random_source, rebuilt here with the
same seed for the reference); a HF-directory checkpoint of the same weights, with the
`distilbert.` prefix and an MLM head, must convert to the same tensors. tern_run_model runs every
ISA this machine has. Fidelity (PRODUCT.md): per token, cosine >= 0.99999 and
max |diff| <= 1e-4 * max |reference|; a sequence inside a padded batch equals its own run within
1e-5 relative. Env: TERN_BUILD_DIR (tests/tern_run_model), TERN_BIN (tern, for the ISA list).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from weights_tools import tern_format  # noqa: E402
from weights_tools.archs import distilbert as arch  # noqa: E402

EXPORT = os.path.join(REPO, "weights_tools", "export.py")
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
RUN_MODEL = os.path.join(BUILD, "tests", "tern_run_model")
TERN_BIN = os.environ.get("TERN_BIN", os.path.join(BUILD, "tern"))
VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-cased-vocab.txt")
SEED = 11
# Small enough for the scalar path at 512 tokens; head_dim 24 is not a multiple of the vector width.
SMALL = {"layers": 2, "dim": 96, "heads": 4, "hidden_dim": 192, "max_positions": None}


def machine_isas() -> list[str]:
    out = subprocess.run([TERN_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


class Args:  # what export.py's parser gives the module
    def __init__(self, **sizes):
        self.layers = self.dim = self.heads = self.hidden_dim = self.max_positions = None
        self.__dict__.update(sizes)
        self.vocab = VOCAB
        self.keep_head = False
        self.preprocess = None


def size_flags(sizes: dict) -> list[str]:
    flags = []
    for key, value in sizes.items():
        if value is not None:
            flags += ["--" + key.replace("_", "-"), str(value)]
    return flags


def export(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, EXPORT, "distilbert", *argv], capture_output=True,
                          text=True)


class TorchDistilBert(torch.nn.Module):
    """HF DistilBertModel's forward from torch.nn parts (see the module docstring)."""

    def __init__(self, state: dict, cfg: dict):
        super().__init__()
        d, h, f = cfg["dim"], cfg["n_heads"], cfg["hidden_dim"]
        self.word = state["embeddings.word_embeddings.weight"]
        self.pos = state["embeddings.position_embeddings.weight"]
        self.norm = torch.nn.LayerNorm(d, eps=1e-12)
        self.norm.weight.data = state["embeddings.LayerNorm.weight"]
        self.norm.bias.data = state["embeddings.LayerNorm.bias"]
        self.layers = torch.nn.ModuleList()
        for i in range(cfg["n_layers"]):
            p = f"transformer.layer.{i}."
            layer = torch.nn.TransformerEncoderLayer(d, h, f, dropout=0.0, activation="gelu",
                                                     batch_first=True, norm_first=False,
                                                     layer_norm_eps=1e-12)
            a = p + "attention."
            layer.self_attn.in_proj_weight.data = torch.cat(
                [state[a + n + "_lin.weight"] for n in "qkv"])
            layer.self_attn.in_proj_bias.data = torch.cat([state[a + n + "_lin.bias"] for n in "qkv"])
            layer.self_attn.out_proj.weight.data = state[a + "out_lin.weight"]
            layer.self_attn.out_proj.bias.data = state[a + "out_lin.bias"]
            layer.linear1.weight.data = state[p + "ffn.lin1.weight"]
            layer.linear1.bias.data = state[p + "ffn.lin1.bias"]
            layer.linear2.weight.data = state[p + "ffn.lin2.weight"]
            layer.linear2.bias.data = state[p + "ffn.lin2.bias"]
            layer.norm1.weight.data = state[p + "sa_layer_norm.weight"]
            layer.norm1.bias.data = state[p + "sa_layer_norm.bias"]
            layer.norm2.weight.data = state[p + "output_layer_norm.weight"]
            layer.norm2.bias.data = state[p + "output_layer_norm.bias"]
            self.layers.append(layer)
        self.eval()

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        x = self.norm(self.word[ids] + self.pos[:t][None])
        pad = torch.arange(t)[None, :] >= lengths[:, None]  # True = masked key
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return x


def reference(model: TorchDistilBert, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(ids.astype(np.int64)),
                     torch.from_numpy(lengths.astype(np.int64))).numpy()


def assert_tokens_close(test: unittest.TestCase, got: np.ndarray, want: np.ndarray, what: str):
    """Per token vector: cosine >= 0.99999 and max |diff| <= 1e-4 * max |want|."""
    for i, (g, w) in enumerate(zip(got.reshape(-1, got.shape[-1]), want.reshape(-1, want.shape[-1]))):
        cos = float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w)))
        diff = float(np.abs(g - w).max())
        scale = float(np.abs(w).max())
        test.assertTrue(np.isfinite(g).all(), f"{what}: token {i} is not finite")
        test.assertGreaterEqual(cos, 0.99999, f"{what}: token {i} cosine {cos:.7f}")
        test.assertLessEqual(diff, 1e-4 * scale, f"{what}: token {i} max|diff| {diff:.3g} "
                                                 f"vs max|ref| {scale:.3g}")


class DistilBertParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.isas = machine_isas()
        cls.small_file = os.path.join(cls.tmp.name, "small.tern")
        r = export("--random-init", "--seed", str(SEED), *size_flags(SMALL), "-o", cls.small_file)
        if r.returncode != 0:
            raise RuntimeError(f"export failed: {r.stderr}")
        cls.source = arch.random_source(SEED, Args(**SMALL))
        cfg = dict(cls.source.hf_config)
        cls.small_cfg = cfg
        cls.small = TorchDistilBert(cls.source.state_dict, cfg)
        cls.rng = np.random.default_rng(SEED)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_tern(self, model_file: str, ids: np.ndarray, isa: str, lengths=None,
                 threads: int = 2) -> np.ndarray:
        d = self.tmp.name
        ids_path, out_path = os.path.join(d, "ids.npy"), os.path.join(d, "out.npy")
        np.save(ids_path, ids.astype(np.int32))
        argv = [RUN_MODEL, model_file, ids_path, out_path, "--threads", str(threads)]
        if lengths is not None:
            np.save(os.path.join(d, "lengths.npy"), lengths.astype(np.int32))
            argv += ["--lengths", os.path.join(d, "lengths.npy")]
        r = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, TERN_ISA=isa))
        self.assertEqual(r.returncode, 0, f"tern_run_model ({isa}) failed: {r.stderr}")
        return np.load(out_path)

    def random_ids(self, n: int, t: int, vocab: int) -> np.ndarray:
        ids = self.rng.integers(999, vocab, size=(n, t), dtype=np.int64)
        ids[:, 0] = 101  # [CLS]
        if t > 1:
            ids[:, -1] = 102  # [SEP]
        return ids

    def test_lengths_every_isa(self):
        vocab = self.small_cfg["vocab_size"]
        for t in (1, 2, 7, 128, 512):
            ids = self.random_ids(1, t, vocab)
            want = reference(self.small, ids, np.array([t]))
            for isa in self.isas:
                with self.subTest(isa=isa, tokens=t):
                    got = self.run_tern(self.small_file, ids, isa)
                    self.assertEqual(got.shape, (1, t, self.small_cfg["dim"]))
                    assert_tokens_close(self, got, want, f"{isa}, {t} tokens")

    def test_padded_batch_equals_single_runs(self):
        vocab = self.small_cfg["vocab_size"]
        lengths = np.array([7, 1, 128, 512, 2])
        ids = self.random_ids(len(lengths), 512, vocab)
        for i, n in enumerate(lengths):
            ids[i, n - 1] = 102
            ids[i, n:] = 0  # [PAD]
        want = reference(self.small, ids, lengths)
        for isa in self.isas:
            with self.subTest(isa=isa):
                got = self.run_tern(self.small_file, ids, isa, lengths=lengths, threads=3)
                for i, n in enumerate(lengths):
                    assert_tokens_close(self, got[i, :n], want[i, :n], f"{isa}, row {i} (len {n})")
                    self.assertTrue((got[i, n:] == 0).all(), f"{isa}: padding of row {i} not zero")
                    alone = self.run_tern(self.small_file, ids[i:i + 1, :n], isa, threads=1)[0]
                    rel = np.abs(got[i, :n] - alone).max() / np.abs(alone).max()
                    self.assertLessEqual(rel, 1e-5, f"{isa}: row {i} in the batch vs alone: {rel:.3g}")

    def test_full_size_128_tokens(self):
        """distilbert-base-cased shape (6 x 768, vocab 28996), 128 tokens, the best ISA."""
        path = os.path.join(self.tmp.name, "base.tern")
        r = export("--random-init", "--seed", str(SEED + 1), "-o", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        source = arch.random_source(SEED + 1, Args())
        model = TorchDistilBert(source.state_dict, source.hf_config)
        ids = self.random_ids(1, 128, source.hf_config["vocab_size"])
        want = reference(model, ids, np.array([128]))
        isa = self.isas[-1]
        got = self.run_tern(path, ids, isa)
        self.assertEqual(got.shape, (1, 128, 768))
        assert_tokens_close(self, got, want, f"base, {isa}")

    def test_hf_directory_converts_to_the_same_file(self):
        """A HF DistilBertForMaskedLM-style directory: distilbert. prefix, MLM head, vocab.txt,
        tokenizer_config.json. Same tensors as the random-init export; tokenizer settings kept."""
        d = os.path.join(self.tmp.name, "hf")
        os.makedirs(d, exist_ok=True)
        state = {"distilbert." + k: v for k, v in self.source.state_dict.items()}
        dim, vocab = self.small_cfg["dim"], self.small_cfg["vocab_size"]
        state["vocab_transform.weight"] = torch.zeros(dim, dim)
        state["vocab_layer_norm.weight"] = torch.ones(dim)
        state["vocab_projector.weight"] = torch.zeros(vocab, dim)
        state["distilbert.embeddings.position_ids"] = torch.arange(512)[None]
        torch.save(state, os.path.join(d, "pytorch_model.bin"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.small_cfg, f)
        with open(VOCAB, "rb") as src, open(os.path.join(d, "vocab.txt"), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": False, "model_max_length": 1000000000000000019884624838656,
                       "strip_accents": None}, f)
        out = os.path.join(self.tmp.name, "from_hf.tern")
        r = export(d, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        a, meta_a = tern_format.read_tern(out)
        b, meta_b = tern_format.read_tern(self.small_file)
        self.assertEqual(sorted(a), sorted(b))
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        self.assertEqual(json.loads(meta_a["config"]), json.loads(meta_b["config"]))
        tok = json.loads(meta_a["tokenizer"])
        self.assertEqual(tok["lowercase"], False)
        self.assertEqual(tok["strip_accents"], False)  # None -> same as lowercase
        self.assertEqual(tok["max_length"], 512)  # capped by max_position_embeddings
        self.assertEqual(tok["cls_token"], "[CLS]")
        self.assertEqual(meta_a["vocab"].split("\n")[:3], ["[PAD]", "[unused1]", "[unused2]"])
        # qkv fused as rows q; k; v.
        w = a["layers.1.attn.qkv.weight"]
        np.testing.assert_array_equal(
            w[dim:2 * dim], self.source.state_dict["transformer.layer.1.attention.k_lin.weight"])

    def test_bad_checkpoints_name_the_tensor(self):
        d = os.path.join(self.tmp.name, "bad")
        os.makedirs(d, exist_ok=True)
        for key, change, expect in (
                ("transformer.layer.1.ffn.lin2.bias", "drop", "transformer.layer.1.ffn.lin2.bias"),
                ("transformer.layer.0.attention.k_lin.weight", "shape",
                 "transformer.layer.0.attention.k_lin.weight")):
            state = dict(self.source.state_dict)
            if change == "drop":
                del state[key]
            else:
                state[key] = torch.zeros(3, 3)
            path = os.path.join(d, "model.pth")
            torch.save(state, path)
            r = subprocess.run([sys.executable, EXPORT, "distilbert", path, "--heads", "4", "-o",
                                os.path.join(d, "x.tern")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn(expect, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "x.tern")))


if __name__ == "__main__":
    unittest.main()
