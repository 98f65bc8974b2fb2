"""The installed Python package against the `tern` command: bit-identical results for every input
kind (path, os.PathLike, bytes, PIL image, numpy pixels) and architecture, encode's shapes and
types, tokenize, similarity, properties, errors (tern.Error with the CLI's message, the model
still usable after), progress bars and tern.convert."""

from __future__ import annotations

import json
import os
import pydoc
import subprocess
import sys
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_python_testlib import PYTHON, cli_error, install, python_env, small_model, tern

TMP, SITE, tern_pkg = install("tern-py-api-")
TEXTS = ["Hello, world!", "A second, somewhat longer sentence about motorcycles.", "",
         "naïve café — 東京", "x " * 40]


def cli_npy(*args) -> np.ndarray:
    out = TMP / "cli.npy"
    tern("embed", *args, "-o", out, "--quiet")
    a = np.load(out)
    out.unlink()
    return a


def cli_jsonl(*args) -> list:
    out = TMP / "cli.jsonl"
    tern("embed", *args, "-o", out, "--quiet")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    out.unlink()
    return [np.array(r["embedding"], dtype=np.float32).reshape(r["shape"]) for r in rows]


def assert_identical(test, got, want, what=""):
    test.assertIsInstance(got, np.ndarray, what)
    test.assertEqual(got.dtype, np.float32, what)
    test.assertEqual(got.shape, want.shape, what)
    test.assertTrue(np.array_equal(got, want), f"{what}: max |diff| {np.abs(got - want).max()}")


def setUpModule():
    global MODELS, IMAGES, PNGS, JPEG
    MODELS = {a: small_model(a, TMP / f"{a}.tern") for a in ("resnet50", "vit_b_16", "distilbert")}
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    smooth = np.array(Image.fromarray(base).resize((320, 240), Image.BICUBIC))
    PNGS = [TMP / "rgb.png", TMP / "gray.png", TMP / "rgba.png"]
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(PNGS[0])
    Image.fromarray(smooth).convert("L").save(PNGS[1])
    Image.fromarray(np.dstack([smooth, rng.integers(0, 256, (240, 320), np.uint8)])).save(PNGS[2])
    JPEG = TMP / "smooth.jpg"
    Image.fromarray(smooth).save(JPEG, quality=90)
    IMAGES = PNGS + [JPEG]


class Images(unittest.TestCase):
    def check_kinds(self, arch, *opts, **kw):
        m = tern_pkg.load(MODELS[arch], threads=2)
        want = cli_npy(MODELS[arch], *IMAGES, *opts)
        paths = [str(p) for p in IMAGES]
        assert_identical(self, m.embed_images(paths, **kw), want, f"{arch} str paths")
        assert_identical(self, m.embed_images(IMAGES, **kw), want, f"{arch} Path objects")
        encoded = [p.read_bytes() for p in IMAGES]
        assert_identical(self, m.embed_images(encoded, **kw), want, f"{arch} bytes")
        mixed = [paths[0], encoded[1], Path(paths[2]), bytearray(encoded[3])]
        assert_identical(self, m.embed_images(mixed, **kw), want, f"{arch} mixed")
        for bs in (1, 3):
            assert_identical(self, m.embed_images(paths, batch_size=bs, **kw), want, f"batch {bs}")
        # PIL images and pixel arrays: PNG decodes are PIL's own pixels, so bit-identical.
        n = len(PNGS)
        pil = [Image.open(p) for p in PNGS]
        assert_identical(self, m.embed_images(pil, **kw), want[:n], f"{arch} PIL")
        pixels = [np.asarray(Image.open(p).convert("RGB")) for p in PNGS]
        assert_identical(self, m.embed_images(pixels, **kw), want[:n], f"{arch} arrays")
        stacked = np.stack([pixels[0], pixels[1]])
        assert_identical(self, m.embed_images(stacked, **kw), want[:2], f"{arch} NxHxWx3")
        strided = np.asarray(Image.open(PNGS[0]).convert("RGBA"))[:, :, :3]  # not contiguous
        assert_identical(self, m.embed_images([strided], **kw), want[:1], f"{arch} strided")
        # JPEG through PIL: libjpeg and stb decode slightly differently (PRODUCT.md).
        via_pil = m.embed_images(Image.open(JPEG), **kw).reshape(-1)
        ref = want[-1].reshape(-1)
        cos = float(via_pil @ ref / (np.linalg.norm(via_pil) * np.linalg.norm(ref)))
        self.assertGreater(cos, 0.999, f"{arch} JPEG via PIL")
        # A single image gives its own row, in an array that owns its memory.
        one = m.embed_images(paths[1], **kw)
        assert_identical(self, one, want[1], f"{arch} single")
        self.assertTrue(one.flags.owndata and one.flags.c_contiguous)
        return m

    def test_resnet50(self):
        m = self.check_kinds("resnet50")
        self.check_kinds("resnet50", "--normalize", normalize=True)
        self.assertEqual((m.architecture, m.dim, m.modalities), ("resnet50", 2048, ("image",)))
        self.assertEqual((m.default_pooling, m.max_length, m.threads), ("mean", None, 2))

    def test_vit(self):
        m = self.check_kinds("vit_b_16")
        self.check_kinds("vit_b_16", "--pooling", "mean", pooling="mean")
        self.check_kinds("vit_b_16", "--pooling", "none", "--normalize", pooling="none",
                         normalize=True)
        self.assertEqual((m.architecture, m.dim, m.default_pooling), ("vit_b_16", 64, "cls"))

    def test_encode_on_an_image_model(self):
        m = tern_pkg.load(MODELS["resnet50"])
        want = cli_npy(MODELS["resnet50"], *IMAGES, "--normalize")
        assert_identical(self, m.encode(IMAGES, normalize_embeddings=True), want, "encode")
        assert_identical(self, m.encode(str(IMAGES[0]), normalize_embeddings=True), want[0], "1")

    def test_empty_list(self):
        m = tern_pkg.load(MODELS["resnet50"])
        self.assertEqual(m.embed_images([]).shape, (0, 2048))


