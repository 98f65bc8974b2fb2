"""tern.distributed on a real Dask cluster on localhost, started as users start one: `dask
scheduler` and two `dask worker --nthreads 1` processes (each under its nanny), bound to
127.0.0.1. Results equal the single-process `tern embed` bit for bit (images, texts); a worker
SIGKILLed mid-job loses and duplicates nothing; `--resume` after the client was SIGKILLed keeps
the finished shards (same inode and mtime) and gives the same result; two workers with different
model files under one path fail the job with no manifest; a bad input fails its partition, or
with --keep-going is listed as `tern embed --keep-going` lists it; shards of another model or
other options are never reused; an output directory the client does not share with the workers
is an error. The package imported everywhere is this tree's (python/ + the built extension)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_testlib import BUILD, PYTHON, ROOT, TERN, export, run

SMALL_RESNET = ["--layers", "1,1,1,1"]
SMALL_BERT = ["--layers", "2", "--dim", "64", "--heads", "4", "--hidden-dim", "128"]
BUILD_ABS, TERN_ABS = BUILD.resolve(), TERN.resolve()


def tree_site(dest: Path) -> Path:
    """A directory holding `tern` = this tree's python/tern/ (linked file by file) plus the
    extension CMake built, so every process imports this tree's package."""
    pkg = dest / "tern"
    pkg.mkdir(parents=True)
    for f in (ROOT / "python" / "tern").iterdir():
        if f.name != "__pycache__":
            (pkg / f.name).symlink_to(f)
    built = sorted((BUILD_ABS / "python" / "tern").glob("_tern*.so"))
    if not built:
        raise AssertionError(f"no extension in {BUILD_ABS}/python/tern: build target tern_python")
    (pkg / built[0].name).symlink_to(built[0])
    return dest


TMP = Path(tempfile.mkdtemp(prefix="tern-dask-"))
SITE = tree_site(TMP / "site")
sys.path.insert(0, str(SITE))
ENV = dict(os.environ, PYTHONPATH=str(SITE), PYTHONDONTWRITEBYTECODE="1")
import tern  # noqa: E402
import tern.distributed as td  # noqa: E402
import tern.distributed._worker  # noqa: E402,F401

if Path(td.__file__).resolve().parent != (ROOT / "python" / "tern" / "distributed").resolve():
    raise AssertionError(f"imported {td.__file__}, not this tree's package")


