"""The installed Python package under concurrency and repetition: one Model shared by 4 Python
threads gives the serial results bit for bit; 1000 calls do not grow the process (RSS printed,
bounded generously); two Python threads against serial calls (timed and printed, not asserted:
a benchmark, not a test of this shared machine)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import unittest

import numpy as np
from PIL import Image

from tern_python_testlib import install, small_model

TMP, SITE, tern = install("tern-py-threads-")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS in /proc/self/status")


def run_threads(n, fn):
    """Runs fn(i) on n threads at once; returns their results in order, re-raising failures."""
    results, errors = [None] * n, []
    start = threading.Barrier(n)

    def body(i):
        try:
            start.wait()
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return results


def setUpModule():
    global RESNET, VIT, BERT, IMAGES, PIXELS
    RESNET = small_model("resnet50", TMP / "resnet50.tern")
    VIT = small_model("vit_b_16", TMP / "vit.tern")
    BERT = small_model("distilbert", TMP / "distilbert.tern")
    rng = np.random.default_rng(11)
    IMAGES, PIXELS = [], []
    for i, (h, w) in enumerate([(240, 320), (300, 256), (224, 224), (97, 150)]):
        px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        p = TMP / f"img{i}.png"
        Image.fromarray(px).save(p)
        IMAGES.append(p)
        PIXELS.append(px)


TEXTS = [f"sentence number {i} " + "and more words " * (i % 7) for i in range(24)]


class SharedModelThreads(unittest.TestCase):
    def check_model_threads(self, threads):
        img = tern.load(RESNET, threads=threads)
        txt = tern.load(BERT, threads=threads)
        encoded = [p.read_bytes() for p in IMAGES]

        def work(i):
            k = i % len(IMAGES)
            order = IMAGES[k:] + IMAGES[:k]
            return [img.embed_images(order, batch_size=1 + i % 3),
                    img.embed_images(encoded[k]), img.embed_images(PIXELS[k]),
                    txt.encode(TEXTS[i:] + TEXTS[:i], batch_size=3 + i),
                    txt.embed_texts(TEXTS[i])]

        serial = [work(i) for i in range(4)]
        for _ in range(3):
            for got, want in zip(run_threads(4, work), serial):
                for g, w in zip(got, want):
                    self.assertEqual(g.shape, w.shape)
                    self.assertTrue(np.array_equal(g, w))
        # the serial results are themselves consistent across rotations
        self.assertTrue(np.array_equal(serial[1][0][0], serial[0][0][1]))

    def test_four_threads_one_model_pool_of_two(self):
        self.check_model_threads(2)

    def test_four_threads_one_model_single_threaded(self):
        self.check_model_threads(1)


class AfterFork(unittest.TestCase):
    def run_in_child(self, model, check):
        """Runs check(model) in a forked child; returns its exit status (99: it hung)."""
        pid = os.fork()
        if pid == 0:  # the child: never returns into unittest
            code = 1
            try:
                code = check(model)
            finally:
                os._exit(code)
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return 99

    def test_a_pool_model_in_a_forked_child_runs_on_one_thread(self):
        """The child has none of the pool's workers: calls run on the calling thread (no hang),
        with the parent's results; a model loaded in the child has workers of its own."""
        m = tern.load(RESNET, threads=2)
        want = m.embed_images(IMAGES[:2])

        def check(model):
            if model.threads != 1:
                return 2
            if not np.array_equal(model.embed_images(IMAGES[:2]), want):
                return 3
            fresh = tern.load(RESNET, threads=2)
            if fresh.threads != 2 or not np.array_equal(fresh.embed_images(IMAGES[:2]), want):
                return 4
            return 0

        self.assertEqual(self.run_in_child(m, check), 0)
        self.assertEqual(m.threads, 2)
        self.assertTrue(np.array_equal(m.embed_images(IMAGES[:2]), want))  # the parent's is fine

    def test_a_single_threaded_model_works_in_a_forked_child(self):
        m = tern.load(RESNET, threads=1)
        want = m.embed_images(IMAGES[:2])
        self.assertEqual(self.run_in_child(
            m, lambda model: 0 if np.array_equal(model.embed_images(IMAGES[:2]), want) else 4), 0)


