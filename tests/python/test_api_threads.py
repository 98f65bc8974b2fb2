"""A loaded model used from several threads at once gives bit-identical results to serial use
(PRODUCT.md "Library API"), for an image and a text model."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np

from tern_testlib import RUN_MODEL, export, run


class ConcurrentUse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-threads-"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def check(self, model, x, *extra):
        inp, out = self.tmp / "in.npy", self.tmp / "out.npy"
        np.save(inp, x)
        for threads in ("1", "2"):
            p = run([RUN_MODEL, model, inp, out, "--threads", threads, "--concurrent", "4", *extra],
                    check=False)
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_image_model(self):
        model = export("resnet50", self.tmp / "r.tern", "--layers", "1,1,1,1")
        x = np.random.default_rng(0).standard_normal((2, 3, 96, 96)).astype(np.float32)
        self.check(model, x)

    def test_text_model(self):
        model = export("distilbert", self.tmp / "d.tern", "--layers", "2")
        ids = np.random.default_rng(1).integers(1000, 20000, (3, 20)).astype(np.int32)
        lengths = self.tmp / "len.npy"
        np.save(lengths, np.array([20, 7, 1], dtype=np.int32))
        self.check(model, ids, "--lengths", lengths)


if __name__ == "__main__":
    unittest.main()
