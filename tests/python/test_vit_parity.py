"""ViT parity: Tern against torchvision's VisionTransformer on the same random weights and inputs.

Reference: torchvision's own forward up to the encoder (patch embedding, class token, position
embedding, pre-norm blocks, final LayerNorm): every token, [N, 1 + (S/P)^2, D]; with --keep-head
also the logits. Random weights come from the exporter's random_source (LayerNorms, class token
and position embedding randomised) and pass through export.py as a .pth state dict, as a real
checkpoint would. tern_run_model runs every ISA this machine has. Fidelity (PRODUCT.md): per token,
cosine >= 0.99999 and max |diff| <= 1e-4 * max |reference|.
Env: TERN_BUILD_DIR (tests/tern_run_model), TERN_BIN (tern, for the ISA list).
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
from weights_tools.archs import vit as arch  # noqa: E402

EXPORT = os.path.join(REPO, "weights_tools", "export.py")
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
RUN_MODEL = os.path.join(BUILD, "tests", "tern_run_model")
TERN_BIN = os.environ.get("TERN_BIN", os.path.join(BUILD, "tern"))
SEED = 21
# 224 / 16 = 197 tokens as in vit_b_16, narrower and shallower so the scalar path stays quick;
# head_dim 40 is not a multiple of the vector width.
SMALL = {"layers": 2, "heads": 4, "hidden_dim": 160, "mlp_dim": 320}


def machine_isas() -> list[str]:
    out = subprocess.run([TERN_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


class Args:  # what export.py's parser gives the module
    def __init__(self, keep_head=False, **sizes):
        self.layers = self.heads = self.hidden_dim = self.mlp_dim = None
        self.patch_size = self.image_size = None
        self.__dict__.update(sizes)
        self.keep_head = keep_head
        self.preprocess = None


def export(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, EXPORT, "vit_b_16", *argv], capture_output=True,
                          text=True)


def torch_model(state: dict, cfg: dict):
    from torchvision.models.vision_transformer import VisionTransformer
    model = VisionTransformer(**cfg)
    model.load_state_dict(state)
    return model.eval()


def torch_tokens(model, x: np.ndarray) -> np.ndarray:
    """torchvision's forward without the head: all tokens after encoder.ln."""
    with torch.inference_mode():
        t = torch.from_numpy(x)
        h = model._process_input(t)
        h = torch.cat([model.class_token.expand(t.shape[0], -1, -1), h], dim=1)
        return model.encoder(h).numpy()


def assert_tokens_close(test: unittest.TestCase, got: np.ndarray, want: np.ndarray, what: str):
    """Per vector: cosine >= 0.99999 and max |diff| <= 1e-4 * max |want|."""
    test.assertEqual(got.shape, want.shape, what)
    g2, w2 = got.reshape(-1, got.shape[-1]), want.reshape(-1, want.shape[-1])
    for i, (g, w) in enumerate(zip(g2, w2)):
        cos = float(np.dot(g, w) / (np.linalg.norm(g) * np.linalg.norm(w)))
        diff, scale = float(np.abs(g - w).max()), float(np.abs(w).max())
        test.assertTrue(np.isfinite(g).all(), f"{what}: vector {i} is not finite")
        test.assertGreaterEqual(cos, 0.99999, f"{what}: vector {i} cosine {cos:.7f}")
        test.assertLessEqual(diff, 1e-4 * scale,
                             f"{what}: vector {i} max|diff| {diff:.3g} vs max|ref| {scale:.3g}")


def save_and_export(tmp: str, name: str, state: dict, *flags: str) -> str:
    pth, out = os.path.join(tmp, name + ".pth"), os.path.join(tmp, name + ".tern")
    torch.save(state, pth)
    r = export(pth, *flags, "-o", out)
    if r.returncode != 0:
        raise RuntimeError(f"export of {name} failed: {r.stderr}")
    return out


class ViTParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.isas = machine_isas()
        cls.source = arch.random_source(SEED, Args(**SMALL))
        cls.cfg = {"image_size": 224, "patch_size": 16, "num_layers": SMALL["layers"],
                   "num_heads": SMALL["heads"], "hidden_dim": SMALL["hidden_dim"],
                   "mlp_dim": SMALL["mlp_dim"]}
        cls.model = torch_model(cls.source.state_dict, cls.cfg)
        cls.small_file = save_and_export(cls.tmp.name, "small", cls.source.state_dict, "--heads",
                                         str(SMALL["heads"]), "--keep-head")
        rng = np.random.default_rng(SEED)
        cls.inputs = {"b1": rng.standard_normal((1, 3, 224, 224), dtype=np.float32),
                      "b3": rng.standard_normal((3, 3, 224, 224), dtype=np.float32)}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_tern(self, model_file: str, x: np.ndarray, isa: str, *flags: str) -> np.ndarray:
        d = self.tmp.name
        inp, out = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(inp, x)
        r = subprocess.run([RUN_MODEL, model_file, inp, out, "--threads", "2", *flags],
                           capture_output=True, text=True, env=dict(os.environ, TERN_ISA=isa))
        self.assertEqual(r.returncode, 0, f"tern_run_model ({isa}) failed: {r.stderr}")
        return np.load(out)

    def test_tokens_every_isa(self):
        for name, x in self.inputs.items():
            want = torch_tokens(self.model, x)
            for isa in self.isas:
                with self.subTest(isa=isa, input=name):
                    got = self.run_tern(self.small_file, x, isa)
                    assert_tokens_close(self, got, want, f"{isa}, {name}")

    def test_batch_equals_single_runs(self):
        x = self.inputs["b3"]
        isa = self.isas[-1]
        batch = self.run_tern(self.small_file, x, isa)
        for i in range(3):
            alone = self.run_tern(self.small_file, x[i:i + 1], isa)[0]
            rel = np.abs(batch[i] - alone).max() / np.abs(alone).max()
            self.assertLessEqual(rel, 1e-5, f"image {i} in the batch vs alone: {rel:.3g}")

    def test_logits_with_kept_head(self):
        x = self.inputs["b3"]
        with torch.inference_mode():
            want = self.model(torch.from_numpy(x)).numpy()
        got = self.run_tern(self.small_file, x, self.isas[-1], "--logits")
        assert_tokens_close(self, got, want, "logits")

    def test_mlp_namings_convert_alike(self):
        """torchvision's older mlp.linear_1 / mlp.linear_2 names give the same file."""
        old = {}
        for k, v in self.source.state_dict.items():
            k = k.replace(".mlp.0.", ".mlp.linear_1.").replace(".mlp.3.", ".mlp.linear_2.")
            old[k] = v
        self.assertTrue(any(".mlp.linear_1." in k for k in old))
        path = save_and_export(self.tmp.name, "old_names", old, "--heads", str(SMALL["heads"]),
                               "--keep-head")
        a, meta_a = tern_format.read_tern(path)
        b, meta_b = tern_format.read_tern(self.small_file)
        self.assertEqual(sorted(a), sorted(b))
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        self.assertEqual(meta_a["config"], meta_b["config"])

    def test_metadata_and_head_dropped_by_default(self):
        path = save_and_export(self.tmp.name, "nohead", self.source.state_dict, "--heads",
                               str(SMALL["heads"]))
        tensors, meta = tern_format.read_tern(path)
        self.assertNotIn("head.weight", tensors)
        cfg = json.loads(meta["config"])
        self.assertEqual({k: cfg[k] for k in self.cfg}, self.cfg)
        self.assertEqual(cfg["eps"], 1e-6)
        pre = json.loads(meta["preprocess"])
        self.assertEqual((pre["profile"], pre["resize"], pre["crop"], pre["interpolation"]),
                         ("torchvision-v1", 256, 224, "bilinear"))
        np.testing.assert_array_equal(
            tensors["layers.1.attn.qkv.weight"],
            self.source.state_dict["encoder.layers.encoder_layer_1.self_attention.in_proj_weight"])

    def test_bad_checkpoints_name_the_tensor(self):
        for key, change in (("encoder.layers.encoder_layer_1.ln_2.bias", "drop"),
                            ("encoder.layers.encoder_layer_0.self_attention.out_proj.weight",
                             "shape")):
            state = dict(self.source.state_dict)
            if change == "drop":
                del state[key]
            else:
                state[key] = torch.zeros(5, 5)
            pth, out = os.path.join(self.tmp.name, "bad.pth"), os.path.join(self.tmp.name, "bad.tern")
            torch.save(state, pth)
            r = export(pth, "--heads", "4", "-o", out)
            self.assertEqual(r.returncode, 1)
            self.assertIn(key, r.stderr)
            self.assertFalse(os.path.exists(out))

    def test_vit_b_32_converts_and_runs(self):
        """torchvision vit_b_32's configuration (patch 32: 50 tokens; 2 of its 12 layers for
        time); heads inferred from the width (768 -> 12)."""
        import torchvision
        torch.manual_seed(SEED + 2)
        model = torchvision.models.vit_b_32(num_classes=1000)
        model.encoder.layers = model.encoder.layers[:2]
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.2)
            model.class_token.normal_()
            model.encoder.pos_embedding.normal_(0, 0.5)
        model.eval()
        path = save_and_export(self.tmp.name, "b32", model.state_dict())
        cfg = json.loads(tern_format.read_tern(path)[1]["config"])
        self.assertEqual((cfg["patch_size"], cfg["num_heads"], cfg["num_layers"]), (32, 12, 2))
        x = self.inputs["b1"]
        want = torch_tokens(model, x)
        got = self.run_tern(path, x, self.isas[-1])
        self.assertEqual(got.shape, (1, 50, 768))
        assert_tokens_close(self, got, want, "vit_b_32")

    def test_full_vit_b_16(self):
        """The real vit_b_16 size (12 x 768, 197 tokens) through --random-init, the best ISA."""
        path = os.path.join(self.tmp.name, "base.tern")
        r = export("--random-init", "--seed", str(SEED + 3), "-o", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        source = arch.random_source(SEED + 3, Args())
        model = torch_model(source.state_dict, dict(arch.BASE))
        x = self.inputs["b1"]
        want = torch_tokens(model, x)
        got = self.run_tern(path, x, self.isas[-1])
        self.assertEqual(got.shape, (1, 197, 768))
        assert_tokens_close(self, got, want, "vit_b_16")


if __name__ == "__main__":
    unittest.main()
