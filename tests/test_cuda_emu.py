"""The CUDA kernels' logic, checked on the CPU (no GPU needed).

The CuPy backend (lsm_ext/_cupy.py) runs here unchanged except at its edges:
NumPy arrays stand in for CuPy arrays, and each kernel launch runs the CUDA
source (lsm_ext/_cuda/lsm_kernels.cuh) compiled as C++ against
tests/cuda_emu/cuda_emu.h, one host thread per CUDA thread, real barriers
for __syncthreads and the warp shuffles. A small multiprocessor count makes
the backend split long lines across blocks. Results must equal the NumPy
path's within the accuracy bounds, over ops, dtypes, line lengths that take
each kernel variant, layouts, and inf/nan rows. Says nothing about speed or
about the GPU compiler (tests/test_cuda_compile.py compiles for sm_80/90).
"""

import ctypes
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

import lsm_ext as lx
from lsm_ext import _cupy

HERE = Path(__file__).resolve().parent
SMS = 2  # multiprocessors the backend plans for: long lines get split
INF, NAN = np.inf, np.nan
EPS = {np.float16: 2.0**-10, np.float32: 2.0**-23, np.float64: 2.0**-52}


def _cases():
    """(name, dtype, x, v, axis): shapes that reach every kernel variant."""
    rng = np.random.default_rng(0)
    shapes = [
        ((3, 1), -1),
        ((5, 3), -1),
        ((4, 17), -1),
        ((3, 32), -1),
        ((2, 33), -1),
        ((2, 300), -1),
        ((2, 1025), -1),
        ((1, 9000), -1),
        ((1, 20000), -1),
        ((1, 70000), -1),
        ((50, 40), 0),
        ((3000, 40), 0),
        ((4, 6, 5), 1),
        ((5, 7), None),
    ]
    out = []
    for shape, axis in shapes:
        for dt in (np.float16, np.float32, np.float64):
            if dt == np.float16 and np.prod(shape) > 30000:
                continue
            x = rng.standard_normal(shape) * 3
            if x.ndim == 2 and x.shape[0] >= 4 and axis in (-1, 1):
                x[1, 0], x[2, :] = NAN, -INF
                x[3, 0] = INF
            if x.ndim == 2 and axis == 0 and x.shape[1] >= 4:
                x[0, 1], x[:, 2] = NAN, -INF
                x[0, 3] = INF
            out.append((x.astype(dt), rng.standard_normal(shape).astype(dt), axis))
    return out


CASES = _cases()
OPS = [
    "logsumexp",
    "logsumexp_b",
    "logsumexp_sign",
    "softmax",
    "log_softmax",
    "log_softmax_jvp",
    "log_softmax_vjp",
]


def _call(mod, op, x, v, axis):
    if op == "logsumexp":
        return mod.logsumexp(x, axis=axis)
    if op == "logsumexp_b":
        return mod.logsumexp(x, axis=axis, b=v)
    if op == "logsumexp_sign":
        return mod.logsumexp(x, axis=axis, b=v, return_sign=True)
    if op in ("log_softmax_jvp", "log_softmax_vjp"):
        return getattr(mod, op)(x, v, axis=axis)
    return getattr(mod, op)(x, axis=axis)


def _patch(monkeypatch, function):
    shim = types.SimpleNamespace(
        empty=np.empty,
        broadcast_to=np.broadcast_to,
        asarray=np.asarray,
        full=np.full,
        ones=np.ones,
        copyto=np.copyto,
    )
    monkeypatch.setattr(_cupy, "_cp", lambda: shim)
    monkeypatch.setattr(_cupy, "is_cupy_array", lambda a: isinstance(a, np.ndarray))
    monkeypatch.setattr(_cupy, "_device_id", lambda a: 0)
    monkeypatch.setattr(_cupy, "_sm_count", lambda dev: SMS)
    monkeypatch.setattr(_cupy, "_function", function)


