"""Semantics of lsm_ext against scipy.special (and plain NumPy formulas).

Every test here checks lsm_ext's answers, result dtypes, shapes and Python
types against an independent reference:

* ``scipy.special.logsumexp`` / ``softmax`` / ``log_softmax``;
* for the derivatives, NumPy formulas written out in this file:
  ``jvp: dy = v - sum(softmax(x) * v, axis, keepdims=True)`` and
  ``vjp: dx = g - exp(y) * sum(g, axis, keepdims=True)``.

Deliberate, documented differences from SciPy, tested as such:

* entries with ``b == 0`` are ignored by lsm_ext even where ``a`` is inf or
  nan (SciPy turns ``0 * inf`` into nan when its result is infinite);
* softmax / log_softmax / jvp / vjp of an empty array return an empty array
  (SciPy raises "zero-size array to reduction operation");
* log_softmax keeps relative accuracy at the max entry
  (``log_softmax([0, -40])[0] == -4.25e-18``, SciPy gives 0).

Tests that fail because of a library bug are kept and marked
``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
import scipy.special as sc
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.exceptions import AxisError
from numpy.testing import assert_allclose, assert_array_equal

import lsm_ext as lx

# Hypothesis' pytest plugin imports this module when a property test fails;
# the import emits a DeprecationWarning (mypy_extensions.TypedDict) which
# `filterwarnings = error` turns into an INTERNALERROR that hides the failing
# example. Importing it here once, warnings silenced, avoids that.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except Exception:  # pragma: no cover - optional dependencies missing
        pass

inf, nan = np.inf, np.nan

ALL_DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.longdouble,
    np.complex64,
    np.complex128,
]
FLOATS = [np.float32, np.float64]

# (shape, axis) cases on 1-d .. 4-d arrays
AXIS_CASES = [
    ((5,), None),
    ((5,), 0),
    ((5,), -1),
    ((5,), (0,)),
    ((5,), ()),
    ((3, 4), None),
    ((3, 4), 0),
    ((3, 4), 1),
    ((3, 4), -1),
    ((3, 4), -2),
    ((3, 4), (0, 1)),
    ((3, 4), (1, 0)),
    ((3, 4), ()),
    ((3, 4), (-1,)),
    ((2, 3, 4), None),
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), 2),
    ((2, 3, 4), -1),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (2, 0)),
    ((2, 3, 4), (1, 2)),
    ((2, 3, 4), (0, 1, 2)),
    ((2, 3, 4), ()),
    ((2, 3, 2, 3), None),
    ((2, 3, 2, 3), 0),
    ((2, 3, 2, 3), 3),
    ((2, 3, 2, 3), -2),
    ((2, 3, 2, 3), (1, 3)),
    ((2, 3, 2, 3), (0, 2, 3)),
    ((2, 3, 2, 3), ()),
]


# ------------------------------------------------------------------ helpers


def _sc(name, *args, **kwargs):
    """Call scipy.special.<name> with floating-point warnings silenced."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(sc, name)(*args, **kwargs)


def _tols(dtype):
    dt = np.dtype(dtype)
    if dt in (np.dtype(np.float16),):
        return 1e-2
    if dt in (np.dtype(np.float32), np.dtype(np.complex64)):
        return 1e-5
    return 1e-12


def _assert_close(actual, desired, rtol, scale=None, err_msg=""):
    """assert_allclose with nan positions identical and an absolute tolerance
    at the scale of the data (the condition number of x - logsumexp(x))."""
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    if scale is None:
        fin = np.abs(desired[np.isfinite(desired)])
        scale = float(fin.max()) if fin.size else 0.0
    atol = rtol * max(1.0, scale)
    assert_allclose(
        actual, desired, rtol=rtol, atol=atol, equal_nan=True, err_msg=err_msg
    )


def _assert_same_kind(ours, ref, where=""):
    """Same Python type (NumPy scalar vs ndarray), dtype and shape."""
    assert type(ours) is type(ref), (type(ours), type(ref), where)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype, where)
    assert ours.shape == ref.shape, (ours.shape, ref.shape, where)


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        return rng.integers(0, 6, size=shape).astype(dt)
    if dt.kind == "c":
        return (rng.normal(size=shape) * 2 + 1j * rng.normal(size=shape)).astype(dt)
    return (rng.normal(size=shape) * 3).astype(dt)


def _ref_input(x):
    """The array SciPy's *values* are computed from.

    For integer input SciPy subtracts the max in the integer dtype, which
    wraps around for unsigned types (scipy softmax(uint8 [1, 3]) gives
    [nan, 0]); the mathematically meant answer is SciPy's on a float64 copy.
    """
    return x.astype(np.float64) if x.dtype.kind in "biu" else x


def _sum_kd(a, axis):
    return np.sum(a, axis=axis, keepdims=True)


def ref_jvp(x, v, axis):
    """(y, dy) from SciPy's log_softmax / softmax and the JVP formula."""
    y = _sc("log_softmax", x, axis=axis)
    p = _sc("softmax", x, axis=axis)
    with np.errstate(all="ignore"):
        dy = v - _sum_kd(np.asarray(p) * v, axis)
    return y, dy


def ref_vjp(y, g, axis):
    with np.errstate(all="ignore"):
        return g - np.exp(y) * _sum_kd(g, axis)


def _softmax_dtype(dt):
    """Result dtype SciPy's softmax gives (np.exp's): int8 -> float16 ..."""
    dt = np.dtype(dt)
    if dt.kind in "iu":
        return np.promote_types(dt, np.float16)
    return dt


# =========================================================================
# 1. Same answers, dtypes, shapes and Python types as SciPy
# =========================================================================


def _dtype_params(bug_dtypes=(), reason=""):  # no open bugs at the moment
    """ALL_DTYPES as pytest params; those in bug_dtypes marked strict xfail."""
    out = []
    for d in ALL_DTYPES:
        marks = (
            [pytest.mark.xfail(strict=True, reason=reason)]
            if np.dtype(d) in bug_dtypes
            else []
        )
        out.append(pytest.param(d, marks=marks, id=np.dtype(d).name))
    return out


# Each test below loops over all AXIS_CASES (1-d .. 4-d, axis None / int /
# negative / tuple / ()); the failing case is named in the error message.


@pytest.mark.parametrize("dtype", _dtype_params())
def test_logsumexp_matches_scipy(dtype):
    for shape, axis in AXIS_CASES:
        x = _data(shape, dtype)
        for keepdims in (False, True):
            where = f"shape={shape} axis={axis} keepdims={keepdims}"
            ref_kind = _sc("logsumexp", x, axis=axis, keepdims=keepdims)
            ref = np.asarray(
                _sc("logsumexp", _ref_input(x), axis=axis, keepdims=keepdims)
            ).astype(ref_kind.dtype)
            ours = lx.logsumexp(x, axis=axis, keepdims=keepdims)
            _assert_same_kind(ours, ref_kind, where)
            _assert_close(ours, ref, _tols(ref_kind.dtype), err_msg=where)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", _dtype_params())
def test_softmax_log_softmax_match_scipy(name, dtype):
    for shape, axis in AXIS_CASES:
        where = f"shape={shape} axis={axis}"
        x = _data(shape, dtype)
        if np.dtype(dtype).kind == "b":
            with pytest.raises(TypeError):
                _sc(name, x, axis=axis)
            with pytest.raises(TypeError):
                getattr(lx, name)(x, axis=axis)
            continue
        ref_kind = _sc(name, x, axis=axis)
        ref = np.asarray(_sc(name, _ref_input(x), axis=axis)).astype(ref_kind.dtype)
        ours = getattr(lx, name)(x, axis=axis)
        _assert_same_kind(ours, ref_kind, where)
        _assert_close(ours, ref, _tols(ref_kind.dtype), err_msg=where)


@pytest.mark.parametrize("dtype", _dtype_params())
def test_jvp_matches_formula(dtype):
    for shape, axis in AXIS_CASES:
        where = f"shape={shape} axis={axis}"
        x = _data(shape, dtype, seed=1)
        v = _data(shape, dtype, seed=2)
        if np.dtype(dtype).kind == "b":
            with pytest.raises(TypeError):
                lx.log_softmax_jvp(x, v, axis=axis)
            continue
        ref_kind = _sc("log_softmax", x, axis=axis)
        y_ref, dy_ref = ref_jvp(_ref_input(x), _ref_input(v), axis)
        y, dy = lx.log_softmax_jvp(x, v, axis=axis)
        _assert_same_kind(y, ref_kind, where)
        _assert_same_kind(dy, ref_kind, where)
        rtol = _tols(ref_kind.dtype)
        _assert_close(y, np.asarray(y_ref).astype(ref_kind.dtype), rtol, err_msg=where)
        _assert_close(
            dy,
            np.asarray(dy_ref).astype(ref_kind.dtype),
            rtol,
            scale=float(np.max(np.abs(v), initial=0)),
            err_msg=where,
        )


