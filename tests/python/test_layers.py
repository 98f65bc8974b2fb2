"""Embeddings from any layer (PRODUCT.md "Layers"): Tern against PyTorch on random weights.

- ResNet50 (torchvision's ResNet with bottleneck blocks, 2, 1, 3, 2 per stage to stay quick while
  each stage ends on a block with and without a projection shortcut): `stem` (after
  the max pool) and `layer1` .. `layer4`, each pooled (the stage's global average pool) and unpooled
  (the feature map [N, C, H, W], NCHW as PyTorch), through nn.Sequential slices of torchvision's
  model.
- ViT (torchvision VisionTransformer, small): layers 0 (the embeddings: class token + patches +
  position), 1, a middle one, -2 and -1 (torchvision's encoder.layers[:k] on the embeddings, no
  final LayerNorm), with every pooling: cls (token 0), mean and max (over the patch tokens, as the
  model's usual mean), none (all tokens).
- DistilBERT (the torch.nn reference of test_distilbert_parity.py): layers 0 (LayerNorm of word +
  position embeddings, HF's hidden_states[0]), 1, a middle one, -2, -1, with cls / mean / max / none
  over the real tokens; texts of different lengths in one padded batch equal each text alone.
- Without --layer the output is unchanged (bit-identical to the last layer's for ResNet50 and
  DistilBERT); a layer that does not exist is an error naming the valid ones.

Every ISA this machine has (TERN_ISA=scalar, avx2, avx512). Fidelity (PRODUCT.md): per output
vector (a token, a pooled vector, one image's feature map), cosine >= 0.99999 and
max |diff| <= 1e-4 * max |reference|.
Env: TERN_BUILD_DIR (tests/tern_run_model), TERN_BIN (tern, for the ISA list).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weights_tools.archs import distilbert as distilbert_arch  # noqa: E402
from weights_tools.archs import resnet50 as resnet_arch  # noqa: E402
from weights_tools.archs import vit as vit_arch  # noqa: E402
from test_distilbert_parity import TorchDistilBert  # noqa: E402

EXPORT = os.path.join(REPO, "weights_tools", "export.py")
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
RUN_MODEL = os.path.join(BUILD, "tests", "tern_run_model")
TERN_BIN = os.environ.get("TERN_BIN", os.path.join(BUILD, "tern"))
VOCAB = os.path.join(REPO, "data", "vocab", "bert-base-cased-vocab.txt")
SEED = 33
POOLINGS = ("cls", "mean", "max", "none")


def machine_isas() -> list[str]:
    out = subprocess.run([TERN_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


class Args:
    """What export.py's parser gives an architecture module: every size None unless given."""

    def __init__(self, **sizes):
        for name in ("layers", "heads", "hidden_dim", "mlp_dim", "patch_size", "image_size", "dim",
                     "max_positions"):
            setattr(self, name, None)
        self.__dict__.update(sizes)
        self.vocab = VOCAB
        self.keep_head = False
        self.preprocess = None


def export(arch: str, *argv: str) -> None:
    r = subprocess.run([sys.executable, EXPORT, arch, *argv], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"export {arch} {argv} failed: {r.stderr}")


def assert_close(test: unittest.TestCase, got: np.ndarray, want: np.ndarray, what: str,
                 vector_rank: int = 1):
    """Per output vector (the last `vector_rank` axes): cosine >= 0.99999 and
    max |diff| <= 1e-4 * max |want|."""
    test.assertEqual(got.shape, want.shape, what)
    width = int(np.prod(want.shape[want.ndim - vector_rank:]))
    g2 = got.reshape(-1, width).astype(np.float64)
    w2 = want.reshape(-1, width).astype(np.float64)
    test.assertTrue(np.isfinite(g2).all(), f"{what}: not finite")
    for i, (g, w) in enumerate(zip(g2, w2)):
        scale = float(np.abs(w).max())
        test.assertGreater(scale, 0, f"{what}: reference vector {i} is all zeros")
        cos = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
        diff = float(np.abs(g - w).max())
        test.assertGreaterEqual(cos, 0.99999, f"{what}: vector {i} cosine {cos:.8f}")
        test.assertLessEqual(diff, 1e-4 * scale,
                             f"{what}: vector {i} max|diff| {diff:.3g} vs max|ref| {scale:.3g}")


class LayerTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.isas = machine_isas()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tern_run(self, model: str, x: np.ndarray, isa: str, *flags: str, lengths=None,
                 check: bool = True):
        """tern_run_model on x; returns the output array, or the CompletedProcess if not check."""
        d = self.tmp.name
        inp, out = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(inp, x)
        if os.path.exists(out):
            os.remove(out)
        argv = [RUN_MODEL, model, inp, out, "--threads", "2", *flags]
        if lengths is not None:
            np.save(os.path.join(d, "lengths.npy"), np.asarray(lengths, dtype=np.int32))
            argv += ["--lengths", os.path.join(d, "lengths.npy")]
        r = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, TERN_ISA=isa))
        if not check:
            return r
        self.assertEqual(r.returncode, 0, f"tern_run_model {flags} ({isa}) failed: {r.stderr}")
        return np.load(out)

    def assert_layer_error(self, model: str, x: np.ndarray, layer: str, *valid: str):
        r = self.tern_run(model, x, self.isas[-1], "--layer", layer, check=False)
        self.assertEqual(r.returncode, 1, f"--layer {layer}: {r.stdout}{r.stderr}")
        msg = r.stderr.strip()
        self.assertEqual(len(msg.splitlines()), 1, msg)
        self.assertIn(f"layer '{layer}' does not exist", msg)
        for name in valid:
            self.assertIn(name, msg)


# ---- ResNet50 ------------------------------------------------------------------------------------