class Texts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.path = MODELS["distilbert"]
        cls.m = tern_pkg.load(cls.path, threads=2)

    def test_properties(self):
        m = self.m
        self.assertEqual((m.architecture, m.dim, m.modalities), ("distilbert", 64, ("text",)))
        self.assertEqual((m.default_pooling, m.max_length), ("none", 512))
        self.assertIn(m.isa, ("scalar", "avx2", "avx512"))
        self.assertEqual(tern_pkg.load(self.path, isa="scalar").isa, "scalar")
        self.assertIn("distilbert", repr(m))
        self.assertEqual((m.get_sentence_embedding_dimension(), m.max_seq_length), (64, 512))

    def test_pooled_parity(self):
        for pooling in ("mean", "cls"):
            for norm in (False, True):
                flags = ["--pooling", pooling] + (["--normalize"] if norm else [])
                want = cli_npy(self.path, "--text", *TEXTS, *flags)
                got = self.m.embed_texts(TEXTS, pooling=pooling, normalize=norm)
                assert_identical(self, got, want, f"{flags}")
                for bs in (1, 2):
                    assert_identical(self, self.m.embed_texts(TEXTS, pooling=pooling,
                                                              normalize=norm, batch_size=bs),
                                     want, f"{flags} batch {bs}")
                assert_identical(self, self.m.embed_texts(TEXTS[1], pooling=pooling,
                                                          normalize=norm), want[1], "single")

    def test_unpooled_parity(self):
        want = cli_npy(self.path, "--text", "Hello, world!")  # one text: [T, D]
        got = self.m.embed_texts("Hello, world!")
        self.assertEqual(got.shape, (6, 64))
        assert_identical(self, got, want, "one unpooled text")
        want = cli_jsonl(self.path, "--text", *TEXTS)
        got = self.m.embed_texts(TEXTS)
        self.assertIsInstance(got, list)
        self.assertEqual(len(got), len(TEXTS))
        for g, w in zip(got, want):
            assert_identical(self, g, w, "unpooled list")
            self.assertTrue(g.flags.owndata)
        same_length = self.m.embed_texts(["a b", "c d"], pooling="default")  # still a list
        self.assertIsInstance(same_length, list)
        self.assertEqual([a.shape for a in same_length], [(4, 64), (4, 64)])
        bytes_in = self.m.embed_texts([t.encode() for t in TEXTS])
        for g, w in zip(bytes_in, want):
            assert_identical(self, g, w, "bytes texts")

    def test_nul_and_crlf_like_a_text_file(self):
        f = TMP / "nul.txt"
        lines = [b"a\x00b c", b"tab\there", b"\xef\xbb\xbfbom"]
        f.write_bytes(b"\n".join(lines) + b"\n")
        want = cli_npy(self.path, "--text-file", f, "--pooling", "mean")
        assert_identical(self, self.m.embed_texts(lines, pooling="mean"), want, "text file")
        self.assertEqual(self.m.embed_texts([l.decode() for l in lines], pooling="mean").shape,
                         want.shape)

    def test_max_length_and_truncate(self):
        long = "word " * 30
        want = cli_npy(self.path, "--text", long, "x", "--max-length", "8", "--truncate",
                       "--pooling", "mean")
        got = self.m.embed_texts([long, "x"], pooling="mean", max_length=8, truncate=True)
        assert_identical(self, got, want, "truncate")
        with self.assertRaises(tern_pkg.Error) as cm:
            self.m.embed_texts([long], pooling="mean", max_length=8)
        self.assertIn("text 1:", str(cm.exception))
        self.assertIn("more than the maximum of 8", str(cm.exception))

    def test_tokenize(self):
        out = tern("tokenize", self.path, "--text", *TEXTS).stdout.splitlines()
        want = [json.loads(line)["ids"] for line in out]
        self.assertEqual(self.m.tokenize(TEXTS), want)
        self.assertEqual(self.m.tokenize("Hello, world!"), [101, 8667, 117, 1362, 106, 102])

    def test_encode(self):
        m = self.m
        mean = cli_npy(self.path, "--text", *TEXTS, "--pooling", "mean")
        a = m.encode(TEXTS)
        assert_identical(self, a, mean, "encode list")
        self.assertEqual(a.shape, (len(TEXTS), 64))
        one = m.encode("Hello, world!")
        self.assertEqual((one.shape, one.dtype), ((64,), np.float32))
        assert_identical(self, one, mean[0], "encode str")
        rows = m.encode(TEXTS, convert_to_numpy=False)
        self.assertIsInstance(rows, list)
        for r, w in zip(rows, mean):
            assert_identical(self, r, w, "convert_to_numpy=False")
            self.assertTrue(r.flags.owndata)
        normed = cli_npy(self.path, "--text", *TEXTS, "--pooling", "mean", "--normalize")
        assert_identical(self, m.encode(TEXTS, normalize_embeddings=True, batch_size=2), normed,
                         "normalize_embeddings")
        np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)
        tokens = m.encode(TEXTS[:2], output_value="token_embeddings")
        want_shapes = [(len(ids), 64) for ids in m.tokenize(TEXTS[:2])]
        self.assertEqual([t.shape for t in tokens], want_shapes)
        assert_identical(self, tokens[0], cli_npy(self.path, "--text", TEXTS[0]), "tokens")
        self.assertEqual(m.encode([]).shape, (0, 64))
        import torch
        t = m.encode(TEXTS, convert_to_tensor=True)
        self.assertIsInstance(t, torch.Tensor)
        self.assertTrue(np.array_equal(t.numpy(), mean))

    def test_similarity(self):
        e = self.m.encode(TEXTS)
        s = tern_pkg.similarity(e, e[:2])
        self.assertEqual((s.shape, s.dtype), ((len(TEXTS), 2), np.float32))
        n = e / np.linalg.norm(e, axis=1, keepdims=True)
        np.testing.assert_allclose(s, n @ n[:2].T, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.diag(self.m.similarity(e, e)), 1.0, rtol=1e-5)
        self.assertEqual(tern_pkg.similarity(e[0], np.zeros(64)).tolist(), [[0.0]])
        with self.assertRaises(tern_pkg.Error):
            tern_pkg.similarity(e, np.ones((2, 3)))


