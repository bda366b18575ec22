"""The C core as a meson subproject: a small C project (tests/c_consumer)
pulls lsm_ext in with ``dependency('lsm', fallback: ['lsm_ext', 'lsm_dep'])``,
builds with meson + ninja (the Python extension is skipped in a
subproject), calls lsm_logsumexp_f64 and lsm_log_softmax_f32 from C and
checks them against long-double references."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("LSM_EXT_REQUIRE_BACKENDS") == "1":
            pytest.fail(f"{name} not found")
        pytest.skip(f"{name} not found")
    return path


def test_consumer_project_builds_and_checks(tmp_path):
    meson = _tool("meson")
    _tool("ninja")
    proj = tmp_path / "consumer"
    shutil.copytree(ROOT / "tests" / "c_consumer", proj)
    sub = proj / "subprojects" / "lsm_ext"
    sub.parent.mkdir()
    # the source tree as a subproject (what `meson wrap` or a copy would give)
    shutil.copytree(
        ROOT,
        sub,
        ignore=shutil.ignore_patterns(
            ".git",
            "build",
            "builddir",
            ".mesonpy*",
            "__pycache__",
            "*.so",
            ".asv",
            "dist",
            "tests",
        ),
    )
    (sub / "tests" / "c").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "c" / "test_kernels.c", sub / "tests" / "c")
    env = dict(os.environ)
    r = subprocess.run(
        [meson, "setup", str(tmp_path / "b"), str(proj)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run(
        [meson, "compile", "-C", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # no Python extension was built for the subproject
    assert not list((tmp_path / "b").rglob("_core*.so"))
    r = subprocess.run(
        [str(tmp_path / "b" / "consumer")], capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout
