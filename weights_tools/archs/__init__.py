"""Architecture modules for the exporter.

ARCHS maps the ARCH name given on the command line to the module in this package that converts
it. Modules are imported lazily (importlib), so one architecture's imports never slow down or
break another's; a registered module that does not exist yet is reported as "architecture X is not
available yet".

Interface of an architecture module (weights_tools/archs/<module>.py):

    add_arguments(parser: argparse.ArgumentParser) -> None          # optional
        Adds architecture-specific options. Common options are already there and reach the module
        through `args`: args.dtype ("f32" | "bf16", handled by the frame), args.preprocess
        (None = the architecture's default profile, or "torchvision-v1" | "torchvision-v2" |
        "timm"), args.keep_head (bool), args.seed (int), args.random_init (bool), args.vocab (path
        of a vocab.txt, for text architectures with random init).

    random_source(seed: int, args) -> sources.Source
        Random weights, built with torch / torchvision and seeded by `seed` (torch.manual_seed),
        as a Source whose state_dict uses the same key names as a real checkpoint, so that
        convert() is exercised exactly as for real weights. path and sha256 are None. Text
        architectures fill vocab (sources.read_vocab_file(args.vocab)) and hf_config.

    convert(source: sources.Source, args) -> tuple[dict[str, np.ndarray], dict[str, str]]
        The model surgery: canonical tensor names (docs/FORMAT.md, "Tensor names per
        architecture"), float32 numpy arrays, and the metadata entries this architecture owns:
        "config" (JSON text), and "preprocess" (JSON text, image models) or "tokenizer" (JSON
        text) + "vocab" (one token a line, text models). A checkpoint that does not match raises
        sources.ExportError naming the tensor (missing, or "has shape [..], expected [..]").
        The frame (export.py) adds format, format_version, architecture and source; a module
        must not set those.

Imports inside an architecture module: `from weights_tools.sources import ExportError, Source, take_tensor`
(export.py puts the repository root on sys.path, tests do the same). Keep torch / torchvision
imports inside the module, not here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from weights_tools.sources import ExportError

ARCHS = {"resnet50": "resnet50", "vit_b_16": "vit", "distilbert": "distilbert", "bert": "bert",
         "clip": "clip"}


def load_arch(name: str) -> ModuleType:
    """The module for ARCH `name`; ExportError for an unknown or not yet available architecture."""
    if name not in ARCHS:
        raise ExportError(f"unknown architecture '{name}' (known: {', '.join(sorted(ARCHS))})")
    module_name = f"{__name__}.{ARCHS[name]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise  # the module exists but one of its own imports is missing: a real bug
        raise ExportError(f"architecture {name} is not available yet") from None
    for required in ("random_source", "convert"):
        if not callable(getattr(module, required, None)):
            raise ExportError(f"architecture {name}: module {module_name} has no {required}()")
    return module
