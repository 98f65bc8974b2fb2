"""The three engines behind one small interface, for bench/compare.py.

    engine.available, engine.reason      -- whether it can run here, and why not
    engine.start(model, threads)         -- load the model for this thread count
    engine.set_input(x, batch, seq_len)  -- the input of the following calls
    engine.output() -> np.ndarray        -- one forward pass on that input (agreement check)
    engine.warm(max_s) -> est_ms         -- warm-up runs; returns the time of one run
    engine.run(k) -> [ms, ...]           -- k timed forward passes
    engine.stop()

Tern times itself in its own process (`tern bench --json`, on a synthetic input of the same shape:
these models have no data-dependent paths) and computes outputs with `tern_run_model`. ONNX Runtime
runs in a Node process (ort_runner.js) that stays up while a model is being measured. PyTorch runs
in this process, inside torch.inference_mode().
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_VERSION = "1.30.0"


class Engine:
    name = "?"
    label = "?"

    def __init__(self):
        self.available, self.reason = True, ""
        self.model = self.threads = self.x = None
        self.batch = self.seq_len = 0

    def start(self, model, threads: int) -> None:
        self.model, self.threads = model, threads

    def set_input(self, x: np.ndarray, batch: int, seq_len: int) -> None:
        self.x, self.batch, self.seq_len = x, batch, seq_len

    def warm(self, warmup: int, max_s: float) -> float:
        """Up to `warmup` runs (at least one), stopping early past max_s; the last run's ms."""
        t_end, last = time.perf_counter() + max_s, 0.0
        for _ in range(max(1, warmup)):
            last = self.run(1)[0]
            if time.perf_counter() > t_end:
                break
        return last

    def stop(self) -> None:
        pass


class TorchEngine(Engine):
    name, label = "torch", "PyTorch " + torch.__version__.split("+")[0]

    def start(self, model, threads):
        super().start(model, threads)
        torch.set_num_threads(threads)

    def set_input(self, x, batch, seq_len):
        super().set_input(x, batch, seq_len)
        self.tensor = torch.from_numpy(x)

    def output(self):
        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model.module(self.tensor).float().numpy()

    def run(self, k):
        torch.set_num_threads(self.threads)
        times = []
        with torch.inference_mode():
            for _ in range(k):
                t0 = time.perf_counter()
                self.model.module(self.tensor)
                times.append((time.perf_counter() - t0) * 1e3)
        return times


def install_onnxruntime(cache_dir: str, timeout_s: float = 600) -> tuple[str | None, str]:
    """npm install --ignore-scripts onnxruntime-node into cache_dir, once. (dir, "") or (None, why).
    The package's install script downloads GPU binaries and fails; the CPU library ships inside."""
    if shutil.which("node") is None:
        return None, "node is not installed (apt-get install nodejs npm)"
    pkg = os.path.join(cache_dir, "node_modules", "onnxruntime-node", "package.json")
    try:
        with open(pkg) as f:
            if json.load(f).get("version") == ORT_VERSION:
                return cache_dir, ""
    except (OSError, ValueError):
        pass
    if shutil.which("npm") is None:
        return None, "npm is not installed (apt-get install npm)"
    os.makedirs(cache_dir, exist_ok=True)
    cmd = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save",
           "--prefix", cache_dir, f"onnxruntime-node@{ORT_VERSION}"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"npm install onnxruntime-node@{ORT_VERSION} timed out (registry unreachable?)"
    if p.returncode != 0 or not os.path.exists(pkg):
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"npm install onnxruntime-node@{ORT_VERSION} failed: {last}"
    return cache_dir, ""