@pytest.mark.parametrize("dtype", _dtype_params())
def test_vjp_matches_formula(dtype):
    for shape, axis in AXIS_CASES:
        where = f"shape={shape} axis={axis}"
        x = _data(shape, dtype, seed=3)
        g = _data(shape, dtype, seed=4)
        if np.dtype(dtype).kind == "b":
            with pytest.raises(TypeError):
                lx.log_softmax_vjp(x, g, axis=axis)
            continue
        # y: a log_softmax output (computed by SciPy), as backprop stores it
        ydt = _softmax_dtype(x.dtype)
        y = np.asarray(_sc("log_softmax", _ref_input(x), axis=axis)).astype(ydt)
        ref = ref_vjp(_ref_input(y), _ref_input(g), axis)
        ours = lx.log_softmax_vjp(y, g, axis=axis)
        # y has the softmax dtype, g the input dtype: result_type of both
        exp_dt = _softmax_dtype(np.result_type(y, g))
        assert isinstance(ours, np.ndarray), where
        assert ours.dtype == exp_dt, where
        assert ours.shape == shape, where
        _assert_close(
            ours,
            np.asarray(ref).astype(exp_dt),
            _tols(exp_dt),
            scale=float(np.abs(g).max(initial=0)) * max(1, g.size),
            err_msg=where,
        )


def test_vjp_result_dtype_same_dtype_inputs():
    for dt in [np.float16, np.float32, np.float64, np.int8, np.int16]:
        y = np.zeros(3, dt)
        g = np.ones(3, dt)
        assert lx.log_softmax_vjp(y, g).dtype == _softmax_dtype(dt)
        assert lx.log_softmax_jvp(y, g)[1].dtype == _softmax_dtype(dt)


@pytest.mark.parametrize(
    "x",
    [1.5, np.float64(1.5), np.float32(-2.0), 3, np.float16(0.5)],
    ids=["pyfloat", "f64", "f32", "pyint", "f16"],
)
@pytest.mark.parametrize("axis", [None, 0, -1, ()])
def test_0d_inputs(x, axis):
    for keepdims in (False, True):
        ref = _sc("logsumexp", x, axis=axis, keepdims=keepdims)
        ours = lx.logsumexp(x, axis=axis, keepdims=keepdims)
        _assert_same_kind(ours, ref)
        _assert_close(ours, ref, _tols(ref.dtype))
    for name in ("softmax", "log_softmax"):
        ref = _sc(name, x, axis=axis)
        ours = getattr(lx, name)(x, axis=axis)
        _assert_same_kind(ours, ref)
        _assert_close(ours, ref, _tols(ref.dtype))
    ref = _sc("log_softmax", x, axis=axis)
    y, dy = lx.log_softmax_jvp(x, 2.0 * x, axis=axis)
    _assert_same_kind(y, ref)
    _assert_same_kind(dy, ref)
    assert y == 0 and dy == 0
    dx = lx.log_softmax_vjp(y, 2.0 * x, axis=axis)
    _assert_same_kind(dx, ref)
    assert dx == 0


def test_0d_return_sign():
    for x in (1.5, np.float64(-3.0), np.float32(2.0)):
        ref = _sc("logsumexp", x, return_sign=True)
        ours = lx.logsumexp(x, return_sign=True)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r)
            assert_array_equal(o, r)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_list_inputs(axis):
    for lst in ([[1.0, 2.0, 3.0], [4.0, -5.0, 6.5]], [[1, 2, 3], [4, 5, 6]]):
        for keepdims in (False, True):
            ref = _sc("logsumexp", lst, axis=axis, keepdims=keepdims)
            ours = lx.logsumexp(lst, axis=axis, keepdims=keepdims)
            _assert_same_kind(ours, ref)
            _assert_close(ours, ref, 1e-12)
        for name in ("softmax", "log_softmax"):
            ref = _sc(name, lst, axis=axis)
            ours = getattr(lx, name)(lst, axis=axis)
            _assert_same_kind(ours, ref)
            _assert_close(ours, ref, 1e-12)
        y_ref, dy_ref = ref_jvp(np.asarray(lst, float), np.ones((2, 3)), axis)
        y, dy = lx.log_softmax_jvp(lst, np.ones((2, 3)).tolist(), axis=axis)
        _assert_close(y, y_ref, 1e-12)
        _assert_close(dy, dy_ref, 1e-12)
        dx = lx.log_softmax_vjp(y.tolist(), lst, axis=axis)
        _assert_close(dx, ref_vjp(y, np.asarray(lst, float), axis), 1e-12, scale=30)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_logsumexp_complex_return_sign(dtype):
    x = np.array([[1 + 1j, 3 - 2j, 2 + 5j], [0.5j, -1, 2 - 1j]], dtype)
    for axis in (None, 1):
        ref = _sc("logsumexp", x, axis=axis, return_sign=True)
        ours = lx.logsumexp(x, axis=axis, return_sign=True)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r)
            _assert_close(o, r, _tols(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.longdouble])
def test_logsumexp_return_sign_regular(dtype):
    x = _data((3, 4), dtype)
    for axis in (None, 0, 1):
        ref = _sc("logsumexp", x, axis=axis, return_sign=True)
        ours = lx.logsumexp(x, axis=axis, return_sign=True)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r)
            _assert_close(o, r, _tols(dtype))


# ---- axis=() : no reduction at all (logsumexp is then log(exp(x)) = x,
# softmax 1 and log_softmax 0 where x is finite)


def _axis_empty_input(kind, dtype):
    base = _data((4, 6, 3), dtype, seed=9)
    return {
        "0d-pyfloat": 1.5,
        "0d-scalar": np.asarray(-2.0).astype(dtype)[()],
        "list": [[1.0, 2.0], [3.0, -4.0]],
        "1d-C": base[0, :, 0].copy(),
        "2d-C": base[0].copy(),
        "3d-C": base,
        "4d-C": base.reshape(2, 2, 6, 3),
        "2d-F": np.asfortranarray(base[0]),
        "3d-sliced": base[::2, 1::3],
        "3d-T": base.transpose(2, 0, 1),
    }[kind]


AXIS_EMPTY_KINDS = [
    "0d-pyfloat",
    "0d-scalar",
    "list",
    "1d-C",
    "2d-C",
    "3d-C",
    "4d-C",
    "2d-F",
    "3d-sliced",
    "3d-T",
]


@pytest.mark.parametrize("kind", AXIS_EMPTY_KINDS)
def test_axis_empty_tuple_matches_scipy(kind):
    for dtype in (np.float16, np.float32, np.float64, np.int16):
        x = _axis_empty_input(kind, dtype)
        arr = np.asarray(x)
        snap = _snapshot(arr) if isinstance(x, np.ndarray) else None
        rtol = _tols(_softmax_dtype(arr.dtype))
        for keepdims in (False, True):
            for rs in (False, True):
                ref = _sc("logsumexp", x, axis=(), keepdims=keepdims, return_sign=rs)
                ours = lx.logsumexp(x, axis=(), keepdims=keepdims, return_sign=rs)
                if not rs:
                    ref, ours = (ref,), (ours,)
                for o, r in zip(ours, ref):
                    _assert_same_kind(o, r, (dtype, keepdims, rs))
                    _assert_close(o, r, _tols(r.dtype))
            # with weights: log(b * exp(x)) = x + log(b)
            ref = _sc("logsumexp", x, axis=(), b=2.0, keepdims=keepdims)
            ours = lx.logsumexp(x, axis=(), b=2.0, keepdims=keepdims)
            _assert_same_kind(ours, ref, (dtype, keepdims, "b"))
            _assert_close(ours, ref, _tols(ref.dtype))
        for name in ("softmax", "log_softmax"):
            ref = _sc(name, x, axis=())
            ours = getattr(lx, name)(x, axis=())
            _assert_same_kind(ours, ref, (dtype, name))
            _assert_close(ours, ref, rtol)
        ref = _sc("log_softmax", x, axis=())
        y, dy = lx.log_softmax_jvp(x, x, axis=())
        _assert_same_kind(y, ref, dtype)
        _assert_close(y, ref, rtol)
        assert_array_equal(dy, np.zeros_like(ref))  # v - 1 * v
        dx = lx.log_softmax_vjp(np.zeros_like(ref), x, axis=())  # g - 1 * g
        assert_array_equal(dx, np.zeros_like(ref))
        if snap is not None:
            _assert_unchanged(snap, [arr])