class Clip(unittest.TestCase):
    """A model of both modalities: images and texts each as `tern embed` gives them; encode
    takes str as text and everything else as images, as sentence-transformers' CLIP does."""

    def test_clip(self):
        path = small_model("clip", TMP / "clip.tern")
        m = tern_pkg.load(path)
        self.assertEqual(m.modalities, ("image", "text"))
        images = cli_npy(path, *IMAGES)
        texts = cli_npy(path, "--text", *TEXTS[:3])
        assert_identical(self, m.embed_images(IMAGES), images, "clip images")
        assert_identical(self, m.embed_images([p.read_bytes() for p in IMAGES]), images, "bytes")
        assert_identical(self, m.embed_texts(TEXTS[:3]), texts, "clip texts")
        assert_identical(self, m.encode(TEXTS[:3]), texts, "encode texts")
        assert_identical(self, m.encode(TEXTS[0]), texts[0], "encode a text")
        assert_identical(self, m.encode(IMAGES), images, "encode Path objects")
        assert_identical(self, m.encode(IMAGES[1].read_bytes()), images[1], "encode bytes")
        self.assertEqual(m.encode(Image.open(PNGS[0])).shape, (m.dim,))
        out = tern("tokenize", path, "--text", *TEXTS[:3]).stdout.splitlines()
        self.assertEqual(m.tokenize(TEXTS[:3]), [json.loads(line)["ids"] for line in out])


