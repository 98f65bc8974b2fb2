"""Loading checkpoints for the exporter: torch state dicts, .safetensors files, HF directories.

Every failure is an ExportError with a message that names the path and the reason; export.py
prints it as one line and exits 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass

import numpy as np
import torch


class ExportError(Exception):
    """A user-facing export failure (bad source, mismatching checkpoint, bad arguments)."""


@dataclass
class Source:
    path: str | None                  # the weight file read (None for random init)
    description: str                  # human-readable: what kind of source this is
    sha256: str | None                # of the weight file
    state_dict: dict[str, torch.Tensor]
    hf_config: dict | None = None     # config.json of a Hugging Face directory
    vocab: list[str] | None = None    # tokens ordered by id
    tokenizer_config: dict | None = None
    # A sentence-transformers directory (weights_tools/st.py): its pooling / Dense / Normalize /
    # prompts spec, applied by the frame after the architecture's convert().
    sentence_transformers: object | None = None


def take_tensor(state: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """state[name] as a C-contiguous float32 array of exactly `shape`; ExportError naming the
    tensor when it is missing, misshaped or holds non-finite values."""
    if name not in state:
        raise ExportError(f"tensor {name} is missing from the checkpoint")
    t = state[name]
    if tuple(t.shape) != tuple(shape):
        raise ExportError(f"tensor {name} has shape {list(t.shape)}, expected {list(shape)}")
    a = t.detach().float().cpu().numpy().astype(np.float32)
    if not np.isfinite(a).all():
        raise ExportError(f"tensor {name} holds non-finite values")
    return np.ascontiguousarray(a)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_vocab_file(path: str) -> list[str]:
    """vocab.txt: one token a line, UTF-8, line i is id i. A trailing newline is not a token."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ExportError(f"cannot read vocabulary {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ExportError(f"vocabulary {path} is not UTF-8 (byte offset {e.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not tokens:
        raise ExportError(f"vocabulary {path} is empty")
    return tokens


def _json_file(path: str) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        raise ExportError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return value


read_json = _json_file


def _load_torch(path: str) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, disallowed globals: all "unreadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"cannot load {path} as a PyTorch state dict: {first}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ExportError(f"{path} holds a {type(obj).__name__}, expected a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ExportError(f"{path} holds no tensors")
    return tensors


_ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "F64": ("<f8", 8),
              "I64": ("<i8", 8)}


def load_safetensors(path: str) -> dict[str, torch.Tensor]:
    """Parse a .safetensors file with numpy and json (no safetensors package)."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ExportError(f"cannot read {path}: {e.strerror}") from None
    if len(blob) < 8:
        raise ExportError(f"{path} is not a safetensors file ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n == 0 or n > 100 * 1024 * 1024 or 8 + n > len(blob):
        raise ExportError(f"{path} is not a safetensors file (header length {n}, "
                          f"file size {len(blob)})")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ExportError(f"{path}: safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise ExportError(f"{path}: safetensors header is not a JSON object")
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = e["dtype"], [int(d) for d in e["shape"]], e["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ExportError(f"{path}: malformed header entry for tensor {name}") from None
        if dtype not in _ST_DTYPES:
            raise ExportError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        np_dtype, size = _ST_DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != count * size:
            raise ExportError(f"{path}: tensor {name} has bad data_offsets [{begin}, {end}]")
        arr = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        if dtype == "BF16":
            arr = (arr.astype("<u4") << np.uint32(16)).view("<f4").reshape(shape)
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    if not out:
        raise ExportError(f"{path} holds no tensors")
    return out


def load_weights_file(path: str) -> dict[str, torch.Tensor]:
    """model.safetensors (parsed here) or pytorch_model.bin (torch.load, weights_only)."""
    return load_safetensors(path) if path.endswith(".safetensors") else _load_torch(path)


def _tokenizer_json(path: str) -> tuple[list[str], dict]:
    """tokenizer.json (HF fast tokenizer): the WordPiece vocabulary by id, and the BertNormalizer
    settings as tokenizer_config.json keys (do_lower_case, strip_accents,
    tokenize_chinese_chars)."""
    tok = _json_file(path)
    model = tok.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("vocab"), dict):
        raise ExportError(f"{path}: no model.vocab in tokenizer.json")
    if model.get("type") not in (None, "WordPiece"):
        raise ExportError(f"{path}: tokenizer model is {model.get('type')}, expected WordPiece")
    by_id = {}
    for token, i in model["vocab"].items():
        if not isinstance(i, int) or i < 0 or i in by_id:
            raise ExportError(f"{path}: token {token!r} has an invalid or repeated id {i!r}")
        by_id[i] = token
    if sorted(by_id) != list(range(len(by_id))):
        raise ExportError(f"{path}: vocabulary ids are not 0..{len(by_id) - 1}")
    settings = {}
    norm = tok.get("normalizer")
    if isinstance(norm, dict) and norm.get("type") == "BertNormalizer":
        for src, dst in (("lowercase", "do_lower_case"), ("strip_accents", "strip_accents"),
                         ("handle_chinese_chars", "tokenize_chinese_chars")):
            if src in norm:
                value = norm[src]
                if value is not None and not isinstance(value, bool):
                    raise ExportError(f"{path}: normalizer.{src} is {value!r}, expected a boolean")
                settings[dst] = value
    elif norm is not None:
        kind = norm.get("type") if isinstance(norm, dict) else type(norm).__name__
        raise ExportError(f"{path}: normalizer is {kind}, expected BertNormalizer")
    return [by_id[i] for i in range(len(by_id))], settings


def load_hf_directory(path: str) -> Source:
    """config.json + model.safetensors or pytorch_model.bin + vocab.txt or tokenizer.json."""
    config = _json_file(os.path.join(path, "config.json"))
    weights = None
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.isfile(os.path.join(path, name)):
            weights = os.path.join(path, name)
            break
    if weights is None:
        for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            if os.path.exists(os.path.join(path, name)):
                raise ExportError(f"{path}: sharded checkpoints ({name}) are not supported")
        raise ExportError(f"{path}: no model.safetensors or pytorch_model.bin in the directory")
    state = load_weights_file(weights)
    vocab = None
    json_settings = None
    if os.path.isfile(os.path.join(path, "tokenizer.json")):
        vocab, json_settings = _tokenizer_json(os.path.join(path, "tokenizer.json"))
    if os.path.isfile(os.path.join(path, "vocab.txt")):
        vocab = read_vocab_file(os.path.join(path, "vocab.txt"))
    tok_config = None
    if os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        tok_config = _json_file(os.path.join(path, "tokenizer_config.json"))
    if json_settings:
        # lowercase / strip_accents / tokenize_chinese_chars: tokenizer_config.json where it says,
        # tokenizer.json's BertNormalizer otherwise.
        tok_config = dict(tok_config or {})
        for key, value in json_settings.items():
            tok_config.setdefault(key, value)
    return Source(path=weights, description=f"Hugging Face directory {path}",
                  sha256=sha256_file(weights), state_dict=state, hf_config=config, vocab=vocab,
                  tokenizer_config=tok_config)


def load_source(path: str) -> Source:
    """A checkpoint file (.pth/.pt/.bin, .safetensors) or a Hugging Face model directory."""
    if not os.path.exists(path):
        raise ExportError(f"source {path} does not exist")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "modules.json")):
            from weights_tools import st  # st imports this module
            return st.load_directory(path)
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ExportError(f"{path} is a directory without config.json "
                              "(expected a Hugging Face model directory)")
        return load_hf_directory(path)
    if not os.path.isfile(path):
        raise ExportError(f"source {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ExportError(f"source {path} is not readable")
    with open(path, "rb") as f:
        head = f.read(8)
    lower = path.lower()
    if lower.endswith(".safetensors"):
        state, kind = load_safetensors(path), "safetensors file"
    elif lower.endswith((".pth", ".pt", ".bin", ".ckpt")) or head[:2] == b"PK":
        state, kind = _load_torch(path), "PyTorch state dict"
    elif head[:4] == b"GGUF":
        raise ExportError(f"{path} is a GGUF file; expected a PyTorch state dict, a .safetensors "
                          "file or a Hugging Face directory")
    else:
        raise ExportError(f"{path}: unknown checkpoint format (expected .pth/.pt, .safetensors "
                          "or a Hugging Face directory)")
    return Source(path=path, description=f"{kind} {os.path.basename(path)}",
                  sha256=sha256_file(path), state_dict=state)