def test_axis_empty_tuple_layouts_agree():
    # F order / sliced / transposed / broadcast input with axis=()
    for dtype in FLOATS:
        base = _data((4, 6, 3), dtype, seed=10)
        for x in (
            np.asfortranarray(base),
            base[::2, ::-1],
            base.transpose(1, 2, 0),
            np.broadcast_to(base[:, :1], (4, 6, 3)),
        ):
            c = np.ascontiguousarray(x)
            assert_array_equal(lx.logsumexp(x, axis=()), c)
            assert_array_equal(lx.softmax(x, axis=()), np.ones_like(c))
            assert_array_equal(lx.log_softmax(x, axis=()), np.zeros_like(c))


# =========================================================================
# 2. logsumexp weights b
# =========================================================================


@pytest.mark.parametrize("dtype", FLOATS + [np.longdouble])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1), ()])
@pytest.mark.parametrize("return_sign", [False, True])
def test_b_broadcast_enlarges_result(dtype, axis, return_sign):
    a = np.array([[0.5], [-1.0]], dtype)  # (2, 1)
    b = np.array([[1.0, 2.0, 0.25]], dtype)  # (1, 3) -> result grid (2, 3)
    for keepdims in (False, True):
        ref = _sc(
            "logsumexp", a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign
        )
        ours = lx.logsumexp(
            a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign
        )
        if not return_sign:
            ref, ours = (ref,), (ours,)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r)
            _assert_close(o, r, _tols(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_b_negative_weights(dtype, axis):
    a = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 2.5]], dtype)
    b = np.array([[1.0, -1.0, 0.5], [-2.0, 1.0, 3.0]], dtype)
    ref = _sc("logsumexp", a, axis=axis, b=b)
    ours = lx.logsumexp(a, axis=axis, b=b)
    _assert_same_kind(ours, ref)
    _assert_close(ours, ref, _tols(dtype))
    # negative sum without return_sign: nan; with it: log|sum| and sign -1
    ours_s = lx.logsumexp(a, axis=axis, b=b, return_sign=True)
    ref_s = _sc("logsumexp", a, axis=axis, b=b, return_sign=True)
    for o, r in zip(ours_s, ref_s):
        _assert_same_kind(o, r)
        _assert_close(o, r, _tols(dtype))
    direct = np.sum(b.astype(np.float64) * np.exp(a.astype(np.float64)), axis=axis)
    _assert_close(ours_s[0], np.log(np.abs(direct)), _tols(dtype))
    assert_array_equal(ours_s[1], np.sign(direct))


def test_b_sign_examples():
    r, s = lx.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    assert s == -1.0
    assert_allclose(r, np.log(np.e**2 - np.e), rtol=1e-14)
    assert np.isnan(lx.logsumexp([1.0, 2.0], b=[1.0, -1.0]))
    # exact cancellation: log 0 = -inf, sign 0 (as SciPy)
    ref = _sc("logsumexp", [1.0, 1.0], b=[1, -1], return_sign=True)
    ours = lx.logsumexp([1.0, 1.0], b=[1, -1], return_sign=True)
    assert ours[0] == -inf and ours[1] == 0.0
    for o, r in zip(ours, ref):
        _assert_same_kind(o, r)


@pytest.mark.parametrize(
    "a_dt,b",
    [
        (np.float32, 2.0),  # Python float is weak: float32 kept
        (np.float32, 2),  # Python int is weak
        (np.float16, 2.0),
        (np.float64, 2.0),
        (np.float32, np.float64(2.0)),  # NumPy scalar is strong: float64
        (np.float32, np.array([1.0, 2.0, 3.0])),  # float64 b -> float64
        (np.float64, np.array([1.0, 2.0, 3.0], np.float32)),
        (np.float32, np.array([1, 2, 3])),  # int64 b -> float64
        (np.float32, np.array([1, 2, 3], np.int8)),
        (np.float32, np.array([True, False, True])),
        (np.int32, 2.0),
        (np.float32, [1.0, 2.0, 0.5]),  # list -> float64 array
    ],
)
def test_b_dtype_promotion(a_dt, b):
    a = np.array([0.5, -1.0, 2.0], a_dt)
    for axis in (None, 0, ()):
        for rs in (False, True):
            ref = _sc("logsumexp", a, axis=axis, b=b, return_sign=rs)
            ours = lx.logsumexp(a, axis=axis, b=b, return_sign=rs)
            if not rs:
                ref, ours = (ref,), (ours,)
            for o, r in zip(ours, ref):
                _assert_same_kind(o, r)
                _assert_close(o, r, _tols(r.dtype))


def test_b_python_scalar_keeps_float32_value():
    a = np.array([0.0, 0.0], np.float32)
    r = lx.logsumexp(a, b=2.0)
    assert isinstance(r, np.float32)
    assert_allclose(r, np.log(4.0), rtol=1e-6)


def test_b_scalar_a_array_b():
    ref = _sc("logsumexp", 1.0, b=np.array([1.0, 2.0, 3.0]), axis=0)
    ours = lx.logsumexp(1.0, b=np.array([1.0, 2.0, 3.0]), axis=0)
    _assert_same_kind(ours, ref)
    _assert_close(ours, ref, 1e-12)


@pytest.mark.parametrize(
    "a,b",
    [
        ([0.0, 1.0], [1.0, 1e-310]),
        ([0.0, 2.2250738585072014e-308], [2.0, 1.1125369292536007e-308]),
        ([0.0, 1.0], [-1.0, 1e-310]),
        ([0.0, 1.0, 1.0], [1.0, 3e-310, 2e-310]),
    ],
)
def test_b_subnormal_weight(a, b):
    a = np.array(a)
    b = np.array(b)
    exact = np.sum(b * np.exp(a))  # no overflow here; the weights are tiny
    r, sgn = lx.logsumexp(a, b=b, return_sign=True)
    assert_allclose(r, np.log(np.abs(exact)), rtol=1e-14, atol=1e-15)
    assert sgn == np.sign(exact)
    ref = _sc("logsumexp", a, b=b, return_sign=True)
    assert_allclose(r, ref[0], rtol=1e-14, atol=1e-15)


def test_b_tiny_normal_weight():
    # tiny normal weights on the max entry: finite, as SciPy (to within the
    # absolute error of m + log(c) + log1p(rest / c), about eps * |log c|)
    a = np.array([0.0, 1.0])
    for w in (1e-300, 1e-200, 1e-30, 1e-10):
        r = lx.logsumexp(a, b=[1.0, w])
        assert np.isfinite(r)
        assert_allclose(r, _sc("logsumexp", a, b=[1.0, w]), rtol=1e-12, atol=1e-13)
        assert_allclose(r, np.log1p(w * np.e), rtol=1e-12, atol=1e-13)


# =========================================================================
# 3. Edge values (inf, nan), b == 0, empty inputs
# =========================================================================

EDGE_ROWS = [
    [inf, 1],
    [-inf, -inf],
    [nan, 1],
    [inf, -inf],
    [inf, nan],
    [inf, inf],
    [-inf, 1],
    [nan, -inf],
    # same rows reversed / a few more
    [1, inf],
    [-inf, inf],
    [1, nan],
    [-inf, nan],
    [nan, inf],
    [nan, nan],
    [-inf, -inf, 2.0],
    [inf, 3.0, -inf],
]
EDGE_IDS = [str(r) for r in EDGE_ROWS]


