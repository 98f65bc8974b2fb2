"""Throughput and latency of `tern serve`: embeddings/s and p50/p99 request latency at several
numbers of concurrent clients, with dynamic batching on (--max-batch-tokens, default 16384) and
off (--max-batch-tokens 0: every request runs alone). Not a test: numbers for the README.

    /usr/bin/python3 bench/serve_bench.py [--model M.tern] [--clients 1 4 16] [--requests 40]
        [--rounds 3] [--words 12] [--inputs-per-request 1] [--threads 2] [--json OUT.json]

Without --model, a random-weight DistilBERT (full size) is exported once into bench/.cache/.
Each client holds one keep-alive connection and sends its requests back to back (POST /embed,
texts of about --words words drawn from a fixed list, seeded). Both servers run at once and
the two configurations alternate, --rounds times per client count, after a warm-up.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hex jovial "
         "zebras near an old riverbank at dawn , and then everyone goes home happy").split()


def start_server(tern, model, *args):
    p = subprocess.Popen([tern, "serve", model, "--port", "0", *args], stderr=subprocess.PIPE,
                         text=True)
    line = p.stderr.readline()
    m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
    if not m:
        p.kill()
        raise SystemExit(f"tern serve did not start: {line}{p.stderr.read()}")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, int(m.group(1))


def run_clients(port, clients, requests, texts):
    latencies, errors = [], []
    lock = threading.Lock()

    def client(k):
        rng = random.Random(k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        mine = []
        for _ in range(requests):
            body = json.dumps({"inputs": rng.choice(texts)})
            t0 = time.perf_counter()
            conn.request("POST", "/embed", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 200:
                errors.append((r.status, data[:200]))
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sorted(latencies), errors


def percentile(sorted_values, q):
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def metrics(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tern", default=str(ROOT / "build" / "tern"))
    ap.add_argument("--model")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=20, help="per client and round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds")
    ap.add_argument("--words", type=int, default=12)
    ap.add_argument("--inputs-per-request", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()

    model = a.model
    if model is None:
        model = ROOT / "bench" / ".cache" / "serve_distilbert.tern"
        if not model.exists():
            model.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["/usr/bin/python3", ROOT / "weights_tools" / "export.py", "distilbert",
                            "--random-init", "--seed", "0", "-o", model], check=True)
    rng = random.Random(0)
    texts = [[" ".join(rng.choice(WORDS) for _ in range(max(1, int(rng.gauss(a.words, 3)))))
              for _ in range(a.inputs_per_request)] for _ in range(64)]

    rows = []
    load0 = os.getloadavg()[0]
    # Both servers run side by side (idle but one at a time) and the configurations alternate
    # round by round, so that the other tenants of a shared machine slow both alike.
    servers = {mode: start_server(a.tern, str(model), "--threads", str(a.threads),
                                  "--max-batch-tokens", flag)
               for mode, flag in (("on", "16384"), ("off", "0"))}
    try:
        for mode, (_, port) in servers.items():
            run_clients(port, max(a.clients), 2, texts)  # warm-up
        for c in a.clients:
            acc = {mode: {"wall": 0.0, "lat": [], "inputs": 0.0, "passes": 0.0, "compute": 0.0}
                   for mode in servers}
            for _ in range(a.rounds):
                for mode, (_, port) in servers.items():
                    before = metrics(port)
                    wall, lat, errors = run_clients(port, c, a.requests, texts)
                    after = metrics(port)
                    if errors:
                        raise SystemExit(f"errors with batching {mode}, {c} clients: {errors[:3]}")
                    acc[mode]["wall"] += wall
                    acc[mode]["lat"] += lat
                    acc[mode]["inputs"] += after["tern_inputs_total"] - before["tern_inputs_total"]
                    acc[mode]["passes"] += (after["tern_batch_size_count"]
                                            - before["tern_batch_size_count"])
                    acc[mode]["compute"] += (after["tern_inference_seconds_sum"]
                                             - before["tern_inference_seconds_sum"])
            for mode, r in acc.items():
                lat = sorted(r["lat"])
                row = {"batching": mode, "clients": c, "requests": len(lat),
                       "embeddings_per_s": r["inputs"] / r["wall"],
                       "p50_ms": percentile(lat, 0.5) * 1e3, "p99_ms": percentile(lat, 0.99) * 1e3,
                       "mean_batch": r["inputs"] / r["passes"] if r["passes"] else 0.0,
                       "ms_per_pass": r["compute"] / r["passes"] * 1e3 if r["passes"] else 0.0}
                rows.append(row)
                print(f"batching {mode:3} clients {c:3}: {row['embeddings_per_s']:7.1f} emb/s  "
                      f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                      f"mean batch {row['mean_batch']:.1f}, {row['ms_per_pass']:.1f} ms per pass",
                      flush=True)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    load1 = os.getloadavg()[0]

    print()
    print(f"`{' '.join(sys.argv[1:]) or '(defaults)'}`; model {Path(model).name}, "
          f"--threads {a.threads}, {a.inputs_per_request} text(s) of ~{a.words} words per request, "
          f"{a.rounds} x {a.requests} requests per client; "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}; "
          f"load average {load0:.1f} -> {load1:.1f}")
    print()
    print("| batching | clients | embeddings/s | p50 ms | p99 ms | inputs per forward pass "
          "| ms per forward pass |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['batching']} | {r['clients']} | {r['embeddings_per_s']:.1f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_batch']:.1f} | "
              f"{r['ms_per_pass']:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows,
                                            "load": [load0, load1]}, indent=1))


if __name__ == "__main__":
    main()
