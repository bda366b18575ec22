"""Vendoring by copy: the files README lists (src_c/: lsm.h, lsm_exp.h,
lsm_threads.h, lsm_kernels.c, lsm_kernels.template.c, lsm_threads.c) copied
into another tree build with a plain C11 compiler call, no generator step,
and give right answers; every global symbol they define starts with lsm_."""

import math
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "lsm.h",
    "lsm_exp.h",
    "lsm_threads.h",
    "lsm_kernels.c",
    "lsm_kernels.template.c",
    "lsm_threads.c",
]

MAIN = r"""
#include "lsm.h"
#include <stdio.h>
int main(void) {
    const double x[4] = {0.0, -40.0, 1.0, 2.0};
    double y[4], l[1];
    const ptrdiff_t xs[3] = {4, 1, 1}, os[2] = {1, 1};
    if (lsm_log_softmax_f64(1, 4, 1, x, xs, y, xs) || lsm_logsumexp_f64(1, 4, 1, x, xs, l, os))
        return 1;
    printf("%.17g %.17g %.17g %.17g %.17g\n", y[0], y[1], y[2], y[3], l[0]);
    return 0;
}
"""


def test_copied_files_build_and_run(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    for f in FILES:
        shutil.copy(ROOT / "src_c" / f, tmp_path / f)
    (tmp_path / "main.c").write_text(MAIN)
    objs = []
    for src in ("lsm_kernels.c", "lsm_threads.c"):
        obj = tmp_path / (src + ".o")
        r = subprocess.run(
            [
                cc,
                "-std=c11",
                "-O2",
                "-fno-math-errno",
                "-c",
                str(tmp_path / src),
                "-o",
                str(obj),
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        objs.append(str(obj))
    nm = shutil.which("nm")
    if nm:
        out = subprocess.run(
            [nm, "-g", "--defined-only", *objs],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        syms = [ln.split()[-1] for ln in out.splitlines() if len(ln.split()) == 3]
        assert syms and all(s.startswith("lsm_") for s in syms), syms
    exe = tmp_path / "main"
    r = subprocess.run(
        [cc, "-std=c11", str(tmp_path / "main.c"), *objs, "-lm", "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    vals = [
        float(v)
        for v in subprocess.run(
            [str(exe)], capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    xs = [0.0, -40.0, 1.0, 2.0]
    lse = 2.0 + math.log1p(math.exp(-1) + math.exp(-2) + math.exp(-42))
    for got, x in zip(vals[:4], xs):
        assert abs(got - (x - lse)) <= 4e-16 * max(1.0, abs(x - lse))
    assert abs(vals[4] - lse) <= 4e-16 * lse
