"""CLIP parity: Tern against reference forwards built from torch.nn modules (clip_reference.py) in
OpenAI's checkpoint layout (visual.*, transformer.resblocks.N.attn.in_proj_weight, ln_final,
text_projection, ...) and in Hugging Face's (vision_model.*, text_model.*, q/k/v_proj, ...), with
random weights and randomised LayerNorms, small towers.

Checked: image and text embeddings at PRODUCT.md's fidelity (cosine >= 0.99999, max |diff| <=
1e-4 max |reference|) on every ISA this machine has; the end-of-text position with padding, with
an end token inside a text and with texts of different lengths in one batch; QuickGELU (OpenAI,
TorchScript archive and plain state dict) and GELU (open_clip-style --activation gelu, and HF's
hidden_act); explicit pooling and --layer on each tower; logit_scale; cosine and zero-shot softmax
against numpy on the reference embeddings; `tern embed` on an image file (the clip preprocessing
profile, through the API and `tern embed IMAGE`) and `tern embed --text`.
Env: TERN_BUILD_DIR (tests/tern_run_clip), TERN_BIN.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clip_reference as ref  # noqa: E402
from tern_testlib import BUILD, PYTHON, ROOT, TERN, run  # noqa: E402

RUN_CLIP = BUILD / "tests" / "tern_run_clip"
EXPORT = ROOT / "weights_tools" / "export.py"
TEXTS = ["a photo of a cat", "a dog", "photograph of the sea at night, with two dogs and a cat",
         "x", "мир, 世界 and the cat"]
MERGE_CORPUS = TEXTS + ["the cat sat on the mat", "photos of cats and dogs", "мир мир 世界 世界"]


def machine_isas() -> list[str]:
    out = run([TERN, "--version"]).stdout
    best = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("best isa"))
    order = ["scalar", "avx2", "avx512"]
    return order[: order.index(best) + 1]


def assert_close(test, got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    test.assertEqual(got.shape, want.shape, what)
    g, w = got.reshape(len(got), -1), want.reshape(len(want), -1)
    for i in range(len(g)):
        cos = float(g[i] @ w[i] / (np.linalg.norm(g[i]) * np.linalg.norm(w[i])))
        diff = float(np.abs(g[i] - w[i]).max())
        test.assertGreaterEqual(cos, 0.99999, f"{what} [{i}]: cosine {cos}")
        test.assertLessEqual(diff, 1e-4 * float(np.abs(w[i]).max()), f"{what} [{i}]: max diff {diff}")


def pad(rows: list[list[int]], length: int = 77) -> np.ndarray:
    out = np.zeros((len(rows), length), np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class ClipParityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.merges = ref.train_merges(MERGE_CORPUS, 200)
        cls.tok = ref.SimpleTokenizer(cls.merges)
        cls.bpe = os.path.join(d, "bpe.txt.gz")
        ref.write_bpe_gz(cls.bpe, cls.merges)
        V = len(cls.tok.vocab)
        cls.ids = [cls.tok.tokenize(t) for t in TEXTS]
        # an end token written inside a text: OpenAI's argmax takes its first occurrence
        cls.ids.append(cls.tok.tokenize("a cat <|endoftext|> and a dog"))
        cls.images = torch.randn(3, 3, 32, 32)

        # OpenAI layout, QuickGELU: vision 128 wide (2 heads of 64), text 128 wide (2 heads)
        cls.openai = ref.OpenAICLIP(embed_dim=48, image_resolution=32, vision_layers=2,
                                    vision_width=128, patch_size=8, context_length=77,
                                    vocab_size=V, transformer_width=128, transformer_heads=2,
                                    transformer_layers=3).eval()
        ref.randomise(cls.openai, 1)
        cls.models = {}
        with torch.no_grad():
            traced = torch.jit.trace(cls.openai, (cls.images, torch.tensor(pad(cls.ids[:2]))),
                                     check_trace=False)
        ts = os.path.join(d, "ViT-test.pt")
        traced.save(ts)
        cls.models["openai_torchscript"] = cls.export(ts, "--bpe", cls.bpe)
        sd = os.path.join(d, "openai_state.pt")
        torch.save(cls.openai.state_dict(), sd)
        cls.models["openai_state_dict"] = cls.export(sd, "--bpe", cls.bpe)

        # open_clip-style: OpenAI names, nn.GELU, 3 layers; given with HF's vocab.json/merges.txt
        cls.gelu = ref.OpenAICLIP(embed_dim=40, image_resolution=32, vision_layers=3,
                                  vision_width=64, patch_size=16, context_length=77, vocab_size=V,
                                  transformer_width=64, transformer_heads=1, transformer_layers=2,
                                  act="gelu").eval()
        ref.randomise(cls.gelu, 2)
        sd = os.path.join(d, "open_clip.pt")
        torch.save({"state_dict": cls.gelu.state_dict()}, sd)
        hfd = os.path.join(d, "tok")
        os.mkdir(hfd)
        ref.write_hf_tokenizer(hfd, cls.tok, cls.merges)
        cls.models["open_clip_gelu"] = cls.export(
            sd, "--vocab", os.path.join(hfd, "vocab.json"), "--merges",
            os.path.join(hfd, "merges.txt"), "--activation", "gelu")

        # Hugging Face layout, exact GELU from the config, heads not of 64 channels
        cls.hf_config = {
            "projection_dim": 56,
            "text_config": {"vocab_size": V, "hidden_size": 80, "intermediate_size": 160,
                            "num_attention_heads": 2, "num_hidden_layers": 2,
                            "max_position_embeddings": 77, "hidden_act": "gelu",
                            "layer_norm_eps": 1e-5, "eos_token_id": 2},
            "vision_config": {"hidden_size": 96, "intermediate_size": 192,
                              "num_attention_heads": 3, "num_hidden_layers": 2, "image_size": 32,
                              "patch_size": 8, "hidden_act": "gelu", "layer_norm_eps": 1e-5},
        }
        cls.hf = ref.HFCLIPModel(cls.hf_config).eval()
        ref.randomise(cls.hf, 3)
        hf_dir = os.path.join(d, "hf")
        os.mkdir(hf_dir)
        with open(os.path.join(hf_dir, "config.json"), "w") as f:
            json.dump(dict(cls.hf_config, architectures=["CLIPModel"]), f)
        torch.save(cls.hf.state_dict(), os.path.join(hf_dir, "pytorch_model.bin"))
        ref.write_hf_tokenizer(hf_dir, cls.tok, cls.merges)
        cls.models["hf_gelu"] = cls.export(hf_dir)

    @classmethod
    def export(cls, source, *flags):
        out = os.path.join(cls.tmp.name, os.path.basename(source).replace(".", "_") + ".tern")
        run([PYTHON, EXPORT, "clip", source, "-o", out, *flags])
        return out

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tern(self, model, mode, *args, isa=None, check=True):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.npy")
            files = []
            for a in args:
                if isinstance(a, np.ndarray):
                    files.append(os.path.join(d, f"in{len(files)}.npy"))
                    np.save(files[-1], a)
                else:
                    files.append(str(a))
            first_flag = next((i for i, f in enumerate(files) if f.startswith("--")), len(files))
            positional, flags = files[:first_flag], files[first_flag:]
            env = dict(os.environ, TERN_ISA=isa) if isa else None
            p = subprocess.run([str(RUN_CLIP), model, mode, *positional, out, *flags],
                               capture_output=True, text=True, env=env)
            if not check:
                return p
            self.assertEqual(p.returncode, 0, p.stderr)
            return np.load(out)

    def ids_input(self, rows):
        lens = np.array([len(r) for r in rows], np.int32)
        return pad(rows, max(lens)).astype(np.int32), lens

    def reference(self, kind):
        x, t = self.images, torch.tensor(pad(self.ids))
        with torch.no_grad():
            if kind == "hf_gelu":
                return (self.hf.get_image_features(x).numpy(),
                        self.hf.get_text_features(t).numpy())
            m = self.gelu if kind == "open_clip_gelu" else self.openai
            return m.encode_image(x).numpy(), m.encode_text(t).numpy()

    def test_embeddings_every_layout_and_isa(self):
        for kind, model in self.models.items():
            img_ref, txt_ref = self.reference(kind)
            ids, lens = self.ids_input(self.ids)
            for isa in machine_isas():
                with self.subTest(kind=kind, isa=isa):
                    assert_close(self, self.tern(model, "images", self.images.numpy(), isa=isa),
                                 img_ref, f"{kind} images ({isa})")
                    assert_close(self, self.tern(model, "ids", ids, lens, isa=isa), txt_ref,
                                 f"{kind} texts ({isa})")

    def test_end_of_text_with_padding_and_batching(self):
        model = self.models["openai_state_dict"]
        _, txt_ref = self.reference("openai_state_dict")
        # every row padded with zeros to 77 and given as 77 tokens: the end token is still found,
        # and the causal mask keeps the padding out of it
        padded = pad(self.ids).astype(np.int32)
        full = np.full(len(self.ids), 77, np.int32)
        assert_close(self, self.tern(model, "ids", padded, full), txt_ref, "padded to 77")
        # texts alone equal texts in a batch of mixed lengths (1e-5 relative)
        ids, lens = self.ids_input(self.ids)
        batch = self.tern(model, "ids", ids, lens)
        for i, row in enumerate(self.ids):
            one, one_len = self.ids_input([row])
            alone = self.tern(model, "ids", one, one_len)[0]
            self.assertLessEqual(np.abs(alone - batch[i]).max(), 1e-5 * np.abs(batch[i]).max())
        # the end token inside text 6 is where the embedding comes from: cutting the text after it
        # changes nothing
        row = self.ids[-1]
        cut = row[: row.index(self.tok.encoder[ref.EOS]) + 1]
        one, one_len = self.ids_input([cut])
        np.testing.assert_allclose(self.tern(model, "ids", one, one_len)[0], batch[-1],
                                   rtol=0, atol=1e-5 * np.abs(batch[-1]).max())

    def test_explicit_pooling_and_layers(self):
        model, m = self.models["openai_state_dict"], self.openai
        x = self.images
        rows = self.ids[:3]
        ids, lens = self.ids_input(rows)
        with torch.no_grad():
            vtok = m.visual.ln_post(m.visual.tokens(x)).numpy()
            vtok1 = m.visual.tokens(x, upto=1).numpy()
            ttok = m.ln_final(m.text_tokens(torch.tensor(pad(rows)))).numpy()
            ttok2 = m.text_tokens(torch.tensor(pad(rows)), upto=2).numpy()
        assert_close(self, self.tern(model, "images", x.numpy(), "--pooling", "none"), vtok,
                     "vision tokens")
        assert_close(self, self.tern(model, "images", x.numpy(), "--pooling", "cls"),
                     vtok[:, 0], "vision cls before projection")
        assert_close(self, self.tern(model, "images", x.numpy(), "--pooling", "mean"),
                     vtok[:, 1:].mean(1), "vision mean of patches")
        assert_close(self, self.tern(model, "images", x.numpy(), "--layer", "1", "--pooling",
                                     "none"), vtok1, "vision layer 1")
        got = self.tern(model, "ids", ids, lens, "--pooling", "none")
        for i, n in enumerate(lens):
            assert_close(self, got[i, :n], ttok[i, :n], f"text {i} tokens")
            self.assertTrue((got[i, n:] == 0).all())
        got = self.tern(model, "ids", ids, lens, "--layer", "2", "--pooling", "max")
        want = np.stack([ttok2[i, :n].max(0) for i, n in enumerate(lens)])
        assert_close(self, got, want, "text layer 2 max")
        got = self.tern(model, "ids", ids, lens, "--layer", "-1", "--pooling", "mean")
        with torch.no_grad():
            t3 = m.text_tokens(torch.tensor(pad(rows)), upto=3).numpy()
        assert_close(self, got, np.stack([t3[i, :n].mean(0) for i, n in enumerate(lens)]),
                     "text layer -1 mean")
        # the projected default needs the final layer; a block past a tower's depth is an error
        p = self.tern(model, "images", x.numpy(), "--layer", "1", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("with --layer give --pooling", p.stderr)
        p = self.tern(model, "images", x.numpy(), "--layer", "3", "--pooling", "cls", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not exist in clip's vision tower (0..2)", p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1)

    def test_similarity_and_softmax(self):
        img_ref, txt_ref = self.reference("openai_state_dict")
        model = self.models["openai_state_dict"]
        a, b = img_ref.astype(np.float32), txt_ref.astype(np.float32)
        cos = self.tern(model, "similarity", a, b)
        an = a.astype(np.float64) / np.linalg.norm(a, axis=1, keepdims=True)
        bn = b.astype(np.float64) / np.linalg.norm(b, axis=1, keepdims=True)
        want = an @ bn.T
        np.testing.assert_allclose(cos, want, rtol=0, atol=1e-6)
        probs = self.tern(model, "similarity", a, b, "--softmax")
        scale = float(self.openai.logit_scale.exp())
        logits = scale * want
        e = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(probs, e / e.sum(1, keepdims=True), rtol=0, atol=1e-5)
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
        p = subprocess.run([str(RUN_CLIP), model, "similarity", os.devnull, os.devnull, "x"],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        out = run([RUN_CLIP, model, "similarity", *self._two(a, b), "--softmax"]).stdout
        self.assertIn(f"logit_scale {np.float32(scale):.6g}"[:18], out)

    def _two(self, a, b):
        d = self.tmp.name
        np.save(os.path.join(d, "a.npy"), a)
        np.save(os.path.join(d, "b.npy"), b)
        return os.path.join(d, "a.npy"), os.path.join(d, "b.npy"), os.path.join(d, "s.npy")

    def test_tern_embed_image_file_and_texts(self):
        from PIL import Image
        model = self.models["openai_state_dict"]
        d = self.tmp.name
        rng = np.random.default_rng(5)
        pixels = rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)
        path = os.path.join(d, "img.png")
        Image.fromarray(pixels).save(path)
        # CLIP's _transform(32): Resize(32, BICUBIC) (shorter side), CenterCrop(32), Normalize
        im = Image.open(path).convert("RGB")
        w, h = im.size
        short, long_ = (w, h) if w <= h else (h, w)
        size = (32, int(32 * long_ / short)) if w <= h else (int(32 * long_ / short), 32)
        im = im.resize(size, Image.BICUBIC)
        left, top = int(round((im.size[0] - 32) / 2.0)), int(round((im.size[1] - 32) / 2.0))
        im = im.crop((left, top, left + 32, top + 32))
        x = np.asarray(im, np.float32).transpose(2, 0, 1) / 255.0
        x = (x - np.array(ref_mean())[:, None, None]) / np.array(ref_std())[:, None, None]
        with torch.no_grad():
            want = self.openai.encode_image(torch.tensor(x[None], dtype=torch.float32)).numpy()
        # through the API's image path (Model::embed_image_files: decode, the file's clip profile)
        assert_close(self, self.tern(model, "image-files", path), want, "embed_image_files")
        out = os.path.join(d, "e.npy")
        run([TERN, "embed", model, path, "-o", out])
        assert_close(self, np.load(out), want, "tern embed IMAGE")
        p = run([TERN, "embed", model, path, "--text", "x"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("images or texts in one run, not both", p.stderr)
        run([TERN, "embed", model, "--text", *TEXTS[:2], "-o", out])
        with torch.no_grad():
            want = self.openai.encode_text(torch.tensor(pad(self.ids[:2]))).numpy()
        assert_close(self, np.load(out), want, "tern embed --text")

    def test_metadata(self):
        sys.path.insert(0, str(ROOT))
        from weights_tools.tern_format import read_tern
        tensors, meta = read_tern(self.models["openai_torchscript"])
        cfg = json.loads(meta["config"])
        self.assertEqual(cfg["activation"], "quick_gelu")
        self.assertEqual((cfg["vision_heads"], cfg["text_heads"], cfg["embed_dim"]), (2, 2, 48))
        self.assertAlmostEqual(float(tensors["logit_scale"][0]), 4.2, places=6)
        self.assertEqual(json.loads(meta["preprocess"])["profile"], "clip")
        self.assertEqual(meta["vocab"].split("\n")[-2], ref.EOS)
        self.assertEqual(json.loads(self.hf_config_of("hf_gelu"))["activation"], "gelu")

    def hf_config_of(self, kind):
        sys.path.insert(0, str(ROOT))
        from weights_tools.tern_format import read_tern
        return read_tern(self.models[kind])[1]["config"]

    def test_bf16_weights(self):
        out = os.path.join(self.tmp.name, "bf16.tern")
        run([PYTHON, EXPORT, "clip", os.path.join(self.tmp.name, "openai_state.pt"), "--bpe",
             self.bpe, "--dtype", "bf16", "-o", out])
        ids, lens = self.ids_input(self.ids)
        for mode, args in (("images", (self.images.numpy(),)), ("ids", (ids, lens))):
            a = self.tern(self.models["openai_state_dict"], mode, *args).astype(np.float64)
            b = self.tern(out, mode, *args).astype(np.float64)
            for i in range(len(a)):
                cos = a[i] @ b[i] / (np.linalg.norm(a[i]) * np.linalg.norm(b[i]))
                self.assertGreaterEqual(cos, 0.999, f"bf16 {mode} [{i}]")

    def test_hf_safetensors_directory(self):
        """The same HF model as model.safetensors converts to the same tensors as from .bin."""
        sys.path.insert(0, str(ROOT))
        from weights_tools.tern_format import read_tern
        d = os.path.join(self.tmp.name, "hf_st")
        os.mkdir(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.hf_config, f)
        ref.write_hf_tokenizer(d, self.tok, self.merges)
        state = {k: v.detach().numpy().astype(np.float32) for k, v in self.hf.state_dict().items()}
        header, blobs, offset = {}, [], 0
        for k, a in state.items():
            b = np.ascontiguousarray(a).tobytes()
            header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
            blobs.append(b)
            offset += len(b)
        h = json.dumps(header).encode()
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
        out = self.export(d)
        a, meta_a = read_tern(out)
        b, meta_b = read_tern(self.models["hf_gelu"])
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], k)
        self.assertEqual(meta_a["config"], meta_b["config"])
        self.assertEqual(meta_a["merges"], meta_b["merges"])

    def test_bad_checkpoints(self):
        d = self.tmp.name
        sd = dict(self.openai.state_dict())
        del sd["ln_final.weight"]
        path = os.path.join(d, "broken.pt")
        torch.save(sd, path)
        p = subprocess.run([PYTHON, EXPORT, "clip", path, "--bpe", self.bpe, "-o",
                            os.path.join(d, "broken.tern")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ln_final.weight", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "broken.tern")))
        p = subprocess.run([PYTHON, EXPORT, "clip", os.path.join(d, "openai_state.pt"), "-o",
                            os.path.join(d, "x.tern")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--bpe", p.stderr)


def ref_mean():
    return [0.48145466, 0.4578275, 0.40821073]


def ref_std():
    return [0.26862954, 0.26130258, 0.27577711]


if __name__ == "__main__":
    unittest.main()