class ResNetLayers(LayerTestBase):
    STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")
    CHANNELS = (64, 256, 512, 1024, 2048)
    BLOCKS = "2,1,3,2"  # bottlenecks per stage

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import torchvision
        state = resnet_arch.random_source(SEED, Args(layers=cls.BLOCKS)).state_dict
        pth = os.path.join(cls.tmp.name, "resnet.pth")
        torch.save(state, pth)
        cls.model_file = os.path.join(cls.tmp.name, "resnet.tern")
        export("resnet50", pth, "--layers", cls.BLOCKS, "-o", cls.model_file)
        model = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck,
                                               [int(b) for b in cls.BLOCKS.split(",")])
        model.load_state_dict(state)
        cls.torch_model = model.eval()
        rng = np.random.default_rng(SEED)
        # Odd sizes: 61x50 -> stem 16x13 -> layer2 8x7 -> layer3 4x4 -> layer4 2x2.
        cls.x = rng.standard_normal((2, 3, 61, 50), dtype=np.float32)

    def reference_maps(self, x: np.ndarray, model=None) -> dict[str, np.ndarray]:
        """Every stage's output, through nn.Sequential slices of torchvision's model."""
        m = model or self.torch_model
        stem = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)
        maps = {}
        with torch.inference_mode():
            h = stem(torch.from_numpy(x))
            maps["stem"] = h.numpy()
            for i in range(1, 5):
                h = getattr(m, f"layer{i}")(h)
                maps[f"layer{i}"] = h.numpy()
        return maps

    def test_reference_is_well_scaled(self):
        for stage, ref in self.reference_maps(self.x).items():
            with self.subTest(stage=stage):
                self.assertGreater(float(np.mean(ref > 0)), 0.1)  # not almost all ReLU-dead
                self.assertLess(float(np.max(ref)), 1e4)
                self.assertGreater(float(np.abs(ref[0] - ref[1]).max()), 1e-3 * float(ref.max()))

    def test_every_stage_pooled_and_unpooled_every_isa(self):
        maps = self.reference_maps(self.x)
        for stage, channels in zip(self.STAGES, self.CHANNELS):
            fmap = maps[stage]
            self.assertEqual(fmap.shape[:2], (2, channels))
            pooled = fmap.astype(np.float64).mean(axis=(2, 3)).astype(np.float32)
            for isa in self.isas:
                with self.subTest(stage=stage, isa=isa):
                    got = self.tern_run(self.model_file, self.x, isa, "--layer", stage)
                    assert_close(self, got, pooled, f"{stage} mean {isa}")
                    got = self.tern_run(self.model_file, self.x, isa, "--layer", stage,
                                        "--pooling", "mean")
                    assert_close(self, got, pooled, f"{stage} --pooling mean {isa}")
                    got = self.tern_run(self.model_file, self.x, isa, "--layer", stage,
                                        "--pooling", "none")
                    assert_close(self, got, fmap, f"{stage} none {isa}", vector_rank=3)

    def test_default_is_layer4_bit_identical(self):
        for isa in self.isas:
            with self.subTest(isa=isa):
                default = self.tern_run(self.model_file, self.x, isa)
                layer4 = self.tern_run(self.model_file, self.x, isa, "--layer", "layer4")
                self.assertEqual(default.shape, (2, 2048))
                np.testing.assert_array_equal(default, layer4)
                fmap = self.tern_run(self.model_file, self.x, isa, "--pooling", "none")
                self.assertEqual(fmap.shape, (2, 2048, 2, 2))
                np.testing.assert_allclose(fmap.astype(np.float64).mean(axis=(2, 3)), default,
                                           rtol=1e-5, atol=1e-6 * float(np.abs(default).max()))

    def test_batch_equals_single_runs(self):
        isa = self.isas[-1]
        for stage in ("stem", "layer2"):
            with self.subTest(stage=stage):
                batch = self.tern_run(self.model_file, self.x, isa, "--layer", stage, "--pooling",
                                      "none")
                for i in range(2):
                    alone = self.tern_run(self.model_file, self.x[i:i + 1], isa, "--layer", stage,
                                          "--pooling", "none")[0]
                    rel = np.abs(batch[i] - alone).max() / np.abs(alone).max()
                    self.assertLessEqual(rel, 1e-5, f"{stage}: image {i} in the batch vs alone")

    def test_full_size_resnet50_stages(self):
        """The real resnet50 (3, 4, 6, 3 blocks) through --random-init, on a small image: every
        stage pooled, layer2 (the seed's low-level features) and layer4 (timm's
        forward_features) unpooled, the best ISA."""
        import torchvision
        path = os.path.join(self.tmp.name, "resnet50_full.tern")
        export("resnet50", "--random-init", "--seed", str(SEED), "-o", path)
        state = resnet_arch.random_source(SEED, Args()).state_dict
        model = torchvision.models.resnet50()
        model.load_state_dict(state)
        model.eval()
        x = np.random.default_rng(SEED + 1).standard_normal((1, 3, 96, 80), dtype=np.float32)
        maps = self.reference_maps(x, model)
        isa = self.isas[-1]
        for stage, channels in zip(self.STAGES, self.CHANNELS):
            with self.subTest(stage=stage):
                want = maps[stage].astype(np.float64).mean(axis=(2, 3)).astype(np.float32)
                got = self.tern_run(path, x, isa, "--layer", stage)
                self.assertEqual(got.shape, (1, channels))
                assert_close(self, got, want, f"full {stage} mean")
        for stage in ("layer2", "layer4"):
            with self.subTest(stage=stage, pooling="none"):
                got = self.tern_run(path, x, isa, "--layer", stage, "--pooling", "none")
                assert_close(self, got, maps[stage], f"full {stage} none", vector_rank=3)

    def test_bad_layers_and_poolings(self):
        valid = ("stem", "layer1", "layer2", "layer3", "layer4")
        for layer in ("layer5", "layer0", "3", "-1", "Layer2", "fc"):
            with self.subTest(layer=layer):
                self.assert_layer_error(self.model_file, self.x, layer, *valid)
        for pooling in ("cls", "max"):
            with self.subTest(pooling=pooling):
                r = self.tern_run(self.model_file, self.x, self.isas[-1], "--layer", "layer2",
                                  "--pooling", pooling, check=False)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(f"--pooling {pooling} does not apply", r.stderr)


# ---- ViT -----------------------------------------------------------------------------------------