class GilReleased(unittest.TestCase):
    def test_other_python_threads_run_during_a_call(self):
        """While one thread is inside a long Tern call, another keeps running Python code: the
        longest pause it sees is a small part of the call (holding the GIL would make it the
        whole call)."""
        m = tern.load(RESNET, threads=1)
        images = IMAGES * 6
        m.embed_images(images[:1])
        span = {}

        def call(_):
            span["start"] = time.perf_counter()
            m.embed_images(images, batch_size=len(images))
            span["end"] = time.perf_counter()

        worker = threading.Thread(target=call, args=(0,))
        stamps = []
        worker.start()
        while worker.is_alive():
            stamps.append(time.perf_counter())
            time.sleep(0.001)
        worker.join()
        inside = [t for t in stamps if span["start"] <= t <= span["end"]]
        duration = span["end"] - span["start"]
        edges = [span["start"], *inside, span["end"]]
        gap = max(b - a for a, b in zip(edges, edges[1:]))
        print(f"\nlongest pause of another thread during a {duration:.2f} s call: {gap:.3f} s",
              flush=True)
        self.assertGreater(len(inside), 5)
        self.assertLess(gap, 0.5 * duration)


class Repetition(unittest.TestCase):
    def test_no_leak_over_1000_calls(self):
        vit = tern.load(VIT, threads=1)
        bert = tern.load(BERT, threads=1)
        png = IMAGES[3].read_bytes()
        px = PIXELS[3]

        def calls(n):
            for i in range(n):
                kind = i % 4
                if kind == 0:
                    vit.embed_images(png)
                elif kind == 1:
                    vit.embed_images([px, IMAGES[3]])
                elif kind == 2:
                    bert.encode(TEXTS[i % len(TEXTS)])
                else:
                    try:
                        bert.embed_texts([b"bad \xff"])
                    except tern.Error:
                        pass

        calls(100)  # warm up: allocator pools, first-use buffers
        before = rss_mb()
        t0 = time.perf_counter()
        calls(1000)
        secs = time.perf_counter() - t0
        after = rss_mb()
        print(f"\nRSS over 1000 calls: {before:.1f} MB -> {after:.1f} MB "
              f"({after - before:+.1f} MB, {secs:.1f} s)", flush=True)
        self.assertLess(after - before, 50.0)


class TwoThreadBenchmark(unittest.TestCase):
    def test_two_threads_vs_serial(self):
        """Printed, not asserted: two Python threads on one threads=1 Model vs one thread."""
        m = tern.load(RESNET, threads=1)
        batches = [IMAGES] * 6
        m.embed_images(IMAGES)  # warm up

        t0 = time.perf_counter()
        serial = [m.embed_images(b) for b in batches]
        t_serial = time.perf_counter() - t0

        t0 = time.perf_counter()
        halves = run_threads(2, lambda i: [m.embed_images(b) for b in batches[i::2]])
        t_threads = time.perf_counter() - t0
        for got, want in zip(halves[0] + halves[1], serial[0::2] + serial[1::2]):
            self.assertTrue(np.array_equal(got, want))
        # Control: the same two-thread measurement for hashlib, which also releases the GIL,
        # shows how much a second core the machine gives at this moment.
        buf = b"x" * (16 << 20)
        t0 = time.perf_counter()
        for _ in range(8):
            hashlib.sha256(buf).digest()
        h_serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_threads(2, lambda i: [hashlib.sha256(buf).digest() for _ in range(4)])
        h_threads = time.perf_counter() - t0
        n = sum(len(b) for b in batches)
        print(f"\n{n} images, small ResNet50, Model(threads=1): serial {n / t_serial:.1f} img/s, "
              f"2 Python threads {n / t_threads:.1f} img/s ({t_serial / t_threads:.2f}x); "
              f"control, hashlib.sha256 on 2 threads: {h_serial / h_threads:.2f}x", flush=True)


if __name__ == "__main__":
    unittest.main()