def _check_edge(name, x, rs, kwargs):
    ref = _sc(name, x, **kwargs)
    ours = getattr(lx, name)(x, **kwargs)
    if not rs:
        ref, ours = (ref,), (ours,)
    for o, r in zip(ours, ref):
        _assert_same_kind(o, r)
        # exact special values; finite entries to tolerance
        assert_array_equal(np.isnan(o), np.isnan(r))
        _assert_close(o, r, _tols(r.dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("row", EDGE_ROWS, ids=EDGE_IDS)
def test_edge_rows_softmax_log_softmax(dtype, row):
    x = np.array(row, dtype)
    for name in ("softmax", "log_softmax"):
        _check_edge(name, x, False, {})
        # the same row laid out along axis 0 (column path) and axis 1
        X = np.stack([x, np.linspace(-1.0, 1.0, x.size).astype(dtype), x])
        _check_edge(name, X, False, dict(axis=1))
        _check_edge(name, np.ascontiguousarray(X.T), False, dict(axis=0))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("row", EDGE_ROWS, ids=EDGE_IDS)
def test_edge_rows_logsumexp(dtype, row):
    x = np.array(row, dtype)
    X = np.stack([x, np.linspace(-1.0, 1.0, x.size).astype(dtype), x])
    _check_edge("logsumexp", x, False, {})
    _check_edge("logsumexp", X, False, dict(axis=1))
    _check_edge("logsumexp", np.ascontiguousarray(X.T), False, dict(axis=0))
    b = np.ones(len(row), dtype)
    b[0] = -1.0
    for bb in (b, -b):
        for rs in (False, True):
            _check_edge("logsumexp", x, rs, dict(b=bb, return_sign=rs))


@pytest.mark.parametrize("row", EDGE_ROWS, ids=EDGE_IDS)
def test_edge_rows_logsumexp_return_sign_no_b(row):
    # SciPy's sign is 0 for a row of only -inf and nan for a row with a nan
    for dtype in FLOATS:
        x = np.array(row, dtype)
        _check_edge("logsumexp", x, True, dict(return_sign=True))
        X = np.stack([x, np.linspace(-1.0, 1.0, x.size).astype(dtype), x])
        _check_edge("logsumexp", X, True, dict(axis=1, return_sign=True))
        _check_edge(
            "logsumexp", np.ascontiguousarray(X.T), True, dict(axis=0, return_sign=True)
        )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("row", EDGE_ROWS, ids=EDGE_IDS)
def test_edge_rows_jvp_vjp(dtype, row):
    x = np.array(row, dtype)
    v = np.linspace(-1.0, 2.0, len(row)).astype(dtype)
    y_ref, dy_ref = ref_jvp(x, v, None)
    y, dy = lx.log_softmax_jvp(x, v)
    assert y.dtype == dy.dtype == np.dtype(dtype)
    assert_array_equal(np.isnan(y), np.isnan(y_ref))
    assert_array_equal(np.isnan(dy), np.isnan(dy_ref))
    _assert_close(y, y_ref, _tols(dtype))
    _assert_close(dy, dy_ref, _tols(dtype), scale=2.0)
    # vjp from SciPy's log_softmax output (which holds -inf / nan here)
    dx = lx.log_softmax_vjp(y_ref, v)
    dx_ref = ref_vjp(y_ref, v, None)
    assert dx.dtype == np.dtype(dtype)
    assert_array_equal(np.isnan(dx), np.isnan(dx_ref))
    _assert_close(dx, dx_ref, _tols(dtype), scale=2.0 * len(row))


def _lse_ignoring_zero_b(a, b, **kw):
    """logsumexp over the entries with b != 0 only (computed by SciPy on the
    remaining entries: ignored entries become a = -inf, which adds 0)."""
    a = np.asarray(a)
    b = np.asarray(b)
    a2 = np.where(b == 0, -inf, a).astype(np.result_type(a, b))
    return _sc("logsumexp", a2, b=b, **kw)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "a,b",
    [
        ([inf, -inf], [0, 1]),  # SciPy: nan (0 * inf); lsm_ext: -inf
        ([inf, 1.0], [0, 1]),  # SciPy: nan; lsm_ext: 1.0
        ([nan, 2.0], [0, 1]),  # SciPy: nan; lsm_ext: 2.0
        ([inf, nan], [1, 0]),  # SciPy: nan; lsm_ext: inf
        ([inf, inf], [1, 0]),  # SciPy: nan; lsm_ext: inf
        ([nan, inf], [0, 1]),  # SciPy: nan; lsm_ext: inf
        ([nan, -inf], [0, 1]),  # SciPy: nan; lsm_ext: -inf
        ([-inf, inf], [1, 0]),  # SciPy: nan; lsm_ext: -inf
        ([inf, 2.0, -1.0], [0, 1, -1]),
        ([nan, inf, 0.0], [1, 0, 1]),  # the nan is kept: nan
        ([inf, nan], [0, 0]),  # everything ignored: log 0 = -inf
        ([1.0, 5.0], [0, 2]),  # finite a: SciPy agrees here
    ],
)
def test_b_zero_entries_ignored(dtype, a, b):
    # Deliberate difference from SciPy: entries with b == 0 are ignored even
    # where a is inf or nan. SciPy only ignores them when its result is
    # finite; with an infinite max it computes 0 * inf = nan (e.g.
    # scipy.special.logsumexp([inf, -inf], b=[0, 1]) is nan, lsm_ext gives
    # -inf = logsumexp of the remaining entry).
    a = np.array(a, dtype)
    b = np.array(b, dtype)
    for rs in (False, True):
        exp = _lse_ignoring_zero_b(a, b, return_sign=rs)
        ours = lx.logsumexp(a, b=b, return_sign=rs)
        if not rs:
            exp, ours = (exp,), (ours,)
        for o, e in zip(ours, exp):
            _assert_same_kind(o, e)
            assert_array_equal(np.isnan(o), np.isnan(e))
            _assert_close(o, e, _tols(dtype))
    # also along an axis of a 2-d array, both layouts
    A = np.stack([a, a])
    B = np.stack([b, np.ones_like(b)])
    exp = _lse_ignoring_zero_b(A, B, axis=1)
    ours = lx.logsumexp(A, b=B, axis=1)
    assert_array_equal(np.isnan(ours), np.isnan(exp))
    _assert_close(ours, exp, _tols(dtype))
    ours_t = lx.logsumexp(
        np.ascontiguousarray(A.T), b=np.ascontiguousarray(B.T), axis=0
    )
    _assert_close(ours_t, exp, _tols(dtype))


def test_b_zero_scipy_difference_documented():
    # sanity: the documented SciPy behaviour that lsm_ext deliberately fixes
    assert np.isnan(_sc("logsumexp", [inf, -inf], b=[0, 1]))
    assert lx.logsumexp([inf, -inf], b=[0, 1]) == -inf


EMPTY_CASES = [
    ((0,), None),
    ((0,), 0),
    ((0,), -1),
    ((0, 3), 0),
    ((0, 3), 1),
    ((0, 3), None),
    ((2, 0, 4), 1),
    ((2, 0, 4), (0, 2)),
    ((2, 0, 4), None),
    ((2, 0, 4), -1),
    ((3, 0), ()),
    ((0, 3), (0, 1)),
]


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.int32, np.longdouble]
)
def test_empty_logsumexp(dtype):
    for shape, axis in EMPTY_CASES:
        x = np.ones(shape, dtype)
        res_dt = np.float64 if np.dtype(dtype).kind in "iu" else dtype
        for keepdims in (False, True):
            where = f"shape={shape} axis={axis} keepdims={keepdims}"
            out = lx.logsumexp(x, axis=axis, keepdims=keepdims)
            r, s = lx.logsumexp(x, axis=axis, keepdims=keepdims, return_sign=True)
            exp_shape = np.sum(x, axis=axis, keepdims=keepdims).shape
            for o in (out, r, s):
                assert o.dtype == np.dtype(res_dt), where
                assert np.shape(o) == exp_shape, where
                assert isinstance(o, np.ndarray) == (exp_shape != ()), where
            assert np.all(out == -inf) and np.all(r == -inf), where
            assert np.all(s == -1.0), where
            try:
                ref = _sc("logsumexp", x, axis=axis, keepdims=keepdims)
                ref_s = _sc(
                    "logsumexp", x, axis=axis, keepdims=keepdims, return_sign=True
                )
            except IndexError:
                continue  # SciPy 1.17 fails on some multi-axis empty reductions
            if axis == ():
                continue  # SciPy 1.17: shape (1, 1) for shape (3, 0), axis=()
            _assert_same_kind(out, ref, where)
            assert_array_equal(out, ref, err_msg=where)
            for o, rr in zip((r, s), ref_s):
                _assert_same_kind(o, rr, where)
                assert_array_equal(o, rr, err_msg=where)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_empty_logsumexp_complex(dtype):
    # SciPy: -inf+0j, and with return_sign a nan sign (0 / |0|)
    x = np.ones((0, 3), dtype)
    for axis in (0, 1):  # SciPy 1.17 raises IndexError for axis=None here
        ref = _sc("logsumexp", x, axis=axis)
        ref_r, ref_s = _sc("logsumexp", x, axis=axis, return_sign=True)
        ours = lx.logsumexp(x, axis=axis)
        r, s = lx.logsumexp(x, axis=axis, return_sign=True)
        for o, rr in ((ours, ref), (r, ref_r), (s, ref_s)):
            _assert_same_kind(o, rr, f"axis={axis}")
            assert_array_equal(o, rr)


