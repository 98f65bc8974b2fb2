"""tern.convert: the exporter (weights_tools/export.py) as a function, run in this process."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path
from typing import Any

from tern._tern import Error

_PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def convert(arch: str, source: str | os.PathLike | None = None,
            out: str | os.PathLike | None = None, random_init: bool = False, seed: int = 0,
            dtype: str = "f32", **options: Any) -> str:
    """Converts a PyTorch / Hugging Face checkpoint into a ``.tern`` weight file; returns ``out``.

    Runs ``weights_tools/export.py ARCH [SOURCE] -o OUT ...`` in this process (it imports torch,
    so the first call takes a few seconds)::

        tern.convert("resnet50", "resnet50-0676ba61.pth", out="resnet50.tern")
        tern.convert("distilbert", "path/to/distilbert-base-cased/", out="db.tern", dtype="bf16")
        tern.convert("resnet50", out="small.tern", random_init=True, seed=1, layers="1,1,1,1")

    Args:
        arch: ``resnet50``, ``vit_b_16``, ``distilbert`` (and what else the exporter knows).
        source: a ``.pth``/``.pt``/``.safetensors`` file or a Hugging Face model directory;
            omit it with ``random_init=True``.
        out: the ``.tern`` file to write (atomically: no partial file on failure).
        random_init: random weights instead of a checkpoint, from ``seed``.
        dtype: ``"f32"`` or ``"bf16"``.
        **options: any other exporter option, named as in ``export.py --help`` with ``_`` for
            ``-``: ``True`` gives the flag alone (``keep_head=True`` -> ``--keep-head``),
            ``False``/``None`` leaves it out, a list is joined with commas
            (``layers=[1, 1, 1, 1]`` -> ``--layers 1,1,1,1``).

    Raises:
        tern.Error: the exporter's one-line message (missing tensor, wrong shape, bad option...).
    """
    if out is None:
        raise Error("convert: out= (the .tern file to write) is required")
    argv = [str(arch)]
    if source is not None:
        argv.append(os.fspath(source))
    argv += ["-o", os.fspath(out), "--dtype", str(dtype)]
    if random_init:
        argv += ["--random-init", "--seed", str(int(seed))]
    elif seed != 0:
        argv += ["--seed", str(int(seed))]  # the exporter says why that is wrong
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    export = _exporter()
    log = io.StringIO()  # the exporter's stderr: passed on when it succeeds; on failure its
    try:                 # usage text would only repeat what the error says
        with contextlib.redirect_stderr(log):
            export.export(argv)
        sys.stderr.write(log.getvalue())
    except export.ExportError as e:
        raise Error(str(e)) from None
    except SystemExit as e:  # argparse: --help or a usage error it handled itself
        raise Error(f"convert: the exporter stopped (exit status {e.code})") from None
    except OSError as e:
        raise Error(f"{e.filename or out}: {e.strerror or e}") from None
    return os.fspath(out)


def _exporter():
    """weights_tools.export: installed beside this package (pip install of the source tree)."""
    try:
        from weights_tools import export
    except ImportError as e:
        raise Error(f"convert: the exporter (weights_tools) is not installed: {e}") from None
    # An installed exporter has no repository around it: give it the vocabularies shipped here.
    default_vocab = getattr(export, "DEFAULT_VOCAB", None)
    if default_vocab and not os.path.exists(default_vocab):
        shipped = _PACKAGE_DATA / "vocab" / os.path.basename(default_vocab)
        if shipped.exists():
            export.DEFAULT_VOCAB = str(shipped)
    return export
