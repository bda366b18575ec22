"""The CUDA source of the CuPy backend compiles, without a GPU.

Every kernel instance the backend can launch (``_cupy.kernel_names()``) is
compiled with nvcc for sm_80 and sm_90, warnings as errors, so that a typo in
``lsm_ext/_cuda/lsm_kernels.cuh`` fails CI even though CI has no GPU. Where
nvcc is missing the test skips, unless ``LSM_EXT_REQUIRE_NVCC=1`` (set by
``.ci/run``) makes that a failure. Also checked here, with no GPU either: the
launch plans the backend makes stay within CUDA's limits and name only
kernels that exist.
"""

import math
import os
import shutil
import subprocess
import sys

import pytest

from lsm_ext import _cupy

ARCHS = ("sm_80", "sm_90")


def _nvcc():
    for cand in (shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if cand and os.path.exists(cand):
            return cand
    if os.environ.get("LSM_EXT_REQUIRE_NVCC") == "1":
        pytest.fail("nvcc not found, and LSM_EXT_REQUIRE_NVCC=1")
    pytest.skip("nvcc not found (CI sets LSM_EXT_REQUIRE_NVCC=1)")


def test_source_has_no_includes():
    # NVRTC compiles without the host's headers: the source must stand alone
    src = _cupy.source()
    assert "#include" not in src
    assert "lsm_rows" in src and "lsm_lines" in src


def test_every_kernel_compiles(tmp_path):
    nvcc = _nvcc()
    names = _cupy.kernel_names()
    assert len(names) == len(set(names))
    cu = tmp_path / "all_kernels.cu"
    # taking each instance's address instantiates it
    cu.write_text(
        f'#include "{_cupy._SOURCE}"\n'
        "void *lsm_all_kernels[] = {\n"
        + ",\n".join(f"    (void *)&{n}" for n in names)
        + "\n};\n"
    )
    procs = [
        subprocess.Popen(
            [
                nvcc,
                "-std=c++17",
                f"-arch={arch}",
                "-Werror",
                "all-warnings",
                "-c",
                str(cu),
                "-o",
                str(tmp_path / f"{arch}.o"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for arch in ARCHS
    ]
    for arch, p in zip(ARCHS, procs):
        out, _ = p.communicate(timeout=1200)
        assert p.returncode == 0, f"nvcc {arch} failed:\n{out[-4000:]}"
        assert (tmp_path / f"{arch}.o").stat().st_size > 0


def test_a_typo_fails_the_check(tmp_path):
    # the check above can fail: the same source with one error does not build
    nvcc = _nvcc()
    cu = tmp_path / "broken.cu"
    cu.write_text(
        _cupy.source().replace("s.c += w;", "s.c += w_;", 1)
        + "\nvoid *p = (void *)&lsm_rows<float,0,1,1>;\n"
    )
    r = subprocess.run(
        [nvcc, "-std=c++17", "-arch=sm_80", "-c", str(cu), "-o", str(tmp_path / "b.o")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "w_" in r.stdout + r.stderr


@pytest.mark.parametrize("op", range(7))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_launch_plans(op, dtype):
    names = set(_cupy.kernel_names())
    lse = op <= 2
    lengths = list(range(1, 70)) + [
        1023,
        1024,
        1025,
        4096,
        8192,
        8193,
        16384,
        16385,
        32000,
        10**5,
        2 * 10**6,
        4 * 10**6,
    ]
    for n in lengths:
        for inner in (1, 2, 7, 32, 33, 4096):
            for lines in (1, 3, 8, 100, 4096, 10**6):
                for sms in (1, 132):
                    launches, nseg = _cupy.plan(op, dtype, n, inner, lines, sms, lse)
                    assert 1 <= len(launches) <= 2
                    assert (nseg > 1) == (len(launches) == 2)
                    for name, grid, block, segs in launches:
                        assert name in names
                        assert math.prod(block) <= 1024
                        assert 1 <= grid[0] < 2**31
                        assert len(grid) == 1 or 1 <= grid[1] <= 65535
                        if name.startswith("lsm_rows"):
                            tpr, vpt = map(int, name[:-1].split(",")[2:])
                            # the line fits the registers of its threads
                            assert inner == 1 and tpr * vpt >= n
                            # a block of 1024 has 64 registers per thread
                            assert tpr < 1024 or vpt <= 16
                            assert block[0] % tpr == 0 and block[0] % 32 == 0
                            assert grid[0] * (block[0] // tpr) >= lines
                        else:
                            bx = block[0]
                            assert grid[0] * bx >= lines
                            seg, ns = segs
                            # the segments cover the line, none empty
                            assert seg * ns >= n and seg * (ns - 1) < n
                            assert ns == nseg


def test_import_does_not_import_cupy(tmp_path):
    code = (
        "import sys, numpy as np, lsm_ext as lx; "
        "lx.log_softmax(np.ones((3, 4)), axis=1); lx.logsumexp([1.0, 2.0]); "
        "print('cupy' in sys.modules)"
    )
    # run outside the source tree, so that the installed package is imported
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert r.stdout.strip() == "False"