@pytest.mark.parametrize(
    "dtype",
    [
        np.float16,
        np.float32,
        np.float64,
        np.int16,
        np.int8,
        np.longdouble,
        np.complex128,
    ],
)
def test_empty_elementwise(dtype):
    # SciPy raises on most of these (zero-size reduction); lsm_ext returns an
    # empty array of the input's shape and the softmax result dtype.
    for shape, axis in EMPTY_CASES:
        x = np.ones(shape, dtype)
        exp_dt = _softmax_dtype(dtype)
        outs = [
            lx.softmax(x, axis=axis),
            lx.log_softmax(x, axis=axis),
            *lx.log_softmax_jvp(x, x, axis=axis),
            lx.log_softmax_vjp(x, x, axis=axis),
        ]
        for o in outs:
            assert isinstance(o, np.ndarray), (shape, axis)
            assert o.dtype == exp_dt, (shape, axis)
            assert o.shape == shape, (shape, axis)


# =========================================================================
# 4. Accuracy at the max element
# =========================================================================


def test_accuracy_logsumexp_near_max_f64():
    r = lx.logsumexp(np.array([0.0, -40.0]))
    assert_allclose(r, 4.248354255291589e-18, rtol=1e-15)
    # along axis 0 of a 2-d array (the column-block path) and axis 1
    X = np.array([[0.0, 0.0, -40.0], [-40.0, -40.0, 0.0]])
    assert_allclose(lx.logsumexp(X, axis=0)[:2], 4.248354255291589e-18, rtol=1e-15)
    assert_allclose(lx.logsumexp(X.T, axis=1)[:2], 4.248354255291589e-18, rtol=1e-15)
    assert_allclose(
        lx.logsumexp(np.ascontiguousarray(X.T), axis=1)[:2],
        4.248354255291589e-18,
        rtol=1e-15,
    )


def test_accuracy_log_softmax_near_max_f64():
    y = lx.log_softmax(np.array([0.0, -40.0]))
    assert y[0] != 0.0  # SciPy gives exactly 0 here
    assert_allclose(y[0], -4.248354255291589e-18, rtol=1e-15)
    assert_allclose(y[1], -40.0, rtol=1e-16)
    X = np.array([[0.0, 0.0, 0.0], [-40.0, -40.0, -40.0]])
    assert_allclose(lx.log_softmax(X, axis=0)[0], -4.248354255291589e-18, rtol=1e-15)
    yj, _ = lx.log_softmax_jvp(np.array([0.0, -40.0]), np.array([1.0, 2.0]))
    assert_allclose(yj[0], -4.248354255291589e-18, rtol=1e-15)


def test_accuracy_log_softmax_near_max_f32():
    x = np.array([0, -17], dtype=np.float32)
    y = lx.log_softmax(x)
    assert y.dtype == np.float32
    assert y[0] != 0  # SciPy gives 0 in float32
    expected = -np.log1p(np.exp(-17.0))  # about -exp(-17) = -4.14e-8
    assert_allclose(y[0], expected, rtol=1e-5)
    assert_allclose(lx.logsumexp(x), -expected, rtol=1e-5)
    X = np.array([[0, 0], [-17, -17]], np.float32)
    assert_allclose(lx.log_softmax(X, axis=0)[0], expected, rtol=1e-5)
    assert_allclose(lx.logsumexp(X, axis=0), -expected, rtol=1e-5)


def test_accuracy_many_equal_maxima():
    # log(n) exactly when all entries equal; and log(3) + tiny correction
    x = np.zeros(1000)
    assert_allclose(lx.logsumexp(x), np.log(1000.0), rtol=1e-15)
    x = np.array([5.0, 5.0, 5.0, 5.0 - 50])
    assert_allclose(
        lx.logsumexp(x), 5.0 + np.log(3.0) + np.log1p(np.exp(-50) / 3), rtol=1e-15
    )


# =========================================================================
# 5. Errors
# =========================================================================

ALL5 = ["logsumexp", "softmax", "log_softmax", "log_softmax_jvp", "log_softmax_vjp"]


def _call(name, x, **kw):
    f = getattr(lx, name)
    if name in ("log_softmax_jvp", "log_softmax_vjp"):
        return f(x, np.ones(np.shape(x)), **kw)
    return f(x, **kw)


@pytest.mark.parametrize("name", ALL5)
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (-3,), 5])
def test_axis_out_of_range(name, axis):
    x = np.ones((2, 3))
    with pytest.raises(AxisError):
        _call(name, x, axis=axis)


@pytest.mark.parametrize("name", ALL5)
def test_axis_out_of_range_1d_and_0d(name):
    with pytest.raises(AxisError):
        _call(name, np.ones(3), axis=1)
    with pytest.raises(AxisError):
        _call(name, np.float64(1.0), axis=1)


@pytest.mark.parametrize("name", ALL5)
@pytest.mark.parametrize("axis", [(0, 0), (0, -2), (1, -1)])
def test_repeated_axes(name, axis):
    with pytest.raises(ValueError):
        _call(name, np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("name", ALL5)
@pytest.mark.parametrize("axis", [1.0, (0, 1.0), 0.5])
def test_float_axis(name, axis):
    with pytest.raises(TypeError):
        _call(name, np.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("b", [np.ones(2), np.ones((3, 2)), np.ones((2, 2, 2))])
def test_b_not_broadcastable(b):
    with pytest.raises(ValueError):
        lx.logsumexp(np.ones((2, 3)), b=b)
    with pytest.raises(ValueError):
        lx.logsumexp(np.ones((2, 3)), b=b, axis=1, return_sign=True)


@pytest.mark.parametrize("name", ALL5)
@pytest.mark.parametrize(
    "x",
    [
        np.array([1.0, 2.0], dtype=object),
        np.array(["a", "b"]),
        np.array([b"a", b"b"]),
        ["a", "b"],
    ],
    ids=["object", "str", "bytes", "strlist"],
)
def test_object_and_string_arrays(name, x):
    with pytest.raises(TypeError):
        _call(name, x)


@pytest.mark.parametrize("name", ["log_softmax_jvp", "log_softmax_vjp"])
@pytest.mark.parametrize(
    "other",
    [np.array([1.0, 2.0], dtype=object), np.array(["a", "b"])],
    ids=["object", "str"],
)
def test_object_and_string_second_argument(name, other):
    with pytest.raises(TypeError):
        getattr(lx, name)(np.array([1.0, 2.0]), other)


@pytest.mark.parametrize(
    "b",
    [np.array([1.0, 2.0], dtype=object), np.array(["a", "b"])],
    ids=["object", "str"],
)
def test_logsumexp_b_object_or_string(b):
    with pytest.raises(TypeError):
        lx.logsumexp(np.array([1.0, 2.0]), b=b)


@pytest.mark.parametrize("name", ["log_softmax_jvp", "log_softmax_vjp"])
@pytest.mark.parametrize(
    "shapes",
    [
        ((2, 3), (3, 2)),
        ((2, 3), (3,)),
        ((2, 3), (1, 3)),
        ((3,), ()),
        ((), (2,)),
        ((2, 3), (2, 3, 1)),
    ],
)
def test_jvp_vjp_shape_mismatch(name, shapes):
    sx, sv = shapes
    with pytest.raises(ValueError):
        getattr(lx, name)(np.ones(sx), np.ones(sv))


def test_bool_raises_softmax_like():
    x = np.array([True, False])
    for name in ("softmax", "log_softmax"):
        with pytest.raises(TypeError):
            _sc(name, x)
        with pytest.raises(TypeError):
            getattr(lx, name)(x)
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(x, x)
    with pytest.raises(TypeError):
        lx.log_softmax_vjp(x, x)
    # a bool x is refused even when v would promote it (as log_softmax(x))
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(x, np.array([1, 2]))
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(x, np.array([1.0, 2.0]))
    # logsumexp accepts bool, like SciPy (float64 result)
    ref = _sc("logsumexp", x)
    ours = lx.logsumexp(x)
    _assert_same_kind(ours, ref)
    _assert_close(ours, ref, 1e-12)


def test_version():
    assert isinstance(lx.__version__, str)
    assert lx.__version__.count(".") >= 2


# =========================================================================
# 6. Inputs never modified
# =========================================================================


def _snapshot(*arrs):
    return [(a.copy(), a.tobytes()) for a in arrs]


def _assert_unchanged(snaps, arrs):
    for (copy, raw), a in zip(snaps, arrs):
        assert a.tobytes() == raw
        assert np.array_equal(a, copy, equal_nan=True)


def _inputs_variants(dtype):
    rng = np.random.default_rng(7)
    base = (rng.normal(size=(6, 5, 4)) * 3).astype(dtype)
    base[0, 0, 0] = inf
    base[1, 2, 3] = nan
    base[2, :, 1] = -inf
    return {
        "C": base,
        "F": np.asfortranarray(base),
        "sliced": base[::2, 1::2],
        "neg": base[::-1, ::-2],
        "T": base.transpose(2, 0, 1),
    }


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.float64, np.longdouble, np.complex128]
)
@pytest.mark.parametrize("kind", ["C", "F", "sliced", "neg", "T"])
def test_inputs_not_modified(dtype, kind):
    x = _inputs_variants(dtype)[kind]
    with np.errstate(all="ignore"):
        v = (x * 0.5 + 1.0) if np.dtype(dtype).kind == "c" else np.cos(x)
    v = np.where(np.isfinite(v), v, 1.0).astype(dtype)
    if kind == "F":
        v = np.asfortranarray(v)
    b = np.where(np.arange(x.size).reshape(x.shape) % 3 == 0, 0.0, -0.5).astype(
        np.float64 if np.dtype(dtype).kind == "c" else dtype
    )
    arrs = [x, v, b]
    snaps = _snapshot(*arrs)
    axes = [None, 0, 1, 2, -1, (0, 2), ()]
    with np.errstate(all="ignore"):
        for axis in axes:
            lx.logsumexp(x, axis=axis)
            lx.logsumexp(x, axis=axis, b=b, return_sign=True)
            lx.logsumexp(x, axis=axis, b=b, keepdims=True)
            if np.dtype(dtype).kind != "c":
                lx.softmax(x, axis=axis)
                lx.log_softmax(x, axis=axis)
                lx.log_softmax_jvp(x, v, axis=axis)
                lx.log_softmax_vjp(x, v, axis=axis)
            _assert_unchanged(snaps, arrs)


