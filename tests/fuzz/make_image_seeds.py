"""Writes a small seed corpus for tests/fuzz/image_fuzz.cpp: JPEGs and PNGs of many kinds."""
import os
import sys

import numpy as np
from PIL import Image

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/image_seeds"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
a = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
im = Image.fromarray(a)
im.save(f"{out}/baseline.jpg", quality=80)
im.save(f"{out}/progressive.jpg", quality=80, progressive=True)
im.save(f"{out}/q100_444.jpg", quality=100, subsampling=0)
im.convert("L").save(f"{out}/gray.jpg")
im.save(f"{out}/rgb.png")
im.convert("L").save(f"{out}/gray.png")
im.convert("LA").save(f"{out}/la.png")
im.convert("RGBA").save(f"{out}/rgba.png")
im.quantize(16).save(f"{out}/p4.png", bits=4)
im.quantize(200).save(f"{out}/ptrns.png", transparency=0)
im.convert("1").save(f"{out}/bw.png")
Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)).save(f"{out}/gray16.png")
