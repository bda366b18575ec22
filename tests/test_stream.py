"""Streaming stores: outputs of at least get_stream_bytes() bytes are written
with non-temporal stores on x86-64 (plain stores elsewhere).

Only the speed may change: every op must give the same bits with every
output streamed (threshold 0) as with none (threshold -1), on every path of
the kernels (short, mid-length, long and strided rows, column blocks, in
place, outputs off a cache line), and those bits still agree with SciPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc
from numpy.testing import assert_allclose, assert_array_equal

import lsm_ext as lx


@pytest.fixture
def restore_stream():
    old = lx.get_stream_bytes()
    yield
    lx.set_stream_bytes(old)


def test_setting_reads_back(restore_stream):
    assert lx.get_stream_bytes() == 8 << 20  # the documented default
    lx.set_stream_bytes(0)
    assert lx.get_stream_bytes() == 0
    lx.set_stream_bytes(12345)
    assert lx.get_stream_bytes() == 12345
    lx.set_stream_bytes(np.int64(4096))
    assert lx.get_stream_bytes() == 4096
    lx.set_stream_bytes(-7)
    assert lx.get_stream_bytes() == -1
    lx.set_stream_bytes(10**30)  # beyond any output: never
    assert lx.get_stream_bytes() == -1
    with pytest.raises(TypeError):
        lx.set_stream_bytes(1.5)
    with pytest.raises(TypeError):
        lx.set_stream_bytes("8")


def _ops(x, v, axis):
    y = lx.log_softmax(x, axis=axis)
    return {
        "softmax": lx.softmax(x, axis=axis),
        "log_softmax": y,
        "jvp": lx.log_softmax_jvp(x, v, axis=axis),
        "vjp": lx.log_softmax_vjp(y, v, axis=axis),
    }


# (shape, axis, layout): short rows (transposed and flat blocks), mid-length
# rows (softmax's short path), rows of a few KB (pipelined log_softmax),
# long rows, column blocks (axis 0), strided rows (Fortran order)
CASES = [
    ((3000, 8), -1, "C"),
    ((1000, 40), -1, "C"),
    ((500, 100), -1, "C"),
    ((64, 1000), -1, "C"),
    ((8, 5000), -1, "C"),
    ((2, 70000), -1, "C"),
    ((300, 200), 0, "C"),
    ((7, 50, 30), 1, "C"),
    ((200, 300), -1, "F"),
    ((300, 200), 0, "F"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,order", CASES)
def test_streamed_equals_plain(restore_stream, shape, axis, order, dtype):
    rng = np.random.default_rng(7)
    x = np.asarray(rng.normal(scale=4, size=shape), dtype=dtype, order=order)
    v = np.asarray(rng.normal(size=shape), dtype=dtype, order=order)
    x.flat[x.size // 2] = np.inf  # a special row among regular ones
    x.flat[x.size // 3] = np.nan
    lx.set_stream_bytes(-1)
    plain = _ops(x, v, axis)
    lx.set_stream_bytes(0)
    streamed = _ops(x, v, axis)
    for name, a in plain.items():
        b = streamed[name]
        for p, q in zip(
            a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)
        ):
            assert_array_equal(q, p, err_msg=name)
    # the JVP's primal is log_softmax's output, bit for bit, streamed too
    # (their streamed paths differ for mid-length rows)
    assert_array_equal(streamed["jvp"][0], streamed["log_softmax"])
    # and the values are right: against SciPy in float64
    with np.errstate(invalid="ignore"):  # the inf and nan rows
        ref = sc.log_softmax(x.astype(np.float64), axis=axis)
    ok = np.isfinite(ref)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(streamed["log_softmax"][ok], ref[ok], rtol=tol, atol=tol)


@pytest.mark.parametrize("offset", [0, 1, 3, 5])
def test_streamed_off_a_line(restore_stream, offset):
    """Outputs that start 4-20 bytes past a cache line (out= views), and
    in place: the streamed lines start after a plain head."""
    rng = np.random.default_rng(offset)
    x = rng.normal(size=(37, 301)).astype(np.float32)
    lx.set_stream_bytes(-1)
    want = lx.log_softmax(x, axis=-1)
    want_sm = lx.softmax(x, axis=-1)
    lx.set_stream_bytes(0)
    buf = np.zeros(x.size + offset, np.float32)
    out = buf[offset:].reshape(x.shape)
    lx.log_softmax(x, axis=-1, out=out)
    assert_array_equal(out, want)
    lx.softmax(x, axis=-1, out=out)
    assert_array_equal(out, want_sm)
    z = x.copy()
    lx.log_softmax(z, axis=-1, out=z)
    assert_array_equal(z, want)
    assert_array_equal(buf[:offset], 0)  # nothing written before out


@pytest.mark.parametrize("n", [3, 8, 12, 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_jvp_of_short_rows_in_place(restore_stream, n, dtype):
    """The JVP of short rows streams both outputs from block buffers: in place
    (y over x, dy over v, and crossed) it gives the bits of the plain, apart
    call, which agree with the analytic formula in float64."""
    rng = np.random.default_rng(n)
    x = rng.normal(scale=3, size=(1000, n)).astype(dtype)
    v = rng.normal(size=(1000, n)).astype(dtype)
    lx.set_stream_bytes(-1)
    y0, dy0 = lx.log_softmax_jvp(x, v, axis=-1)
    lx.set_stream_bytes(0)
    y1, dy1 = lx.log_softmax_jvp(x, v, axis=-1)
    assert_array_equal(y1, y0)
    assert_array_equal(dy1, dy0)
    for cross in (False, True):
        a, b = x.copy(), v.copy()
        out = (b, a) if cross else (a, b)
        lx.log_softmax_jvp(a, b, axis=-1, out=out)
        assert_array_equal(out[0], y0)
        assert_array_equal(out[1], dy0)
    x64, v64 = x.astype(np.float64), v.astype(np.float64)
    p = sc.softmax(x64, axis=-1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(y0, sc.log_softmax(x64, axis=-1), rtol=tol, atol=tol)
    want_dy = v64 - np.sum(p * v64, axis=-1, keepdims=True)
    assert_allclose(dy0, want_dy, rtol=tol, atol=tol * 10)
