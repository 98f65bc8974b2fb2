"""What runs in the Dask workers: one task embeds one partition and writes its shard.

A task is pure: it reads its inputs and the model from the shared paths and writes the same
shard files whenever and wherever it runs, so Dask may rerun it after a worker dies (or run it
twice) without losing or duplicating anything. Each worker process loads a model once and keeps
it (`_MODELS`), after checking that its copy of the file has the client's sha256.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import List, Tuple

import numpy as np

import tern
from tern.distributed import _plan, _shards


class PartitionError(RuntimeError):
    """A partition that cannot be embedded: a bad input, or a worker that sees other files."""


class ModelMismatch(PartitionError):
    """This worker's model file is not the client's."""


_LOCK = threading.Lock()
# The models of the last jobs, most recent last; a long-lived worker serving jobs with other
# models keeps at most _KEEP of them.
_MODELS: "OrderedDict[Tuple[str, str], tern.Model]" = OrderedDict()
_KEEP = 2


def worker_name() -> str:
    try:
        from distributed import get_worker
        return f"worker {get_worker().address}"
    except Exception:  # not in a Dask worker (tests calling the task directly)
        return f"process {os.getpid()}"


def model_for(path: str, sha256: str) -> "tern.Model":
    """The model at `path`, loaded once per process; ModelMismatch when this process's file is
    not the one the client hashed."""
    key = (path, sha256)
    with _LOCK:
        m = _MODELS.get(key)
        if m is not None:
            _MODELS.move_to_end(key)
            return m
        try:
            mine = _plan.file_sha256(path)
        except OSError as e:
            raise ModelMismatch(f"{worker_name()}: {path}: cannot read the model file: "
                                f"{e.strerror}") from None
        if mine != sha256:
            raise ModelMismatch(
                f"{worker_name()}: {path} has sha256 {mine[:16]}..., the client's has "
                f"{sha256[:16]}...: the workers must read the same model file")
        # One thread per task: a worker runs as many tasks at once as it has Dask threads.
        try:
            m = tern.load(path, threads=1)
        except tern.Error as e:  # e.g. an older Tern on this worker
            raise PartitionError(f"{worker_name()}: {e}") from None
        _MODELS[key] = m
        while len(_MODELS) > _KEEP:
            _MODELS.popitem(last=False)  # tasks still using it hold their own reference
        return m


def check_model(path: str, sha256: str) -> str:
    """client.run target: loads (and checks) the model on every worker before the job starts."""
    m = model_for(path, sha256)
    return m.isa


def _read_texts(part: dict) -> List[bytes]:
    texts: List[bytes] = []
    h = hashlib.sha256()
    for seg in part["segments"]:
        try:
            with open(seg["path"], "rb") as f:
                f.seek(seg["offset"])
                for raw in _plan.iter_lines(f, seg["count"]):
                    _plan.hash_line(h, raw)
                    texts.append(_plan.line_text(raw))
        except OSError as e:
            raise PartitionError(f"{worker_name()}: {seg['label']}: cannot read: "
                                 f"{e.strerror}") from None
    if len(texts) != part["count"] or h.hexdigest() != part["sha256"]:
        where = ", ".join(f"{s['label']} lines {s['first']}-{s['first'] + s['count'] - 1}"
                          for s in part["segments"])
        raise PartitionError(f"{worker_name()}: {where}: not the texts the client read: the "
                             f"workers must read the same text files")
    return texts


def _strip_text_n(msg: str) -> str:
    """The Python API names a text by its place in the call ("text 3: ..."); the CLI by its
    line ("FILE:LINE: ..."): keep the reason only."""
    if msg.startswith("text "):
        head, sep, rest = msg.partition(": ")
        if sep and head[5:].isdigit():
            return rest
    return msg


def embed_partition(part: dict, job: dict) -> dict:
    """Embeds one partition, writes its shard, returns its summary (what its .json holds,
    without the input names)."""
    model = model_for(job["model_path"], job["model_sha256"])
    opts = job["options"]
    names = _plan.part_names(part)
    texts = part["kind"] == "texts"
    items = _read_texts(part) if texts else part["paths"]

    def run(lo: int, hi: int) -> np.ndarray:
        if texts:
            return model.embed_texts(items[lo:hi], pooling=opts["pooling"],
                                     normalize=opts["normalize"], batch_size=hi - lo,
                                     max_length=opts["max_length"], truncate=opts["truncate"])
        return model.embed_images(items[lo:hi], pooling=opts["pooling"],
                                  normalize=opts["normalize"], batch_size=hi - lo)

    def one(i: int) -> np.ndarray:
        try:
            return run(i, i + 1)
        except tern.Error as e:
            msg = str(e)
            if texts:
                msg = f"{names[i]}: {_strip_text_n(msg)}"
            elif msg.startswith(items[i] + ": "):  # the path as the user gave it, not absolute
                msg = names[i] + msg[len(items[i]):]
            raise PartitionError(msg) from None

    rows: List[np.ndarray] = []
    kept: List[str] = []
    failed: List[dict] = []
    batch = opts["batch"]
    for b in range(0, len(items), batch):
        e = min(b + batch, len(items))
        try:
            out = run(b, e)
            rows.extend(out)
            kept.extend(names[b:e])
            continue
        except tern.Error:
            pass
        # Name the failing input, as `tern embed` does; with keep_going embed the others.
        for i in range(b, e):
            try:
                rows.append(one(i)[0])
                kept.append(names[i])
            except PartitionError as err:
                if not job["keep_going"]:
                    raise
                failed.append({"input": names[i], "error": str(err)})
    if rows:
        shape = rows[0].shape
        for r, n in zip(rows, kept):
            if r.shape != shape:
                raise PartitionError(
                    f"{n}: its output has shape {list(r.shape)}, the partition's first "
                    f"{list(shape)} (ragged: use pooling cls or mean)")
        array = np.stack(rows).astype(np.float32, copy=False)
    else:
        array = np.zeros((0, model.dim), np.float32)
    info = {"inputs": kept, "failed": failed, "count": len(kept), "shape": list(array.shape),
            "model_sha256": job["model_sha256"], "options": job["match_options"],
            "isa": model.isa}
    if texts:
        info["texts_sha256"] = part["sha256"]
    _shards.write_shard(job["out_dir"], part["index"], array, info)
    info.pop("inputs")
    return info
