"""Write and read .tern weight files (spec: docs/FORMAT.md).

A .tern file is a valid safetensors file:

    [8 bytes: header length N, little-endian u64] [N bytes: JSON header] [data section]

with Tern's rules on top:
  * the JSON header is padded with spaces so the data section starts on a 64-byte file offset;
  * every tensor starts on a 64-byte boundary. safetensors forbids holes between tensors, so the
    gap before a tensor is filled by a padding entry named ``__pad<k>__`` (dtype U8, shape [gap],
    gap < 64 bytes, zero bytes). Readers that only want weights skip names starting with ``__pad``;
  * tensor dtypes are F32 or BF16 (round-to-nearest-even from float32, NaN kept as a quiet NaN);
  * ``__metadata__`` is a string -> string map with at least format=tern and format_version=1.

Only numpy is needed (no safetensors package, no torch), so tests and tools can use it anywhere.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

FORMAT = "tern"
FORMAT_VERSION = 1

ALIGNMENT = 64
MAX_RANK = 8
MAX_HEADER_BYTES = 100 * 1024 * 1024
PAD_PREFIX = "__pad"
DTYPES = ("f32", "bf16")


def f32_to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 array -> uint16 BF16 bit patterns, round to nearest even; NaN stays (quiet) NaN."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    nan = np.isnan(values)
    if nan.any():
        # Truncate the payload and set the quiet bit so the result cannot collapse to Inf.
        rounded = np.where(nan, (bits >> np.uint32(16)) | np.uint32(0x0040), rounded)
    return rounded.astype("<u2")


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    return (np.asarray(bits, dtype="<u2").astype("<u4") << np.uint32(16)).view("<f4")


def _check_inputs(tensors: dict, metadata: dict, dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not isinstance(metadata, dict):
        raise TypeError("metadata must be a dict of str -> str")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata entry {key!r} must map a str to a str, "
                            f"got {type(key).__name__} -> {type(value).__name__}")
    if not isinstance(tensors, dict):
        raise TypeError("tensors must be a dict of str -> numpy array")
    for name, array in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor name {name!r} must be a non-empty str")
        if name.startswith("__"):
            raise ValueError(f"tensor name {name!r}: names starting with '__' are reserved")
        if not isinstance(array, np.ndarray):
            raise TypeError(f"tensor {name!r} is a {type(array).__name__}, expected a numpy array")
        if array.dtype.kind != "f":
            raise TypeError(f"tensor {name!r} has dtype {array.dtype}, expected a float array")
        if array.ndim > MAX_RANK:
            raise ValueError(f"tensor {name!r} has rank {array.ndim}, at most {MAX_RANK} allowed")


def _encode(array: np.ndarray, dtype: str) -> bytes:
    f32 = np.ascontiguousarray(array, dtype="<f4")
    if dtype == "f32":
        return f32.tobytes()
    return f32_to_bf16_bits(f32).tobytes()


def build_header(entries: list[tuple[str, str, list[int], int]], metadata: dict) -> tuple[bytes, list]:
    """entries: (name, safetensors dtype, shape, nbytes) in file order.

    Returns the padded header bytes (length prefix included) and the layout
    [(name, begin, end, pad_before)] of the data section.
    """
    header: dict = {"__metadata__": dict(metadata)}
    layout = []
    offset = 0
    for k, (name, st_dtype, shape, nbytes) in enumerate(entries):
        pad = -offset % ALIGNMENT
        if pad:
            header[f"{PAD_PREFIX}{k}__"] = {"dtype": "U8", "shape": [pad],
                                            "data_offsets": [offset, offset + pad]}
            offset += pad
        header[name] = {"dtype": st_dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        layout.append((name, offset, offset + nbytes, pad))
        offset += nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % ALIGNMENT)
    if len(text) > MAX_HEADER_BYTES:
        raise ValueError(f"header is {len(text)} bytes, over the {MAX_HEADER_BYTES}-byte limit")
    return struct.pack("<Q", len(text)) + text, layout


def write_tern(path: str, tensors: dict[str, np.ndarray], metadata: dict[str, str],
               dtype: str = "f32") -> None:
    """Write `tensors` (float arrays, stored as F32 or BF16) and `metadata` to `path` atomically.

    The file appears under `path` complete or not at all: it is written to a temporary file in the
    same directory, synced, then renamed. NaN and Inf values are written as they are.
    """
    _check_inputs(tensors, metadata, dtype)
    st_dtype = "F32" if dtype == "f32" else "BF16"
    size = 4 if dtype == "f32" else 2
    entries = [(name, st_dtype, [int(d) for d in a.shape], int(a.size) * size)
               for name, a in tensors.items()]
    header, layout = build_header(entries, metadata)

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            for (name, begin, end, pad) in layout:
                f.write(b"\0" * pad)
                data = _encode(tensors[name], dtype)
                assert len(data) == end - begin, name
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


_READ_DTYPES = {"F32": ("<f4", 4), "BF16": ("<u2", 2), "U8": ("u1", 1)}


def read_tern(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a .tern file: (tensors as float32 arrays, BF16 widened; metadata). Padding skipped.

    A compact reader for tests and tools; it checks the structure (header bounds, dtypes, shapes,
    contiguous coverage of the data section) but the C++ reader is the authority.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: {len(blob)} bytes, too short for a header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} is invalid for a {len(blob)}-byte file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", {})
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a Tern weight file (no __metadata__.format=tern)")
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    tensors = {}
    offset = 0
    for name, e in entries:
        if e["dtype"] not in _READ_DTYPES:
            raise ValueError(f"{path}: unsupported dtype {e['dtype']} for tensor {name}")
        np_dtype, size = _READ_DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        if begin != offset or end - begin != count * size or end > len(data):
            raise ValueError(f"{path}: bad data_offsets for tensor {name}")
        offset = end
        if name.startswith(PAD_PREFIX):
            continue
        if e["dtype"] == "U8":
            raise ValueError(f"{path}: unsupported dtype U8 for tensor {name}")
        raw = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(e["shape"])
        tensors[name] = bf16_bits_to_f32(raw) if e["dtype"] == "BF16" else raw.astype(np.float32)
    if offset != len(data):
        raise ValueError(f"{path}: {len(data) - offset} bytes after the last tensor")
    return tensors, metadata