class ViTLayers(LayerTestBase):
    # 64 / 16: 16 patches + the class token; head_dim 12, not a multiple of the vector width.
    SMALL = {"layers": 4, "heads": 4, "hidden_dim": 48, "mlp_dim": 96, "patch_size": 16,
             "image_size": 64}
    LAYERS = ("0", "1", "2", "-2", "-1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from torchvision.models.vision_transformer import VisionTransformer
        source = vit_arch.random_source(SEED, Args(**cls.SMALL))
        s = cls.SMALL
        model = VisionTransformer(image_size=s["image_size"], patch_size=s["patch_size"],
                                  num_layers=s["layers"], num_heads=s["heads"],
                                  hidden_dim=s["hidden_dim"], mlp_dim=s["mlp_dim"])
        model.load_state_dict(source.state_dict)
        cls.torch_model = model.eval()
        pth = os.path.join(cls.tmp.name, "vit.pth")
        torch.save(source.state_dict, pth)
        cls.model_file = os.path.join(cls.tmp.name, "vit.tern")
        export("vit_b_16", pth, "--heads", str(s["heads"]), "-o", cls.model_file)
        rng = np.random.default_rng(SEED)
        cls.x = rng.standard_normal((3, 3, 64, 64), dtype=np.float32)

    def hidden_states(self, x: np.ndarray, model=None) -> list[np.ndarray]:
        """[embeddings, block 1, ..., block N] and, last, the model's usual output (final LN)."""
        m = model or self.torch_model
        with torch.inference_mode():
            t = torch.from_numpy(x)
            h = m._process_input(t)
            h = torch.cat([m.class_token.expand(t.shape[0], -1, -1), h], dim=1)
            h = h + m.encoder.pos_embedding
            states = [h.numpy()]
            for block in m.encoder.layers:
                h = block(h)
                states.append(h.numpy())
            states.append(m.encoder.ln(h).numpy())
        return states

    @staticmethod
    def pool(h: np.ndarray, pooling: str) -> np.ndarray:
        if pooling == "cls":
            return h[:, 0]
        if pooling == "mean":
            return h[:, 1:].astype(np.float64).mean(axis=1).astype(np.float32)
        if pooling == "max":
            return h[:, 1:].max(axis=1)
        return h

    def test_reference_layers_differ(self):
        states = self.hidden_states(self.x)
        self.assertEqual(len(states), self.SMALL["layers"] + 2)
        for k in range(1, len(states)):
            diff = np.abs(states[k] - states[k - 1]).max()
            self.assertGreater(diff, 1e-2 * np.abs(states[k]).max(), f"state {k} vs {k - 1}")

    def test_blocks_with_every_pooling_every_isa(self):
        states = self.hidden_states(self.x)
        n = self.SMALL["layers"]
        for layer in self.LAYERS:
            k = int(layer) if int(layer) >= 0 else n + 1 + int(layer)
            for pooling in POOLINGS:
                want = self.pool(states[k], pooling)
                for isa in self.isas:
                    with self.subTest(layer=layer, pooling=pooling, isa=isa):
                        got = self.tern_run(self.model_file, self.x, isa, "--layer", layer,
                                            "--pooling", pooling)
                        assert_close(self, got, want, f"layer {layer} {pooling} {isa}")

    def test_default_is_after_the_final_norm(self):
        states = self.hidden_states(self.x)
        isa = self.isas[-1]
        for pooling in POOLINGS:
            with self.subTest(pooling=pooling):
                got = self.tern_run(self.model_file, self.x, isa, "--pooling", pooling)
                assert_close(self, got, self.pool(states[-1], pooling), f"default {pooling}")
        # "-1" and its positive name are the same layer; both differ from the default's norm.
        last = self.tern_run(self.model_file, self.x, isa, "--layer", "-1")
        np.testing.assert_array_equal(last, self.tern_run(self.model_file, self.x, isa, "--layer",
                                                          str(self.SMALL["layers"])))
        np.testing.assert_array_equal(
            self.tern_run(self.model_file, self.x, isa, "--layer", "-2"),
            self.tern_run(self.model_file, self.x, isa, "--layer", str(self.SMALL["layers"] - 1)))

    def test_class_token_alone_is_bit_identical(self):
        # With cls pooling the last block computes the class token alone (the other tokens only
        # as keys and values): it must be bit for bit token 0 of the full, unpooled output.
        for isa in self.isas:
            for layer in ("1", "-1", None):
                flags = ("--layer", layer) if layer else ()
                with self.subTest(layer=layer, isa=isa):
                    cls = self.tern_run(self.model_file, self.x, isa, *flags, "--pooling", "cls")
                    full = self.tern_run(self.model_file, self.x, isa, *flags, "--pooling", "none")
                    np.testing.assert_array_equal(cls, full[:, 0])

    def test_batch_equals_single_runs(self):
        isa = self.isas[-1]
        for layer in ("0", "2"):
            batch = self.tern_run(self.model_file, self.x, isa, "--layer", layer)
            for i in range(3):
                alone = self.tern_run(self.model_file, self.x[i:i + 1], isa, "--layer", layer)[0]
                rel = np.abs(batch[i] - alone).max() / np.abs(alone).max()
                self.assertLessEqual(rel, 1e-5, f"layer {layer}: image {i} in the batch vs alone")

    def test_full_size_vit_b_16_penultimate(self):
        """The real vit_b_16 (12 x 768, 197 tokens) through --random-init: --layer -2 with mean
        pooling (the seed's penultimate-layer embedding) and unpooled, the best ISA."""
        from torchvision.models.vision_transformer import VisionTransformer
        path = os.path.join(self.tmp.name, "vit_full.tern")
        export("vit_b_16", "--random-init", "--seed", str(SEED), "-o", path)
        model = VisionTransformer(**vit_arch.BASE)
        model.load_state_dict(vit_arch.random_source(SEED, Args()).state_dict)
        model.eval()
        x = np.random.default_rng(SEED + 1).standard_normal((1, 3, 224, 224), dtype=np.float32)
        penultimate = self.hidden_states(x, model)[vit_arch.BASE["num_layers"] - 1]
        isa = self.isas[-1]
        for pooling in ("mean", "none"):
            with self.subTest(pooling=pooling):
                got = self.tern_run(path, x, isa, "--layer", "-2", "--pooling", pooling)
                assert_close(self, got, self.pool(penultimate, pooling), f"vit_b_16 -2 {pooling}")

    def test_bad_layers(self):
        for layer in ("5", "-5", "layer2", "1.5", "+1", "x"):
            with self.subTest(layer=layer):
                self.assert_layer_error(self.model_file, self.x, layer, "0..4", "-4..-1")
        r = self.tern_run(self.model_file, self.x, self.isas[-1], "--layer", "2", "--logits",
                          check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--layer does not apply", r.stderr)


# ---- DistilBERT ----------------------------------------------------------------------------------

class DistilBertLayers(LayerTestBase):
    # head_dim 16; 5 blocks so that the middle one (2) is neither 1 nor -2.
    SMALL = {"layers": 5, "dim": 64, "heads": 4, "hidden_dim": 128}
    LAYERS = ("0", "1", "2", "-2", "-1")
    LENGTHS = (9, 1, 23, 4)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model_file = os.path.join(cls.tmp.name, "distilbert.tern")
        flags = []
        for key, value in cls.SMALL.items():
            flags += ["--" + key.replace("_", "-"), str(value)]
        export("distilbert", "--random-init", "--seed", str(SEED), *flags, "-o", cls.model_file)
        source = distilbert_arch.random_source(SEED, Args(**cls.SMALL))
        cls.cfg = dict(source.hf_config)
        cls.torch_model = TorchDistilBert(source.state_dict, cls.cfg)
        rng = np.random.default_rng(SEED)
        T = max(cls.LENGTHS)
        ids = rng.integers(999, cls.cfg["vocab_size"], size=(len(cls.LENGTHS), T), dtype=np.int64)
        for i, n in enumerate(cls.LENGTHS):
            ids[i, 0] = 101
            ids[i, n - 1] = 102 if n > 1 else 101
            ids[i, n:] = 0  # [PAD]
        cls.ids = ids.astype(np.int32)

    def hidden_states(self, ids: np.ndarray, model=None) -> list[np.ndarray]:
        """HF's hidden_states for one unpadded sequence: [embeddings, block 1, ..., block N]."""
        m = model or self.torch_model
        with torch.inference_mode():
            t = torch.from_numpy(ids.astype(np.int64))[None]
            h = m.norm(m.word[t] + m.pos[: t.shape[1]][None])
            states = [h[0].numpy()]
            for layer in m.layers:
                h = layer(h)
                states.append(h[0].numpy())
        return states

    @staticmethod
    def pool(h: np.ndarray, pooling: str) -> np.ndarray:
        if pooling == "cls":
            return h[0]
        if pooling == "mean":
            return h.astype(np.float64).mean(axis=0).astype(np.float32)
        if pooling == "max":
            return h.max(axis=0)
        return h

    def test_blocks_with_every_pooling_every_isa_in_a_padded_batch(self):
        n = self.SMALL["layers"]
        states = [self.hidden_states(self.ids[i, :L]) for i, L in enumerate(self.LENGTHS)]
        for layer in self.LAYERS:
            k = int(layer) if int(layer) >= 0 else n + 1 + int(layer)
            for pooling in POOLINGS:
                for isa in self.isas:
                    with self.subTest(layer=layer, pooling=pooling, isa=isa):
                        got = self.tern_run(self.model_file, self.ids, isa, "--layer", layer,
                                            "--pooling", pooling, lengths=self.LENGTHS)
                        for i, L in enumerate(self.LENGTHS):
                            want = self.pool(states[i][k], pooling)
                            row = got[i, :L] if pooling == "none" else got[i]
                            assert_close(self, row, want, f"layer {layer} {pooling} {isa} text {i}")
                            if pooling == "none":
                                self.assertTrue((got[i, L:] == 0).all(), "padding not zero")

    def test_a_text_in_a_batch_equals_it_alone(self):
        for isa in self.isas:
            for layer in self.LAYERS:
                with self.subTest(layer=layer, isa=isa):
                    batch = self.tern_run(self.model_file, self.ids, isa, "--layer", layer,
                                          lengths=self.LENGTHS)
                    for i, L in enumerate(self.LENGTHS):
                        alone = self.tern_run(self.model_file, self.ids[i:i + 1, :L], isa,
                                              "--layer", layer)[0]
                        rel = np.abs(batch[i, :L] - alone).max() / np.abs(alone).max()
                        self.assertLessEqual(rel, 1e-5, f"text {i} (len {L}) in the batch vs alone")

    def test_first_token_alone_is_bit_identical(self):
        # With cls pooling the last block computes each text's first token alone: bit for bit
        # row 0 of the unpooled output, in a batch of mixed lengths (one of a single token).
        lengths = (9, 2, 23, 1)
        for isa in self.isas:
            for layer in ("1", "-1"):
                with self.subTest(layer=layer, isa=isa):
                    cls = self.tern_run(self.model_file, self.ids, isa, "--layer", layer,
                                        "--pooling", "cls", lengths=lengths)
                    full = self.tern_run(self.model_file, self.ids, isa, "--layer", layer,
                                         "--pooling", "none", lengths=lengths)
                    np.testing.assert_array_equal(cls, full[:, 0])

    def test_default_is_the_last_block_bit_identical(self):
        n = self.SMALL["layers"]
        for isa in self.isas:
            with self.subTest(isa=isa):
                default = self.tern_run(self.model_file, self.ids, isa, lengths=self.LENGTHS)
                for layer in ("-1", str(n)):
                    got = self.tern_run(self.model_file, self.ids, isa, "--layer", layer,
                                        lengths=self.LENGTHS)
                    np.testing.assert_array_equal(default, got)
                np.testing.assert_array_equal(
                    self.tern_run(self.model_file, self.ids, isa, "--layer", "-2",
                                  lengths=self.LENGTHS),
                    self.tern_run(self.model_file, self.ids, isa, "--layer", str(n - 1),
                                  lengths=self.LENGTHS))

    def test_full_size_distilbert_penultimate(self):
        """distilbert-base's shape (6 x 768, vocab 28996) through --random-init: --layer -2 with
        mean pooling (the seed's penultimate-layer embedding) for two texts of different lengths
        in one batch, the best ISA."""
        path = os.path.join(self.tmp.name, "distilbert_full.tern")
        export("distilbert", "--random-init", "--seed", str(SEED), "-o", path)
        source = distilbert_arch.random_source(SEED, Args())
        model = TorchDistilBert(source.state_dict, source.hf_config)
        lengths = (37, 12)
        ids = np.random.default_rng(SEED + 1).integers(
            999, source.hf_config["vocab_size"], size=(2, 37), dtype=np.int64)
        ids[:, 0] = 101
        ids[1, 11] = 102
        ids[0, 36] = 102
        ids[1, 12:] = 0
        got = self.tern_run(path, ids.astype(np.int32), self.isas[-1], "--layer", "-2",
                            "--pooling", "mean", lengths=lengths)
        self.assertEqual(got.shape, (2, 768))
        for i, L in enumerate(lengths):
            want = self.pool(self.hidden_states(ids[i, :L], model)[5], "mean")
            assert_close(self, got[i], want, f"distilbert -2 mean text {i}")

    def test_bad_layers(self):
        for layer in ("6", "-6", "100000", "-0", "01", "layer1", "stem", "2x", "-", " 1"):
            with self.subTest(layer=layer):
                self.assert_layer_error(self.model_file, self.ids[:1, :9], layer, "0..5",
                                        "-5..-1")


if __name__ == "__main__":
    unittest.main()