def cli_accepts(*args) -> bool:
    """Whether this build's `tern embed` takes these options (the CLI gains them separately)."""
    return tern("embed", MODELS["distilbert"], "--text", "a", *args, check=False).returncode == 0


class LayersAndPoolings(unittest.TestCase):
    """layer= and pooling="max" reach EmbedOptions: consistent with the per-token output, and
    with `tern embed` where this build's CLI has the flags."""

    def test_max_pooling(self):
        t = tern_pkg.load(MODELS["distilbert"])
        for text in TEXTS[:2]:
            tokens = t.embed_texts(text, pooling="none")
            self.assertTrue(np.array_equal(t.embed_texts(text, pooling="max"), tokens.max(0)))
        v = tern_pkg.load(MODELS["vit_b_16"])
        tokens = v.embed_images(IMAGES[0], pooling="none")
        self.assertTrue(np.array_equal(v.embed_images(IMAGES[0], pooling="max"),
                                       tokens[1:].max(0)))  # the patch tokens, as mean
        if cli_accepts("--pooling", "max"):
            assert_identical(self, t.embed_texts(TEXTS, pooling="max"),
                             cli_npy(MODELS["distilbert"], "--text", *TEXTS, "--pooling", "max"))

    def test_prompt_text_as_the_cli(self):
        t = tern_pkg.load(MODELS["distilbert"])
        want = cli_npy(MODELS["distilbert"], "--text", *TEXTS, "--pooling", "mean",
                       "--prompt-text", "query: ")
        assert_identical(self, t.embed_texts(TEXTS, pooling="mean", prompt_text="query: "), want,
                         "prompt_text")
        self.assertFalse(np.array_equal(want, t.embed_texts(TEXTS, pooling="mean")))
        with self.assertRaises(tern_pkg.Error):
            t.embed_texts(TEXTS, prompt="query")  # a prompt by name needs a file that has it

    def test_layers(self):
        r = tern_pkg.load(MODELS["resnet50"])
        self.assertEqual(r.layers, ("stem", "layer1", "layer2", "layer3", "layer4"))
        assert_identical(self, r.embed_images(IMAGES, layer="layer4"), r.embed_images(IMAGES))
        self.assertEqual(r.embed_images(IMAGES, layer="layer1").shape, (len(IMAGES), 256))
        fmap = r.embed_images(IMAGES[:2], layer="layer4", pooling="none")
        self.assertEqual(fmap.shape, (2, 2048, 7, 7))
        np.testing.assert_allclose(fmap.mean(axis=(2, 3)), r.embed_images(IMAGES[:2]),
                                   rtol=1e-5, atol=1e-6)
        t = tern_pkg.load(MODELS["distilbert"])
        base = t.encode(TEXTS)
        self.assertTrue(np.array_equal(t.embed_texts(TEXTS, pooling="mean", layer=2), base))
        self.assertTrue(np.array_equal(t.embed_texts(TEXTS, pooling="mean", layer=-1), base))
        self.assertFalse(np.array_equal(t.embed_texts(TEXTS, pooling="mean", layer=0), base))
        with self.assertRaises(tern_pkg.Error):
            t.embed_texts(TEXTS, layer=7)
        if cli_accepts("--layer", "1"):
            assert_identical(self, r.embed_images(IMAGES, layer="layer2"),
                             cli_npy(MODELS["resnet50"], *IMAGES, "--layer", "layer2"))
            assert_identical(self, t.embed_texts(TEXTS, pooling="mean", layer=1),
                             cli_npy(MODELS["distilbert"], "--text", *TEXTS, "--pooling",
                                     "mean", "--layer", "1"))


