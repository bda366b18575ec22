"""The CuPy backend against the NumPy path, on a GPU.

Skipped, with the reason, where CuPy is not installed or sees no CUDA device
(CI has none; tests/test_cuda_compile.py still compiles every kernel there).
Results must equal the NumPy path's within the tolerances of the NumPy tests
(a few ulp of the result's scale), be CuPy arrays on the input's device, and
keep NumPy's result dtypes, over dtypes, axes, layouts, line lengths that
take each kernel variant, and inf/nan/empty edge values.
"""

import numpy as np
import pytest

import lsm_ext as lx
from lsm_ext import _cupy

cp = pytest.importorskip("cupy", reason="CuPy is not installed")
if not _cupy.gpu_available():
    pytest.skip("no CUDA device visible to CuPy", allow_module_level=True)

EPS = {np.float16: 2.0**-10, np.float32: 2.0**-23, np.float64: 2.0**-52}
OPS = ["logsumexp", "softmax", "log_softmax", "log_softmax_jvp", "log_softmax_vjp"]


def _call(name, x, v, axis):
    f = getattr(lx, name)
    if name in ("log_softmax_jvp", "log_softmax_vjp"):
        return f(x, v, axis=axis)
    return f(x, axis=axis)


def _check(got, want, dtype, scale):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        assert isinstance(g, cp.ndarray)
        w = np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        h = cp.asnumpy(g)
        assert np.array_equal(np.isnan(h), np.isnan(w))
        fin = np.isfinite(w)
        assert np.array_equal(h[~fin & ~np.isnan(w)], w[~fin & ~np.isnan(w)])
        tol = 8 * EPS[dtype.type] * np.maximum(1, scale)
        np.testing.assert_array_less(
            np.abs(h[fin].astype(np.float64) - w[fin].astype(np.float64)),
            tol + 0 * w[fin],
        )


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis",
    [
        ((5, 1), -1),
        ((7, 3), -1),
        ((33, 17), -1),
        ((4, 32), -1),
        ((3, 33), -1),
        ((2, 1000), -1),
        ((2, 1025), -1),
        ((2, 8193), -1),
        ((2, 32000), -1),
        ((1, 40000), -1),
        ((1, 300000), -1),
        ((3, 5, 7), 1),
        ((64, 40), 0),
        ((2048, 64), 0),
        ((100000, 3), 0),
        ((6, 4, 5), (0, 2)),
        ((3, 4), None),
    ],
)
def test_matches_numpy(name, dtype, shape, axis):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    if name == "log_softmax_vjp":
        x = lx.log_softmax(x, axis=axis)
    want = _call(name, x, v, axis)
    got = _call(name, cp.asarray(x), cp.asarray(v), axis)
    scale = np.max(np.abs(x.astype(np.float64))) if x.size else 1
    _check(got, want, np.dtype(dtype), scale)


@pytest.mark.parametrize("layout", ["F", "T", "slice", "neg"])
@pytest.mark.parametrize("name", OPS)
def test_layouts(name, layout):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 70)).astype(np.float32)
    xs = {
        "F": np.asfortranarray(base),
        "T": base.T,
        "slice": base[::2, 1::3],
        "neg": base[::-1, ::-2],
    }[layout]
    v = rng.standard_normal(xs.shape).astype(np.float32)
    for axis in (0, 1, None):
        want = _call(name, xs, v, axis)
        xg = cp.asarray(np.asfortranarray(xs) if layout == "F" else xs)
        got = _call(name, xg, cp.asarray(v), axis)
        _check(got, want, np.dtype(np.float32), 4)


@pytest.mark.parametrize("n", [3, 40, 3000, 50000])
@pytest.mark.parametrize("axis", [0, 1])
def test_special_values(n, axis):
    inf, nan = np.inf, np.nan
    rows = [
        [0.0] * n,
        [-inf] * n,
        [inf] + [0.0] * (n - 1),
        [nan] + [0.0] * (n - 1),
        [inf, -inf] + [0.0] * (n - 2) if n > 2 else [inf, -inf, 0.0][:n],
        [-inf] * (n - 1) + [1.0],
        [inf, nan] + [0.0] * (n - 2) if n > 2 else [inf, nan, 0.0][:n],
    ]
    x = np.array(rows, dtype=np.float64)
    x = x if axis == 1 else np.ascontiguousarray(x.T)
    v = np.ones_like(x)
    for name in OPS[:4]:
        want = _call(name, x, v, axis)
        got = _call(name, cp.asarray(x), cp.asarray(v), axis)
        _check(got, want, np.dtype(np.float64), 1)


@pytest.mark.parametrize("n", [4, 5000, 100000])
def test_weights_and_sign(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((6, n))
    b = rng.standard_normal((6, n))
    b[1] = 0
    b[2, 0] = 0
    a[2, 0] = np.nan
    a[3, 0], b[3, 0] = np.inf, -1.0
    a[4, :2], b[4, :2] = np.inf, [1.0, -1.0]
    for rs in (False, True):
        want = lx.logsumexp(a, axis=1, b=b, return_sign=rs)
        got = lx.logsumexp(cp.asarray(a), axis=1, b=cp.asarray(b), return_sign=rs)
        _check(got, want, np.dtype(np.float64), np.max(np.abs(a[np.isfinite(a)])))
    want = lx.logsumexp(a[:, :3], axis=0, b=2.0, keepdims=True)
    got = lx.logsumexp(cp.asarray(a[:, :3]), axis=0, b=2.0, keepdims=True)
    _check(got, want, np.dtype(np.float64), 4)


def test_dtypes_empty_and_errors():
    x = cp.arange(12, dtype=cp.int32).reshape(3, 4)
    assert lx.logsumexp(x, axis=1).dtype == np.float64
    assert lx.softmax(x.astype(cp.int16), axis=1).dtype == np.float32
    assert lx.softmax(cp.empty((0, 3)), axis=1).shape == (0, 3)
    assert float(lx.logsumexp(cp.empty((0,)))) == -np.inf
    with pytest.raises(np.exceptions.AxisError):
        lx.softmax(cp.ones((2, 3)), axis=2)
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(cp.ones(3), np.ones(3))
    with pytest.raises(ValueError):
        lx.log_softmax_jvp(cp.ones(3), cp.ones(4))


def test_in_place_out_and_stream():
    x = cp.asarray(np.random.default_rng(0).standard_normal((64, 300)))
    want = cp.asnumpy(lx.log_softmax(x, axis=1))
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        r = lx.log_softmax(x, axis=1, out=x)
    s.synchronize()
    assert r is x
    np.testing.assert_array_equal(cp.asnumpy(x), want)
