"""Builds the `tern` Python package: python/tern/ plus the extension tern._tern, which CMake builds
(target tern_python) from python/src/tern_module.cpp over the C++ library. The exporter
(weights_tools/) and the vocabularies it defaults to (data/vocab/) are shipped beside it, so
tern.convert works without the source tree.

The CMake build directory: $TERN_BUILD_DIR, else build/ when it is configured (what
scripts/setup.sh builds), else build-python/ (configured here, without the tests).
Metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def cmake_build_dir() -> Path:
    if os.environ.get("TERN_BUILD_DIR"):
        return Path(os.environ["TERN_BUILD_DIR"]).resolve()
    if (ROOT / "build" / "CMakeCache.txt").exists():
        return ROOT / "build"
    return ROOT / "build-python"


class CMakeExtension(build_ext):
    """Runs CMake for the tern_python target and copies the module it builds."""

    def build_extension(self, ext):
        build_dir = cmake_build_dir()
        if not (build_dir / "CMakeCache.txt").exists():
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            self._run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *gen,
                       "-DCMAKE_BUILD_TYPE=Release", "-DTERN_BUILD_TESTS=OFF",
                       f"-DPython_EXECUTABLE={sys.executable}"])
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        self._run(["cmake", "--build", str(build_dir), "--target", "tern_python", "-j", jobs])
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = build_dir / "python" / "tern" / f"_tern{suffix}"
        if not built.exists():
            found = sorted(p.name for p in (build_dir / "python" / "tern").glob("_tern*"))
            raise RuntimeError(f"{built} was not built (found {found}): {build_dir} is configured "
                               f"for another Python; set TERN_BUILD_DIR to a fresh directory")
        dest = Path(self.get_ext_fullpath(ext.name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)

    @staticmethod
    def _run(cmd):
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


class BuildPy(build_py):
    """Also ships data/vocab/*.txt as tern/data/vocab/ (the exporter's default vocabularies)."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "tern" / "data" / "vocab"
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted((ROOT / "data" / "vocab").glob("*.txt")):
            shutil.copyfile(f, dest / f.name)


setup(
    ext_modules=[Extension("tern._tern", sources=[])],
    cmdclass={"build_ext": CMakeExtension, "build_py": BuildPy},
    options={"build": {"build_base": str(cmake_build_dir() / "setuptools")},
             "egg_info": {"egg_base": str(cmake_build_dir())}},
)
