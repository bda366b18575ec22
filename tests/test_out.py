"""out= and in-place calls.

The reference for an out= call is the same call without out= (itself checked
against SciPy and the high-precision reference in the other test files):
writing into out, and in particular overwriting the input in place, must
give bit-for-bit the same numbers, on every kernel path (short packed rows,
long rows in chunks, strided rows, columns of the inner-contiguous path,
special rows holding inf / nan). SciPy is checked once more here directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc
from numpy.testing import assert_allclose, assert_array_equal

import lsm_ext as lx

# (shape, axis): short rows (of 8 and 4: the VJP takes those as they lie),
# 2 chunks, long rows, column path, 3-d middle axis (inner > 1), a wide
# column block, all axes, a 0-d input
CASES = [
    ((7, 5), -1),
    ((9, 8), -1),
    ((6, 4), -1),
    ((7, 5), 0),
    ((300, 2000), -1),
    ((3, 5000), -1),
    ((64, 300), 0),
    ((4, 3, 5), 1),
    ((2, 3), None),
    ((5, 2000), 0),
    ((2, 1500, 3), 1),
    ((), None),
]
SPECIALS = [None, np.inf, -np.inf, np.nan]


def _data(shape, dtype, special, seed):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    if special is not None and x.size > 1:
        x.flat[0] = special
        x.flat[-1] = special
    return np.asarray(x), np.asarray(v)


def _params():
    return [
        pytest.param(shape, axis, dt, sp, id=f"{shape}-{axis}-{np.dtype(dt).name}-{sp}")
        for shape, axis in CASES
        for dt in (np.float32, np.float64)
        for sp in SPECIALS
    ]


@pytest.mark.parametrize("shape,axis,dtype,special", _params())
def test_in_place_equals_out_of_place(shape, axis, dtype, special):
    x, v = _data(shape, dtype, special, seed=len(shape) + 7)
    for name in ("softmax", "log_softmax"):
        ref = getattr(lx, name)(x, axis=axis)
        xx = x.copy()
        res = getattr(lx, name)(xx, axis=axis, out=xx)
        assert res is xx
        assert_array_equal(xx, ref, err_msg=name)
    ry, rd = lx.log_softmax_jvp(x, v, axis=axis)
    for order in ("same", "swapped"):
        xx, vv = x.copy(), v.copy()
        out = (xx, vv) if order == "same" else (vv, xx)
        res = lx.log_softmax_jvp(xx, vv, axis=axis, out=out)
        assert res is out
        assert_array_equal(out[0], ry, err_msg=f"jvp y {order}")
        assert_array_equal(out[1], rd, err_msg=f"jvp dy {order}")
    y = np.asarray(lx.log_softmax(x, axis=axis))
    ref = lx.log_softmax_vjp(y, v, axis=axis)
    yy = y.copy()
    lx.log_softmax_vjp(yy, v, axis=axis, out=yy)
    assert_array_equal(yy, ref, err_msg="vjp out=y")
    gg = v.copy()
    lx.log_softmax_vjp(y, gg, axis=axis, out=gg)
    assert_array_equal(gg, ref, err_msg="vjp out=g")


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_in_place_matches_scipy(name):
    x = np.random.default_rng(3).standard_normal((50, 300))
    ref = getattr(sc, name)(x, axis=1)
    getattr(lx, name)(x, axis=1, out=x)
    assert_allclose(x, ref, rtol=1e-13, atol=1e-300)


def test_in_place_strided_views():
    # in-place on non-contiguous views: every other column, reversed rows,
    # and a transposed (F-order) array over each axis
    base = np.random.default_rng(4).standard_normal((40, 600))
    views = [lambda a: a[:, ::2], lambda a: a[::-1], lambda a: a.T]
    for make in views:
        for axis in (0, 1):
            a = base.copy()
            ref = lx.log_softmax(make(a), axis=axis)
            view = make(a)
            lx.log_softmax(view, axis=axis, out=view)
            assert_array_equal(make(a), ref)
            # the elements outside the view are untouched
            untouched = np.ones(base.shape, bool)
            make(untouched)[...] = False
            assert_array_equal(a[untouched], base[untouched])


def test_out_layouts_and_casting():
    x = np.random.default_rng(5).standard_normal((6, 8))
    ref = lx.softmax(x, axis=0)
    # an out whose layout differs from x's may send the kernel down another
    # path (here the row path instead of the column path: out is not
    # contiguous along the kept axis), whose sums round differently: equal
    # to within a few ulp, not bit for bit (at the avx2 level they differ)
    eps = np.finfo(np.float64).eps
    o = np.empty((8, 6)).T  # F-order out
    assert lx.softmax(x, axis=0, out=o) is o
    assert_allclose(o, ref, rtol=4 * eps, atol=0)
    assert_allclose(o, sc.softmax(x, axis=0), rtol=1e-14)
    o = np.empty((6, 16))[:, ::2]  # strided out
    lx.softmax(x, axis=0, out=o)
    assert_allclose(o, ref, rtol=4 * eps, atol=0)
    o32 = np.empty((6, 8), np.float32)  # same_kind cast float64 -> float32
    lx.softmax(x, axis=0, out=o32)
    assert_array_equal(o32, ref.astype(np.float32))
    o64 = np.empty((6, 8))  # float32 input, float64 out
    lx.log_softmax(x.astype(np.float32), axis=1, out=o64)
    assert_array_equal(o64, lx.log_softmax(x.astype(np.float32), axis=1))
    oc = np.empty((6, 8), np.complex128)
    lx.softmax(x, axis=1, out=oc)
    assert_array_equal(oc, lx.softmax(x, axis=1))


def test_out_partial_overlap():
    # out overlaps the input shifted by one element: the input is read
    # entirely before any output is written
    z = np.random.default_rng(6).standard_normal(1000)
    ref = lx.softmax(z[1:])
    lx.softmax(z[1:], out=z[:-1])
    assert_array_equal(z[:-1], ref)
    z = np.random.default_rng(6).standard_normal((20, 51))
    x, v = z[:, :50], z[:, 1:]
    ry, rd = lx.log_softmax_jvp(x, v, axis=1)
    yb, db = np.empty((20, 50)), np.empty((20, 50))
    lx.log_softmax_jvp(x, v, axis=1, out=(yb, db))
    assert_array_equal(yb, ry)
    assert_array_equal(db, rd)
    with pytest.raises(ValueError, match="overlap"):
        lx.log_softmax_jvp(x, v, axis=1, out=(v, x))  # y and dy would overlap
    lx.log_softmax_jvp(x, v, axis=1, out=(z[:, 1:], yb))  # y over x and v
    assert_array_equal(z[:, 1:], ry)


def test_out_other_dtypes_and_shapes():
    x16 = np.linspace(-3, 3, 12, dtype=np.float16).reshape(3, 4)
    o = np.empty((3, 4), np.float16)
    lx.softmax(x16, axis=1, out=o)
    assert_array_equal(o, lx.softmax(x16, axis=1))
    xl = np.linspace(-3, 3, 12).astype(np.longdouble).reshape(3, 4)
    o = np.empty((3, 4), np.longdouble)
    lx.log_softmax(xl, axis=0, out=o)
    assert_array_equal(o, lx.log_softmax(xl, axis=0))
    o0 = np.empty(())
    assert lx.softmax(2.0, out=o0) is o0
    assert o0 == 1.0
    e = np.empty((0, 3))
    assert lx.log_softmax(np.ones((0, 3)), axis=0, out=e) is e


def test_out_errors():
    x = np.ones((6, 8))
    with pytest.raises(ValueError, match="shape"):
        lx.softmax(x, out=np.empty((6, 7)))
    with pytest.raises(TypeError, match="same_kind"):
        lx.softmax(x, out=np.empty((6, 8), np.int64))
    with pytest.raises(TypeError):
        lx.softmax(x, out=[0.0] * 48)
    ro = np.empty((6, 8))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        lx.log_softmax(x, out=ro)
    with pytest.raises(ValueError):
        lx.log_softmax_jvp(x, x, out=np.empty((6, 8)))  # needs 2 arrays
    with pytest.raises(ValueError, match="shape"):
        lx.logsumexp(x, axis=1, out=np.empty(8))
    with pytest.raises(TypeError):
        lx.softmax(x, None, np.empty((6, 8)))  # out is keyword-only


def test_logsumexp_out():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 7))
    for axis, keepdims in ((1, False), (0, True), (None, False)):
        ref = lx.logsumexp(x, axis=axis, keepdims=keepdims)
        o = np.empty(np.shape(ref))
        assert lx.logsumexp(x, axis=axis, keepdims=keepdims, out=o) is o
        assert_array_equal(o, ref)
        assert_allclose(o, sc.logsumexp(x, axis=axis, keepdims=keepdims), rtol=1e-14)
    b = rng.standard_normal((5, 7))
    r, s = lx.logsumexp(x, axis=1, b=b, return_sign=True)
    o1, o2 = np.empty(5), np.empty(5)
    res = lx.logsumexp(x, axis=1, b=b, return_sign=True, out=(o1, o2))
    assert res[0] is o1 and res[1] is o2
    assert_array_equal(o1, r)
    assert_array_equal(o2, s)