def make_images(d: Path, n: int, seed: int) -> None:
    """n small JPEG/PNG files in nested folders (upper-case extensions, a space in a name), a
    file that is not an image, a symlink to an image (embedded by `tern embed`) and a
    symlinked folder (not entered)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = d / ["a", "a b", "z/deep", "M"][i % 4]
        sub.mkdir(parents=True, exist_ok=True)
        px = rng.integers(0, 256, (int(rng.integers(40, 120)), int(rng.integers(40, 120)), 3),
                          dtype=np.uint8)
        ext, fmt = [(".jpg", "JPEG"), (".png", "PNG"), (".JPEG", "JPEG")][i % 3]
        Image.fromarray(px).save(sub / f"im{i:03d}{ext}", format=fmt)
    (d / "a" / "notes.txt").write_text("not an image")
    (d / "link.jpg").symlink_to(d / "a" / "im000.jpg")
    (d / "linked-dir").symlink_to(d / "M", target_is_directory=True)


def cli_ref(model: Path, args: list, tag: str):
    """(input names, array) of `tern embed` writing .jsonl (names) and .npy (bits)."""
    npy, jsonl = TMP / f"ref-{tag}.npy", TMP / f"ref-{tag}.jsonl"
    p = run([TERN_ABS, "embed", model, *args, "-q", "-o", npy], check=False)
    run([TERN_ABS, "embed", model, *args, "-q", "-o", jsonl], check=False)
    names = []
    if jsonl.exists():
        with open(jsonl) as f:
            names = [json.loads(line)["input"] for line in f]
    return names, (np.load(npy) if npy.exists() else None), p


def distributed(*args, cwd=None, check=True):
    p = subprocess.run([PYTHON, "-m", "tern.distributed", *map(str, args)], env=ENV,
                       cwd=cwd or TMP, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"tern.distributed {args} failed ({p.returncode}):\n{p.stderr}")
    return p


def start_client(*args, cwd=None):
    return subprocess.Popen([PYTHON, "-m", "tern.distributed", *map(str, args)], env=ENV,
                            cwd=cwd or TMP, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class Cluster:
    """`dask scheduler` + `dask worker` processes on 127.0.0.1, each worker in its own cwd."""

    def __init__(self, worker_dirs):
        self.dir = Path(tempfile.mkdtemp(dir=TMP, prefix="cluster-"))
        self.file = self.dir / "scheduler.json"
        self.logs = []
        self.procs = [subprocess.Popen(
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(self.file)], env=ENV, cwd=self.dir,
            stdout=subprocess.DEVNULL, stderr=self._log("scheduler.log"))]
        self._wait(lambda: self.file.exists() and json.loads(self.file.read_text() or "{}"),
                   "the scheduler file")
        self.address = json.loads(self.file.read_text())["address"]
        for i, wd in enumerate(worker_dirs):
            wd.mkdir(parents=True, exist_ok=True)
            self.procs.append(subprocess.Popen(
                ["dask", "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                 "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard",
                 "--local-directory", str(self.dir / f"w{i}")], env=ENV, cwd=wd,
                stdout=subprocess.DEVNULL, stderr=self._log(f"worker{i}.log")))
        from distributed import Client
        self.client = Client(self.address, timeout="60s")
        self.wait_workers(len(worker_dirs))

    def _log(self, name):
        f = open(self.dir / name, "w")
        self.logs.append(f)
        return f

    @staticmethod
    def _wait(cond, what, timeout=60.0):
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def wait_workers(self, n):
        self.client.wait_for_workers(n, timeout=60)

    def worker_pids(self) -> dict:
        return self.client.run(os.getpid)

    def idle(self) -> bool:
        return not any(self.client.processing().values())

    def close(self):
        self.client.close()
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self.logs:
            f.close()


def part_files(out: Path) -> dict:
    """{name: (inode, mtime_ns)} of the finished shards (a .json marks a finished .npy)."""
    out_files = {}
    for j in out.glob("part-*.json"):
        for f in (j, j.with_suffix(".npy")):
            st = f.stat()
            out_files[f.name] = (st.st_ino, st.st_mtime_ns)
    return out_files


def assert_same(test, out: Path, names, ref):
    got_names, got = td.load(out)
    test.assertEqual(got_names, names)
    test.assertEqual(got.dtype, np.float32)
    test.assertEqual(got.shape, ref.shape)
    test.assertEqual(got.tobytes(), ref.tobytes(), "shards differ from `tern embed` in bits")
    lazy_names, maps = td.load(out, mmap=True)
    test.assertEqual(lazy_names, names)
    test.assertTrue(all(isinstance(m, np.memmap) for m in maps if len(m)))
    test.assertEqual(np.concatenate(maps).tobytes(), ref.tobytes())
    left = [f.name for f in out.iterdir() if f.name.endswith(".tmp")]
    test.assertEqual(left, [], "temporary files left behind")


def setUpModule():
    global MODEL, BERT, IMAGES, TEXTS, REF, REF_TXT, CLUSTER
    MODEL = export("resnet50", TMP / "r.tern", *SMALL_RESNET, seed=3)
    BERT = export("distilbert", TMP / "d.tern", *SMALL_BERT, seed=3)
    IMAGES = TMP / "imgs"
    make_images(IMAGES, 40, seed=1)
    TEXTS = [TMP / "t1.txt", TMP / "t2.txt"]
    TEXTS[0].write_bytes("".join(f"passage {i} é ünï\r\n" if i % 4 else "\n"
                                 for i in range(23)).encode() + b"no final newline")
    TEXTS[1].write_bytes(b"\xef\xbb\xbfBOM line\n\tTab\tseparated\n" + b"word " * 50 + b"\n")
    REF = cli_ref(MODEL, [IMAGES], "img")
    REF_TXT = cli_ref(BERT, ["--text-file", TEXTS[0], "--text-file", TEXTS[1],
                             "--pooling", "mean"], "txt")
    CLUSTER = Cluster([TMP / "wa", TMP / "wb"])


def tearDownModule():
    CLUSTER.close()
    shutil.rmtree(TMP, ignore_errors=True)


class Distributed(unittest.TestCase):
    def test_images_equal_cli(self):
        out = TMP / "out-img"
        p = distributed(MODEL, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "5", "--batch", "3")
        # Progress: inputs done and the rate.
        self.assertRegex(p.stderr, r"tern\.distributed: 41/41 inputs \(9/9 partitions\), "
                                   r"[0-9.]+ embeddings/s\n")
        assert_same(self, out, REF[0], REF[1])
        m = json.loads((out / "manifest.json").read_text())
        self.assertEqual(m["model"], {"path": str(MODEL), "sha256": td._plan.file_sha256(MODEL),
                                      "architecture": "resnet50"})
        self.assertEqual((m["count"], m["dim"], len(m["parts"]), m["failed"]),
                         (len(REF[0]), REF[1].shape[1], 9, []))
        self.assertEqual(m["parts"][8], {"npy": "part-00008.npy", "inputs": "part-00008.json",
                                         "count": len(REF[0]) - 40})
        self.assertEqual(m["options"]["pooling"], "mean")

        # D5: shards of other options are not reused: --normalize recomputes every one.
        names, ref_norm, _ = cli_ref(MODEL, [IMAGES, "--normalize"], "img-norm")
        p = distributed(MODEL, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "5", "--normalize", "--resume")
        self.assertIn("(0 reused)", p.stderr)
        assert_same(self, out, names, ref_norm)
        # A shorter job in the same directory removes the shards it does not list.
        p = distributed(MODEL, IMAGES / "a", "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "50")
        self.assertEqual(sorted(f.name for f in out.iterdir()),
                         ["manifest.json", "part-00000.json", "part-00000.npy"])

    def test_texts_equal_cli(self):
        out = TMP / "out-txt"
        # 24 + 3 lines in partitions of 5: part-00004 spans the two files.
        m = td.embed(BERT, TEXTS, out, client=CLUSTER.address, texts=True, partition_size=5,
                     batch_size=3, pooling="mean", progress=False)
        self.assertEqual(m["count"], len(REF_TXT[0]))
        self.assertEqual(REF_TXT[0][-3:], [f"{TEXTS[1]}:1", f"{TEXTS[1]}:2", f"{TEXTS[1]}:3"])
        assert_same(self, out, REF_TXT[0], REF_TXT[1])

        # Invalid UTF-8 on line 2 with keep_going, long texts cut: as `tern embed` does it.
        bad = TMP / "bad.txt"
        bad.write_bytes(b"fine\n\xff\xfe broken\n" + b"many words " * 40 + b"\nend\n")
        names, ref, _ = cli_ref(BERT, ["--text-file", bad, "--text-file", TEXTS[1], "--pooling",
                                       "cls", "--max-length", "16", "--truncate", "--keep-going"],
                                "txt-kg")
        m = td.embed(BERT, [bad, TEXTS[1]], out, client=CLUSTER.address, texts=True,
                     partition_size=3, pooling="cls", max_length=16, truncate=True,
                     keep_going=True, progress=False)
        # The same input fails as in `tern embed --keep-going` (which gives the offset in the file;
        # the worker, which hands the line to the library, the offset in the line).
        self.assertEqual([f["input"] for f in m["failed"]], [f"{bad}:2"])
        self.assertTrue(m["failed"][0]["error"].startswith(f"{bad}:2: invalid UTF-8 at byte offset"))
        assert_same(self, out, names, ref)

    def test_vit_tokens(self):
        # Unpooled image tokens: shards [n, T, D], as `tern embed --pooling none` writes them.
        vit = export("vit_b_16", TMP / "v.tern", "--layers", "1", "--hidden-dim", "64",
                     "--heads", "4", "--mlp-dim", "128", "--patch-size", "32", seed=3)
        out = TMP / "out-vit"
        m = td.embed(vit, [IMAGES / "a b", IMAGES / "M"], out, client=CLUSTER.address,
                     partition_size=4, pooling="none", progress=False)
        names, ref, _ = cli_ref(vit, [IMAGES / "a b", IMAGES / "M", "--pooling", "none"], "vit")
        self.assertEqual((ref.ndim, m["shape"], m["dim"]), (3, list(ref.shape[1:]), 64))
        assert_same(self, out, names, ref)

    def test_local_cluster(self):
        # No scheduler: a LocalCluster of single-threaded worker processes, one per core.
        out = TMP / "out-local"
        distributed(BERT, "--text-file", TEXTS[0], "-o", out, "--partition-size", "7",
                    "--pooling", "mean", "-q")
        names, ref, _ = cli_ref(BERT, ["--text-file", TEXTS[0], "--pooling", "mean"], "t1")
        assert_same(self, out, names, ref)

    def test_worker_killed(self):
        # D1: SIGKILL a worker process (its nanny restarts it) while partitions run.
        out = TMP / "out-kill"
        client = start_client(MODEL, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                              "--partition-size", "2")
        pids = CLUSTER.worker_pids()
        Cluster._wait(lambda: len(list(out.glob("part-*.json"))) >= 3 or
                      client.poll() is not None, "the first shards")
        busy = [a for a, keys in CLUSTER.client.processing().items() if keys]
        self.assertTrue(busy, "no partition running when the worker was to be killed")
        os.kill(pids[busy[0]], signal.SIGKILL)
        _, err = client.communicate(timeout=240)
        self.assertEqual(client.returncode, 0, err)
        assert_same(self, out, REF[0], REF[1])  # every input once, in order, same bits
        CLUSTER.wait_workers(2)

    def test_resume_after_client_killed(self):
        # D2: kill the client halfway; finished shards are kept, the rest computed.
        out = TMP / "out-resume"
        client = start_client(MODEL, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                              "--partition-size", "2")
        Cluster._wait(lambda: len(list(out.glob("part-*.json"))) >= 5 or
                      client.poll() is not None, "the first shards")
        client.kill()
        client.communicate()
        time.sleep(0.5)  # the scheduler forgets the client; the tasks it ran finish
        Cluster._wait(CLUSTER.idle, "the workers to finish the killed client's tasks")
        time.sleep(0.5)
        before = part_files(out)
        done = len(before) // 2
        self.assertFalse((out / "manifest.json").exists())
        self.assertTrue(0 < done < 21, f"{done} of 21 shards done when the client was killed")
        p = distributed(MODEL, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "2", "--resume")
        self.assertIn(f"({done} reused)", p.stderr)
        after = part_files(out)
        for name, st in before.items():
            self.assertEqual(after[name], st, f"{name} was rewritten")
        assert_same(self, out, REF[0], REF[1])

        # D5: --resume with another model reuses nothing.
        other = export("resnet50", TMP / "r4.tern", *SMALL_RESNET, seed=4)
        p = distributed(other, IMAGES, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "2", "--resume")
        self.assertIn("(0 reused)", p.stderr)
        names, ref, _ = cli_ref(other, [IMAGES], "img-other")
        assert_same(self, out, names, ref)

    def test_model_mismatch(self):
        # D3: the same path is a different file on one worker: the job fails, no manifest.
        # /proc/self/cwd/model.tern is each process's own ./model.tern; the workers' cwds
        # are wa/ (the client's file) and wb/ (another export).
        shutil.copyfile(MODEL, TMP / "wa" / "model.tern")
        export("resnet50", TMP / "wb" / "model.tern", *SMALL_RESNET, seed=4)
        out = TMP / "out-mismatch"
        out.mkdir()
        (out / "manifest.json").write_text("{}")  # a stale one must not survive either
        try:
            p = distributed("/proc/self/cwd/model.tern", IMAGES, "-o", out, "--scheduler",
                            CLUSTER.address, "--partition-size", "4", cwd=TMP / "wa",
                            check=False)
        finally:
            for d in ("wa", "wb"):
                (TMP / d / "model.tern").unlink()
        self.assertEqual(p.returncode, 1, p.stderr)
        last = p.stderr.strip().splitlines()[-1]
        self.assertRegex(last, r"^tern\.distributed: error: worker tcp://127\.0\.0\.1:\d+: "
                               r"/proc/self/cwd/model\.tern has sha256 [0-9a-f]{16}\.\.\., the "
                               r"client's has [0-9a-f]{16}\.\.\.: the workers must read the "
                               r"same model file$")
        self.assertFalse((out / "manifest.json").exists())

    def test_output_not_shared(self):
        # OUT_DIR is each process's own ./out: the client misses worker wb's shards.
        for d in ("wa", "wb"):
            (TMP / d / "out").mkdir()
        p = distributed(MODEL, IMAGES, "-o", "/proc/self/cwd/out", "--scheduler",
                        CLUSTER.address, "--partition-size", "2", cwd=TMP / "wa", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr.strip().splitlines()[-1],
                         r"^tern\.distributed: error: /proc/self/cwd/out: part-\d{5}\.npy was "
                         r"written by a worker but is not here as the client sees it: OUT_DIR "
                         r"must be shared by the workers and the client$")
        self.assertTrue(list((TMP / "wb" / "out").glob("part-*.npy")), "wb did no work")
        self.assertFalse((TMP / "wa" / "out" / "manifest.json").exists())

    def test_bad_input(self):
        # D4: a bad image fails its partition naming it; --keep-going lists it. The second
        # partition of 3 (im012, im016, im020) is all bad: its shard is empty.
        bad = TMP / "bad"
        shutil.copytree(IMAGES / "a", bad)
        (bad / "im012.jpg").write_bytes(b"\xff\xd8\xff truncated")
        (bad / "im016.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        (bad / "im020.JPEG").write_bytes(b"")
        out = TMP / "out-bad"
        p = distributed(MODEL, bad, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "3", check=False)
        self.assertEqual(p.returncode, 1)
        _, _, cli = cli_ref(MODEL, [bad], "bad")
        why = cli.stderr.strip().splitlines()[-1].split(": error: ", 1)[1]
        self.assertTrue(why.startswith(f"{bad}/im012.jpg: "), why)
        self.assertEqual(p.stderr.strip().splitlines()[-1],
                         f"tern.distributed: error: part-00001: {why}")
        self.assertFalse((out / "manifest.json").exists())

        p = distributed(MODEL, bad, "-o", out, "--scheduler", CLUSTER.address,
                        "--partition-size", "3", "--keep-going", check=False)
        self.assertEqual(p.returncode, 1)
        names, ref, cli = cli_ref(MODEL, [bad, "--keep-going"], "bad-kg")
        whys = [line.split("failed: ", 1)[1] for line in cli.stderr.splitlines()
                if line.startswith("tern embed: failed: ")]
        self.assertEqual(len(whys), 3)
        for w in whys:
            self.assertIn(f"tern.distributed: failed: {w}\n", p.stderr)
        assert_same(self, out, names, ref)
        m = json.loads((out / "manifest.json").read_text())
        self.assertEqual(m["failed"], [{"input": f"{bad}/{n}", "error": w} for n, w in
                                       zip(["im012.jpg", "im016.png", "im020.JPEG"], whys)])
        self.assertEqual([p["count"] for p in m["parts"]], [3, 0, 3, 1])


class Arguments(unittest.TestCase):
    """Errors found on the client, before any cluster is contacted (client=a dead address)."""

    def check(self, pattern, *args, **kw):
        with self.assertRaisesRegex(tern.Error, pattern):
            td.embed(*args, client="tcp://127.0.0.1:1", progress=False, **kw)

    def test_errors(self):
        out = TMP / "out-args"
        self.check("^distilbert is a text model", BERT, [IMAGES], out)
        self.check("^resnet50 is an image model", MODEL, TEXTS, out, texts=True)
        self.check("use pooling cls or mean \\(distilbert's default is none\\)$", BERT, TEXTS,
                   out, texts=True)
        self.check("no such file$", BERT, [TMP / "missing.txt"], out, texts=True,
                   pooling="mean")
        self.check("standard input cannot be shared", BERT, ["-"], out, texts=True,
                   pooling="mean")
        empty = TMP / "no-images"
        (empty / "sub").mkdir(parents=True)
        (empty / "sub" / "a.txt").write_text("text")
        self.check("no-images: directory contains no .jpg, .jpeg or .png files$", MODEL,
                   [empty], out)
        self.check("^partition_size must be >= 1, got 0$", MODEL, [IMAGES], out,
                   partition_size=0)
        self.check("^pooling: expected one of", MODEL, [IMAGES], out, pooling="avg")
        self.assertFalse(out.exists())
        with self.assertRaisesRegex(tern.Error, "no readable manifest.json"):
            td.load(TMP)

    def test_text_partitions_follow_cli_lines(self):
        f = TMP / "lines.txt"
        f.write_bytes(b"a\r\n\nb\rc\n\r\nlast")
        parts = td._plan.text_partitions([str(f)], 2)
        self.assertEqual([td._plan.text_names(p) for p in parts],
                         [[f"{f}:1", f"{f}:2"], [f"{f}:3", f"{f}:4"], [f"{f}:5"]])
        self.assertEqual([p["segments"][0]["offset"] for p in parts], [0, 4, 10])

    def test_worker_sees_other_texts(self):
        # A text file that is not the same on the worker as on the client fails its partition.
        f = TMP / "changing.txt"
        f.write_bytes(b"one\ntwo\nthree\n")
        part = td._plan.text_partitions([str(f)], 8)[0]
        f.write_bytes(b"one\ntwo\nthrea\n")
        job = {"model_path": str(BERT), "model_sha256": td._plan.file_sha256(BERT),
               "out_dir": str(TMP), "keep_going": False, "match_options": {},
               "options": {"pooling": "mean", "normalize": False, "batch": 8,
                           "max_length": None, "truncate": False}}
        with self.assertRaisesRegex(td._worker.PartitionError,
                                    f"^process \\d+: {f} lines 1-3: not the texts the client "
                                    f"read: the workers must read the same text files$"):
            td._worker.embed_partition(part, job)
        self.assertFalse((TMP / "part-00000.json").exists())


if __name__ == "__main__":
    unittest.main()
