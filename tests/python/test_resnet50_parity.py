"""ResNet50 parity: Tern against torchvision on the same random weights and the same input tensor.

A random torchvision resnet50 (random BatchNorm statistics, so folding is exercised) is saved as a
.pth state dict and converted by the exporter (the real-checkpoint path), with and without the fc
head; the --random-init path of the exporter must give the same weights. tern_run_model runs the
converted file on .npy inputs for every ISA this machine has. Fidelity (PRODUCT.md): per output
vector, cosine >= 0.99999 and max |diff| <= 1e-4 * max |reference|.
Env: TERN_BUILD_DIR (tests/tern_run_model), TERN_BIN (the tern CLI, for the ISA list).
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

from weights_tools.archs import resnet50 as arch  # noqa: E402

EXPORT = os.path.join(REPO, "weights_tools", "export.py")
BUILD = os.environ.get("TERN_BUILD_DIR", os.path.join(REPO, "build"))
RUN_MODEL = os.path.join(BUILD, "tests", "tern_run_model")
TERN_BIN = os.environ.get("TERN_BIN", os.path.join(BUILD, "tern"))
SEED = 5


def machine_isas() -> list[str]:
    out = subprocess.run([TERN_BIN, "--version"], capture_output=True, text=True, check=True).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


def export(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, EXPORT, "resnet50", *argv], capture_output=True,
                          text=True)


class Args:  # what export.py's parser gives an architecture module
    layers = None
    keep_head = False
    preprocess = None


class ResNet50Parity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(2)
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        state = arch.random_source(SEED, Args()).state_dict
        cls.state = state
        cls.pth = os.path.join(d, "resnet50.pth")
        torch.save(state, cls.pth)
        cls.model_file = os.path.join(d, "features.tern")
        cls.head_file = os.path.join(d, "head.tern")
        for argv in ((cls.pth, "-o", cls.model_file), (cls.pth, "--keep-head", "-o", cls.head_file)):
            r = export(*argv)
            if r.returncode != 0:
                raise RuntimeError(f"export {argv} failed: {r.stderr}")
        import torchvision
        model = torchvision.models.resnet50()
        model.load_state_dict(state)
        model.eval()
        cls.torch_model = model
        cls.isas = machine_isas()
        rng = np.random.default_rng(SEED)
        # Normalised-image-like inputs: the two parity sizes, batch 1 and 3.
        cls.inputs = {
            "224_b1": rng.standard_normal((1, 3, 224, 224), dtype=np.float32),
            "224_b3": rng.standard_normal((3, 3, 224, 224), dtype=np.float32),
            "odd_b3": rng.standard_normal((3, 3, 97, 75), dtype=np.float32),
            "odd_b1": rng.standard_normal((1, 3, 61, 130), dtype=np.float32),
        }

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def reference(self, x: np.ndarray, logits: bool) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(x)
            if logits:
                return self.torch_model(t).numpy()
            fc = self.torch_model.fc
            self.torch_model.fc = torch.nn.Identity()
            try:
                return self.torch_model(t).numpy()
            finally:
                self.torch_model.fc = fc

    def run_tern(self, model: str, x: np.ndarray, isa: str, *extra: str) -> np.ndarray:
        d = self.tmp.name
        inp, out = os.path.join(d, "in.npy"), os.path.join(d, "out.npy")
        np.save(inp, x)
        if os.path.exists(out):
            os.remove(out)
        env = dict(os.environ, TERN_ISA=isa)
        r = subprocess.run([RUN_MODEL, model, inp, out, *extra], capture_output=True, text=True,
                           env=env)
        self.assertEqual(r.returncode, 0, f"tern_run_model failed ({isa}): {r.stderr}")
        return np.load(out)

    def assert_close(self, got: np.ndarray, want: np.ndarray, what: str):
        self.assertEqual(got.shape, want.shape, what)
        self.assertTrue(np.all(np.isfinite(got)), what)
        for i in range(want.shape[0]):
            g, w = got[i].astype(np.float64), want[i].astype(np.float64)
            cos = float(g @ w / (np.linalg.norm(g) * np.linalg.norm(w)))
            rel = float(np.max(np.abs(g - w)) / np.max(np.abs(w)))
            self.assertGreaterEqual(cos, 0.99999, f"{what} vector {i}: cosine {cos:.8f}")
            self.assertLessEqual(rel, 1e-4, f"{what} vector {i}: max|diff|/max|ref| {rel:.3g}")

    def test_reference_is_well_scaled(self):
        # The random model must produce informative features, not zeros or overflow.
        ref = self.reference(self.inputs["odd_b3"], logits=False)
        self.assertEqual(ref.shape, (3, 2048))
        self.assertGreater(float(np.std(ref)), 1e-3)
        self.assertLess(float(np.max(np.abs(ref))), 1e4)
        self.assertGreater(float(np.mean(ref > 0)), 0.1)  # not almost all ReLU-dead
        self.assertGreater(float(np.linalg.norm(ref[0] - ref[1])), 1e-3 * float(np.linalg.norm(ref[0])))

    def test_features_match_torchvision_on_every_isa(self):
        for name, x in self.inputs.items():
            want = self.reference(x, logits=False)
            for isa in self.isas:
                with self.subTest(input=name, isa=isa):
                    got = self.run_tern(self.model_file, x, isa, "--threads", "2")
                    self.assert_close(got, want, f"{name} {isa}")

    def test_logits_match_torchvision(self):
        x = self.inputs["odd_b3"]
        want = self.reference(x, logits=True)
        self.assertEqual(want.shape, (3, 1000))
        for isa in self.isas:
            with self.subTest(isa=isa):
                got = self.run_tern(self.head_file, x, isa, "--logits")
                self.assert_close(got, want, f"logits {isa}")

    def test_thread_count_and_batching_do_not_change_results(self):
        x = self.inputs["odd_b3"]
        isa = self.isas[-1]
        one = self.run_tern(self.model_file, x, isa, "--threads", "1")
        three = self.run_tern(self.model_file, x, isa, "--threads", "3")
        np.testing.assert_array_equal(one, three)
        alone = self.run_tern(self.model_file, x[1:2], isa, "--threads", "2")
        np.testing.assert_allclose(alone[0], one[1], rtol=1e-5, atol=1e-5 * np.max(np.abs(one[1])))

    def test_random_init_export_equals_checkpoint_export(self):
        out = os.path.join(self.tmp.name, "random.tern")
        r = export("--random-init", "--seed", str(SEED), "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        x = self.inputs["odd_b1"]
        isa = self.isas[-1]
        np.testing.assert_array_equal(self.run_tern(out, x, isa),
                                      self.run_tern(self.model_file, x, isa))

    def test_folding_matches_batchnorm(self):
        # convert() folds in float64: conv+BN of torch equals the folded conv on a small input.
        tensors, meta = arch.convert(
            arch.Source(path=None, description="t", sha256=None, state_dict=self.state), Args())
        self.assertNotIn("fc.weight", tensors)
        self.assertIn('"layers": [3, 4, 6, 3]', meta["config"])
        self.assertIn('"profile": "torchvision-v1"', meta["preprocess"])
        block = self.torch_model.layer2[0]
        x = torch.randn(1, 256, 9, 9)
        with torch.inference_mode():
            want = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
            h = torch.relu(torch.nn.functional.conv2d(
                x, torch.from_numpy(tensors["layer2.0.conv1.weight"]),
                torch.from_numpy(tensors["layer2.0.conv1.bias"])))
            got = torch.nn.functional.conv2d(
                h, torch.from_numpy(tensors["layer2.0.conv2.weight"]),
                torch.from_numpy(tensors["layer2.0.conv2.bias"]), stride=2, padding=1)
        self.assertLessEqual(float((got - want).abs().max()), 1e-5 * float(want.abs().max()))

    def test_preprocess_profiles(self):
        for profile, resize, interp in (("torchvision-v2", 232, "bilinear"), ("timm", 235, "bicubic")):
            a = Args()
            a.preprocess = profile
            _, meta = arch.convert(
                arch.Source(path=None, description="t", sha256=None, state_dict=self.state), a)
            self.assertIn(f'"resize": {resize}', meta["preprocess"])
            self.assertIn(f'"interpolation": "{interp}"', meta["preprocess"])

    def test_mismatching_checkpoint_is_an_error_naming_the_tensor(self):
        d = self.tmp.name
        cases = {
            "missing": ({k: v for k, v in self.state.items() if k != "layer3.2.bn2.running_var"},
                        "layer3.2.bn2.running_var"),
            "shape": (dict(self.state, **{"layer4.1.conv2.weight": torch.zeros(512, 512, 1, 1)}),
                      "layer4.1.conv2.weight"),
            "extra": (dict(self.state, **{"layer3.6.conv1.weight": torch.zeros(256, 1024, 1, 1)}),
                      "layer3.6.conv1.weight"),
        }
        for what, (state, tensor) in cases.items():
            with self.subTest(what):
                pth = os.path.join(d, f"bad_{what}.pth")
                out = os.path.join(d, f"bad_{what}.tern")
                torch.save(state, pth)
                r = export(pth, "-o", out)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(tensor, r.stderr)
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