def _build(names, tmp):
    """A shared library running the named kernel instances on the CPU."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    lines = [
        "#define LSM_CUDA_EMULATION 1",
        f'#include "{HERE / "cuda_emu" / "cuda_emu.h"}"',
        f'#include "{_cupy._SOURCE}"',
        "#include <string>",
        "typedef long long ll;",
        'extern "C" int emu_run(const char *name, int gx, int gy, int bx, '
        "int by, const ll *a, void **p) {",
        "    const std::string s(name);",
    ]
    for n in names:
        t = n[n.index("<") + 1 : n.index(",")]
        args = (
            f"a[0], a[1], a[2], (const {t} *)p[0], a[3], a[4], a[5], "
            f"(const {t} *)p[1], a[6], a[7], a[8], ({t} *)p[2], a[9], a[10], "
            f"a[11], ({t} *)p[3], a[12], a[13], a[14]"
        )
        if n.startswith("lsm_lines"):
            args += ", a[15], a[16], (double *)p[4]"
        lines.append(
            f'    if (s == "{n}") {{ emu_launch({{(unsigned)gx, (unsigned)gy, 1}}, '
            f"{{(unsigned)bx, (unsigned)by, 1}}, [&] {{ {n}({args}); }}); "
            "return 0; }"
        )
    lines += ["    return -1;", "}"]
    src = tmp / "emu.cpp"
    src.write_text("\n".join(lines) + "\n")
    lib = tmp / "libemu.so"
    r = subprocess.run(
        [
            cxx,
            "-std=c++20",
            "-O1",
            "-fPIC",
            "-shared",
            "-pthread",
            str(src),
            "-o",
            str(lib),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return ctypes.CDLL(str(lib))


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    names = set()
    mp = pytest.MonkeyPatch()
    _patch(mp, lambda name, dev: (names.add(name), lambda *a: None)[1])
    try:
        for x, v, axis in CASES:
            for op in OPS:
                _call(_cupy, op, x, v, axis)
        _strided_calls()
    finally:
        mp.undo()
    return _build(sorted(names), tmp_path_factory.mktemp("emu"))


def _runner(lib):
    def function(name, dev):
        def launch(grid, block, args):
            grid, block = tuple(grid) + (1,), tuple(block) + (1,)
            ints, ptrs = [], []
            for a in args:
                if isinstance(a, np.ndarray):
                    ptrs.append(ctypes.c_void_p(a.ctypes.data))
                else:
                    ints.append(int(a))
            ints += [0] * (17 - len(ints))
            ptrs += [ctypes.c_void_p(0)] * (5 - len(ptrs))
            rc = lib.emu_run(
                name.encode(),
                grid[0],
                grid[1],
                block[0],
                block[1],
                (ctypes.c_longlong * 17)(*ints),
                (ctypes.c_void_p * 5)(*ptrs),
            )
            assert rc == 0, f"{name} not built"

        return launch

    return function


def _check(got, want, dt, scale, cond=None):
    """cond: the condition of a weighted sum (sum |b e^x| / |sum b e^x|) per
    result, which multiplies the rounding errors of both computations."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        fin = np.isfinite(w)
        np.testing.assert_array_equal(g[~fin], w[~fin])
        tol = 8 * EPS[dt] * max(1.0, scale)
        if cond is not None:
            tol = tol * np.broadcast_to(cond, w.shape)[fin]
        d = np.abs(g[fin].astype(np.float64) - w[fin].astype(np.float64))
        assert d.size == 0 or np.all(d <= tol), (d.max(), np.min(tol))


@pytest.mark.parametrize("op", OPS)
def test_kernels_match_numpy(emu, monkeypatch, op):
    _patch(monkeypatch, _runner(emu))
    for x, v, axis in CASES:
        if op == "log_softmax_vjp":
            x = lx.log_softmax(x, axis=axis)
        want = _call(lx, op, x, v, axis)
        got = _call(_cupy, op, x, v, axis)
        fin = np.isfinite(x)
        scale = float(np.max(np.abs(x[fin]))) if fin.any() else 1.0
        cond = None
        if op == "log_softmax_vjp":  # the scale of sum(g): sum |g|
            ax = tuple(range(x.ndim)) if axis is None else axis
            sg = np.abs(v.astype(np.float64)).sum(axis=ax, keepdims=True)
            cond = 1 + np.exp(x.astype(np.float64)) * sg / max(1.0, scale)
        if op in ("logsumexp_b", "logsumexp_sign"):
            with np.errstate(all="ignore"):
                x64, v64 = x.astype(np.float64), v.astype(np.float64)
                signed = lx.logsumexp(x64, axis=axis, b=v64, return_sign=True)[0]
                cond = np.exp(lx.logsumexp(x64, axis=axis, b=np.abs(v64)) - signed)
                cond = np.where(np.isfinite(cond), np.maximum(cond, 1.0), 1.0)
        try:
            _check(got, want, x.dtype.type, scale, cond)
        except AssertionError as e:
            raise AssertionError(f"{op} {x.dtype} {x.shape} axis={axis}: {e}") from None


def _strided_calls(check=False):
    base = np.random.default_rng(3).standard_normal((40, 70))
    for x in (base.T, base[::2, 1::3], base[::-1, ::-2]):
        for axis in (0, 1):
            got = _cupy.log_softmax(x, axis=axis)
            if check:
                _check(got, lx.log_softmax(x, axis=axis), np.float64, 4)
    x = base.copy()
    _cupy.softmax(x.copy(), axis=1, out=x.copy())
    return base


def test_strided_and_in_place(emu, monkeypatch):
    _patch(monkeypatch, _runner(emu))
    base = _strided_calls(check=True)
    x = base.copy()
    want = lx.softmax(x, axis=1)
    r = _cupy.softmax(x, axis=1, out=x)
    assert r is x
    _check(x, want, np.float64, 4)
