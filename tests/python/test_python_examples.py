"""The Python examples run against the installed package and agree with the CLI; the README shows
them verbatim; scripts/setup.sh installs a package that imports from any directory (here into a
temporary --root, so the test leaves the system's site-packages alone)."""

from __future__ import annotations

import os
import subprocess
import unittest
from pathlib import Path

import numpy as np
from PIL import Image

from tern_python_testlib import BUILD, PYTHON, ROOT, install, python_env, small_model, tern

TMP, SITE, tern_pkg = install("tern-py-examples-")
EXAMPLES = ROOT / "examples" / "python"


def example(name: str, *args) -> subprocess.CompletedProcess:
    p = subprocess.run([PYTHON, EXAMPLES / name, *map(str, args)], capture_output=True,
                       text=True, cwd=TMP, env=python_env(SITE))
    if p.returncode != 0:
        raise AssertionError(f"{name} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class Examples(unittest.TestCase):
    def test_embed_folder_matches_the_cli(self):
        model = small_model("resnet50", TMP / "resnet50.tern")
        folder = TMP / "photos"
        (folder / "b" / "deeper").mkdir(parents=True)
        rng = np.random.default_rng(5)
        for i, rel in enumerate(["z.png", "a.jpg", "b/deeper/c.PNG", "b/d.jpeg", "b-e.png"]):
            px = rng.integers(0, 256, (90 + 10 * i, 120, 3), dtype=np.uint8)
            Image.fromarray(px).save(folder / rel, format="PNG" if "png" in rel.lower()
                                     else "JPEG")
        (folder / "notes.txt").write_text("not an image")
        out = TMP / "vectors.npy"
        p = example("embed_folder.py", model, folder, out)
        self.assertIn("5 images", p.stdout)
        got = np.load(out)
        want_file = TMP / "cli.npy"
        tern("embed", model, folder, "--normalize", "-o", want_file)
        want = np.load(want_file)
        self.assertEqual((got.dtype, got.shape), (np.float32, (5, 2048)))
        self.assertTrue(np.array_equal(got, want))
        listed = out.with_suffix(".txt").read_text().splitlines()
        self.assertEqual(listed, sorted(str(p) for p in folder.rglob("*")
                                        if p.suffix.lower() != ".txt" and p.is_file()))

    def test_search(self):
        model = small_model("distilbert", TMP / "distilbert.tern")
        query = "The new electric motorbike has a range of 200 km."  # one of the documents
        lines = example("search.py", model, query).stdout.splitlines()
        self.assertEqual(lines[0], f"query: {query}")
        self.assertEqual(len(lines), 4)
        scores = [float(line.split()[0]) for line in lines[1:]]
        self.assertEqual(lines[1], f"1.000  {query}")
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertEqual(len(example("search.py", model).stdout.splitlines()), 4)

    def test_readme_shows_the_examples_verbatim(self):
        readme = (ROOT / "README.md").read_text()
        for name in ("embed_folder.py", "search.py"):
            self.assertTrue((EXAMPLES / name).read_text().strip() in readme,
                            f"README.md does not show examples/python/{name} verbatim")


class SetupScript(unittest.TestCase):
    def test_setup_installs_a_package_that_imports_from_anywhere(self):
        root = TMP / "root"
        env = dict(os.environ, TERN_BUILD_DIR=str(BUILD), TERN_PIP_ARGS=f"--root {root}")
        p = subprocess.run(["bash", ROOT / "scripts" / "setup.sh", "tern_python"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        sites = list(root.glob("usr/local/lib/python3*/dist-packages"))
        self.assertEqual(len(sites), 1, list(root.rglob("*"))[:20])
        model = small_model("distilbert", TMP / "setup-db.tern", seed=1)
        code = ("import tern; print(tern.__file__); "
                "print(tern.load(%r).tokenize('Hello, world!'))") % str(model)
        p = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd="/",
                           env=python_env(sites[0]))
        self.assertEqual(p.returncode, 0, p.stderr)
        file, ids = p.stdout.splitlines()
        self.assertTrue(Path(file).is_relative_to(sites[0]), file)
        self.assertEqual(ids, "[101, 8667, 117, 1362, 106, 102]")


if __name__ == "__main__":
    unittest.main()
