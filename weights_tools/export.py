#!/usr/bin/python3
"""Convert a PyTorch / Hugging Face checkpoint into a .tern weight file.

    /usr/bin/python3 weights_tools/export.py ARCH SOURCE -o OUT.tern [--dtype f32|bf16]
                                             [--preprocess PROFILE] [--keep-head]
    /usr/bin/python3 weights_tools/export.py ARCH --random-init [--seed N] -o OUT.tern
    /usr/bin/python3 weights_tools/export.py auto SOURCE -o OUT.tern    # ARCH from the source

ARCH `auto` decides the architecture from the source (weights_tools/auto.py). A
sentence-transformers directory (modules.json) is read by weights_tools/st.py: its Transformer
goes to the architecture module, its Pooling / Dense / Normalize / prompts / max_seq_length become
the file's `embedding` defaults (st.apply, after convert()).

The frame here parses the common options, loads the source (weights_tools/sources.py), hands it
to the architecture module (weights_tools/archs/), adds the frame's metadata, validates the
result and writes it atomically (weights_tools/tern_format.py). Errors: one line on stderr,
exit status 1, no output file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a script: make `weights_tools.*` importable
    _ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

from weights_tools import auto, sources, st, tern_format  # noqa: E402
from weights_tools.archs import ARCHS, load_arch  # noqa: E402
from weights_tools.sources import ExportError  # noqa: E402

# One module object per file, whichever way an architecture module spells the import.
sys.modules.setdefault("sources", sources)
sys.modules.setdefault("tern_format", tern_format)

EXPORTER_VERSION = "tern-export 0.1.0"
PREPROCESS_PROFILES = ("torchvision-v1", "torchvision-v2", "timm")
FRAME_METADATA = ("format", "format_version", "architecture", "source")
AUTO = "auto"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VOCAB = os.path.join(REPO_ROOT, "data", "vocab", "bert-base-cased-vocab.txt")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 1 on usage errors, like every other export failure."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise ExportError(message)


def build_parser(arch_module=None) -> argparse.ArgumentParser:
    p = _Parser(
        prog="export.py",
        description="Convert a PyTorch / Hugging Face checkpoint into a .tern weight file "
                    "(format: docs/FORMAT.md).",
        epilog="SOURCE is a torchvision/timm state dict (.pth/.pt, loaded with weights_only=True), "
               "a .safetensors file, or a Hugging Face model directory (config.json + "
               "model.safetensors or pytorch_model.bin + vocab.txt or tokenizer.json). "
               "`export.py ARCH --help` also lists the options of that architecture. "
               "Errors: one line on stderr, exit status 1, no output file.")
    p.add_argument("arch", metavar="ARCH",
                   help="architecture: " + ", ".join(ARCHS) + ", or auto (decided from SOURCE: "
                        "config.json model_type / architectures, a sentence-transformers "
                        "modules.json, the tensor names of a state dict; no architecture options)")
    p.add_argument("source", metavar="SOURCE", nargs="?",
                   help="checkpoint file or Hugging Face directory (omit with --random-init)")
    p.add_argument("-o", "--output", metavar="OUT.tern", required=True,
                   help="output file, written atomically (temporary file, then rename)")
    p.add_argument("--dtype", choices=tern_format.DTYPES, default="f32",
                   help="storage type of the weights (default f32; bf16 halves the file)")
    p.add_argument("--preprocess", choices=PREPROCESS_PROFILES, default=None,
                   help="image preprocessing profile recorded in the file (image models; "
                        "default: the architecture's own, torchvision-v1)")
    p.add_argument("--keep-head", action="store_true",
                   help="keep the classification head (e.g. ResNet50 fc) that embeddings do not use")
    p.add_argument("--random-init", action="store_true",
                   help="export randomly initialised weights instead of a checkpoint")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for --random-init (default 0)")
    p.add_argument("--vocab", metavar="FILE", default=None,
                   help="vocab.txt for text architectures with --random-init "
                        "(default: data/vocab/bert-base-cased-vocab.txt)")
    if arch_module is not None and hasattr(arch_module, "add_arguments"):
        arch_module.add_arguments(p)
    return p


def _peek_arch(argv: list[str]) -> str | None:
    """The ARCH positional, found before the full parser (which depends on it) exists."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("arch", nargs="?")
    pre.add_argument("-o", "--output")
    pre.add_argument("--dtype")
    pre.add_argument("--preprocess")
    pre.add_argument("--seed")
    pre.add_argument("--vocab")
    known, _ = pre.parse_known_args(argv)
    return known.arch