class Errors(unittest.TestCase):
    """Each failure raises tern.Error with the CLI's message; the model keeps working after."""

    @classmethod
    def setUpClass(cls):
        cls.img = tern_pkg.load(MODELS["resnet50"])
        cls.txt = tern_pkg.load(MODELS["distilbert"])
        cls.good = cls.img.embed_images(IMAGES[0])
        cls.good_text = cls.txt.encode("still fine")

    def tearDown(self):
        assert_identical(self, self.img.embed_images(IMAGES[0]), self.good, "after an error")
        assert_identical(self, self.txt.encode("still fine"), self.good_text, "after an error")

    def raises(self, fn, *args, **kw) -> str:
        with self.assertRaises(tern_pkg.Error) as cm:
            fn(*args, **kw)
        self.assertIsInstance(cm.exception, RuntimeError)
        msg = str(cm.exception)
        self.assertNotIn("\n", msg)
        return msg

    def test_missing_file(self):
        missing = TMP / "missing.png"
        want = cli_error("embed", MODELS["resnet50"], missing)
        self.assertEqual(self.raises(self.img.embed_images, [IMAGES[0], missing]), want)

    def test_not_an_image(self):
        fake = TMP / "notes.png"
        fake.write_text("just some text\n")
        want = cli_error("embed", MODELS["resnet50"], fake)
        self.assertEqual(self.raises(self.img.embed_images, [fake]), want)
        msg = self.raises(self.img.embed_images, [IMAGES[0], fake.read_bytes()])
        self.assertTrue(msg.startswith("images[1]: "), msg)
        self.assertTrue(msg.endswith(want.split(": ", 1)[1]), (msg, want))
        self.assertIn("image bytes", self.raises(self.img.embed_images, b""))
        huge = b"\x89PNG\r\n\x1a\n" + bytes(65 << 20)  # over the 64 MiB cap
        self.assertIn("over the image size cap", self.raises(self.img.embed_images, huge))

    def test_invalid_utf8(self):
        bad = os.fsdecode(b"ab\xffcd")  # surrogateescape: the raw byte reaches tern's argv
        want = cli_error("embed", MODELS["distilbert"], "--text", "fine", bad, "--pooling", "mean")
        reason = "invalid UTF-8 at byte offset 2"
        self.assertEqual(want, f"text 2: {reason}")
        msg = self.raises(self.txt.embed_texts, ["fine", b"ab\xffcd"], pooling="mean")
        self.assertEqual(msg, want)
        # a str carrying the byte by surrogateescape (as sys.argv does), deep in a later batch
        texts = ["ok"] * 5 + [b"ab\xffcd".decode("utf-8", "surrogateescape")]
        self.assertEqual(self.raises(self.txt.encode, texts, batch_size=2), f"text 6: {reason}")
        self.assertEqual(self.raises(self.txt.tokenize, ["fine", b"ab\xffcd"]),
                         cli_error("tokenize", MODELS["distilbert"], "--text", "fine", bad))

    def test_wrong_arrays_and_types(self):
        for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8),
                    np.zeros((8, 8, 3), np.float32)):
            msg = self.raises(self.img.embed_images, [bad])
            self.assertIn("images[0]: expected an HxWx3 uint8 array", msg)
            self.assertIn(str(bad.shape), msg)
        self.assertIn("out of range", self.raises(self.img.embed_images, np.zeros((0, 5, 3),
                                                                              np.uint8)))
        self.assertIn("got int", self.raises(self.img.embed_images, [IMAGES[0], 42]))
        self.assertIn("text 2: expected str or bytes, got int",
                      self.raises(self.txt.embed_texts, ["a", 1]))
        self.assertIn("text model", self.raises(self.txt.embed_images, [IMAGES[0]]))
        self.assertIn("image model", self.raises(self.img.embed_texts, ["a"]))

    def test_bad_options(self):
        for bs in (-1, 0):
            msg = self.raises(self.img.embed_images, IMAGES, batch_size=bs)
            self.assertEqual(msg, f"batch size must be >= 1, got {bs}")
            self.raises(self.txt.encode, ["a"], batch_size=bs)
        want = cli_error("embed", MODELS["distilbert"], "--text", "a", "--pooling", "bogus")
        msg = self.raises(self.txt.embed_texts, ["a"], pooling="bogus")
        self.assertIn("'bogus'", msg)
        self.assertIn("'bogus'", want)
        self.assertIn("none, cls, mean", msg)
        self.assertIn("does not apply", self.raises(self.img.embed_images, IMAGES, pooling="cls"))
        self.raises(self.txt.encode, ["a"], device="cuda")

    def test_bad_model_files(self):
        corrupt = TMP / "corrupt.tern"
        corrupt.write_bytes(Path(MODELS["resnet50"]).read_bytes()[:-1])
        self.assertEqual(self.raises(tern_pkg.load, corrupt),
                         cli_error("embed", corrupt, IMAGES[0]))
        missing = TMP / "nothere.tern"
        self.assertEqual(self.raises(tern_pkg.load, missing), cli_error("embed", missing, "x"))
        self.assertIn("threads", self.raises(tern_pkg.load, MODELS["resnet50"], threads=-1))
        self.raises(tern_pkg.load, MODELS["resnet50"], isa="sse9")
        self.assertIn("out of range", self.raises(tern_pkg.load, MODELS["resnet50"],
                                                  threads=2**40))
        self.assertIn("out of range", self.raises(self.img.embed_images, IMAGES,
                                                  batch_size=2**40))