def test_inputs_not_modified_same_array_twice():
    # x passed as both arguments (aliasing) must stay untouched
    x = np.linspace(-3, 3, 24).reshape(4, 6)
    snap = _snapshot(x)
    for axis in (None, 0, 1):
        lx.log_softmax_jvp(x, x, axis=axis)
        lx.log_softmax_vjp(x, x, axis=axis)
        lx.logsumexp(x, b=x, axis=axis, return_sign=True)
    _assert_unchanged(snap, [x])


def test_lists_not_modified():
    lst = [[1.0, 2.0], [3.0, 4.0]]
    orig = [row[:] for row in lst]
    lx.softmax(lst, axis=1)
    lx.log_softmax_jvp(lst, lst)
    lx.logsumexp(lst, b=lst)
    assert lst == orig


# =========================================================================
# 7. Memory layouts
# =========================================================================

LAYOUTS = [
    "C",
    "F",
    "sliced",
    "neg",
    "T3",
    "readonly",
    "byteswap",
    "unaligned",
    "bcast_mid",
    "bcast_lead",
]
LAYOUT_AXES = [None, 0, 1, 2, -1, (0, 2), (0, 1), (1, 2), (2, 0, 1), ()]


def _unaligned(x):
    buf = np.zeros(x.nbytes + 1, np.uint8)
    u = np.frombuffer(buf[1:].data, dtype=x.dtype).reshape(x.shape)
    u[...] = x
    return u


def _layout(kind, rng, dtype, special, positive=False):
    """An array in the given memory layout (always 3-d)."""
    base = (rng.normal(size=(8, 9, 6)) * 3).astype(dtype)
    if positive:
        base = np.abs(base) + dtype(0.125)
    if special:
        base[0, 1, 2] = inf
        base[3, 4, 1] = nan
        base[5, :, 3] = -inf
        base[:, 7, 0] = inf
    if kind == "C":
        return base[:4, :5, :3].copy()
    if kind == "F":
        return np.asfortranarray(base[:4, :5, :3])
    if kind == "sliced":
        return base[::2, 1::3]
    if kind == "neg":
        return base[::-1, ::-2]
    if kind == "T3":
        return base[:4, :5, :3].transpose(2, 0, 1)
    if kind == "readonly":
        r = base[:4, :5, :3].copy()
        r.flags.writeable = False
        return r
    if kind == "byteswap":
        r = base[:4, :5, :3].astype(base.dtype.newbyteorder())
        assert not r.dtype.isnative
        return r
    if kind == "unaligned":
        u = _unaligned(base[:4, :5, :3])
        assert not u.flags.aligned
        return u
    if kind == "bcast_mid":
        return np.broadcast_to(base[:4, :1, :3], (4, 5, 3))
    if kind == "bcast_lead":
        return np.broadcast_to(base[0, :5, :3], (4, 5, 3))
    raise AssertionError(kind)


def _contig(a):
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("=")))


def _assert_layout_equal(ours, ref, nulp=2):
    """Same dtype and shape; values equal to nulp ulp (summation order may
    differ between the contiguous and strided kernels), nan/inf positions
    exact."""
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert_array_equal(np.isinf(ours) * np.sign(ours), np.isinf(ref) * np.sign(ref))
    fin = np.isfinite(ref)
    eps = np.finfo(ref.dtype).eps
    scale = max(1.0, float(np.abs(ref[fin]).max(initial=0)))
    assert_allclose(ours[fin], ref[fin], rtol=nulp * eps, atol=nulp * eps * scale)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "special"])
@pytest.mark.parametrize("name", ALL5 + ["logsumexp_b"])
def test_layouts(name, kind, dtype, special):
    rng = np.random.default_rng(zlib.crc32(f"{kind}-{special}".encode()))
    x = _layout(kind, rng, dtype, special)
    other = _layout(kind, np.random.default_rng(99), dtype, False)  # v, g or b
    if name == "logsumexp_b":
        # positive weights: a sum without cancellation, well conditioned
        other = _layout(kind, np.random.default_rng(98), dtype, False, positive=True)
    xc, oc = _contig(x), _contig(other)
    snaps = _snapshot(x, other)
    for axis in LAYOUT_AXES:
        with np.errstate(all="ignore"):
            if name == "logsumexp":
                for kd in (False, True):
                    _assert_layout_equal(
                        lx.logsumexp(x, axis=axis, keepdims=kd),
                        lx.logsumexp(xc, axis=axis, keepdims=kd),
                    )
            elif name == "logsumexp_b":
                r = lx.logsumexp(x, axis=axis, b=other, return_sign=True)
                rc = lx.logsumexp(xc, axis=axis, b=oc, return_sign=True)
                _assert_layout_equal(r[0], rc[0])
                _assert_layout_equal(r[1], rc[1])
                _assert_layout_equal(
                    lx.logsumexp(x, axis=axis, b=other),
                    lx.logsumexp(xc, axis=axis, b=oc),
                )
            elif name in ("softmax", "log_softmax"):
                f = getattr(lx, name)
                _assert_layout_equal(f(x, axis=axis), f(xc, axis=axis))
            else:
                f = getattr(lx, name)
                r, rc = f(x, other, axis=axis), f(xc, oc, axis=axis)
                # dy = v - sum(p v) and dx = g - exp(y) sum(g): the sums are
                # formed in another order per layout, and cancel (a few ulp)
                if name == "log_softmax_jvp":
                    _assert_layout_equal(r[0], rc[0])
                    _assert_layout_equal(r[1], rc[1], nulp=8)
                else:
                    _assert_layout_equal(r, rc, nulp=8)
    _assert_unchanged(snaps, [x, other])


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "log_softmax_vjp"])
def test_non_native_byteorder_softmax(name):
    for dtype in (np.float16, np.float32, np.float64):
        for shape, axis in [((2, 3), 1), ((2, 3), None), ((2, 3), 0), ((4,), None)]:
            x = np.linspace(-2, 3, np.prod(shape)).reshape(shape)
            xn = x.astype(dtype)
            x = x.astype(np.dtype(dtype).newbyteorder())
            if name == "log_softmax_vjp":
                ref = lx.log_softmax_vjp(xn, xn, axis=axis)  # native inputs
                ours = lx.log_softmax_vjp(x, x, axis=axis)
            else:
                ref = _sc(name, x, axis=axis)
                ours = getattr(lx, name)(x, axis=axis)
            _assert_same_kind(ours, ref, (dtype, shape, axis))
            _assert_close(ours, ref, _tols(dtype))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_non_native_byteorder_native_results(dtype):
    x = np.linspace(-2, 3, 6).reshape(2, 3).astype(np.dtype(dtype).newbyteorder())
    xn = x.astype(dtype)
    for axis in (None, 0, 1):
        y, dy = lx.log_softmax_jvp(x, x, axis=axis)
        dx = lx.log_softmax_vjp(x, xn, axis=axis)
        for o, r in (
            (y, lx.log_softmax_jvp(xn, xn, axis=axis)[0]),
            (dy, lx.log_softmax_jvp(xn, xn, axis=axis)[1]),
            (dx, lx.log_softmax_vjp(xn, xn, axis=axis)),
        ):
            assert o.dtype == np.dtype(dtype)  # native
            _assert_close(o, r, _tols(dtype))
        ref = _sc("logsumexp", x, axis=axis)
        _assert_close(lx.logsumexp(x, axis=axis), ref, _tols(dtype))
        ref = _sc("logsumexp", x, axis=axis, b=2.0, return_sign=True)
        ours = lx.logsumexp(x, axis=axis, b=2.0, return_sign=True)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r)
            _assert_close(o, r, _tols(dtype))


