"""The sdist carries everything a build from it needs: the C sources and
headers, the Cython sources and stubs, the CUDA kernels, the meson files;
and the CUDA source is installed beside the package (importlib.resources).
The wheel built from this sdist is installed and imported in a clean venv by
.ci/run (python -m build builds the wheel from the sdist)."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = [
    "pyproject.toml",
    "meson.build",
    "meson.options",
    "README.md",
    "CHANGELOG.md",
    "src_c/meson.build",
    "src_c/lsm.h",
    "src_c/lsm_exp.h",
    "src_c/lsm_threads.h",
    "src_c/lsm_kernels.c",
    "src_c/lsm_kernels.template.c",
    "src_c/lsm_dispatch.c",
    "src_c/lsm_threads.c",
    "lsm_ext/meson.build",
    "lsm_ext/_core.pyx",
    "lsm_ext/_core.pyi",
    "lsm_ext/_outcache.pyx",
    "lsm_ext/_outcache.h",
    "lsm_ext/_outcache.pyi",
    "lsm_ext/py.typed",
    "lsm_ext/_cuda/lsm_kernels.cuh",
    "lsm_ext/__init__.py",
    "lsm_ext/_dispatch.py",
    "lsm_ext/_numpy.py",
    "lsm_ext/_cupy.py",
    "lsm_ext/_generic.py",
    "lsm_ext/_dask.py",
    "lsm_ext/_fallback.py",
    "lsm_ext/bench.py",
    "tests/c/test_kernels.c",
]


def test_sdist_file_list(tmp_path):
    try:
        import build  # noqa: F401
    except ImportError:
        if os.environ.get("LSM_EXT_REQUIRE_BACKENDS") == "1":
            pytest.fail("the 'build' package is not installed")
        pytest.skip("the 'build' package is not installed")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (meson dist packs the tracked files)")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--outdir",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (sdist,) = tmp_path.glob("lsm_ext-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    missing = [f for f in NEEDED if f not in names]
    assert not missing, f"missing from the sdist: {missing}"
    assert not [n for n in names if n.endswith((".so", ".o", ".pyc"))]


def test_cuda_source_installed_with_the_package():
    from importlib.resources import files

    src = files("lsm_ext").joinpath("_cuda", "lsm_kernels.cuh").read_text()
    assert "lsm_rows" in src and "lsm_lines" in src
