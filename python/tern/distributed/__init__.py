"""Corpus-scale embedding on a Dask cluster: ``tern embed`` over many machines.

    import tern.distributed as td
    td.embed("resnet50.tern", ["/shared/photos"], "/shared/out", client="tcp://10.0.0.1:8786")
    inputs, vectors = td.load("/shared/out")        # the concatenation `tern embed` would give

The client lists the inputs (as ``tern embed`` lists and orders them), cuts them into partitions
and submits one Dask task per partition; each worker process loads the model once, checks that
its copy of the file has the client's sha256, embeds its partitions and writes one shard per
partition into the output directory. Inputs, model and output directory must be on paths every
worker can read (and, for the output, write): relative paths are made absolute against the
client's working directory. Without a scheduler a ``LocalCluster`` runs on this machine, one
single-threaded worker process per core. The command line is ``python3 -m tern.distributed``.

Output directory::

    part-00000.npy   float32 [n, D] (or [n, T, D] for unpooled image tokens)
    part-00000.json  {"inputs": [...in order...], "failed": [...], "count": n, "shape": [...],
                      "model_sha256", "options", "isa"}
    ...
    manifest.json    written last: {"model": {"path", "sha256", "architecture"}, "options",
                     "count", "dim", "parts": [{"npy", "inputs", "count"}, ...], "failed"}

Each file is written under a temporary name and renamed. A task is pure (same inputs, same
file), so Dask rerunning the tasks of a worker that died loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

import tern
from tern.distributed import _plan, _shards

__all__ = ["embed", "load"]

POOLINGS = ("none", "cls", "mean", "max")
PathLike = Union[str, "os.PathLike[str]"]


def embed(model_path: PathLike, inputs: Union[PathLike, Sequence[PathLike]], out_dir: PathLike,
          *, client=None, scheduler_file: Optional[str] = None, partition_size: int = 256,
          batch_size: int = 8, pooling: Optional[str] = None, normalize: bool = False,
          texts: bool = False, max_length: Optional[int] = None, truncate: bool = False,
          keep_going: bool = False, resume: bool = False,
          progress: Optional[bool] = None) -> dict:
    """Embeds `inputs` with the model on a Dask cluster, writing shards and the manifest into
    `out_dir`; returns the manifest (a dict).

    Args:
        model_path: the ``.tern`` file, on a path every worker reads.
        inputs: image files and directories (a directory stands for its .jpg/.jpeg/.png files,
            recursively, sorted by path), or with ``texts=True`` text files, one text per line.
        out_dir: the output directory (created if missing).
        client: a ``distributed.Client``, a scheduler address (``"tcp://HOST:8786"``), or None:
            ``scheduler_file`` if given, else a LocalCluster started for this call.
        partition_size: inputs per task and shard.
        batch_size: inputs per forward pass (the result does not depend on it).
        pooling: None = the file's default; ``"cls"``, ``"mean"``, ... as ``tern embed``.
            Texts must be pooled (one vector each): unpooled token vectors are ragged.
        normalize: L2-normalise each vector.
        max_length, truncate: texts: at most this many tokens; cut longer texts instead of
            failing.
        keep_going: a bad input is listed in the manifest's "failed" instead of failing its
            partition.
        resume: reuse the shards already in `out_dir` whose inputs, model and options match this
            job; compute only the others.
        progress: inputs done and embeddings/s on stderr: True, False, or None (on a terminal
            a live line, else a line every few seconds).

    Raises:
        tern.Error: a bad argument or input, a worker with another model file, a failed
            partition (naming the input); no manifest is written then.
    """
    partition_size = _positive("partition_size", partition_size)
    batch_size = _positive("batch_size", batch_size)
    if pooling is not None and pooling not in POOLINGS:
        raise tern.Error(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    if max_length is not None:
        max_length = _positive("max_length", max_length)
        if max_length < 2:
            raise tern.Error("max_length must be >= 2 ([CLS] and [SEP])")
    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fsdecode(x) for x in inputs]
    model = tern.load(model_path, threads=1)  # errors name the path as given
    model_path = os.path.abspath(os.fsdecode(model_path))
    out_dir = os.path.abspath(os.fsdecode(out_dir))

    text_model = model.modalities == ("text",)
    if text_model and not texts:
        raise tern.Error(f"{model.architecture} is a text model: give text files (--text-file, "
                         f"texts=True)")
    if not text_model and texts:
        raise tern.Error(f"{model.architecture} is an image model: give image files or "
                         f"directories, not texts")
    resolved_pooling = pooling or model.default_pooling
    if text_model and resolved_pooling == "none":
        raise tern.Error("pooling none gives one vector per token (ragged across texts), which "
                         "shards of [n, D] cannot hold: use pooling cls or mean"
                         + ("" if pooling else f" ({model.architecture}'s default is none)"))
    try:
        parts = (_plan.text_partitions(inputs, partition_size) if texts else
                 _plan.image_partitions(_plan.expand_image_args(inputs), partition_size))
    except _plan.InputError as e:
        raise tern.Error(str(e)) from None
    if not parts:
        raise tern.Error("nothing to embed: no inputs given")
    sha256 = _plan.file_sha256(model_path)

    match = {"pooling": resolved_pooling, "normalize": bool(normalize)}
    if text_model:
        match.update(max_length=max_length, truncate=bool(truncate))
    options = dict(match, batch=batch_size, partition_size=partition_size,
                   keep_going=bool(keep_going))
    job = {"model_path": model_path, "model_sha256": sha256, "out_dir": out_dir,
           "options": dict(match, batch=batch_size, max_length=max_length,
                           truncate=bool(truncate)),
           "match_options": match, "keep_going": bool(keep_going)}

    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, _shards.MANIFEST)
    if os.path.lexists(manifest_path):
        os.unlink(manifest_path)  # until this job's is written, the directory is unfinished
    summaries: List[Optional[dict]] = [None] * len(parts)
    if resume:
        for p in parts:
            summaries[p["index"]] = _reusable(out_dir, p, sha256, match, bool(keep_going))
    todo = [p for p in parts if summaries[p["index"]] is None]

    total = sum(_plan.part_count(p) for p in parts)
    reused = total - sum(_plan.part_count(p) for p in todo)
    bar = _Progress(total, reused, len(parts) - len(todo), len(parts), progress)
    if todo:
        _run(todo, job, summaries, client, scheduler_file, bar)
    bar.close()

    _shards.clean_temporaries(out_dir)
    stems = [_shards.part_stem(p["index"]) for p in parts]
    for stem, m in zip(stems, summaries):
        # The workers wrote these; the client must see them where it will say they are.
        if _shards.npy_shape(os.path.join(out_dir, stem + ".npy")) != tuple(m["shape"]) or \
                _shards.read_json(os.path.join(out_dir, stem + ".json")) is None:
            raise tern.Error(f"{out_dir}: {stem}.npy was written by a worker but is not here as "
                             f"the client sees it: OUT_DIR must be shared by the workers and "
                             f"the client")
    _shards.remove_parts_except(out_dir, {s + ext for s in stems for ext in (".npy", ".json")})
    row_shapes = {tuple(s["shape"][1:]) for s in summaries if s["count"] > 0}
    if len(row_shapes) > 1:
        raise tern.Error(f"{out_dir}: the shards have different vector shapes {sorted(row_shapes)}")
    row = list(row_shapes.pop()) if row_shapes else [model.dim]
    manifest = {
        "model": {"path": model_path, "sha256": sha256, "architecture": model.architecture},
        "options": options,
        "count": sum(s["count"] for s in summaries),
        "dim": row[-1],
        "shape": row,
        "parts": [{"npy": s + ".npy", "inputs": s + ".json", "count": m["count"]}
                  for s, m in zip(stems, summaries)],
        "failed": [f for m in summaries for f in m["failed"]],
        "reused_parts": len(parts) - len(todo),
    }
    _shards.write_atomic(manifest_path, _shards.json_bytes(manifest))
    return manifest


def load(out_dir: PathLike, *, mmap: bool = False) -> Tuple[List[str], Union[np.ndarray, list]]:
    """The result of a finished job: ``(inputs, embeddings)``, the inputs in order (failed ones
    left out) and their vectors, ``[count, D]`` float32, equal to ``tern embed``'s output.

    With ``mmap=True`` the embeddings are a list of read-only memory maps, one per shard in
    order, for an output larger than memory (``np.concatenate`` them, or walk them); a shard
    whose inputs all failed (``keep_going``) is an empty array.

    Raises:
        tern.Error: no manifest (the job did not finish), or shards that do not match it.
    """
    out_dir = os.fsdecode(out_dir)
    manifest = _shards.read_json(os.path.join(out_dir, _shards.MANIFEST))
    if manifest is None:
        raise tern.Error(f"{out_dir}: no readable manifest.json (the job did not finish)")
    names: List[str] = []
    arrays = []
    row = tuple(manifest.get("shape") or [manifest["dim"]])
    for p in manifest["parts"]:
        info = _shards.read_json(os.path.join(out_dir, p["inputs"]))
        npy = os.path.join(out_dir, p["npy"])
        shape = _shards.npy_shape(npy)
        if info is None or shape is None or len(info.get("inputs", [])) != p["count"] or \
                shape[0] != p["count"] or (p["count"] and shape[1:] != row):
            raise tern.Error(f"{out_dir}: {p['npy']} or {p['inputs']} is missing or does not "
                             f"match manifest.json")
        names.extend(info["inputs"])
        # A shard whose inputs all failed (keep_going) has no bytes to map.
        arrays.append(np.load(npy, mmap_mode="r") if p["count"] else
                      np.zeros((0,) + row, np.float32))
    if mmap:
        return names, arrays
    if not arrays:
        return names, np.zeros((0,) + row, np.float32)
    return names, np.concatenate(arrays)


# ---- the job -----------------------------------------------------------------------------------
def _run(todo, job, summaries, client, scheduler_file, bar) -> None:
    from distributed import Client, as_completed

    from tern.distributed import _worker

    own_cluster = None
    own_client = None
    if client is None and scheduler_file is None:
        from distributed import LocalCluster
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        own_cluster = LocalCluster(n_workers=cores or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = own_client = Client(own_cluster)
    elif client is None or isinstance(client, str):
        try:
            client = own_client = (Client(client, timeout="30s") if client is not None
                                   else Client(scheduler_file=scheduler_file, timeout="30s"))
        except (OSError, TimeoutError) as e:
            raise tern.Error(f"cannot connect to the Dask scheduler "
                             f"{client or scheduler_file}: {e}") from None
    futures = []
    try:
        try:
            # Every worker there now loads and checks the model before any shard is written;
            # workers that join later check it in their first task.
            client.run(_worker.check_model, job["model_path"], job["model_sha256"])
        except _worker.PartitionError as e:
            raise tern.Error(str(e)) from None
        bar.restart()  # embeddings/s from here: not counting the cluster's start
        token = secrets.token_hex(4)
        # One call for every task (submitting one by one costs the scheduler a round trip
        # each); tasks submitted earlier run first, so partitions are done roughly in order.
        futures = client.map(_worker.embed_partition, todo, job=job, pure=False,
                             key=[f"tern-{_shards.part_stem(p['index'])}-{token}" for p in todo])
        index = {f.key: p for f, p in zip(futures, todo)}
        for f in as_completed(futures):
            p = index[f.key]
            if f.status != "finished":
                try:
                    exc = f.exception()
                except Exception as e:  # cancelled: the scheduler lost it
                    exc = e
                client.cancel(futures)
                raise tern.Error(_task_error(p, exc)) from None
            summaries[p["index"]] = f.result()
            bar.update(_plan.part_count(p), f.result()["count"])
            f.release()
    finally:
        if futures:
            client.cancel(futures)
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def _task_error(part: dict, exc: BaseException) -> str:
    stem = _shards.part_stem(part["index"])
    from tern.distributed import _worker
    if isinstance(exc, _worker.ModelMismatch):
        return str(exc)
    if isinstance(exc, _worker.PartitionError):
        return f"{stem}: {exc}"
    name = type(exc).__name__
    if name == "KilledWorker":
        return f"{stem}: every worker that ran it died (out of memory?): {exc}"
    return f"{stem}: {name}: {exc}"


def _reusable(out_dir: str, part: dict, sha256: str, match: dict, keep_going: bool):
    """The summary of a shard already on disk that this job would write the same, else None."""
    stem = os.path.join(out_dir, _shards.part_stem(part["index"]))
    info = _shards.read_json(stem + ".json")
    if info is None:
        return None
    if info.get("model_sha256") != sha256 or info.get("options") != match:
        return None
    if part["kind"] == "texts" and info.get("texts_sha256") != part["sha256"]:
        return None
    failed = info.get("failed")
    if not isinstance(failed, list) or (failed and not keep_going):
        return None
    kept = info.get("inputs")
    names = _plan.part_names(part)
    # The inputs kept plus the inputs failed are the partition's, in order.
    failed_names = {f.get("input") for f in failed if isinstance(f, dict)}
    if kept != [n for n in names if n not in failed_names] or \
            len(kept) + len(failed) != len(names):
        return None
    shape = _shards.npy_shape(stem + ".npy")
    if shape is None or list(shape) != info.get("shape") or shape[0] != len(kept):
        return None
    info.pop("inputs")
    return info


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise tern.Error(f"{name}: expected an integer, got {type(v).__name__}")
    if v < 1:
        raise tern.Error(f"{name} must be >= 1, got {v}")
    return int(v)


class _Progress:
    """Inputs done and embeddings/s on stderr (counting only the inputs embedded by this run)."""

    def __init__(self, total: int, reused: int, parts_reused: int, parts: int,
                 show: Optional[bool]):
        self.total, self.done, self.parts, self.parts_done = total, reused, parts, parts_reused
        self.embedded = 0
        self.tty = _isatty()
        self.show = show is not False  # not on a terminal: a line every few seconds
        self.start = self.last = time.monotonic()
        self.live = False
        if self.show and reused:
            self._line(f"tern.distributed: resuming: {reused} of {total} inputs "
                       f"({parts_reused} of {parts} partitions) already done", final=True)

    def restart(self) -> None:
        self.start = self.last = time.monotonic()

    def update(self, inputs: int, embedded: int) -> None:
        self.done += inputs
        self.embedded += embedded
        self.parts_done += 1
        now = time.monotonic()
        if self.show and (now - self.last >= (0.2 if self.tty else 5.0)):
            self.last = now
            self._line(self._text(now), final=not self.tty)

    def close(self) -> None:
        if self.show:
            self._line(self._text(time.monotonic()), final=True)

    def _text(self, now: float) -> str:
        secs = max(now - self.start, 1e-9)
        return (f"tern.distributed: {self.done}/{self.total} inputs "
                f"({self.parts_done}/{self.parts} partitions), "
                f"{self.embedded / secs:.1f} embeddings/s")

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            sys.stderr.write("\r" + text + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _isatty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
