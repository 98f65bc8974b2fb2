#!/usr/bin/python3
"""Throughput of tern.distributed on this machine: embeddings/s with 1 and 2 Dask workers (one
single-threaded process each, a LocalCluster), against `tern embed` in one process.

    PYTHONPATH=python /usr/bin/python3 bench/distributed_bench.py          # ResNet50, 96 images
    ... bench/distributed_bench.py --images 64 --partition-size 8 --rounds 3

The model is a full-size random-weight ResNet50 (weights_tools/export.py --random-init: the same
compute as the real one). Each cluster is started and warmed up (every worker loads the model)
before the clock starts; a round is one whole td.embed job into a fresh directory, its shards
and manifest written. The best of --rounds is reported (a shared machine only ever slows a run
down). A benchmark, not a test: it asserts only that every run gives the same bits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--partition-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    ap.add_argument("--build", default=os.environ.get("TERN_BUILD_DIR", str(ROOT / "build")))
    a = ap.parse_args()

    from distributed import Client, LocalCluster
    from PIL import Image

    import tern.distributed as td

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="tern-dask-bench-"))
    try:
        model = tmp / "resnet50.tern"
        subprocess.run([sys.executable, str(ROOT / "weights_tools" / "export.py"), "resnet50",
                        "--random-init", "--seed", "0", "-o", str(model)], check=True,
                       capture_output=True)
        rng = np.random.default_rng(0)
        images = tmp / "images"
        images.mkdir()
        for i in range(a.images):
            px = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            Image.fromarray(px).save(images / f"{i:05d}.jpg", quality=90)

        results = {}
        tern_bin = Path(a.build) / "tern"
        if tern_bin.exists():
            for threads in (1, 2):
                best = min(_time_cli(tern_bin, model, images, tmp / "cli.npy", threads)
                           for _ in range(a.rounds))
                results[f"tern embed --threads {threads}"] = a.images / best
        ref = np.load(tmp / "cli.npy") if (tmp / "cli.npy").exists() else None

        for n in (int(x) for x in a.workers.split(",")):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            client = Client(cluster)
            try:
                td.embed(model, images, tmp / "warm", client=client, progress=False,
                         partition_size=a.partition_size)  # loads the model in every worker
                times = []
                for r in range(a.rounds):
                    out = tmp / f"out-{n}-{r}"
                    t0 = time.perf_counter()
                    td.embed(model, images, out, client=client, progress=False,
                             partition_size=a.partition_size)
                    times.append(time.perf_counter() - t0)
                    _, got = td.load(out)
                    if ref is not None and got.tobytes() != ref.tobytes():
                        raise AssertionError(f"{n} workers: output differs from tern embed")
                results[f"tern.distributed, {n} worker{'s' * (n > 1)}"] = a.images / min(times)
            finally:
                client.close()
                cluster.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"ResNet50 (random weights), {a.images} images 320x240 JPEG, partition size "
          f"{a.partition_size}, best of {a.rounds}, {os.cpu_count()} cores, load average "
          f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after (other jobs compete "
          f"for the cores when it is above their number):")
    base = results.get("tern.distributed, 1 worker")
    for name, rate in results.items():
        rel = f"  ({rate / base:.2f}x 1 worker)" if base else ""
        print(f"  {name:32s} {rate:7.2f} embeddings/s{rel}")
    return 0


def _time_cli(tern_bin: Path, model: Path, images: Path, out: Path, threads: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(tern_bin), "embed", str(model), str(images), "-o", str(out), "-q",
                    "--threads", str(threads)], check=True, capture_output=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
