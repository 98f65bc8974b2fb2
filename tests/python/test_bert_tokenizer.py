"""BERT tokenizer settings through the exporter and `tern tokenize`: cased and uncased
vocabularies, accents stripped and kept, settings from tokenizer_config.json or tokenizer.json.

The oracle for settings the shared references do not cover (uncased with strip_accents=false,
cased with strip_accents=true) is a port of HF's BertTokenizer (BasicTokenizer + WordPiece) below;
it is first checked against every real HF fast-tokenizer output in
shared/data/tokenizer-reference. Env: TERN_BIN (the tern binary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unicodedata
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bert_testlib as bt  # noqa: E402

REF_DIR = bt.ROOT.parent / "shared" / "data" / "tokenizer-reference"
if not REF_DIR.is_dir():
    REF_DIR = Path("/work/shared/data/tokenizer-reference")
TERN = Path(os.environ.get("TERN_BIN", bt.ROOT / "build" / "tern"))
EXPORT = bt.ROOT / "weights_tools" / "export.py"
CFG = dict(bt.TINY, hidden_size=16, num_attention_heads=2, intermediate_size=32,
           num_hidden_layers=1, max_position_embeddings=8192)


# ---- HF BertTokenizer (slow) ported --------------------------------------------------------------

def _is_whitespace(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def _is_punctuation(c: str) -> bool:
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


def basic_tokenize(text: str, lowercase: bool, strip_accents, chinese: bool = True) -> list[str]:
    text = "".join(" " if _is_whitespace(c) else c for c in text
                   if not (ord(c) == 0 or ord(c) == 0xFFFD or _is_control(c)))
    if chinese:
        text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in text)
    out = []
    for token in text.split():
        if lowercase:
            token = token.lower()
            if strip_accents is not False:
                token = _strip_accents(token)
        elif strip_accents:
            token = _strip_accents(token)
        word = []
        for c in token:
            if _is_punctuation(c):
                if word:
                    out.append("".join(word))
                    word = []
                out.append(c)
            else:
                word.append(c)
        if word:
            out.append("".join(word))
    return out


def wordpiece(words: list[str], vocab: dict[str, int]) -> list[int]:
    ids = []
    for word in words:
        if len(word) > 100:
            ids.append(vocab["[UNK]"])
            continue
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = ("##" if start else "") + word[start:end]
                if piece in vocab:
                    found = vocab[piece]
                    break
                end -= 1
            if found is None:
                pieces = [vocab["[UNK]"]]
                break
            pieces.append(found)
            start = end
        ids.extend(pieces)
    return ids


def reference_ids(text: str, vocab_file: Path, lowercase: bool, strip_accents) -> list[int]:
    tokens = vocab_file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    vocab = {t: i for i, t in enumerate(tokens)}
    return ([vocab["[CLS]"]] + wordpiece(basic_tokenize(text, lowercase, strip_accents), vocab)
            + [vocab["[SEP]"]])


def references():
    for f in sorted(REF_DIR.glob("*.json")):
        j = json.loads(f.read_text(encoding="utf-8"))
        text = (REF_DIR / Path(j["input_file"]).name).read_text(encoding="utf-8")
        cased = j["model_name"] == "bert-base-cased"
        yield f.name, text, cased, j["token_ids"]


class PortMatchesHF(unittest.TestCase):
    def test_port_reproduces_the_hf_references(self):
        n = 0
        for name, text, cased, want in references():
            with self.subTest(name):
                vocab = bt.VOCAB_CASED if cased else bt.VOCAB_UNCASED
                self.assertEqual(reference_ids(text, vocab, not cased, None), want)
                n += 1
        self.assertGreaterEqual(n, 4)


@unittest.skipUnless(TERN.exists(), f"no tern binary at {TERN}")
class TernTokenize(unittest.TestCase):
    ARCH = os.environ.get("TERN_TOKENIZER_TEST_ARCH", "bert")

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.tmp = Path(cls._tmp.name)
        cls.states = {v: bt.random_bert(CFG, v, 1) for v in (bt.VOCAB_CASED, bt.VOCAB_UNCASED)}

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def model(self, name: str, vocab: Path, tokenizer: str = "vocab.txt",
              tokenizer_config: dict | None = None, normalizer: dict | None = None) -> Path:
        d = bt.write_hf_dir(self.tmp / name, self.states[vocab], CFG, vocab, tokenizer=tokenizer,
                            tokenizer_config=tokenizer_config)
        if normalizer:
            tj = json.loads((d / "tokenizer.json").read_text())
            tj["normalizer"].update(normalizer)
            (d / "tokenizer.json").write_text(json.dumps(tj))
        out = self.tmp / (name + ".tern")
        r = subprocess.run([sys.executable, str(EXPORT), "bert", str(d), "-o", str(out)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return out

    def tokenize(self, model: Path, text: str) -> list[int]:
        r = subprocess.run([str(TERN), "tokenize", str(model), "--text", text],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout.strip().splitlines()[0])["ids"]

    def test_references_cased_and_uncased(self):
        models = {True: self.model("cased", bt.VOCAB_CASED, tokenizer_config={
                      "do_lower_case": False}),
                  False: self.model("uncased", bt.VOCAB_UNCASED, tokenizer_config={
                      "do_lower_case": True})}
        for name, text, cased, want in references():
            with self.subTest(name):
                self.assertEqual(self.tokenize(models[cased], text), want)

    def test_accents_stripped_and_kept(self):
        """Uncased with strip_accents false keeps the accents (röck stays röck, so its pieces
        differ); cased with strip_accents true strips them without lowercasing. The settings
        come from tokenizer_config.json or from tokenizer.json's normalizer alike."""
        texts = [t for _, t, _, _ in references()]
        texts.append("Crème brûlée in Ångström, Øresund; naïve café ÉCOLE")
        cases = [
            ("u_keep", bt.VOCAB_UNCASED, "vocab.txt", {"do_lower_case": True,
                                                        "strip_accents": False}, None,
             True, False),
            ("u_keep_json", bt.VOCAB_UNCASED, "tokenizer.json", None, {"strip_accents": False},
             True, False),
            ("u_strip", bt.VOCAB_UNCASED, "tokenizer.json", None, None, True, None),
            ("c_strip", bt.VOCAB_CASED, "vocab.txt", {"do_lower_case": False,
                                                       "strip_accents": True}, None, False, True),
            ("c_keep_json", bt.VOCAB_CASED, "tokenizer.json", None, {"lowercase": False},
             False, None),
        ]
        kept_differs = False
        for name, vocab, files, tc, norm, lower, strip in cases:
            with self.subTest(name):
                model = self.model(name, vocab, files, tc, norm)
                for text in texts:
                    got = self.tokenize(model, text)
                    self.assertEqual(got, reference_ids(text, vocab, lower, strip),
                                     f"{name}: {text[:40]!r}")
                    if name == "u_keep" and got != reference_ids(text, vocab, True, None):
                        kept_differs = True
        self.assertTrue(kept_differs, "keeping accents changed no ids: the setting is not used")


if __name__ == "__main__":
    unittest.main()