@pytest.mark.parametrize(
    "kw",
    [{}, {"keepdims": True}, {"return_sign": True}],
    ids=["plain", "keepdims", "sign"],
)
def test_non_native_byteorder_result_dtype_logsumexp(kw):
    for dtype in (np.float16, np.float32, np.float64):
        x = np.linspace(-2, 3, 6).reshape(2, 3)
        x = x.astype(np.dtype(dtype).newbyteorder())
        ref = _sc("logsumexp", x, axis=1, **kw)
        ours = lx.logsumexp(x, axis=1, **kw)
        if not kw.get("return_sign"):
            ref, ours = (ref,), (ours,)
        for o, r in zip(ours, ref):
            _assert_same_kind(o, r, dtype)
            _assert_close(o, r, _tols(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", LAYOUT_AXES)
def test_layout_reference_values(dtype, axis):
    # the contiguous answers themselves agree with SciPy / the formulas
    rng = np.random.default_rng(5)
    x = np.asfortranarray((rng.normal(size=(4, 5, 3)) * 3).astype(dtype))[:, ::-1]
    v = (rng.normal(size=(4, 5, 3))).astype(dtype).transpose(0, 1, 2)[:, ::-1]
    rtol = _tols(dtype)
    _assert_close(lx.logsumexp(x, axis=axis), _sc("logsumexp", x, axis=axis), rtol)
    _assert_close(lx.softmax(x, axis=axis), _sc("softmax", x, axis=axis), rtol)
    _assert_close(lx.log_softmax(x, axis=axis), _sc("log_softmax", x, axis=axis), rtol)
    y_ref, dy_ref = ref_jvp(x.astype(np.float64), v.astype(np.float64), axis)
    y, dy = lx.log_softmax_jvp(x, v, axis=axis)
    _assert_close(y, y_ref, rtol)
    _assert_close(dy, dy_ref, rtol, scale=5)
    dx = lx.log_softmax_vjp(y, v, axis=axis)
    _assert_close(
        dx, ref_vjp(y.astype(np.float64), v.astype(np.float64), axis), rtol, scale=100
    )


def test_layout_result_memory_order_irrelevant_to_values_large():
    # longer rows (several kernel chunks) in strided / column layouts
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 3000)) * 5
    x[1, 2500] = 40.0
    for a, axis in (
        (x, 1),
        (np.ascontiguousarray(x.T), 0),
        (x.T, 0),
        (np.asfortranarray(x), 1),
    ):
        _assert_close(lx.logsumexp(a, axis=axis), _sc("logsumexp", a, axis=axis), 1e-12)
        _assert_close(lx.softmax(a, axis=axis), _sc("softmax", a, axis=axis), 1e-12)
        _assert_close(
            lx.log_softmax(a, axis=axis), _sc("log_softmax", a, axis=axis), 1e-12
        )


def _long_row(case, n, rng):
    x = rng.normal(size=n) * 5
    if case == "max_last_chunk":
        x[-3] = 60.0
    elif case == "neginf_first_chunk":
        x[:1500] = -inf
    elif case == "nan_in_neginf_chunk":
        x[:1500] = -inf
        x[700] = nan
    elif case == "inf_last_chunk":
        x[-1] = inf
    elif case == "single_finite_last":
        x[:] = -inf
        x[-2] = 3.0
    elif case == "nan_last_chunk":
        x[-5] = nan
    return x


