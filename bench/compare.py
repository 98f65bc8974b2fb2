#!/usr/bin/python3
"""Tern against ONNX Runtime and PyTorch, on the same random weights, in one run.

    /usr/bin/python3 bench/compare.py                  # the full matrix (minutes to an hour)
    /usr/bin/python3 bench/compare.py --quick          # batch 1, all cores, 128 tokens
    /usr/bin/python3 bench/compare.py --models resnet50 --batches 1 --threads 2 --iters 20

For each model it builds one random-weight model (the exporter's random_source, then convert for
Tern; the same state dict loaded into torchvision / bench/torch_distilbert.py / bench/torch_bert.py
for PyTorch; that
module exported with torch.onnx for ONNX Runtime). For each (model, seq_len, batch) it first checks
that the three engines agree on one input (cosine >= 0.9999 per output vector, against PyTorch):
an engine that disagrees is reported and not timed. Then, for each thread count, it warms every
engine up and times them in alternating rounds; it reports medians and the ratios Tern/peer.
An engine that is not available (no node/npm, registry unreachable, no tern binary) is reported
and skipped.

Writes bench/results/<date>_<cpu>.json, .md and .svg; --update-readme puts the table in README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bench_models  # noqa: E402
import engines  # noqa: E402
import report  # noqa: E402

MODELS = tuple(bench_models.BENCH_MODELS)  # resnet50, vit_b_16, distilbert, bert, minilm_l6
NOTE = ("Absolute times drift between runs on a shared machine; the ratios measured side by side "
        "hold better.")


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_mixed(p, text: str):
    """'B:MIN-MAX' -> (B, MIN, MAX); 'none' -> None."""
    if text.strip().lower() == "none":
        return None
    try:
        b, _, rng = text.partition(":")
        lo, _, hi = rng.partition("-")
        b, lo, hi = int(b), int(lo), int(hi)
    except ValueError:
        p.error(f"--mixed {text!r}: expected BATCH:MIN-MAX (e.g. 32:8-128) or none")
    if b < 1 or lo < 2 or hi < lo:
        p.error(f"--mixed {text!r}: need BATCH >= 1 and 2 <= MIN <= MAX")
    return b, lo, hi


def parse_args(argv):
    cores = len(os.sched_getaffinity(0))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    p.add_argument("--batches", type=int_list, default=[1, 8], help="default 1,8")
    p.add_argument("--threads", type=int_list, default=sorted({1, cores}),
                   help=f"default 1,{cores} (1 and every core)")
    p.add_argument("--seq-lens", type=int_list, default=[16, 128], help="text models; default 16,128")
    p.add_argument("--mixed", default="32:8-128", metavar="BATCH:MIN-MAX",
                   help="text models: also a batch of BATCH texts with lengths drawn from MIN-MAX "
                   "(Tern runs the real tokens only, the peers padded to the longest); "
                   "'none' to skip (default 32:8-128)")
    p.add_argument("--iters", type=int, default=12, help="timed runs per engine and case, at most "
                   "(fewer when --max-seconds would be exceeded; at least one per round)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up runs per engine (default 2)")
    p.add_argument("--max-seconds", type=float, default=15.0,
                   help="time budget per engine and case for the timed runs (default 15)")
    p.add_argument("--quick", action="store_true",
                   help=f"a subset: batch 1, {cores} threads, 128 tokens, 6 runs")
    p.add_argument("--image-size", type=int, default=None,
                   help="resnet50 input size (default 224; vit_b_16 takes only its own)")
    p.add_argument("--export-arg", action="append", default=[], metavar="ARCH:ARG",
                   help="extra exporter argument for one architecture, e.g. distilbert:--layers=2 "
                        "(smaller models for tests)")
    p.add_argument("--engines", default="tern,ort,torch", help="subset of tern,ort,torch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tern", default=None, help="the tern binary (default: $TERN_BIN, build/tern)")
    p.add_argument("--run-model", default=None,
                   help="tern_run_model (default: $TERN_RUN_MODEL, next to tern or in tests/)")
    p.add_argument("--ort-cache", default=os.path.join(HERE, ".cache", "ort"),
                   help="where onnxruntime-node is installed (default bench/.cache/ort)")
    p.add_argument("--ort-install-timeout", type=float, default=600,
                   help="seconds npm may take to install onnxruntime-node (default 600)")
    p.add_argument("--workdir", default=None, help="model files (default: a temporary folder)")
    p.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--name", default=None, help="results file stem (default <date>_<cpu>)")
    p.add_argument("--update-readme", action="store_true",
                   help="put the table into README.md's Benchmark section")
    p.add_argument("--note", default=NOTE, help="a line about the conditions, kept in the results")
    p.add_argument("--render", metavar="RESULTS.json", default=None,
                   help="measure nothing: write the .md/.svg (and README with --update-readme) "
                        "again from a results file")
    args = p.parse_args(argv)
    if args.quick:
        args.batches, args.threads, args.seq_lens = [1], [cores], [128]
        args.iters = min(args.iters, 6)
    # Most threads first. Measured here (Zen 5, 2026-12-01): timing PyTorch on 1 thread and then
    # any engine on 2 left the second core busy, so every 2-thread case ran at its 1-thread speed
    # (ResNet50: Tern 37 ms, ORT 33 ms, PyTorch 478 ms, against 22 / 17.6 / 28 ms with 2 first).
    args.threads = sorted(set(args.threads), reverse=True)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in args.models:
        if m not in MODELS:
            p.error(f"unknown model {m!r} (known: {', '.join(MODELS)})")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "torch" not in args.engines:
        p.error("--engines must include torch: it is the reference for the agreement check")
    args.mixed = parse_mixed(p, args.mixed)
    args.export_args = {}
    for item in args.export_arg:
        arch, _, arg = item.partition(":")
        if arch not in MODELS or not arg:
            p.error(f"--export-arg {item!r}: expected ARCH:ARG with ARCH one of {', '.join(MODELS)}")
        args.export_args.setdefault(arch, []).append(arg)
    return args


def find_binaries(args):
    build = os.environ.get("TERN_BUILD_DIR") or os.path.join(ROOT, "build")
    tern = args.tern or os.environ.get("TERN_BIN") or os.path.join(build, "tern")
    run_model = args.run_model or os.environ.get("TERN_RUN_MODEL")
    if not run_model:
        for cand in (os.path.join(os.path.dirname(tern), "tests", "tern_run_model"),
                     os.path.join(build, "tests", "tern_run_model"),
                     os.path.join(os.path.dirname(tern), "tern_run_model")):
            if os.access(cand, os.X_OK):
                run_model = cand
                break
    return os.path.abspath(tern), run_model


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown-cpu"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def time_case(active, args, threads) -> dict:
    """Warms each engine up, then alternates rounds; returns per-engine timings.

    Each engine gets about --max-seconds of timed runs: at least one per round while a round's
    share fits the budget, fewer rounds when one run is longer than that (PyTorch on the
    transformers: up to a minute a run here), and no timed run at all when one run exceeds the
    whole budget: its last warm-up run (the model has run at least once before it, for the
    agreement check) is then its time, marked as one run. This keeps the full matrix within
    minutes without touching how Tern and ONNX Runtime are timed."""
    est = {}
    for eng in active:
        est[eng.name] = eng.warm(args.warmup, args.max_seconds / 2)
    per_round, n_rounds = {}, {}
    for eng in active:
        one = max(est[eng.name], 1e-3) / 1e3  # s
        budget = int(args.max_seconds / one)
        n_rounds[eng.name] = min(args.rounds, budget)
        total = max(n_rounds[eng.name], min(args.iters, budget))
        per_round[eng.name] = max(1, -(-total // max(n_rounds[eng.name], 1)))
    times = {eng.name: [] for eng in active}
    for r in range(args.rounds):
        order = active[r % len(active):] + active[:r % len(active)]
        for eng in order:
            if r >= n_rounds[eng.name]:
                continue
            times[eng.name] += eng.run(per_round[eng.name])
            time.sleep(0.1)  # let the previous engine's spinning threads go to sleep
    out = {}
    for name, ts in times.items():
        note = None
        if not ts:
            ts, note = [est[name]], "one warm-up run: a run takes longer than --max-seconds"
        out[name] = {"median_ms": statistics.median(ts), "min_ms": min(ts),
                     "p90_ms": float(np.percentile(ts, 90)), "runs": len(ts), "times_ms": ts}
        if note:
            out[name]["note"] = note
    return out


def record_case(results, case, timing, all_engines, unavailable) -> None:
    """Adds one timed case: every engine's timing (or why it has none), Tern's GFLOP/s and
    fraction of peak at the median, and the ratios Tern/peer."""
    for name in all_engines:
        if name in timing:
            case["engines"][name] = timing[name]
        elif name in unavailable:
            case["engines"][name] = {"median_ms": None, "status": "n/a"}
        else:
            case["engines"][name] = {"median_ms": None, "status": "wrong"}
    if "tern" in timing:
        j = all_engines["tern"].last_json
        case["engines"]["tern"].update({
            k: j.get(k) for k in ("isa", "gflops", "peak_gflops", "fraction_of_peak",
                                  "gflop_per_forward", "load_ms", "peak_rss_mb")})
        # GFLOP/s and fraction of peak at the median of all rounds.
        if j.get("gflop_per_forward"):
            g = j["gflop_per_forward"] / (timing["tern"]["median_ms"] / 1e3)
            case["engines"]["tern"]["gflops"] = g
            if j.get("peak_gflops"):
                case["engines"]["tern"]["fraction_of_peak"] = g / j["peak_gflops"]
        for peer in ("ort", "torch"):
            if peer in timing:
                case.setdefault("ratios", {})[f"tern/{peer}"] = \
                    timing["tern"]["median_ms"] / timing[peer]["median_ms"]
    results["cases"].append(case)


def timed_engines(usable) -> dict:
    return {e.name: e for e in usable}


def run_mixed(results, args, arch, model, usable, all_engines, unavailable) -> None:
    """The mixed-length case: a batch of texts with lengths drawn from [MIN, MAX] (Tern's
    `bench --min-seq-len`, seed 42). Tern runs the real tokens only; ONNX Runtime, which pads,
    runs the batch padded to its longest text. Timing only: the outputs of the padded batch are
    not those of the texts (no attention mask), and the engines' agreement is checked on the
    uniform cases. PyTorch is not timed here (the slowest peer by far on transformers)."""
    batch, lo, hi = args.mixed
    by_name = timed_engines(usable)
    tern = by_name["tern"]
    peers = [by_name[n] for n in ("ort",) if n in by_name]
    for threads in args.threads:
        tern.min_seq_len = lo
        tern.start(model, threads)
        tern.set_input(None, batch, hi)
        lengths = tern.bench(0, 1).get("seq_lens") or []
        if len(lengths) != batch:
            log(f"[bench] {model.arch} mixed: tern bench did not report its lengths; skipped")
            tern.min_seq_len = 0
            return
        longest = max(lengths)
        x = model.make_input(batch, longest, args.seed + batch)
        for eng in peers:
            eng.start(model, threads)
            eng.set_input(x, batch, longest)
        try:
            timing = time_case([tern] + peers, args, threads)
        finally:
            tern.min_seq_len = 0
        case = {"model": arch, "batch": batch, "threads": threads,
                "seq_len": None, "image_size": None, "engines": {},
                "mixed": {"min": lo, "max": hi, "seq_lens": lengths, "tokens": sum(lengths),
                          "padded_to": longest}}
        record_case(results, case, timing, all_engines, unavailable)
        if "torch" in case["engines"] and "torch" not in timing:
            case["engines"]["torch"] = {"median_ms": None, "status": "not run"}
        summary = ", ".join(f"{n} {t['median_ms']:.2f} ms" for n, t in timing.items())
        log(f"[bench] {report.case_name(case)} batch {batch} threads {threads}: {summary}")


def run(args) -> dict:
    tern_bin, run_model = find_binaries(args)
    workdir = args.workdir or engines.scratch_dir()
    os.makedirs(workdir, exist_ok=True)
    all_engines = {}
    if "tern" in args.engines:
        all_engines["tern"] = engines.TernEngine(tern_bin, run_model, workdir, args.warmup)
    if "ort" in args.engines:
        all_engines["ort"] = engines.OrtEngine(args.ort_cache, workdir, args.ort_install_timeout)
    all_engines["torch"] = engines.TorchEngine()
    unavailable = {n: e.reason for n, e in all_engines.items() if not e.available}
    for n, why in unavailable.items():
        log(f"[bench] {n} is not available: {why}")
    usable = [e for e in all_engines.values() if e.available]
    torch_eng = all_engines["torch"]

    results = {"cases": [], "agreement": []}
    load_before = os.getloadavg()[0]
    for arch in args.models:
        log(f"[bench] {arch}: building random weights, .tern and torch model")
        t0 = time.perf_counter()
        try:
            model = bench_models.build(arch, workdir, args.seed, args.export_args.get(arch),
                                       args.image_size if arch == "resnet50" else None)
        except Exception as e:  # the exporter's ExportError, or a model torch cannot build
            log(f"[bench] {arch}: cannot build the model, skipped: {e}")
            results.setdefault("skipped_models", {})[arch] = str(e)
            continue
        if "ort" in all_engines and all_engines["ort"].available:
            model.onnx_path()
        log(f"[bench] {arch}: ready in {time.perf_counter() - t0:.0f} s")
        for seq_len in (args.seq_lens if model.is_text else [0]):
            for batch in args.batches:
                x = model.make_input(batch, seq_len, args.seed + batch)
                check_threads = max(args.threads)
                for eng in usable:
                    eng.start(model, check_threads)
                    eng.set_input(x, batch, seq_len)
                ref = torch_eng.output()
                ok = [torch_eng]
                for eng in usable:
                    if eng is torch_eng:
                        continue
                    try:
                        a = engines.agreement(ref, eng.output())
                    except RuntimeError as e:
                        a = {"ok": False, "why": str(e), "min_cosine": None, "max_abs_diff_rel": None}
                    a.update({"engine": eng.name, "model": arch, "batch": batch,
                              "seq_len": seq_len or None, "threads": check_threads})
                    results["agreement"].append(a)
                    log(f"[bench] {arch} batch {batch}{f' seq {seq_len}' if seq_len else ''}: "
                        f"{eng.name} vs torch min cosine {a['min_cosine']} "
                        f"{'ok' if a['ok'] else 'MISMATCH ' + a.get('why', '')}")
                    if a["ok"]:
                        ok.append(eng)
                for threads in args.threads:
                    for eng in ok:
                        if threads != check_threads:
                            eng.start(model, threads)
                            eng.set_input(x, batch, seq_len)
                    timing = time_case(ok, args, threads)
                    case = {"model": arch, "batch": batch, "threads": threads,
                            "seq_len": seq_len or None,
                            "image_size": None if model.is_text else model.image_size,
                            "engines": {}}
                    record_case(results, case, timing, all_engines, unavailable)
                    summary = ", ".join(f"{n} {t['median_ms']:.2f} ms" for n, t in timing.items())
                    log(f"[bench] {report.case_name(case)} batch {batch} threads {threads}: {summary}")
        if model.is_text and args.mixed and "tern" in timed_engines(usable):
            run_mixed(results, args, arch, model, usable, all_engines, unavailable)
        for eng in usable:
            eng.stop()

    tern = all_engines.get("tern")
    # A peak probe can only be slowed down by the rest of the machine (another engine's threads
    # still spinning, other tenants), never sped up: every case is measured against the highest
    # peak any `tern bench` call of this run saw for its ISA and thread count.
    for c in results["cases"]:
        t = c["engines"].get("tern") or {}
        peak = getattr(tern, "peaks", {}).get((t.get("isa"), c["threads"]))
        if peak and t.get("gflops"):
            t["peak_gflops"], t["fraction_of_peak"] = peak, t["gflops"] / peak
    isa = None
    for c in results["cases"]:
        isa = isa or (c["engines"].get("tern") or {}).get("isa")
    results["meta"] = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)), "tern_isa": isa,
        "engines": {n: e.label for n, e in all_engines.items()},
        "tern_cpu": getattr(tern, "cpu", None), "unavailable": unavailable,
        "rounds": args.rounds, "warmup": args.warmup, "iters": args.iters,
        "max_seconds": args.max_seconds, "seed": args.seed,
        "note": f"{args.note} Load average (1 min) {load_before:.1f} at the start, "
                f"{os.getloadavg()[0]:.1f} at the end.",
        "command": "/usr/bin/python3 bench/compare.py " + " ".join(sys.argv[1:]),
        "torch_threads_note": "PyTorch runs in the runner's process with torch.set_num_threads",
    }
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def write_outputs(results: dict, args, rewrite_json: bool = True) -> str:
    os.makedirs(args.out_dir, exist_ok=True)
    stem = args.name or (datetime.date.today().isoformat() + "_" +
                         re.sub(r"[^A-Za-z0-9]+", "-", results["meta"]["cpu"]).strip("-").lower())
    base = os.path.join(args.out_dir, stem)
    if rewrite_json:
        with open(base + ".json", "w") as f:
            json.dump(results, f, indent=1)
    table, note = report.markdown_table(results), report.notes(results)
    with open(base + ".md", "w") as f:
        f.write(f"```sh\n{results['meta']['command']}\n```\n\n{table}\n\n{note}\n")
    with open(base + ".svg", "w") as f:
        f.write(report.svg_chart(results))
    if args.update_readme:
        rel = os.path.relpath(base + ".svg", ROOT)
        if not report.update_readme(os.path.join(ROOT, "README.md"), table, note,
                                    results["meta"]["command"], rel):
            log("[bench] README.md has no bench markers: not updated")
    print(table)
    print()
    print(note)
    log(f"[bench] wrote {base}.json, .md, .svg")
    return base


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.render:
        with open(args.render) as f:
            results = json.load(f)
        args.name = args.name or os.path.splitext(os.path.basename(args.render))[0]
        args.out_dir = os.path.dirname(os.path.abspath(args.render))
        write_outputs(results, args, rewrite_json=False)
        return 0
    torch.set_grad_enabled(False)
    results = run(args)
    write_outputs(results, args)
    bad = [a for a in results["agreement"] if not a["ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
