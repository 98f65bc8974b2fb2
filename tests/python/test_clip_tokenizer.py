"""CLIP tokenizer: Tern's BPE against a Python reference of OpenAI's clip.tokenize (clip_reference.py,
with the `regex` module for its pattern), on texts in several scripts, with merges trained here.

The vocabulary reaches Tern both ways a user gives it: OpenAI's format (`--bpe FILE.txt.gz`) and
Hugging Face's (`--vocab vocab.json --merges merges.txt`); both files must give the same ids.
Where node and @huggingface/transformers are installed (tests/python/clip_hf_tokenizer.mjs), also
against Hugging Face's CLIP tokenizer from a tokenizer.json built for the same vocabulary.
Env: TERN_BUILD_DIR (tests/tern_run_clip).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clip_reference as ref  # noqa: E402
from tern_testlib import BUILD, PYTHON, ROOT, run  # noqa: E402

RUN_CLIP = BUILD / "tests" / "tern_run_clip"

TEXTS = [
    "a photo of a cat",
    "A Photo Of A DOG.",
    "I'm sure they'll say it's what we've done; don't you?",
    "''s and 's and 'S and o'clock",
    "Hello,   world!!!  ...   ",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nand\u3000ideographic\u00a0nbsp",
    "control\x1cseparators\x1fhere",
    "\x1c\x1dstripped at the ends\x1e\x1f",
    "numbers 12345 and 3.14159 and ½ and ٣٤ and Ⅻ",
    "fish &amp; chips &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;single&#39;",
    "double &amp;amp; escaped &amp;lt;tag&amp;gt; and &amp;#x263A;",
    "numeric &#65;&#x42;&#X43; &#128512; &#0; &#128; &#150; &#xD800; &#1114112; &#7;",
    "legacy &amp &lt3 &copy2024 &notit; &ampfoo &unknownentity; & alone &#; &#x;",
    "nbsp&nbsp;here and&NoBreak;there &hellip; &mdash; &euro;",
    "ΟΔΥΣΣΕΥΣ και Σοφία: ΣΑΣ, ΣΣ. Σ",
    "Straße GROẞE İstanbul ΑΣ'Σ",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "مرحبا بالعالم، كيف حالك؟",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "你好，世界！我爱自然语言处理。",
    "こんにちは世界、カタカナとひらがな。",
    "안녕하세요 세계",
    "emoji 😀👍🏽 👨‍👩‍👧 ❤️ and ™ © ®",
    "café naïve résumé coöperate",
    "combining e\u0301 and a\u0308 marks",
    "a <|startoftext|> b <|endoftext|> c <|ENDOFTEXT|> d !!<|endoftext|>",
    "mixed123abc456 x_y-z @user #hashtag https://example.com/a?b=c",
    "",
    "     ",
    "ǅungla ǈ Ǌ",
    "long s: it'ſ <|ſtartoftext|> <|endoftext|>x ﬆ 'ﬆ K",
]
# Extra text for training only, so merges span several scripts.
CORPUS_EXTRA = [
    "the cat sat on the mat with another cat and a dog",
    "photos of cats and dogs, a photo of the sea, the photograph",
    "мир мир привет привет булок булок",
    "世界 世界 你好 你好 こんにちは こんにちは",
    "σοφία σοφία οδυσσευς",
    "नमस्ते नमस्ते दुनिया",
]


def tern_tokenize(model: str, texts: list[str], truncate: bool = False) -> list:
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.bin"), os.path.join(d, "out.txt")
        with open(inp, "wb") as f:
            f.write(b"\0".join(t.encode("utf-8") for t in texts))
        run([RUN_CLIP, model, "tokenize", inp, out] + (["--truncate"] if truncate else []))
        with open(out, encoding="utf-8") as f:
            lines = f.read().split("\n")[:-1]
    assert len(lines) == len(texts), (len(lines), len(texts))
    return [line if line.startswith("error: ") else [int(x) for x in line.split()]
            for line in lines]


class ClipTokenizerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        cls.merges = ref.train_merges(TEXTS + CORPUS_EXTRA, 400)
        cls.tok = ref.SimpleTokenizer(cls.merges)
        cls.bpe = os.path.join(d, "bpe.txt.gz")
        ref.write_bpe_gz(cls.bpe, cls.merges)
        ref.write_hf_tokenizer(d, cls.tok, cls.merges)
        cls.models = {}
        export = [PYTHON, ROOT / "weights_tools" / "export.py", "clip", "--random-init"]
        cls.models["bpe"] = os.path.join(d, "bpe.tern")
        run(export + ["--bpe", cls.bpe, "-o", cls.models["bpe"]])
        cls.models["hf"] = os.path.join(d, "hf.tern")
        run(export + ["--vocab", os.path.join(d, "vocab.json"), "--merges",
                      os.path.join(d, "merges.txt"), "-o", cls.models["hf"]])

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_merges_are_used(self):
        # the test means something only if words merge into multi-character tokens
        self.assertGreater(len(self.merges), 300)
        ids = self.tok.tokenize("a photo of a cat")
        self.assertLess(len(ids), len("a photo of a cat") + 2)

    def test_matches_reference(self):
        for kind, model in self.models.items():
            got = tern_tokenize(model, TEXTS)
            for text, ids in zip(TEXTS, got):
                with self.subTest(kind=kind, text=text):
                    self.assertEqual(ids, self.tok.tokenize(text))

    def test_length_limit_and_truncate(self):
        long_text = " ".join(["photograph of a cat"] * 40)
        want = self.tok.tokenize(long_text, truncate=True)
        self.assertEqual(len(want), 77)
        with self.assertRaises(RuntimeError):
            self.tok.tokenize(long_text)
        got = tern_tokenize(self.models["bpe"], [long_text], truncate=True)[0]
        self.assertEqual(got, want)
        err = tern_tokenize(self.models["bpe"], [long_text])[0]
        self.assertIsInstance(err, str)
        self.assertIn("over the context length 77", err)
        # exactly 77 ids fits
        words = []
        while len(self.tok.encode(" ".join(words + ["cat"]))) <= 75:
            words.append("cat")
        self.assertEqual(len(self.tok.tokenize(" ".join(words))), 77)
        self.assertEqual(tern_tokenize(self.models["bpe"], [" ".join(words)])[0],
                         self.tok.tokenize(" ".join(words)))

    def test_long_words_and_invalid_utf8(self):
        # one 20000-letter word: linear-ish time, cut with truncate, an error without
        word = "ab" * 10000
        got = tern_tokenize(self.models["bpe"], [word], truncate=True)[0]
        self.assertEqual(got, self.tok.tokenize(word, truncate=True))
        with tempfile.TemporaryDirectory() as d:
            inp, out = os.path.join(d, "in.bin"), os.path.join(d, "out.txt")
            with open(inp, "wb") as f:
                f.write(b"ok \xff bad")
            run([RUN_CLIP, self.models["bpe"], "tokenize", inp, out])
            with open(out, encoding="utf-8") as f:
                line = f.read().strip()
        self.assertEqual(line, "error: invalid UTF-8 at byte offset 3")

    def test_hugging_face_tokenizer(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clip_hf_tokenizer.mjs")
        node_modules = os.environ.get("TERN_NODE_MODULES", "")
        if not os.path.isdir(os.path.join(node_modules, "@huggingface", "tokenizers")):
            from tern_testlib import npm_install
            got, why = npm_install("@huggingface/tokenizers", "0.2.0")
            if got is None:
                self.skipTest(f"Hugging Face tokenizers from npm: {why}")
            node_modules = str(got)
        import json
        import unicodedata
        d = self.dir.name
        ref.write_hf_tokenizer_json(d, self.tok, self.merges)
        # Where Hugging Face's CLIP tokenizer departs from OpenAI's (Tern follows OpenAI): no HTML
        # unescape; NFC (as ftfy would do, which Tern and the reference skip); no str.strip, so
        # U+001C..U+001F at the ends stay; special tokens matched anywhere, even inside a run of
        # punctuation ("!!<|endoftext|>"). Compare on the texts none of that touches.
        hf_texts = [t for t in TEXTS if "&" not in t and unicodedata.normalize("NFC", t) == t
                    and "<|" not in t and not t.startswith("\x1c")]
        self.assertGreater(len(hf_texts), 20)
        with open(os.path.join(d, "texts.json"), "w", encoding="utf-8") as f:
            json.dump(hf_texts, f)
        env = dict(os.environ, NODE_PATH=node_modules)
        p = subprocess.run(["node", script, d, os.path.join(d, "texts.json")], capture_output=True,
                           text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        hf = json.loads(p.stdout)
        got = tern_tokenize(self.models["hf"], hf_texts)
        for text, a, b in zip(hf_texts, got, hf):
            with self.subTest(text=text):
                self.assertEqual(a, b)


if __name__ == "__main__":
    unittest.main()
