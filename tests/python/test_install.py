"""`cmake --install` gives a usable package: the examples/ project (C++ and C API) builds against
the installed tree with find_package(Tern), runs, and agrees with the CLI. The README shows those
example files verbatim, so they cannot rot."""

from __future__ import annotations

import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_testlib import BUILD, ROOT, export, run, tern


class InstalledPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="tern-install-"))
        cls.prefix = cls.tmp / "prefix"
        run(["cmake", "--install", BUILD, "--prefix", cls.prefix])
        ex = cls.tmp / "ex"
        run(["cmake", "-S", ROOT / "examples", "-B", ex, "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_PREFIX_PATH={cls.prefix}"])
        run(["cmake", "--build", ex])
        cls.embed, cls.embed_c = ex / "embed", ex / "embed_c"
        cls.model = export("resnet50", cls.tmp / "resnet.tern", "--layers", "1,1,1,1")
        rng = np.random.default_rng(3)
        cls.image = cls.tmp / "img.png"
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(cls.image)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_installed_layout(self):
        for rel in ("include/tern/tern.hpp", "include/tern/tern_c.h", "include/tern/error.hpp",
                    "lib/libtern.a", "bin/tern", "lib/cmake/Tern/TernConfig.cmake"):
            self.assertTrue((self.prefix / rel).exists(), rel)

    def first_value(self, program):
        out = run([program, self.model, self.image]).stdout
        self.assertIn("2048 floats", out)
        return float(out.split("first")[1])

    def test_cpp_and_c_examples_agree_with_the_cli(self):
        normed = json.loads(tern("embed", self.model, self.image, "--normalize").stdout)["embedding"]
        plain = json.loads(tern("embed", self.model, self.image).stdout)["embedding"]
        self.assertAlmostEqual(self.first_value(self.embed), normed[0], places=6)  # C++: normalised
        self.assertAlmostEqual(self.first_value(self.embed_c), plain[0], places=5)  # C: not

    def test_c_api_reports_errors(self):
        p = run([self.embed_c, self.tmp / "missing.tern", self.image], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing.tern", p.stderr)
        p = run([self.embed, self.model, self.tmp / "missing.png"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing.png", p.stderr)

    def test_readme_shows_the_examples_verbatim(self):
        readme = (ROOT / "README.md").read_text()
        for name in ("embed.cpp", "embed_c.c"):
            self.assertIn((ROOT / "examples" / name).read_text().strip(), readme, name)


if __name__ == "__main__":
    unittest.main()
