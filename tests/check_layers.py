#!/usr/bin/env python3
"""The layering check (CTest `layering`): every #include "..." in the shipped code points down a layer,
never up or sideways, and nothing outside models/ switches on an architecture's name.

    kernels/            <- engine/core/ <- models/ <- engine/api/ (the public API, engine/include/tern/)
    engine/frontend/    (shared by the front ends: uses only the public API)
    engine/cli/, engine/server/, python/   (front ends: the public API and engine/frontend/ only)

Also: a model never names an instruction set (models/ may use the Isa type it is handed, never a
particular ISA), and no architecture name appears as a string literal in engine/ (the registry in
models/registry.cpp is the one place that maps names to models).

Usage: check_layers.py [REPO_ROOT]; prints each violation as FILE:LINE: reason and exits 1 if any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Layer of a file (by path prefix) -> include prefixes it may use. Public headers that sit at the
# bottom (error and version types) may be used by every layer.
LEAF_PUBLIC = ("tern/error.hpp", "tern/version.hpp")
PUBLIC = ("tern/",)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("kernels/", ("kernels/",)),
    ("engine/core/", ("kernels/", "engine/core/") + LEAF_PUBLIC),
    ("models/", ("kernels/", "engine/core/", "models/") + LEAF_PUBLIC),
    ("engine/api/", ("kernels/", "engine/core/", "models/", "engine/api/") + PUBLIC),
    ("engine/include/tern/", PUBLIC),
    ("engine/frontend/", PUBLIC + ("engine/frontend/",)),
    # The `tern` binary hosts `tern serve`: the CLI reaches the server through its one entry point.
    ("engine/cli/", PUBLIC + ("engine/frontend/", "engine/cli/", "engine/server/serve.hpp")),
    ("engine/server/", PUBLIC + ("engine/frontend/", "engine/server/")),
    ("python/", PUBLIC + ("engine/frontend/", "python/")),
]
SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".c", ".cc"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
ISA_NAME = re.compile(r"\bIsa::(scalar|avx2|avx512)\b|_avx2\b|_avx512\b|__m256|__m512|immintrin")


def layer_of(rel: str) -> tuple[str, tuple[str, ...]] | None:
    for prefix, allowed in RULES:
        if rel.startswith(prefix):
            return prefix, allowed
    return None


def resolve(include: str, including: Path, root: Path) -> str:
    """The include as a repo-relative path: includes are written from the repo root or from
    engine/include; a bare name is resolved next to the including file."""
    if (root / include).exists() or include.startswith(("kernels/", "engine/", "models/")):
        return include
    if include.startswith("tern/"):
        return include
    local = (including.parent / include).resolve()
    try:
        return str(local.relative_to(root.resolve()))
    except ValueError:
        return include


def architecture_names(root: Path) -> list[str]:
    text = (root / "models/registry.cpp").read_text()
    return re.findall(r'^\s*\{"([a-z0-9_]+)",', text, re.M)


def string_literals(line: str) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', line)


def check(root: Path) -> list[str]:
    problems: list[str] = []
    names = architecture_names(root)
    if not names:
        problems.append("models/registry.cpp: no architecture rows found (the check cannot work)")
    for path in sorted(root.rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        rel = str(path.relative_to(root))
        if rel.startswith(("build", ".git", "tests/", "bench/", "examples/")):
            continue
        layer = layer_of(rel)
        if layer is None:
            continue
        prefix, allowed = layer
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if m:
                target = resolve(m.group(1), path, root)
                if not target.startswith(allowed):
                    problems.append(f"{rel}:{n}: includes \"{m.group(1)}\", above or beside the "
                                    f"{prefix} layer (it may include {', '.join(allowed)})")
            code = line.split("//", 1)[0]
            if prefix == "models/" and ISA_NAME.search(code):
                problems.append(f"{rel}:{n}: a model names an instruction set: {line.strip()}")
            if rel.startswith("engine/"):
                for lit in string_literals(code):
                    if lit in names:
                        problems.append(f"{rel}:{n}: architecture name \"{lit}\" as a string "
                                        "literal (use the registry, models/registry.cpp)")
    return problems


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    problems = check(root)
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
