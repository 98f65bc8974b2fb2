"""Helpers shared by the Python tests: where the binaries are, exporting small random models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TERN_BUILD_DIR", ROOT / "build"))
TERN = Path(os.environ.get("TERN_BIN", BUILD / "tern"))
RUN_MODEL = BUILD / "tests" / "tern_run_model"
IMAGE_DUMP = BUILD / "tests" / "tern_image_dump"
PYTHON = "/usr/bin/python3"


def run(args, check=True, **kw):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def export(arch: str, out: Path, *extra: str, seed: int = 0) -> Path:
    """weights_tools/export.py ARCH --random-init --seed SEED -o OUT [extra...]"""
    run([PYTHON, ROOT / "weights_tools" / "export.py", arch, "--random-init", "--seed", str(seed),
         "-o", out, *extra])
    return out


def tern(*args, check=True, **kw):
    return run([TERN, *args], check=check, **kw)


NODE_CACHE = ROOT / "tests" / ".cache"


def npm_install(package: str, version: str):
    """npm install PACKAGE@VERSION into tests/.cache/<package> once, for a test peer written by
    others. -> (node_modules dir, "") or (None, why it is not available)."""
    import json
    import shutil

    prefix = NODE_CACHE / package.replace("/", "_").replace("@", "")
    pkg = prefix / "node_modules" / package / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == version:
        return prefix / "node_modules", ""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node/npm are not installed"
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        p = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--no-save", "--prefix", str(prefix), f"{package}@{version}"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "npm install timed out (registry unreachable?)"
    if p.returncode != 0 or not pkg.exists():
        return None, "npm install failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    return prefix / "node_modules", ""