class Package(unittest.TestCase):
    def child(self, code: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd="/",
                              env=python_env(SITE), **kw)

    def test_import_from_another_directory_without_torch(self):
        p = self.child("import sys, tern; print(tern.__file__); "
                       "print(sorted(m for m in ('torch', 'PIL', 'tqdm') if m in sys.modules))")
        self.assertEqual(p.returncode, 0, p.stderr)
        file, loaded = p.stdout.splitlines()
        self.assertTrue(file.startswith(str(SITE)), file)
        self.assertEqual(loaded, "[]")

    def test_help_reads_well(self):
        text = pydoc.render_doc(tern_pkg.Model, renderer=pydoc.plaintext)
        for needle in ("embed_images", "Embeds images", "encode", "SentenceTransformer.encode",
                       "tokenize", "default_pooling", "GIL", "tern.Error"):
            self.assertIn(needle, text)
        self.assertIn("Converts a PyTorch", pydoc.render_doc(tern_pkg.convert))
        self.assertEqual(tern_pkg.Error.__module__, "tern")

    def test_progress_bars(self):
        code = ("import tern; m = tern.load(%r); m.encode(['a'] * 9, batch_size=2, "
                "show_progress_bar=True)") % str(MODELS["distilbert"])
        p = self.child(code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("9/9", p.stderr)  # tqdm's bar
        self.assertIn("it/s" if "it/s" in p.stderr else "input/s", p.stderr)
        p = self.child("import sys; sys.modules['tqdm'] = None; " + code)  # tqdm not installed
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("[" + "#" * 30 + "] 9/9", p.stderr)
        p = self.child(code.replace("True", "None"))  # automatic: not a terminal, no bar
        self.assertEqual((p.returncode, p.stderr), (0, ""))

    def test_convert(self):
        by_cli = TMP / "by-cli.tern"
        small_model("resnet50", by_cli, seed=5)
        by_fn = TMP / "by-fn.tern"
        # run where the source tree is not around: the installed exporter and vocabularies
        code = ("import tern; print(tern.convert('resnet50', out=%r, random_init=True, seed=5, "
                "layers=[1, 1, 1, 1]))") % str(by_fn)
        p = self.child(code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), str(by_fn))
        self.assertEqual(by_fn.read_bytes(), by_cli.read_bytes())
        text = TMP / "db-fn.tern"
        p = self.child("import tern; tern.convert('distilbert', out=%r, random_init=True, "
                       "layers=1, dim=32, heads=2, hidden_dim=64)" % str(text))
        self.assertEqual(p.returncode, 0, p.stderr)
        m = tern_pkg.load(text)
        self.assertEqual(m.tokenize("Hello, world!"), [101, 8667, 117, 1362, 106, 102])
        with self.assertRaises(tern_pkg.Error) as cm:
            tern_pkg.convert("resnet50", TMP / "no-such.pth", out=TMP / "x.tern")
        self.assertIn("no-such.pth", str(cm.exception))
        self.assertFalse((TMP / "x.tern").exists())
        with self.assertRaises(tern_pkg.Error):
            tern_pkg.convert("resnet50", out=TMP / "y.tern", random_init=True, no_such_option=1)


if __name__ == "__main__":
    unittest.main()
