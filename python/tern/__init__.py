"""Tern: image and text embeddings on the CPU, from Python.

    import tern
    m = tern.load("resnet50.tern")                 # a tern.Model; tern.Error on a bad file
    v = m.embed_images(["a.jpg", "b.png"])         # float32 ndarray [2, 2048]
    t = tern.load("distilbert.tern")
    t.encode(["one", "two"])                       # sentence-transformers style: [2, 768]

Everything runs in Tern's own C++ engine (no PyTorch at inference time); results are
bit-identical to ``tern embed`` with the same inputs and options. Every failure raises
:class:`tern.Error` with the message the ``tern`` command prints. ``tern.convert`` turns
PyTorch / Hugging Face checkpoints into ``.tern`` files (it imports torch when called).
"""

from __future__ import annotations

from tern._convert import convert
from tern._model import Error, Model, load, similarity
from tern._tern import version as __version__

__all__ = ["Error", "Model", "convert", "load", "similarity", "__version__"]

for _f in (Model, convert, load, similarity):
    _f.__module__ = "tern"  # help() and repr() name the public module
del _f