LONG_CASES = [
    "plain",
    "max_last_chunk",
    "neginf_first_chunk",
    "nan_in_neginf_chunk",
    "inf_last_chunk",
    "single_finite_last",
    "nan_last_chunk",
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "case", ["rising", "neginf_nan_prefix", "inf_late", "neginf_prefix"]
)
def test_softmax_very_long_row(dtype, case):
    # a row of 1.5M elements: softmax shifts segments of several chunks by
    # the running max and rescales the earlier ones in its second pass
    rng = np.random.default_rng(5)
    n = 1_500_000
    x = rng.normal(size=n)
    if case == "rising":  # the max grows in every segment
        x += np.linspace(0.0, 30.0, n)
    elif case == "neginf_nan_prefix":
        x[:5000] = -inf
        x[4000] = nan
    elif case == "inf_late":
        x[-10] = inf
    elif case == "neginf_prefix":
        x[:5000] = -inf
    x = x.astype(dtype)
    want = _sc("softmax", x.astype(np.float64))
    got = lx.softmax(x)
    assert got.dtype == x.dtype
    # relative to each entry: exp(x_i - lse) is conditioned by |x_i| + |lse|
    lse = _sc("logsumexp", x.astype(np.float64))
    cond = np.abs(x.astype(np.float64)) + (abs(lse) if np.isfinite(lse) else 0) + 1
    rtol = 8 * np.finfo(dtype).eps
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[(x == -inf) & ~np.isnan(want)], 0)
    fin = np.isfinite(want) & np.isfinite(x)
    err = np.abs(got[fin] - want[fin])
    assert np.all(err <= rtol * cond[fin] * want[fin] + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", LONG_CASES)
def test_long_rows_match_scipy(dtype, case):
    # rows longer than the kernels' 1024-element chunks, as contiguous rows,
    # strided rows and side-by-side columns (the column-block path)
    rng = np.random.default_rng(LONG_CASES.index(case))
    n = 2500
    rows = np.stack(
        [
            _long_row(case, n, rng),
            _long_row("plain", n, rng),
            _long_row(case, n, rng)[::-1],
        ]
    ).astype(dtype)
    rtol = _tols(dtype)
    v = rng.normal(size=rows.shape).astype(dtype)
    for a, axis, va in (
        (rows, 1, v),
        (np.ascontiguousarray(rows.T), 0, np.ascontiguousarray(v.T)),
        (rows.T, 0, v.T),
        (np.asfortranarray(rows), 1, np.asfortranarray(v)),
    ):
        a64 = a.astype(np.float64)
        where = f"{a.shape} C={a.flags.c_contiguous} axis={axis}"
        _assert_close(
            lx.logsumexp(a, axis=axis),
            _sc("logsumexp", a64, axis=axis),
            rtol,
            err_msg=where,
        )
        _assert_close(
            lx.softmax(a, axis=axis),
            _sc("softmax", a64, axis=axis),
            rtol,
            scale=1.0,
            err_msg=where,
        )
        _assert_close(
            lx.log_softmax(a, axis=axis),
            _sc("log_softmax", a64, axis=axis),
            rtol,
            err_msg=where,
        )
        y_ref, dy_ref = ref_jvp(a64, va.astype(np.float64), axis)
        y, dy = lx.log_softmax_jvp(a, va, axis=axis)
        _assert_close(y, y_ref, rtol, err_msg=where)
        _assert_close(dy, dy_ref, rtol, scale=5.0, err_msg=where)
        # weights: zero on the first half (ignored, even the inf/nan there)
        b = np.ones_like(a)
        if axis == 1:
            b[:, : n // 2] = 0
        else:
            b[: n // 2, :] = 0
        exp = _lse_ignoring_zero_b(
            a64, b.astype(np.float64), axis=axis, return_sign=True
        )
        ours = lx.logsumexp(a, axis=axis, b=b, return_sign=True)
        _assert_close(ours[0], exp[0], rtol, err_msg=where)
        assert_array_equal(ours[1], exp[1], err_msg=where)


# =========================================================================
# 8. Hypothesis property tests
# =========================================================================

SPECIALS = st.sampled_from([inf, -inf, nan])


def _elements(dtype):
    width = 32 if dtype == np.float32 else 64
    fin = st.floats(min_value=-1e4, max_value=1e4, width=width)
    small = st.floats(min_value=-30, max_value=30, width=width)
    return st.one_of(fin, small, small, SPECIALS)


@st.composite
def arrays_and_axes(draw, dtype=None, finite_only=False):
    dt = draw(st.sampled_from(FLOATS)) if dtype is None else dtype
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    elems = (
        st.floats(min_value=-30, max_value=30, width=32 if dt == np.float32 else 64)
        if finite_only
        else _elements(dt)
    )
    x = draw(hnp.arrays(dt, shape, elements=elems))
    nd = len(shape)
    if nd == 0:
        axis = draw(st.sampled_from([None, ()]))
    else:
        axis = draw(
            st.one_of(
                st.none(),
                st.integers(-nd, nd - 1),
                st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple),
            )
        )
    return x, axis


def _prop_rtol(dtype):
    return 2e-12 if dtype == np.float64 else 2e-5


def _check_vs_ref(ours, ref, dtype, scale):
    ours = np.asarray(ours)
    ref = np.asarray(ref).astype(dtype)
    assert ours.dtype == np.dtype(dtype)
    assert ours.shape == ref.shape
    assert_array_equal(np.isnan(ours), np.isnan(ref))
    rtol = _prop_rtol(dtype)
    tiny = np.finfo(dtype).tiny * 4
    assert_allclose(
        ours, ref, rtol=rtol, atol=max(tiny, rtol * scale * 1e-3), equal_nan=True
    )


def _finite_scale(x):
    f = np.abs(x[np.isfinite(x)])
    return max(1.0, float(f.max(initial=0)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes(), st.booleans())
def test_prop_logsumexp(xa, keepdims):
    x, axis = xa
    ours = lx.logsumexp(x, axis=axis, keepdims=keepdims)
    assert np.asarray(ours).dtype == x.dtype
    if x.size == 0:
        exp_shape = np.zeros(x.shape).sum(axis=axis, keepdims=keepdims).shape
        assert np.shape(ours) == exp_shape
        assert np.all(np.asarray(ours) == -inf)
        return
    ref = _sc("logsumexp", x.astype(np.float64), axis=axis, keepdims=keepdims)
    # NumPy scalar exactly where SciPy gives one
    assert isinstance(ours, np.ndarray) == isinstance(ref, np.ndarray)
    _check_vs_ref(ours, ref, x.dtype, _finite_scale(x) * 1e3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes())
def test_prop_softmax_log_softmax(xa):
    x, axis = xa
    sm = lx.softmax(x, axis=axis)
    ls = lx.log_softmax(x, axis=axis)
    for o in (sm, ls):
        assert np.shape(o) == x.shape and np.asarray(o).dtype == x.dtype
    if x.size == 0:
        return
    x64 = x.astype(np.float64)
    sm_ref = _sc("softmax", x64, axis=axis)
    ls_ref = _sc("log_softmax", x64, axis=axis)
    _check_vs_ref(sm, sm_ref, x.dtype, 1e3)
    _check_vs_ref(ls, ls_ref, x.dtype, _finite_scale(x) * 2e3)
    # rows whose softmax is finite sum to 1
    with np.errstate(all="ignore"):
        sums = np.sum(np.asarray(sm, np.float64), axis=axis, keepdims=True)
        row_ok = np.all(np.isfinite(sm), axis=axis, keepdims=True)
    n = x.size // max(1, sums.size)
    assert_allclose(
        sums[np.broadcast_to(row_ok, sums.shape)],
        1.0,
        rtol=(n + 4) * np.finfo(x.dtype).eps * 4,
    )
    # exp(log_softmax) == softmax on the rows where softmax is finite (on
    # rows with +inf, log_softmax is -inf/nan as SciPy's and softmax all nan)
    with np.errstate(all="ignore"):
        e = np.exp(np.asarray(ls))
    ok = np.broadcast_to(row_ok, x.shape)
    tiny = np.finfo(x.dtype).tiny * 4
    assert_allclose(
        e[ok],
        np.asarray(sm)[ok],
        rtol=1e-4 if x.dtype == np.float32 else 1e-12,
        atol=tiny,
    )


@pytest.mark.parametrize(
    "shape,axis", [((2,), None), ((300, 2), 0), ((3, 2000), 1), ((40, 2), 1)]
)
def test_jvp_primal_equals_log_softmax_subnormal_terms(shape, axis):
    # found by hypothesis: float32 [0, -88] has a subnormal term exp(-88);
    # the JVP's sum dropped it differently from log_softmax's, so y differed
    # in the last bit (-6.05e-39 vs 0). Both sums now treat it alike.
    x = np.zeros(shape, np.float32)
    if axis == 0:
        x[1:] = -88
    else:
        x[..., 1:] = -88
    y, _ = lx.log_softmax_jvp(x, np.ones_like(x), axis=axis)
    assert_array_equal(y, lx.log_softmax(x, axis=axis))
    assert_allclose(
        y, sc.log_softmax(x.astype(np.float64), axis=axis), rtol=1e-6, atol=1e-37
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes(), st.data())
def test_prop_jvp_vjp(xa, data):
    x, axis = xa
    width = 32 if x.dtype == np.float32 else 64
    v = data.draw(
        hnp.arrays(x.dtype, x.shape, elements=st.floats(-10, 10, width=width))
    )
    y, dy = lx.log_softmax_jvp(x, v, axis=axis)
    dx = lx.log_softmax_vjp(y, v, axis=axis)
    for o in (y, dy, dx):
        assert np.shape(o) == x.shape and np.asarray(o).dtype == x.dtype
    if x.size == 0:
        return
    x64, v64 = x.astype(np.float64), v.astype(np.float64)
    y_ref, dy_ref = ref_jvp(x64, v64, axis)
    _check_vs_ref(y, y_ref, x.dtype, _finite_scale(x) * 2e3)
    _check_vs_ref(dy, dy_ref, x.dtype, 10 * 2e3)
    # y from log_softmax itself
    assert_array_equal(np.asarray(y), np.asarray(lx.log_softmax(x, axis=axis)))
    dx_ref = ref_vjp(np.asarray(y, np.float64), v64, axis)
    nrow = x.size // max(1, np.zeros(x.shape).sum(axis=axis, keepdims=True).size)
    _check_vs_ref(dx, dx_ref, x.dtype, 10 * max(1, nrow) * 2e3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes(), st.data(), st.booleans())
def test_prop_logsumexp_b(xa, data, return_sign):
    # nonnegative weights (incl. zeros) keep the sum well conditioned
    x, axis = xa
    width = 32 if x.dtype == np.float32 else 64
    # (subnormal float64 weights overflow rest/c: see test_b_subnormal_weight)
    b = data.draw(
        hnp.arrays(
            x.dtype,
            x.shape,
            elements=st.one_of(
                st.sampled_from([0.0, 1.0, 0.5, 2.0]),
                st.floats(0 if width == 32 else 1e-300, 10, width=width),
            ),
        )
    )
    ours = lx.logsumexp(x, axis=axis, b=b, return_sign=return_sign)
    if not return_sign:
        ours = (ours,)
    if x.size == 0:
        return
    # the spec: SciPy on the entries with b != 0 (lsm_ext ignores b == 0
    # entries even where x is inf/nan; SciPy does not always, see above)
    ref = _lse_ignoring_zero_b(
        x.astype(np.float64), b.astype(np.float64), axis=axis, return_sign=return_sign
    )
    if not return_sign:
        ref = (ref,)
    _check_vs_ref(ours[0], ref[0], x.dtype, _finite_scale(x) * 1e3)
    if return_sign:
        _check_vs_ref(ours[1], ref[1], x.dtype, 1.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes())
def test_prop_axis_empty_tuple(xa):
    # axis=(): no reduction; SciPy's answers elementwise
    x, _ = xa
    x64 = x.astype(np.float64)
    for name in ("logsumexp", "softmax", "log_softmax"):
        ours = getattr(lx, name)(x, axis=())
        assert np.asarray(ours).dtype == x.dtype
        if x.size == 0:
            # no reduction: same shape (SciPy 1.17 gives shape (1,) here)
            assert np.shape(ours) == x.shape
            continue
        # (SciPy and lsm_ext give logsumexp of a 0-d input shape (1,))
        _check_vs_ref(ours, _sc(name, x64, axis=()), x.dtype, 1.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_axes(finite_only=True))
def test_prop_finite_rows_identities(xa):
    # finite input: lse = log(sum(exp(x))) directly and shift invariance
    x, axis = xa
    assume(x.size > 0)
    x64 = x.astype(np.float64)
    lse = lx.logsumexp(x64, axis=axis, keepdims=True)
    assert_allclose(
        lse,
        np.log(np.sum(np.exp(x64), axis=axis, keepdims=True)),
        rtol=1e-13,
        atol=1e-13,
    )
    ls = lx.log_softmax(x64, axis=axis)
    assert_allclose(ls, x64 - lse, rtol=1e-13, atol=1e-12)
    assert_allclose(
        lx.softmax(x64 + 7.0, axis=axis),
        lx.softmax(x64, axis=axis),
        rtol=1e-12,
        atol=1e-300,
    )
