"""Seed corpus for tests/fuzz/weights_fuzz.cpp: small valid .tern files (F32, BF16, unaligned
offsets listed out of order) written with weights_tools/tern_format.py.

    /usr/bin/python3 tests/fuzz/make_weights_seeds.py OUT_DIR
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from weights_tools import tern_format  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
meta = {"format": "tern", "format_version": "1", "architecture": "toy", "config": '{"n": 2}'}
rng = np.random.default_rng(0)
tensors = {"a": rng.standard_normal((2, 3)).astype(np.float32),
           "b": np.array([np.nan, 1.0, -np.inf], np.float32),
           "s": np.array(1.5, np.float32), "e": np.zeros((0, 2), np.float32)}
for dtype in ("f32", "bf16"):
    tern_format.write_tern(os.path.join(out, f"seed_{dtype}.tern"), tensors, meta, dtype)
tern_format.write_tern(os.path.join(out, "seed_one.tern"), {"x": np.ones(1, np.float32)}, meta)
