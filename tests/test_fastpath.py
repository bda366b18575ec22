"""The one-step fast path (``_core.fast``) that small calls take.

It must give, bit for bit, what the general path gives on the same data (the
general path is reached here through ``out=``, which never takes the fast
path, and is itself checked against SciPy and the high-precision reference
elsewhere), the same result types and shapes as SciPy, and it must hand
every case it does not cover (returning None) to the general path, which
also raises the errors.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import scipy.special as sc
from numpy.testing import assert_allclose, assert_array_equal

import lsm_ext as lx
from lsm_ext import _core

SHAPES_AXES = [
    ((10,), None),
    ((10,), 0),
    ((10,), -1),
    ((3, 4), None),
    ((3, 4), 0),
    ((3, 4), 1),
    ((3, 4), -2),
    ((2, 3, 5), 1),
    ((2, 3, 5), -1),
    ((1, 1), 0),
    ((600, 500), 0),  # a 1.2 MB float32 output: through the output cache
    ((600, 500), 1),
]
DTYPES = [np.float32, np.float64]


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    return x, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "axis"), SHAPES_AXES)
def test_fast_equals_general_path(shape, axis, dtype):
    x, v = _data(shape, dtype)
    x0, v0 = x.copy(), v.copy()
    for fn, args in [
        (lx.softmax, (x,)),
        (lx.log_softmax, (x,)),
        (lx.log_softmax_vjp, (x, v)),
    ]:
        r = fn(*args, axis=axis)
        ref = fn(*args, axis=axis, out=np.empty_like(x))
        assert type(r) is np.ndarray and r.dtype == dtype and r.shape == shape
        assert_array_equal(r, ref)
    y, dy = lx.log_softmax_jvp(x, v, axis=axis)
    ry, rdy = lx.log_softmax_jvp(
        x, v, axis=axis, out=(np.empty_like(x), np.empty_like(x))
    )
    assert_array_equal(y, ry)
    assert_array_equal(dy, rdy)
    assert not np.may_share_memory(y, dy)
    for keepdims in (False, True):
        r = lx.logsumexp(x, axis=axis, keepdims=keepdims)
        s = sc.logsumexp(x, axis=axis, keepdims=keepdims)
        assert type(r) is type(s) and np.shape(r) == np.shape(s)
        assert np.result_type(r) == np.result_type(s) == dtype
        ref = lx.logsumexp(x, axis=axis, keepdims=keepdims, out=np.empty_like(s))
        assert_array_equal(r, ref)
        assert_allclose(r, s, rtol=4 * np.finfo(dtype).eps * 10)
    # never modifies its inputs
    assert_array_equal(x, x0)
    assert_array_equal(v, v0)


def test_fast_scalar_results_are_owned():
    # a 0-d logsumexp comes back as a NumPy scalar; many of them kept and
    # dropped must stay valid (a reference-count slip would crash or corrupt)
    x = np.array([0.0, np.log(3.0)])
    res = [lx.logsumexp(x) for _ in range(2000)]
    gc.collect()
    assert all(type(r) is np.float64 for r in res)
    assert_allclose(np.array(res), np.log(4.0), rtol=1e-15)


class _Sub(np.ndarray):
    pass


def _not_plain():
    x = np.arange(12.0).reshape(3, 4)
    return [
        ("float16", x.astype(np.float16), -1),
        ("int", np.arange(12).reshape(3, 4), -1),
        ("F-order", np.asfortranarray(x), -1),
        ("strided", x[:, ::2], -1),
        ("byte-swapped", x.astype(x.dtype.newbyteorder()), -1),
        ("subclass", x.view(_Sub), -1),
        ("list", x.tolist(), -1),
        ("0-d", np.float64(1.0), None),
        ("empty", np.empty((0, 4)), -1),
        ("tuple axis", x, (0, 1)),
        ("numpy int axis", x, np.int64(1)),
        ("bool axis", x, True),
        ("axis out of range", x, 2),
        ("huge axis", x, 2**70),
    ]


@pytest.mark.parametrize(("what", "a", "axis"), _not_plain())
def test_fast_declines_what_it_does_not_cover(what, a, axis):
    for op in (_core.LOGSUMEXP, _core.SOFTMAX, _core.LOG_SOFTMAX):
        assert _core.fast(op, a, None, axis) is None, (what, op)
    for op in (_core.JVP, _core.VJP):
        assert _core.fast(op, a, a, axis) is None, (what, op)


def test_fast_declines_mismatched_second_input():
    x = np.zeros((3, 4))
    for v in [
        np.zeros((4, 3)),
        np.zeros((3, 4), np.float32),
        np.zeros((3, 4, 1)),
        np.zeros(12),
        np.asfortranarray(np.zeros((3, 4))),
        None,
    ]:
        assert _core.fast(_core.JVP, x, v, -1) is None
        assert _core.fast(_core.VJP, x, v, -1) is None
    # and the public functions still raise for them, as before
    with pytest.raises(ValueError):
        lx.log_softmax_jvp(x, np.zeros((4, 3)))
    with pytest.raises(ValueError):
        lx.log_softmax_vjp(x, np.zeros(12))


def test_declined_cases_still_raise_numpy_errors():
    x = np.zeros((3, 4))
    with pytest.raises(np.exceptions.AxisError):
        lx.softmax(x, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        lx.logsumexp(x, axis=-3)
    with pytest.raises(TypeError):
        lx.softmax(np.array(["a", "b"]))
