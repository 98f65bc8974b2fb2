"""`tern similarity` against numpy on `tern embed`'s own vectors: the cosine matrix (images then
texts as queries against the texts; images against images without texts), CLIP's zero-shot
softmax with the file's logit_scale, a text model comparing texts, and the errors."""

from __future__ import annotations

import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_testlib import export, tern

TMP = Path(tempfile.mkdtemp(prefix="tern-similarity-"))


def setUpModule():
    global CLIP, BERT, IMAGES
    CLIP = export("clip", TMP / "clip.tern", "--vision-width", "64", "--vision-layers", "2",
                  "--patch-size", "32", "--text-width", "64", "--text-layers", "2",
                  "--embed-dim", "32", seed=5)
    BERT = export("distilbert", TMP / "db.tern", "--layers", "2", "--dim", "64", "--heads", "4",
                  "--hidden-dim", "128", seed=6)
    rng = np.random.default_rng(0)
    IMAGES = []
    for i, (h, w) in enumerate([(240, 320), (224, 224), (300, 200)]):
        p = TMP / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        IMAGES.append(p)


def tearDownModule():
    shutil.rmtree(TMP)


def embed(model, *args) -> np.ndarray:
    out = TMP / "e.npy"
    tern("embed", model, *args, "-q", "-o", out)
    return np.load(out).astype(np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def similarity(model, *args):
    p = tern("similarity", model, *args, "--json")
    return json.loads(p.stdout)


class Similarity(unittest.TestCase):
    TEXTS = ["a photo of a cat", "a diagram", "two dogs on a beach"]

    def test_images_and_texts_cosine(self):
        img = embed(CLIP, *IMAGES)
        txt = embed(CLIP, "--text", *self.TEXTS)
        got = similarity(CLIP, *IMAGES, "--text", *self.TEXTS)
        self.assertEqual(got["columns"], self.TEXTS)
        self.assertEqual(got["rows"], [str(p) for p in IMAGES] + self.TEXTS)
        want = cosine(np.vstack([img, txt]), txt)
        np.testing.assert_allclose(np.array(got["matrix"]), want, atol=1e-6)

    def test_zero_shot_softmax_uses_logit_scale(self):
        scale = json.loads(tern("info", CLIP, "--tensor", "logit_scale").stdout)["values"][0]
        img = embed(CLIP, *IMAGES)
        txt = embed(CLIP, "--text", *self.TEXTS)
        logits = np.exp(scale) * cosine(img, txt)
        want = np.exp(logits - logits.max(axis=1, keepdims=True))
        want /= want.sum(axis=1, keepdims=True)
        got = np.array(similarity(CLIP, *IMAGES, "--text", *self.TEXTS, "--softmax")["matrix"])
        np.testing.assert_allclose(got[: len(IMAGES)], want, atol=1e-5)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)

    def test_images_against_images(self):
        img = embed(CLIP, *IMAGES)
        got = similarity(CLIP, *IMAGES)
        self.assertEqual(got["columns"], [str(p) for p in IMAGES])
        np.testing.assert_allclose(np.array(got["matrix"]), cosine(img, img), atol=1e-6)

    def test_a_directory_stands_for_its_images_in_order(self):
        got = similarity(CLIP, TMP)  # img0.png .. img2.png, sorted, as tern embed lists them
        self.assertEqual(got["rows"], [str(p) for p in IMAGES])
        img = embed(CLIP, *IMAGES)
        np.testing.assert_allclose(np.array(got["matrix"]), cosine(img, img), atol=1e-6)

    def test_text_model_compares_texts_with_mean_vectors(self):
        txt = embed(BERT, "--text", *self.TEXTS, "--pooling", "mean")
        got = similarity(BERT, "--text", *self.TEXTS)
        np.testing.assert_allclose(np.array(got["matrix"]), cosine(txt, txt), atol=1e-6)
        table = tern("similarity", BERT, "--text", *self.TEXTS).stdout.splitlines()
        self.assertEqual(table[0], "# cosine similarity")
        self.assertEqual(len(table), 2 + len(self.TEXTS))

    def test_errors(self):
        p = tern("similarity", BERT, "--text", "a", "--softmax", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("logit scale", p.stderr)
        p = tern("similarity", BERT, str(IMAGES[0]), check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("text model", p.stderr)
        p = tern("similarity", CLIP, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing to compare", p.stderr)
        p = tern("similarity", CLIP, "--text", "a", "--pooling", "none", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
