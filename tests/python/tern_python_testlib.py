"""Helpers for the tests of the Python package (test_python_*.py): they test the *installed*
package, never the source tree. install() pip-installs the source tree into a temporary
directory (reusing the CMake build in $TERN_BUILD_DIR), puts it first on sys.path and moves
into a temporary working directory, so `import tern` can only find the installed copy."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import tern_testlib
from tern_testlib import PYTHON, ROOT, export, run, tern  # noqa: F401

# The tests move into a temporary directory: make the tree's paths absolute first.
tern_testlib.BUILD = BUILD = tern_testlib.BUILD.resolve()
tern_testlib.TERN = TERN = tern_testlib.TERN.resolve()

# The exporter's smallest configuration per architecture.
SMALL_ARGS = {
    "resnet50": ["--layers", "1,1,1,1"],
    "distilbert": ["--layers", "2", "--dim", "64", "--heads", "4", "--hidden-dim", "128"],
    "vit_b_16": ["--layers", "1", "--hidden-dim", "64", "--heads", "4", "--mlp-dim", "128",
                 "--patch-size", "32"],
    "clip": [],  # its --random-init sizes are small already
}


def pip_install(site: Path) -> None:
    env = dict(os.environ, TERN_BUILD_DIR=str(BUILD), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    # CTest runs test files in parallel; builds in one CMake/setuptools directory may not be.
    with open(BUILD / "python-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = subprocess.run([PYTHON, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                            "--quiet", "--target", str(site), str(ROOT)],
                           capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise AssertionError(f"pip install of the source tree failed:\n{p.stdout}\n{p.stderr}")


def install(prefix: str = "tern-py-"):
    """Installs the package; returns (tmp dir, site dir, the imported tern module)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    site = tmp / "site"
    pip_install(site)
    sys.path.insert(0, str(site))
    os.chdir(tmp)
    import tern
    where = Path(tern.__file__).resolve()
    if site.resolve() not in where.parents:
        raise AssertionError(f"imported tern from {where}, not from the installed {site}")
    return tmp, site, tern


def python_env(site: Path) -> dict:
    """Environment for a child interpreter that sees only the installed package."""
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    return env


def small_model(arch: str, out: Path, seed: int = 3) -> Path:
    return export(arch, out, *SMALL_ARGS[arch], seed=seed)


def cli_error(*args) -> str:
    """The message `tern` prints for a failing command, without its "tern CMD: error: " prefix."""
    p = tern(*args, check=False)
    if p.returncode == 0:
        raise AssertionError(f"tern {args} succeeded")
    line = p.stderr.strip().splitlines()[-1]
    marker = ": error: "
    return line.split(marker, 1)[1] if marker in line else line
