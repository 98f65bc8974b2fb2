#!/usr/bin/python3
"""Seed corpora for the fuzz targets in tests/fuzz/ (run by scripts/fuzz.sh).

    /usr/bin/python3 tests/fuzz/make_seeds.py OUT_DIR

writes OUT_DIR/<target>/<seed> for weights_fuzz, image_fuzz and tokenizer_fuzz: small valid
inputs (the fuzzer mutates from there, so each seed should reach deep into its parser) plus the
known-bad inputs of ROBUSTNESS.md. Deterministic: the same files every run. Seeds stay small
(< 16 KiB) because libFuzzer's speed falls with input size.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from weights_tools import tern_format  # noqa: E402

# ROBUSTNESS.md I3: the 21-byte JPEG that overflows stb_image 2.27's Huffman table builder.
BAD_HUFFMAN_JPEG = base64.b64decode("/9j/xAAFANhgMAAF2PsABQUODgAA")


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def weight_seeds(out: str) -> None:
    rng = np.random.default_rng(0)
    vocab = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", ","])
    tokenizer = json.dumps({"lowercase": True, "strip_accents": None, "max_length": 16})
    config = json.dumps({"dim": 8, "n_layers": 1, "n_heads": 2, "hidden_dim": 16,
                         "vocab_size": 9, "max_position_embeddings": 16})
    base = {"format": "tern", "format_version": "1", "source": "{\"kind\": \"fuzz-seed\"}"}
    cases = {
        "tiny_f32": ({"a": rng.standard_normal((3, 5), dtype=np.float32),
                      "b.weight": rng.standard_normal((7,), dtype=np.float32)},
                     dict(base, architecture="resnet50", config="{}"), "f32"),
        "tiny_bf16": ({"x": rng.standard_normal((2, 3, 4), dtype=np.float32),
                       "y": np.array([np.nan, np.inf, -0.0, 1e-40], dtype=np.float32)},
                      dict(base, architecture="vit_b_16"), "bf16"),
        "text_meta": ({"embeddings.word_embeddings": rng.standard_normal((9, 8), dtype=np.float32)},
                      dict(base, architecture="distilbert", config=config, tokenizer=tokenizer,
                           vocab=vocab), "f32"),
        "no_metadata_scalar": ({"s": np.array(1.5, dtype=np.float32)}, {}, "f32"),
    }
    os.makedirs(out, exist_ok=True)
    for name, (tensors, metadata, dtype) in cases.items():
        path = os.path.join(out, name + ".tern")
        tern_format.write_tern(path, tensors, metadata, dtype=dtype)
    # Plain safetensors (no padding, no Tern metadata) and a few broken headers.
    header = json.dumps({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    write(os.path.join(out, "plain.safetensors"),
          len(header).to_bytes(8, "little") + header + np.ones(2, np.float32).tobytes())
    write(os.path.join(out, "empty"), b"")
    write(os.path.join(out, "length_only"), (0).to_bytes(8, "little"))
    write(os.path.join(out, "huge_length"), (2**64 - 1).to_bytes(8, "little") + b"{}")


def image_seeds(out: str) -> None:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), "RGB")

    def save(name: str, image: Image.Image, fmt: str, **kw) -> None:
        buf = io.BytesIO()
        image.save(buf, fmt, **kw)
        write(os.path.join(out, name), buf.getvalue())

    save("rgb.png", rgb, "PNG")
    save("gray.png", rgb.convert("L"), "PNG")
    save("gray_alpha.png", rgb.convert("LA"), "PNG")
    save("rgba.png", rgb.convert("RGBA"), "PNG")
    save("palette.png", rgb.convert("P"), "PNG")
    save("gray16.png", rgb.convert("I").point(lambda v: v * 257).convert("I;16"), "PNG")
    save("interlaced.png", rgb, "PNG", optimize=False, interlace=1)
    save("1x1.png", Image.new("RGB", (1, 1), (200, 10, 30)), "PNG")
    save("1x9.png", rgb.resize((1, 9)), "PNG")
    save("baseline.jpg", rgb, "JPEG", quality=75)
    save("progressive.jpg", rgb, "JPEG", quality=80, progressive=True)
    save("gray.jpg", rgb.convert("L"), "JPEG")
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    save("subsampled_420.jpg", rgb.resize((33, 17)), "JPEG", subsampling=2)
    write(os.path.join(out, "bad_huffman.jpg"), BAD_HUFFMAN_JPEG)
    write(os.path.join(out, "gif_magic.gif"), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")


def text_seeds(out: str) -> None:
    """tokenizer_fuzz reads its first byte as a mode: < 0xE0 encode (bit 0 uncased, bit 1 a small
    max_length, bit 2 truncate), 0xE0-0xEF parse the rest as a vocabulary, >= 0xF0 as a config."""
    texts = [
        "Hello, world!", "", " \t\n ", "\u200b\u200d", "Héllo wörld, İstanbul straße ﬁ Ａ",
        "日本語のテキスト 中文 한국어 العربية हिन्दी ภาษาไทย", "👩‍👩‍👧 🇯🇵 🏳️‍🌈",
        "[CLS] [MASK] [SEP] [UNK]", "don't stop-believing... 3.14 $100 (a) [b] {c}",
        "x" * 101, "a\0b", "word " * 200,
    ]
    raw = [t.encode("utf-8") for t in texts]
    raw += [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ab\xe2\x82", b"\xff",
            b"ok \xef\xbb\xbf bom"]
    # Real prose from the tokenizer reference (when the shared data is at hand), in 1 KiB pieces.
    base = os.path.join(ROOT, "..", "shared", "data", "tokenizer-reference")
    if os.path.isdir(base):
        for name in sorted(os.listdir(base)):
            if name.endswith(".txt"):
                with open(os.path.join(base, name), "rb") as f:
                    data = f.read()
                raw += [data[k:k + 1024] for k in range(0, min(len(data), 8192), 1024)]
    for i, text in enumerate(raw):
        for mode in (0x00, 0x01, 0x06, 0x05):
            write(os.path.join(out, f"text{i:02d}_mode{mode}.txt"), bytes([mode]) + text)
    vocab = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n,\n"
    write(os.path.join(out, "vocab_lf"), b"\xe0" + vocab)
    write(os.path.join(out, "vocab_crlf_bom"), b"\xe1\xef\xbb\xbf" + vocab.replace(b"\n", b"\r\n"))
    config = {"lowercase": True, "strip_accents": None, "tokenize_chinese_chars": True,
              "max_length": 512, "unk_token": "[UNK]"}
    write(os.path.join(out, "config"), b"\xf0" + json.dumps(config).encode())


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: make_seeds.py OUT_DIR", file=sys.stderr)
        return 2
    out = sys.argv[1]
    weight_seeds(os.path.join(out, "weights_fuzz"))
    image_seeds(os.path.join(out, "image_fuzz"))
    text_seeds(os.path.join(out, "tokenizer_fuzz"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