class OrtEngine(Engine):
    name, label = "ort", f"ONNX Runtime {ORT_VERSION}"

    def __init__(self, cache_dir: str, workdir: str, install_timeout_s: float = 600):
        super().__init__()
        self.workdir = workdir
        self.dir, self.reason = install_onnxruntime(cache_dir, install_timeout_s)
        self.available = self.dir is not None
        self.proc = None

    def _ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"ort_runner.js exited: {self.proc.stderr.read().strip()[-500:]}")
        reply = json.loads(answer)
        if "error" in reply:
            raise RuntimeError(f"ONNX Runtime: {reply['error']}")
        return reply

    def start(self, model, threads):
        if self.proc is not None and self.model is model and self.threads == threads:
            return  # this session already runs that model with that many threads
        self.stop()
        super().start(model, threads)
        cmd = ["node", os.path.join(HERE, "ort_runner.js"), "--ort", self.dir,
               "--model", model.onnx_path(), "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line or "error" in json.loads(line):
            err = json.loads(line)["error"] if line else self.proc.stderr.read()
            self.stop()
            raise RuntimeError(f"ONNX Runtime could not load {model.onnx_path()}: {err}")

    def set_input(self, x, batch, seq_len):
        super().set_input(x, batch, seq_len)
        path = os.path.join(self.workdir, "ort_input.npy")
        np.save(path, x)
        self._ask(f"input {path}")

    def output(self):
        path = os.path.join(self.workdir, "ort_output.npy")
        self._ask(f"output {path}")
        return np.load(path)

    def run(self, k):
        return self._ask(f"run {k}")["times_ms"]

    def stop(self):
        if self.proc is not None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class TernEngine(Engine):
    name, label = "tern", "Tern"

    def __init__(self, tern_bin: str, run_model_bin: str | None, workdir: str, warmup: int):
        super().__init__()
        self.bin, self.run_model, self.workdir, self.warmup = tern_bin, run_model_bin, workdir, warmup
        self.last_json: dict = {}
        self.min_seq_len = 0  # > 0: a mixed batch, lengths drawn from [min_seq_len, seq_len]
        self.peaks: dict = {}  # (isa, threads) -> the highest FMA peak any call measured
        if not tern_bin or not os.access(tern_bin, os.X_OK):
            self.available, self.reason = False, f"tern binary not found ({tern_bin})"
        else:
            version = subprocess.run([tern_bin, "--version"], capture_output=True, text=True)
            self.label = version.stdout.split("\n")[0].strip() or "tern"
            self.cpu = (version.stdout.split("\n") + [""])[1].strip()

    def output(self):
        if not self.run_model:
            raise RuntimeError("tern_run_model not found (build it: ninja tern_run_model)")
        inp = os.path.join(self.workdir, "tern_input.npy")
        out = os.path.join(self.workdir, "tern_output.npy")
        np.save(inp, self.x.astype(np.int32) if self.model.is_text else self.x)
        cmd = [self.run_model, self.model.tern_path, inp, out, "--threads", str(self.threads)]
        if self.model.arch == "vit_b_16":
            cmd += ["--pooling", "cls"]  # the embedding (tern_run_model's vit default: all tokens)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"tern_run_model failed: {p.stderr.strip()}")
        return np.load(out)

    def bench(self, warmup: int, iters: int) -> dict:
        cmd = [self.bin, "bench", self.model.tern_path, "--json", "--batch", str(self.batch),
               "--threads", str(self.threads), "--warmup", str(warmup), "--iters", str(iters)]
        cmd += ["--seq-len", str(self.seq_len)] if self.model.is_text else \
               ["--image-size", str(self.model.image_size)]
        if self.model.is_text and self.min_seq_len > 0:
            cmd += ["--min-seq-len", str(self.min_seq_len)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"tern bench failed: {p.stderr.strip()}")
        self.last_json = json.loads(p.stdout.strip().splitlines()[-1])
        key = (self.last_json.get("isa"), self.threads)
        if self.last_json.get("peak_gflops"):
            self.peaks[key] = max(self.peaks.get(key, 0.0), self.last_json["peak_gflops"])
        return self.last_json

    def warm(self, warmup, max_s):
        return self.bench(warmup, 1)["median_ms"]

    def run(self, k):
        return self.bench(self.warmup, k)["times_ms"]


def agreement(ref: np.ndarray, got: np.ndarray) -> dict:
    """Cosine of every output vector (last axis) against the reference; the worst one counts."""
    if ref.shape != got.shape:
        return {"ok": False, "why": f"shape {list(got.shape)} vs reference {list(ref.shape)}",
                "min_cosine": None, "max_abs_diff_rel": None}
    a = ref.reshape(-1, ref.shape[-1]).astype(np.float64)
    b = got.reshape(-1, got.shape[-1]).astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(denom > 0, (a * b).sum(axis=1) / np.maximum(denom, 1e-300), 0.0)
    finite = bool(np.isfinite(b).all())
    rel = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30)) if finite else float("inf")
    return {"ok": finite and float(cos.min()) >= 0.9999, "min_cosine": float(cos.min()),
            "max_abs_diff_rel": rel, "why": "" if finite else "non-finite values"}


def scratch_dir() -> str:
    return tempfile.mkdtemp(prefix="tern-bench-")