def parse_args(argv: list[str]):
    arch = _peek_arch(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    module = None
    if arch is not None and arch != AUTO and (arch in ARCHS or not wants_help):
        try:
            module = load_arch(arch)
        except ExportError:
            if not wants_help:
                raise
    args = build_parser(module).parse_args(argv)
    if args.random_init and args.source is not None:
        raise ExportError("give either SOURCE or --random-init, not both")
    if not args.random_init and args.source is None:
        raise ExportError("missing SOURCE (a checkpoint file or directory), or use --random-init")
    if args.arch == AUTO and args.random_init:
        raise ExportError("auto decides the architecture from SOURCE; with --random-init name it "
                          f"({', '.join(ARCHS)})")
    if args.seed is not None and not args.random_init:
        raise ExportError("--seed only applies with --random-init")
    if args.seed is None:
        args.seed = 0
    args.vocab_given = args.vocab is not None
    if args.vocab is None:
        args.vocab = DEFAULT_VOCAB
    elif not args.random_init and not getattr(module, "ACCEPTS_VOCAB", False):
        raise ExportError("--vocab only applies with --random-init (a checkpoint brings its own)")
    return module, args


def validate(arch: str, tensors, metadata) -> None:
    """The architecture module's output obeys the contract (its bugs are caught here)."""
    if not isinstance(tensors, dict) or not tensors:
        raise ExportError(f"architecture {arch} produced no tensors")
    if not isinstance(metadata, dict):
        raise ExportError(f"architecture {arch} returned metadata that is not a dict")
    for name, a in tensors.items():
        if not isinstance(name, str) or not name or name.startswith("__"):
            raise ExportError(f"architecture {arch}: invalid tensor name {name!r}")
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
            raise ExportError(f"architecture {arch}: tensor {name} is {kind}, expected float32")
        if a.ndim > tern_format.MAX_RANK:
            raise ExportError(f"architecture {arch}: tensor {name} has rank {a.ndim}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ExportError(f"architecture {arch}: metadata {key!r} must be a string, "
                              f"got {type(value).__name__}")
        if key in FRAME_METADATA:
            raise ExportError(f"architecture {arch}: metadata key '{key}' belongs to the frame")


def source_metadata(source: sources.Source | None, args) -> str:
    if args.random_init:
        info = {"kind": "random-init", "path": None, "sha256": None, "seed": args.seed}
    else:
        info = {"kind": "checkpoint", "path": source.path, "sha256": source.sha256, "seed": None}
    info["description"] = source.description if source is not None else None
    info["exporter"] = EXPORTER_VERSION
    return json.dumps(info)


def _resolve_auto(source: sources.Source, args):
    """`auto`: the architecture the source shows; its options at their defaults (or as the
    source implies, e.g. a ResNet's block counts). Sets args.arch; returns the module."""
    arch, options = auto.detect(source)
    module = load_arch(arch)
    defaults = argparse.ArgumentParser(add_help=False)
    if hasattr(module, "add_arguments"):
        module.add_arguments(defaults)
    for key, value in vars(defaults.parse_args([])).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    for key, value in options.items():
        setattr(args, key, value)
    args.arch = arch
    return module


def export(argv: list[str]) -> str:
    """Runs the exporter; returns the summary line. Raises ExportError."""
    module, args = parse_args(argv)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise ExportError(f"cannot write {args.output}: directory {out_dir} does not exist")
    if os.path.isdir(args.output):
        raise ExportError(f"cannot write {args.output}: it is a directory")
    if args.random_init:
        source = module.random_source(args.seed, args)
    elif hasattr(module, "load_source"):  # an architecture with its own source formats (clip)
        source = module.load_source(args.source, args)
    else:
        source = sources.load_source(args.source)
    if args.arch == AUTO:
        module = _resolve_auto(source, args)
    tensors, metadata = module.convert(source, args)
    if source.sentence_transformers is not None:
        tensors, metadata = st.apply(source.sentence_transformers, tensors, metadata)
    validate(args.arch, tensors, metadata)
    metadata = dict(metadata)
    metadata.update({
        "format": tern_format.FORMAT,
        "format_version": str(tern_format.FORMAT_VERSION),
        "architecture": args.arch,
        "source": source_metadata(source, args),
    })
    try:
        tern_format.write_tern(args.output, tensors, metadata, dtype=args.dtype)
    except OSError as e:
        raise ExportError(f"cannot write {args.output}: {e.strerror or e}") from None
    params = sum(int(a.size) for a in tensors.values())
    size = os.path.getsize(args.output)
    summary = (f"wrote {args.output}: {args.arch}, {len(tensors)} tensors, {params:,} parameters, "
               f"{size:,} bytes ({args.dtype})")
    spec = source.sentence_transformers
    if spec is not None:
        summary += (f"; sentence-transformers defaults: {spec.pooling} pooling, "
                    f"{len(spec.dense)} dense, normalize {str(spec.normalize).lower()}")
    return summary


def main(argv: list[str] | None = None) -> int:
    try:
        print(export(sys.argv[1:] if argv is None else argv))
        return 0
    except ExportError as e:
        print(f"export.py: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
