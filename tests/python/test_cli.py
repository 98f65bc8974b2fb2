"""The `tern` command end to end, through the real binary: outputs read back with numpy, values
equal to the library's, every error path exits non-zero and leaves no output file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_testlib import IMAGE_DUMP, ROOT, RUN_MODEL, export, run, tern


def write_png(path: Path, w: int, h: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


class ImageCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-cli-"))
        cls.model = export("resnet50", cls.tmp / "resnet.tern", "--layers", "1,1,1,1")
        cls.a = write_png(cls.tmp / "a.png", 300, 200, 1)
        cls.b = write_png(cls.tmp / "b.png", 180, 260, 2)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_npy_shape_and_values_equal_the_library(self):
        out = self.tmp / "two.npy"
        tern("embed", self.model, self.a, self.b, "-o", out)
        got = np.load(out)
        self.assertEqual(got.shape, (2, 2048))
        self.assertEqual(got.dtype, np.float32)
        # The same images through the library pieces: image pipeline, then the model.
        tensors = []
        for i, img in enumerate((self.a, self.b)):
            crop, tensor = self.tmp / f"crop{i}.npy", self.tmp / f"tensor{i}.npy"
            run([IMAGE_DUMP, "preprocess", img, "torchvision-v1", crop, tensor])
            tensors.append(np.load(tensor))
        x = self.tmp / "x.npy"
        np.save(x, np.stack(tensors).astype(np.float32))
        ref = self.tmp / "ref.npy"
        run([RUN_MODEL, self.model, x, ref])
        np.testing.assert_array_equal(got, np.load(ref))

    def test_jsonl_and_stdout_agree_with_npy(self):
        npy, jsonl = self.tmp / "o.npy", self.tmp / "o.jsonl"
        tern("embed", self.model, self.a, self.b, "-o", npy)
        tern("embed", self.model, self.a, self.b, "-o", jsonl)
        lines = [json.loads(l) for l in jsonl.read_text().splitlines()]
        self.assertEqual([l["input"] for l in lines], [str(self.a), str(self.b)])
        self.assertEqual(lines[0]["shape"], [2048])
        np.testing.assert_allclose(np.array([l["embedding"] for l in lines]), np.load(npy), rtol=1e-7)
        stdout = tern("embed", self.model, self.a).stdout
        self.assertEqual(len(stdout.splitlines()), 1)
        np.testing.assert_allclose(json.loads(stdout)["embedding"], np.load(npy)[0], rtol=1e-7)

    def test_directory_expands_sorted_and_recursive(self):
        d = self.tmp / "dir"
        (d / "sub").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.b, d / "sub" / "b.png")
        shutil.copy(self.a, d / "a.png")
        (d / "notes.txt").write_text("not an image")
        out = self.tmp / "dir.jsonl"
        tern("embed", self.model, d, "-o", out)
        names = [json.loads(l)["input"] for l in out.read_text().splitlines()]
        self.assertEqual(names, [str(d / "a.png"), str(d / "sub" / "b.png")])

    def test_normalize_and_batch_do_not_change_directions(self):
        plain, normed = self.tmp / "p.npy", self.tmp / "n.npy"
        tern("embed", self.model, self.a, self.b, "-o", plain, "--batch", "1")
        tern("embed", self.model, self.a, self.b, "-o", normed, "--normalize", "--batch", "2")
        p, n = np.load(plain), np.load(normed)
        np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(n, p / np.linalg.norm(p, axis=1, keepdims=True), rtol=1e-5, atol=1e-7)

    def test_threads_do_not_change_results(self):
        outs = []
        for t in ("1", "2", "3"):
            out = self.tmp / f"t{t}.npy"
            tern("embed", self.model, self.a, "-o", out, "--threads", t)
            outs.append(np.load(out))
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])

    def assert_fails(self, args, *needles, out=None):
        p = tern(*args, check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        for needle in needles:
            self.assertIn(needle, p.stderr)
        self.assertLessEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        if out is not None:
            self.assertFalse(out.exists(), f"{out} was left behind")
            self.assertEqual([f for f in out.parent.iterdir() if f.name.startswith(out.name + ".tmp")], [])

    def test_errors_name_the_input_and_write_nothing(self):
        out = self.tmp / "err.npy"
        bad = self.tmp / "bad.jpg"
        bad.write_text("this is not a jpeg")
        self.assert_fails(["embed", self.model, self.a, self.tmp / "missing.png", "-o", out], "missing.png", out=out)
        self.assert_fails(["embed", self.model, self.a, bad, "-o", out], "bad.jpg", out=out)
        self.assert_fails(["embed", self.tmp / "nope.tern", self.a, "-o", out], "nope.tern", out=out)
        self.assert_fails(["embed", self.model, self.a, "-o", self.tmp / "x.csv"], "x.csv")
        self.assert_fails(["embed", self.model, "--text", "hi", "-o", out], "image model", out=out)
        self.assert_fails(["embed", self.model, self.a, "--pooling", "cls", "-o", out], "pooling", out=out)
        self.assert_fails(["embed", self.model, self.a, "--threads", "-1", "-o", out], "--threads", out=out)
        self.assert_fails(["embed", self.model, self.a, "--batch", "0", "-o", out], "--batch", out=out)
        self.assert_fails(["embed", self.model, self.a, "--logits", "-o", out], "head", out=out)
        self.assert_fails(["embed", self.model, "-o", out], "no inputs", out=out)
        self.assert_fails(["embed", self.model, self.a, "--bogus"], "--bogus")

    def test_keep_going_embeds_the_rest_and_lists_failures(self):
        bad = self.tmp / "broken.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
        out = self.tmp / "kg.jsonl"
        p = tern("embed", self.model, self.a, bad, self.b, "-o", out, "--keep-going", "--batch", "3", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("broken.png", p.stderr)
        self.assertIn("1 of 3 inputs failed", p.stderr)
        names = [json.loads(l)["input"] for l in out.read_text().splitlines()]
        self.assertEqual(names, [str(self.a), str(self.b)])

    def test_help_for_every_command(self):
        for cmd in ([], ["embed"], ["info"], ["tokenize"], ["bench"]):
            p = tern(*cmd, "--help")
            self.assertIn("usage", p.stdout.lower())
        self.assertNotEqual(tern("frobnicate", check=False).returncode, 0)

    def test_version_reports_isa_and_the_cap(self):
        self.assertIn("active isa", tern("--version").stdout)
        p = run([os.environ.get("TERN_BIN", str(ROOT / "build" / "tern")), "--version"], check=False,
                env={**os.environ, "TERN_ISA": "scalar"})
        self.assertIn("active isa: scalar", p.stdout)
        p = run([os.environ.get("TERN_BIN", str(ROOT / "build" / "tern")), "--version"], check=False,
                env={**os.environ, "TERN_ISA": "bogus"})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bogus", p.stderr)


class TextCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-cli-text-"))
        # The real bert-base-cased vocabulary (the exporter's default for --random-init).
        cls.model = export("distilbert", cls.tmp / "d.tern", "--layers", "2")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_hello_world_is_six_tokens(self):
        ids = json.loads(tern("tokenize", self.model, "--text", "Hello, world!").stdout)["ids"]
        self.assertEqual(ids, [101, 8667, 117, 1362, 106, 102])  # [CLS] Hello , world ! [SEP]
        out = self.tmp / "hello.npy"
        tern("embed", self.model, "--text", "Hello, world!", "-o", out)
        self.assertEqual(np.load(out).shape, (6, 768))

    def test_pooled_texts_and_equality_with_single_runs(self):
        texts = ["Hello, world!", "A somewhat longer sentence, with more tokens in it.", "x"]
        out = self.tmp / "pooled.npy"
        tern("embed", self.model, "--text", *texts, "--pooling", "mean", "-o", out)
        batch = np.load(out)
        self.assertEqual(batch.shape, (3, 768))
        for i, t in enumerate(texts):
            one = self.tmp / f"one{i}.npy"
            tern("embed", self.model, "--text", t, "--pooling", "mean", "-o", one)
            np.testing.assert_allclose(batch[i], np.load(one)[0], rtol=1e-5, atol=1e-6)
        cls = self.tmp / "cls.npy"
        tern("embed", self.model, "--text", *texts, "--pooling", "cls", "--normalize", "-o", cls)
        np.testing.assert_allclose(np.linalg.norm(np.load(cls), axis=1), 1.0, rtol=1e-6)

    def test_unpooled_texts_are_ragged(self):
        out = self.tmp / "ragged.npy"
        p = tern("embed", self.model, "--text", "one", "two words", "-o", out, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ragged", p.stderr)
        self.assertFalse(out.exists())
        jl = self.tmp / "ragged.jsonl"
        tern("embed", self.model, "--text", "one", "two words", "-o", jl)
        shapes = [json.loads(l)["shape"] for l in jl.read_text().splitlines()]
        self.assertEqual(shapes, [[3, 768], [4, 768]])

    def test_text_file_and_stdin(self):
        f = self.tmp / "lines.txt"
        f.write_text("first line\r\nsecond line\n")
        a, b = self.tmp / "f.npy", self.tmp / "s.npy"
        tern("embed", self.model, "--text-file", f, "--pooling", "mean", "-o", a)
        tern("embed", self.model, "--text-file", "-", "--pooling", "mean", "-o", b,
             input="first line\nsecond line\n")
        self.assertEqual(np.load(a).shape, (2, 768))
        np.testing.assert_array_equal(np.load(a), np.load(b))

    def test_text_errors(self):
        out = self.tmp / "e.npy"
        long_text = " ".join(["word"] * 600)
        p = tern("embed", self.model, "--text", long_text, "-o", out, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("512", p.stderr)
        self.assertFalse(out.exists())
        tern("embed", self.model, "--text", long_text, "--truncate", "-o", out)
        self.assertEqual(np.load(out).shape, (512, 768))
        p = tern("embed", self.model, "--text", "abc", "--max-length", "3", "-o", out, check=False)
        self.assertNotEqual(p.returncode, 0)
        p = tern("embed", self.model, "--text-file", self.tmp / "missing.txt", check=False)
        self.assertIn("missing.txt", p.stderr)
        bad = self.tmp / "bad.txt"
        bad.write_bytes(b"ok\nbad \xff byte\n")
        p = tern("embed", self.model, "--text-file", bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.txt:2", p.stderr)
        self.assertIn("offset", p.stderr)


if __name__ == "__main__":
    unittest.main()
