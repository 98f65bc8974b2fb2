"""The files of an output directory: shards part-NNNNN.npy + part-NNNNN.json, and manifest.json.

Every file is written under a hidden temporary name in the same directory and renamed, so a
reader sees a whole file or none. A shard's .json is its completion mark: it is removed before
its .npy is rewritten and written after it, so a .json always describes the .npy beside it.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from typing import Optional

import numpy as np

MANIFEST = "manifest.json"
PART_RE = re.compile(r"^part-\d{5,}\.(npy|json)$")
TMP_RE = re.compile(r"^\.(part-\d{5,}\.(npy|json)|manifest\.json)\.[0-9a-f]+\.tmp$")


def part_stem(index: int) -> str:
    return f"part-{index:05d}"


def write_atomic(path: str, data: bytes) -> None:
    d, name = os.path.split(path)
    tmp = os.path.join(d, f".{name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")


def write_shard(out_dir: str, index: int, array: np.ndarray, info: dict) -> None:
    stem = os.path.join(out_dir, part_stem(index))
    try:
        os.unlink(stem + ".json")
    except FileNotFoundError:
        pass
    write_atomic(stem + ".npy", npy_bytes(array))
    write_atomic(stem + ".json", json_bytes(info))


def read_json(path: str) -> Optional[dict]:
    """A JSON object, or None when the file is missing or not a whole JSON object."""
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read().decode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def npy_shape(path: str) -> Optional[tuple]:
    """The shape of a float32 little-endian C-order .npy file whose size matches its header,
    else None."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            header_end = f.tell()
            size = os.fstat(f.fileno()).st_size
    except (OSError, ValueError):
        return None
    if fortran or dtype != np.dtype("<f4"):
        return None
    if size != header_end + 4 * int(np.prod(shape, dtype=np.int64)):
        return None
    return tuple(int(s) for s in shape)


def clean_temporaries(out_dir: str) -> None:
    """Removes temporaries left by killed writers (call when no task of the job still runs)."""
    for name in os.listdir(out_dir):
        if TMP_RE.match(name):
            try:
                os.unlink(os.path.join(out_dir, name))
            except OSError:
                pass


def remove_parts_except(out_dir: str, keep: set) -> None:
    """Removes shard files whose names are not in `keep` (shards of an earlier, longer job)."""
    for name in os.listdir(out_dir):
        if PART_RE.match(name) and name not in keep:
            try:
                os.unlink(os.path.join(out_dir, name))
            except OSError:
                pass
