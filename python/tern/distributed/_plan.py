"""The client's side of a job: the inputs, listed and ordered as `tern embed` lists them, cut into
partitions that a worker can process alone.

A partition is a plain dict (it travels to the workers by pickle):
    images: {"index": i, "kind": "images", "names": [...], "paths": [...]}
    texts:  {"index": i, "kind": "texts", "segments": [segment, ...], "sha256": hex}
where a segment is a run of consecutive lines of one text file,
    {"label": "FILE", "path": "/abs/FILE", "offset": byte, "first": line number, "count": n},
and sha256 is the hash of the partition's lines as the client read them (each line's bytes and
its "\\n"), which the worker checks against what it reads itself: a text file that is not the
same file on every machine fails instead of embedding other texts.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterator, List, Optional, Sequence

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class InputError(Exception):
    """A bad input argument, found on the client before anything runs."""


# ---- images ------------------------------------------------------------------------------------
def expand_image_args(args: Sequence[str]) -> List[str]:
    """The image inputs `tern embed` would embed for these arguments, in its order: a directory
    is every .jpg/.jpeg/.png regular file under it (symlinks to files included, symlinked
    directories not entered), sorted by path bytes; anything else is taken as one image path."""
    out: List[str] = []
    for arg in args:
        arg = os.fspath(arg)
        if os.path.isdir(arg):
            found = []
            for top, dirs, files in os.walk(arg, onerror=_walk_error(arg)):
                dirs.sort()
                for f in files:
                    p = os.path.join(top, f)
                    if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(p):
                        found.append(p)
            if not found:
                raise InputError(f"{arg}: directory contains no .jpg, .jpeg or .png files")
            found.sort(key=os.fsencode)
            out.extend(found)
        else:
            out.append(arg)
    return out


def _walk_error(top: str):
    def onerror(e: OSError) -> None:
        # `tern embed` skips subdirectories it may not read; the top one failing is an error.
        if os.path.abspath(e.filename or "") == os.path.abspath(top):
            raise InputError(f"{top}: cannot list directory: {e.strerror}")
    return onerror


def image_partitions(names: List[str], size: int) -> List[dict]:
    parts = []
    for i, b in enumerate(range(0, len(names), size)):
        chunk = names[b:b + size]
        parts.append({"index": i, "kind": "images", "names": chunk,
                      "paths": [os.path.abspath(n) for n in chunk]})
    return parts


# ---- texts -------------------------------------------------------------------------------------
def iter_lines(f, limit: Optional[int] = None) -> Iterator[bytes]:
    """Lines of a binary file as `tern embed --text-file` reads them: split at "\\n" (a last line
    without one counts when it is not empty), one trailing "\\r" dropped. Yields the raw line
    bytes including the "\\n" (or none at the end): the caller strips."""
    n = 0
    while limit is None or n < limit:
        line = f.readline()
        if not line:
            return
        n += 1
        yield line


def line_text(raw: bytes) -> bytes:
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


def hash_line(h, raw: bytes) -> None:
    h.update(raw if raw.endswith(b"\n") else raw + b"\n")


def text_partitions(files: Sequence[str], size: int) -> List[dict]:
    """Scans the text files once (streaming: nothing but offsets is kept) and cuts their lines
    into partitions of `size` texts; a partition may span the end of one file and the start of
    the next, as the lines follow each other in `tern embed`."""
    parts: List[dict] = []
    cur: Optional[dict] = None
    h = None
    for label in files:
        label = os.fspath(label)
        if label == "-":
            raise InputError("--text-file -: standard input cannot be shared with the workers; "
                             "give a file on a path they can read")
        if os.path.isdir(label):
            raise InputError(f"{label}: is a directory, expected a text file")
        path = os.path.abspath(label)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise InputError(f"{label}: cannot open: no such file") from None
        except OSError as e:
            raise InputError(f"{label}: cannot open: {e.strerror}") from None
        with f:
            line_no, offset, seg = 0, 0, None
            for raw in iter_lines(f):
                line_no += 1
                if cur is None:
                    cur = {"index": len(parts), "kind": "texts", "segments": [], "count": 0}
                    h = hashlib.sha256()
                    seg = None
                if seg is None:
                    seg = {"label": label, "path": path, "offset": offset, "first": line_no,
                           "count": 0}
                    cur["segments"].append(seg)
                seg["count"] += 1
                cur["count"] += 1
                hash_line(h, raw)
                offset += len(raw)
                if cur["count"] == size:
                    cur["sha256"] = h.hexdigest()
                    parts.append(cur)
                    cur, seg = None, None
    if cur is not None:
        cur["sha256"] = h.hexdigest()
        parts.append(cur)
    return parts


def text_names(part: dict) -> List[str]:
    """The input names of a text partition, as `tern embed` names texts read from a file."""
    return [f"{s['label']}:{s['first'] + k}" for s in part["segments"] for k in range(s["count"])]


def part_names(part: dict) -> List[str]:
    return part["names"] if part["kind"] == "images" else text_names(part)


def part_count(part: dict) -> int:
    return len(part["names"]) if part["kind"] == "images" else part["count"]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)
