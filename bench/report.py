"""Results of bench/compare.py as a Markdown table, a hand-written SVG chart and the README section."""

from __future__ import annotations

import html
import math
import re

ENGINES = ("tern", "ort", "torch")
COLORS = {"tern": "#d9480f", "ort": "#1c7ed6", "torch": "#868e96"}
NAMES = {"tern": "Tern", "ort": "ONNX Runtime", "torch": "PyTorch"}


def case_name(r: dict) -> str:
    model = {"resnet50": "ResNet50", "vit_b_16": "ViT-B/16", "distilbert": "DistilBERT",
             "bert": "BERT-base", "minilm_l6": "MiniLM-L6"}[r["model"]]
    mixed = r.get("mixed")
    if mixed:
        return (f"{model} mixed {mixed['min']}-{mixed['max']} tok ({mixed['tokens']} real; "
                f"peers padded to {mixed['padded_to']})")
    shape = f"{r['seq_len']} tok" if r.get("seq_len") else f"{r['image_size']}px"
    return f"{model} {shape}"


def _ms(engine: dict | None) -> str:
    if not engine:
        return "–"
    if engine.get("median_ms") is None:
        return engine.get("status", "–")
    ms = engine["median_ms"]
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"


def markdown_table(results: dict) -> str:
    lines = ["| model | batch | threads | Tern ms | ONNX Runtime ms | PyTorch ms | Tern/ORT | "
             "Tern/PyTorch | Tern % of FMA peak |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["cases"]:
        e = r["engines"]
        ratios = r.get("ratios", {})
        frac = e.get("tern", {}).get("fraction_of_peak")
        lines.append("| " + " | ".join([
            case_name(r), str(r["batch"]), str(r["threads"]),
            _ms(e.get("tern")), _ms(e.get("ort")), _ms(e.get("torch")),
            f"{ratios['tern/ort']:.2f}" if ratios.get("tern/ort") else "–",
            f"{ratios['tern/torch']:.2f}" if ratios.get("tern/torch") else "–",
            f"{100 * frac:.0f}%" if frac else "–"]) + " |")
    return "\n".join(lines)


def notes(results: dict) -> str:
    m = results["meta"]
    out = [f"Median of {m['rounds']} alternating rounds after warm-up; ratios < 1 mean Tern is faster. "
           f"Machine: {m['cpu']} ({m['cores']} cores), Tern ISA {m.get('tern_isa', '?')}, "
           f"{m['date']}. {m['note']}"]
    uniform = [r["ratios"]["tern/ort"] for r in results["cases"]
               if not r.get("mixed") and r.get("ratios", {}).get("tern/ort")]
    if uniform:
        geo = math.exp(sum(math.log(v) for v in uniform) / len(uniform))
        out.append(f"Tern/ONNX Runtime: geometric mean {geo:.2f} over {len(uniform)} cases, "
                   f"worst {max(uniform):.2f}.")
    for r in results["cases"]:
        if r.get("mixed") and r.get("ratios", {}).get("tern/ort"):
            out.append(f"{case_name(r)}, {r['threads']} threads: Tern/ONNX Runtime "
                       f"{r['ratios']['tern/ort']:.2f}.")
    for eng, why in m.get("unavailable", {}).items():
        out.append(f"{NAMES.get(eng, eng)} was not available: {why}.")
    for arch, why in results.get("skipped_models", {}).items():
        out.append(f"{arch} was skipped: {why}.")
    bad = [a for a in results.get("agreement", []) if not a["ok"]]
    for a in bad:
        out.append(f"{NAMES.get(a['engine'], a['engine'])} disagreed with PyTorch on {a['model']} "
                   f"batch {a['batch']} (min cosine {a.get('min_cosine')}): not timed.")
    return "\n\n".join(out)


def svg_chart(results: dict) -> str:
    """Horizontal grouped bars of median ms per case, log scale (engines differ by 10x)."""
    cases = [r for r in results["cases"] if any(
        (r["engines"].get(e) or {}).get("median_ms") for e in ENGINES)]
    label_w, bar_h, gap, width, top = 230, 11, 10, 900, 60
    plot_w = width - label_w - 80
    times = [r["engines"][e]["median_ms"] for r in cases for e in ENGINES
             if (r["engines"].get(e) or {}).get("median_ms")]
    lo = 10 ** math.floor(math.log10(min(times))) if times else 1
    hi = 10 ** math.ceil(math.log10(max(times))) if times else 10
    hi = max(hi, lo * 10)

    def x_of(ms):
        return label_w + plot_w * (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    group_h = 3 * bar_h + gap
    height = top + len(cases) * group_h + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="10" y="18" font-size="14" font-weight="bold">Median latency per forward pass '
           '(ms, log scale, shorter is faster)</text>',
           f'<text x="10" y="34" fill="#555">{html.escape(results["meta"]["cpu"])}, '
           f'{html.escape(results["meta"]["date"])}</text>']
    for i, eng in enumerate(ENGINES):
        x = label_w + i * 140
        out.append(f'<rect x="{x}" y="42" width="10" height="10" fill="{COLORS[eng]}"/>'
                   f'<text x="{x + 14}" y="51">{NAMES[eng]}</text>')
    decade = lo
    while decade <= hi * 1.0001:
        x = x_of(decade)
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 30}" '
                   f'stroke="#ddd"/><text x="{x:.1f}" y="{height - 16}" text-anchor="middle" '
                   f'fill="#555">{decade:g}</text>')
        decade *= 10
    for ci, r in enumerate(cases):
        y0 = top + ci * group_h
        label = f"{case_name(r)}, batch {r['batch']}, {r['threads']} thr"
        out.append(f'<text x="{label_w - 8}" y="{y0 + 1.5 * bar_h + 4}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        for ei, eng in enumerate(ENGINES):
            ms = (r["engines"].get(eng) or {}).get("median_ms")
            if not ms:
                continue
            y = y0 + ei * bar_h
            w = max(x_of(ms) - label_w, 1)
            out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                       f'fill="{COLORS[eng]}"/><text x="{label_w + w + 4:.1f}" y="{y + bar_h - 3}" '
                       f'font-size="9">{ms:.1f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def update_readme(readme_path: str, table: str, note: str, command: str, svg_rel: str) -> bool:
    """Replaces the text between the bench markers in README.md; False when they are missing."""
    with open(readme_path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        return False
    body = (f"{BEGIN}\n```sh\n{command}\n```\n\n{table}\n\n{note}\n\n![chart]({svg_rel})\n{END}")
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: body, text, flags=re.S)
    with open(readme_path, "w", encoding="utf-8") as f:
        f.write(text)
    return True
