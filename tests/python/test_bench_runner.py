"""The benchmark harness: `tern bench --json`, the FLOP counts, the PyTorch DistilBERT peer and the
compare runner end to end on a tiny configuration. Nothing here asserts a speed.

Env: TERN_BIN (the tern CLI), TERN_BUILD_DIR (tests/tern_run_model).
ONNX Runtime is used when node/npm can provide onnxruntime-node (bench/.cache/ort); otherwise
the runner must say it is unavailable, and the Tern/PyTorch agreement check must still run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from xml.etree import ElementTree

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, REPO)

import flops  # noqa: E402
import torch_distilbert  # noqa: E402

BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
TERN_BIN = os.environ.get("TERN_BIN", os.path.join(BUILD, "tern"))
EXPORT = os.path.join(REPO, "weights_tools", "export.py")
COMPARE = os.path.join(REPO, "bench", "compare.py")
JSON_KEYS = ("model", "architecture", "isa", "batch", "threads", "warmup", "iters", "load_ms",
             "min_ms", "median_ms", "p90_ms", "mean_ms", "times_ms", "items_per_s",
             "gflop_per_forward", "gflops", "peak_gflops", "fraction_of_peak", "peak_rss_mb")


def tern(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([TERN_BIN, *argv], capture_output=True, text=True)


class Flops(unittest.TestCase):
    def test_published_figures(self):
        self.assertAlmostEqual(flops.resnet_macs(224, 224) / 1e9, 4.09, delta=0.005)
        self.assertAlmostEqual(flops.vit_macs() / 1e9, 17.56, delta=0.005)
        self.assertAlmostEqual(flops.distilbert_macs(128) / 1e9, 5.59, delta=0.005)

    def test_scales_with_shape(self):
        self.assertEqual(flops.forward_flops("resnet50", {}, 8), 8 * 2 * flops.resnet_macs(224, 224))
        # Attention is quadratic in tokens, the rest linear.
        d16, d32 = flops.distilbert_macs(16), flops.distilbert_macs(32)
        self.assertGreater(d32, 2 * d16)
        self.assertLess(d32, 2.1 * d16)


class TorchDistilBert(unittest.TestCase):
    """bench/torch_distilbert.py computes a DistilBERT block exactly as torch's own post-norm
    nn.TransformerEncoderLayer does once HF's weights are mapped onto it (q/k/v stacked into
    in_proj, exact GELU, LayerNorm eps 1e-12), with the word + position embedding and LayerNorm
    in front. A wrong head split, scale or norm order in the peer would fail here."""

    def test_matches_transformer_encoder_layer(self):
        torch.manual_seed(3)
        vocab, dim, heads, ffn, layers, positions = 50, 32, 4, 64, 2, 20
        model = torch_distilbert.DistilBertModel(vocab, dim, layers, heads, ffn, positions).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        sd = {"distilbert." + k: v for k, v in model.state_dict().items()}
        sd["vocab_projector.weight"] = torch.zeros(vocab, dim)  # an MLM head is skipped
        loaded = torch_distilbert.from_state_dict(sd, {"n_heads": heads})

        ref_layers = []
        for blk in model.transformer.layer:
            ref = torch.nn.TransformerEncoderLayer(dim, heads, ffn, dropout=0.0, activation="gelu",
                                                   batch_first=True, norm_first=False,
                                                   layer_norm_eps=1e-12).eval()
            a = blk.attention
            with torch.no_grad():
                ref.self_attn.in_proj_weight.copy_(torch.cat([a.q_lin.weight, a.k_lin.weight,
                                                              a.v_lin.weight]))
                ref.self_attn.in_proj_bias.copy_(torch.cat([a.q_lin.bias, a.k_lin.bias,
                                                            a.v_lin.bias]))
                ref.self_attn.out_proj.weight.copy_(a.out_lin.weight)
                ref.self_attn.out_proj.bias.copy_(a.out_lin.bias)
                ref.linear1.load_state_dict(blk.ffn.lin1.state_dict())
                ref.linear2.load_state_dict(blk.ffn.lin2.state_dict())
                ref.norm1.load_state_dict(blk.sa_layer_norm.state_dict())
                ref.norm2.load_state_dict(blk.output_layer_norm.state_dict())
            ref_layers.append(ref)

        ids = torch.randint(0, vocab, (3, 11))
        mask = torch.ones(3, 11, dtype=torch.long)
        mask[1, 7:] = 0
        with torch.no_grad():
            got = loaded(ids, mask)
            h = model.embeddings(ids)
            for ref in ref_layers:
                h = ref(h, src_key_padding_mask=mask == 0)
        for b in range(3):
            n = int(mask[b].sum())
            torch.testing.assert_close(got[b, :n], h[b, :n], rtol=1e-5, atol=1e-5)


class TernBenchCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model = os.path.join(cls.tmp.name, "tiny_resnet.tern")
        r = subprocess.run([sys.executable, EXPORT, "resnet50", "--random-init", "--seed", "1",
                            "--layers", "1,1,1,1", "-o", cls.model], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"export failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_json_has_the_documented_keys(self):
        r = tern("bench", self.model, "--json", "--batch", "2", "--threads", "1", "--warmup", "0",
                 "--iters", "3", "--image-size", "64")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        for key in JSON_KEYS + ("image_size",):
            self.assertIn(key, j)
        self.assertNotIn("seq_len", j)
        self.assertEqual((j["model"], j["architecture"]), (self.model, "resnet50"))
        self.assertEqual((j["batch"], j["threads"], j["iters"], j["image_size"]), (2, 1, 3, 64))
        self.assertIn(j["isa"], ("scalar", "avx2", "avx512"))
        self.assertEqual(len(j["times_ms"]), 3)
        self.assertAlmostEqual(j["min_ms"], min(j["times_ms"]))
        self.assertAlmostEqual(j["median_ms"], float(np.median(j["times_ms"])))
        self.assertLessEqual(j["min_ms"], j["median_ms"])
        self.assertLessEqual(j["median_ms"], j["p90_ms"])
        self.assertLessEqual(j["p90_ms"], max(j["times_ms"]))
        self.assertGreater(j["load_ms"], 0)
        self.assertGreater(j["peak_rss_mb"], 1)
        # The FLOP count is the config's: 1 block per stage, 64x64 input, batch 2.
        want = flops.forward_flops("resnet50", {"layers": [1, 1, 1, 1]}, 2, image_size=64)
        self.assertAlmostEqual(j["gflop_per_forward"], want / 1e9, places=6)
        self.assertAlmostEqual(j["gflops"], want / 1e9 / (j["median_ms"] / 1e3), places=3)
        self.assertAlmostEqual(j["items_per_s"], 2 / (j["median_ms"] / 1e3), places=3)
        if j["peak_gflops"] is not None:
            self.assertGreater(j["peak_gflops"], 0)
            self.assertAlmostEqual(j["fraction_of_peak"], j["gflops"] / j["peak_gflops"], places=6)

    def test_text_report(self):
        r = tern("bench", self.model, "--iters", "1", "--warmup", "0", "--image-size", "48")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("latency", "median", "throughput", "GFLOP/s", "peak resident"):
            self.assertIn(word, r.stdout)

    def test_bad_arguments_are_one_line_errors(self):
        for argv, words in (((self.model, "--batch", "0"), "--batch"),
                            ((self.model, "--iters", "x"), "--iters"),
                            ((self.model, "--seq-len", "16"), "text models"),
                            ((self.model, "--frobnicate"), "unknown option"),
                            ((os.path.join(self.tmp.name, "missing.tern"),), "missing.tern"),
                            ((), "no model"),
                            (("--kernel", "gemm"), "tern_kernel_bench")):
            r = tern("bench", *argv)
            self.assertEqual(r.returncode, 1, (argv, r.stdout, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(words, r.stderr)


class CompareRunner(unittest.TestCase):
    """bench/compare.py end to end on a tiny ResNet (one block per stage, 64x64), one run each:
    the agreement check, the timing rounds and the three output files."""

    def test_end_to_end(self):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, COMPARE, "--models", "resnet50", "--image-size", "64",
                   "--export-arg", "resnet50:--layers=1,1,1,1", "--batches", "1,2", "--threads", "1",
                   "--iters", "1", "--rounds", "1", "--warmup", "0", "--ort-install-timeout", "180",
                   "--out-dir", out,
                   "--name", "tiny", "--tern", TERN_BIN]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            with open(os.path.join(out, "tiny.json")) as f:
                res = json.load(f)
            for ext in (".md", ".svg"):
                self.assertTrue(os.path.getsize(os.path.join(out, "tiny" + ext)) > 100)
            svg = ElementTree.parse(os.path.join(out, "tiny.svg")).getroot()  # well-formed
            self.assertTrue(svg.tag.endswith("svg"))
            self.assertEqual(len(svg.findall(".//{http://www.w3.org/2000/svg}rect")), 1 + 3 + 3 * 2
                             if "ort" not in res["meta"]["unavailable"] else 1 + 3 + 2 * 2)

            ort_ok = "ort" not in res["meta"]["unavailable"]
            checked = {(a["engine"], a["batch"]) for a in res["agreement"]}
            self.assertIn(("tern", 1), checked)
            self.assertIn(("tern", 2), checked)
            for a in res["agreement"]:
                self.assertTrue(a["ok"], a)
                self.assertGreaterEqual(a["min_cosine"], 0.9999)
            self.assertEqual(("ort", 1) in checked, ort_ok)

            self.assertEqual(len(res["cases"]), 2)
            for case in res["cases"]:
                e = case["engines"]
                self.assertGreater(e["tern"]["median_ms"], 0)
                self.assertGreater(e["torch"]["median_ms"], 0)
                self.assertAlmostEqual(case["ratios"]["tern/torch"],
                                       e["tern"]["median_ms"] / e["torch"]["median_ms"])
                if ort_ok:
                    self.assertGreater(e["ort"]["median_ms"], 0)
                else:
                    self.assertEqual(e["ort"]["status"], "n/a")
            with open(os.path.join(out, "tiny.md")) as f:
                md = f.read()
            self.assertIn("| ResNet50 64px | 2 | 1 |", md)

    def test_text_model_end_to_end(self):
        """A tiny DistilBERT: token-id inputs, --seq-len, and `tern bench --json` for text."""
        with tempfile.TemporaryDirectory() as out:
            tiny = ["--export-arg", "distilbert:--layers=1", "--export-arg", "distilbert:--dim=32",
                    "--export-arg", "distilbert:--heads=2",
                    "--export-arg", "distilbert:--hidden-dim=64"]
            cmd = [sys.executable, COMPARE, "--models", "distilbert", *tiny, "--seq-lens", "2,9",
                   "--batches", "2", "--threads", "1", "--iters", "1", "--rounds", "1",
                   "--warmup", "0", "--ort-install-timeout", "180", "--out-dir", out,
                   "--name", "text", "--tern", TERN_BIN, "--mixed", "5:2-9",
                   "--workdir", out]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            with open(os.path.join(out, "text.json")) as f:
                res = json.load(f)
            tern_checks = [a for a in res["agreement"] if a["engine"] == "tern"]
            self.assertEqual(sorted(a["seq_len"] for a in tern_checks), [2, 9])
            self.assertTrue(all(a["ok"] for a in res["agreement"]), res["agreement"])
            uniform = [c for c in res["cases"] if not c.get("mixed")]
            self.assertEqual([c["seq_len"] for c in uniform], [2, 9])
            # The mixed case: Tern on its real tokens (lengths from tern bench, within 2-9), the
            # peers on the batch padded to its longest; no PyTorch timing.
            mixed = [c for c in res["cases"] if c.get("mixed")]
            self.assertEqual(len(mixed), 1)
            m = mixed[0]["mixed"]
            self.assertEqual((mixed[0]["batch"], m["min"], m["max"]), (5, 2, 9))
            self.assertEqual(len(m["seq_lens"]), 5)
            self.assertTrue(all(2 <= n <= 9 for n in m["seq_lens"]), m)
            self.assertEqual((m["tokens"], m["padded_to"]),
                             (sum(m["seq_lens"]), max(m["seq_lens"])))
            e = mixed[0]["engines"]
            self.assertGreater(e["tern"]["median_ms"], 0)
            self.assertEqual(e["torch"]["status"], "not run")
            if "ort" not in res["meta"]["unavailable"]:
                self.assertAlmostEqual(mixed[0]["ratios"]["tern/ort"],
                                       e["tern"]["median_ms"] / e["ort"]["median_ms"])
            with open(os.path.join(out, "text.md")) as f:
                self.assertIn("DistilBERT mixed 2-9 tok", f.read())

            r = tern("bench", os.path.join(out, "distilbert.tern"), "--json", "--seq-len", "9",
                     "--batch", "2", "--iters", "2", "--warmup", "0")
            self.assertEqual(r.returncode, 0, r.stderr)
            j = json.loads(r.stdout)
            for key in JSON_KEYS + ("seq_len",):
                self.assertIn(key, j)
            self.assertNotIn("image_size", j)
            self.assertEqual((j["architecture"], j["seq_len"], j["batch"]), ("distilbert", 9, 2))
            cfg = {"n_layers": 1, "dim": 32, "hidden_dim": 64}
            self.assertAlmostEqual(j["gflop_per_forward"],
                                   flops.forward_flops("distilbert", cfg, 2, seq_len=9) / 1e9)
            r = tern("bench", os.path.join(out, "distilbert.tern"), "--seq-len", "513")
            self.assertEqual(r.returncode, 1)
            self.assertIn("513", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
