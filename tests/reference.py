"""Independent high-precision references for the lsm_ext accuracy tests.

Nothing here calls lsm_ext or scipy. Three reference methods:

* ``"mp"``: mpmath at 50 significant digits, rounded to float64 once at the
  end. For float64 inputs, on small arrays only (mpmath.exp costs ~10 us).
* ``"f64"``: float64 with a max shift and an exactly rounded sum
  (``math.fsum``). For float32 inputs: each term exp(x - m) carries a
  relative error of ~1e-16 and the sum is correctly rounded, ~2**29 times
  finer than a float32 ulp.
* ``"ld"``: like "f64" but the exponentials and the sum in ``np.longdouble``
  (x87 80-bit extended on x86-64: 11 more bits than float64), for float64
  inputs on arrays too large for mpmath. Only meaningful where
  ``LONGDOUBLE_OK``; the tests skip it elsewhere.

Every function takes an array and an ``axis`` with scipy.special's meaning
(None, int or tuple) and returns float64 arrays. Reductions run row by row on
a (rows, n) copy whose last axis holds the reduced elements.

The shifted quantity ``L = lse - m = log(sum_j exp(x_j - m))`` is computed as
``log1p(sum_j exp(x_j - m) - 1)`` with the ``- 1`` inside the exact sum, so
log_softmax at the max entry (``-L``) keeps full relative accuracy even when
L is tiny (``log_softmax([0, -40])[0] = -4.25e-18``).

Rows must have a finite max (all-(-inf), +inf and nan rows are IEEE special
cases, tested elsewhere); -inf entries are fine.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

MP_DPS = 50
LONGDOUBLE_OK = np.finfo(np.longdouble).nmant >= 63

# ------------------------------------------------------------ axis handling


def norm_axes(axis, ndim):
    """Sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(a % ndim for a in axis))
    return (axis % ndim,)


def to_rows(x, axis):
    """(rows, n) copy of x with the reduced axes last, and a function mapping
    a (rows, n) array back to x's shape and axis order."""
    x = np.asarray(x)
    axes = norm_axes(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in axes]
    perm = kept + list(axes)
    xt = np.transpose(x, perm)
    tshape = xt.shape
    n = math.prod(x.shape[d] for d in axes)
    rows = np.array(xt.reshape(-1, n))
    inv = np.argsort(perm)

    def back(r):
        return np.transpose(np.asarray(r).reshape(tshape), inv)

    return rows, back


def reduced_shape(shape, axis, keepdims=False):
    axes = norm_axes(axis, len(shape))
    if keepdims:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)


def default_method(x):
    return "mp" if np.asarray(x).dtype == np.float64 else "f64"


# --------------------------------------------------------- per-row kernels


def _check_max(m):
    if not math.isfinite(m):
        raise ValueError("reference rows must have a finite max")


def _row_f64(row):
    """(m, L, y, p) for one row in float64 (fsum)."""
    row = row.astype(np.float64)
    m = float(np.max(row))
    _check_max(m)
    t = np.exp(row - m)
    L = math.log1p(math.fsum(np.append(t, -1.0)))
    y = (row - m) - L
    return m, L, y, np.exp(y)


def _row_ld(row):
    """(m, L, y, p) for one row in long double (m + L stays long double so
    that lse is rounded to float64 once)."""
    ld = np.longdouble
    row = row.astype(ld)
    m = np.max(row)
    _check_max(float(m))
    t = np.exp(row - m)
    # the max entries give exactly 1; sum the other terms apart so that L
    # keeps its relative accuracy when it is tiny
    at_max = row == m
    c = ld(np.count_nonzero(at_max))
    rest = np.sum(np.where(at_max, ld(0), t), dtype=ld)
    L = np.log(c) + np.log1p(rest / c)
    y = (row - m) - L
    return m, L, y.astype(np.float64), np.exp(y).astype(np.float64)


def _row_mp(row):
    """(m, L, y, p) for one row with mpmath (y, p as float64 arrays)."""
    with mpmath.workdps(MP_DPS):
        xs = [mpmath.mpf(float(v)) for v in row]
        m = max(xs)
        _check_max(float(m))
        L = mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in xs))
        ys = [v - m - L for v in xs]
        y = np.array([float(v) for v in ys])
        p = np.array([float(mpmath.exp(v)) for v in ys])
        return m, L, y, p


_ROW = {"mp": _row_mp, "f64": _row_f64, "ld": _row_ld}


def stats_ref(x, axis=None, method=None):
    """(lse, y, p): logsumexp (reduced shape), log_softmax and softmax (x's
    shape), all float64, in one pass over the rows."""
    method = method or default_method(x)
    row_fn = _ROW[method]
    rows, back = to_rows(x, axis)
    lse = np.empty(rows.shape[0])
    y = np.empty(rows.shape)
    p = np.empty(rows.shape)
    for i, r in enumerate(rows):
        m, L, y[i], p[i] = row_fn(r)
        if method == "mp":
            with mpmath.workdps(MP_DPS):
                lse[i] = float(m + L)
        else:  # float64 ("f64") or long double ("ld") sum, rounded once
            lse[i] = float(m + L)
    return lse.reshape(reduced_shape(np.shape(x), axis)), back(y), back(p)


def lse_ref(x, axis=None, method=None):
    """log(sum(exp(x))) along axis, float64."""
    return stats_ref(x, axis, method)[0]


def log_softmax_ref(x, axis=None, method=None):
    """x - logsumexp(x) along axis, float64."""
    return stats_ref(x, axis, method)[1]


def softmax_ref(x, axis=None, method=None):
    """exp(x - logsumexp(x)) along axis, float64."""
    return stats_ref(x, axis, method)[2]


# ------------------------------------------------------------ derivatives


def _fsum_rows_keep(a, axis):
    """math.fsum of float64 a along axis, broadcast back to a's shape."""
    rows, back = to_rows(a, axis)
    s = np.array([math.fsum(r) for r in rows])
    return back(np.repeat(s[:, None], rows.shape[1], axis=1))


def jvp_ref(x, v, axis=None, method=None):
    """(y, dy): y = log_softmax(x), dy = v - sum(softmax(x) * v) along axis.

    "mp": all in mpmath, rounded once at the end. Otherwise softmax from the
    float64 ("f64") or long double ("ld") reference, products in float64 and
    an exact sum (error ~1e-16 relative to sum |p v|)."""
    method = method or default_method(x)
    x = np.asarray(x)
    v = np.asarray(v)
    if method != "mp":
        _, y, p = stats_ref(x, axis, method)
        v64 = v.astype(np.float64)
        return y, v64 - _fsum_rows_keep(p * v64, axis)
    xr, back = to_rows(x, axis)
    vr, _ = to_rows(v, axis)
    y = np.empty(xr.shape)
    dy = np.empty(xr.shape)
    for i, (r, vv) in enumerate(zip(xr, vr)):
        with mpmath.workdps(MP_DPS):
            xs = [mpmath.mpf(float(a)) for a in r]
            vs = [mpmath.mpf(float(b)) for b in vv]
            m = max(xs)
            _check_max(float(m))
            L = mpmath.log(mpmath.fsum(mpmath.exp(a - m) for a in xs))
            ys = [a - m - L for a in xs]
            q = mpmath.fsum(mpmath.exp(a) * b for a, b in zip(ys, vs))
            y[i] = [float(a) for a in ys]
            dy[i] = [float(b - q) for b in vs]
    return back(y), back(dy)


def vjp_ref(y, g, axis=None, method=None):
    """g - exp(y) * sum(g) along axis, with y taken exactly as given, float64.

    "mp": mpmath; otherwise float64 with an exact sum of g (float64 exp of
    float32 y is ~2**-29 float32 ulps accurate)."""
    method = method or default_method(y)
    y = np.asarray(y)
    g = np.asarray(g)
    if method != "mp":
        g64 = g.astype(np.float64)
        return g64 - np.exp(y.astype(np.float64)) * _fsum_rows_keep(g64, axis)
    yr, back = to_rows(y, axis)
    gr, _ = to_rows(g, axis)
    out = np.empty(yr.shape)
    for i, (yy, gg) in enumerate(zip(yr, gr)):
        with mpmath.workdps(MP_DPS):
            gs = [mpmath.mpf(float(b)) for b in gg]
            s = mpmath.fsum(gs)
            out[i] = [
                float(b - mpmath.exp(mpmath.mpf(float(a))) * s) for a, b in zip(yy, gs)
            ]
    return back(out)


# -------------------------------------------------------------------- exp

_FMT = {  # significand bits p, minimum normal exponent emin
    np.dtype(np.float32): (24, -126),
    np.dtype(np.float64): (53, -1022),
}


def exp_ulp_error_f64(x32, got):
    """|got - exp(x)| in ulps of the float32 result, reference exp of the
    float32 inputs in float64. The ulp of a subnormal result is the smallest
    subnormal, so this is also the absolute error in units of 2**-149 there.
    Results that are inf where the reference is finite (or vice versa) give
    inf."""
    p, emin = _FMT[np.dtype(np.float32)]
    ref = np.exp(np.asarray(x32, dtype=np.float64))
    err = _ulp_err_np(np.asarray(got, dtype=np.float64), ref, p, emin, np.float32)
    return err, ref


def exp_ulp_error_ld(x64, got):
    """As exp_ulp_error_f64 for float64 inputs, reference in long double
    (needs LONGDOUBLE_OK)."""
    p, emin = _FMT[np.dtype(np.float64)]
    ref = np.exp(np.asarray(x64, dtype=np.longdouble))
    err = _ulp_err_np(np.asarray(got, dtype=np.longdouble), ref, p, emin, np.float64)
    return err, ref


def _ulp_err_np(got, ref, p, emin, dtype):
    """Error in ulps of the target format (p, emin); where the reference
    rounds to inf in dtype, a result of inf counts as exact."""
    with np.errstate(all="ignore"):
        _, e = np.frexp(ref)  # ref = f * 2**e, f in [0.5, 1)
        e = np.maximum(e - 1, emin)
        ulp = np.ldexp(np.ones_like(ref), e - p + 1)
        err = np.abs(got - ref) / ulp
        ref_rounded = ref.astype(dtype)
    both_inf = np.isinf(got) & np.isinf(ref_rounded) & (got == ref_rounded)
    err = np.where(both_inf, 0, err)
    err = np.where(np.isnan(err), np.inf, err)
    return err.astype(np.float64)


def exp_ulp_error_mp(x64, got):
    """|got - exp(x)| in float64 ulps of the exact result, with mpmath
    (subnormal results: in units of 2**-1074). Returns (err, ref) with ref the
    reference rounded to float64 (inf where it overflows)."""
    p, emin = _FMT[np.dtype(np.float64)]
    x64 = np.asarray(x64, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    err = np.empty(x64.shape)
    ref = np.empty(x64.shape)
    with mpmath.workdps(MP_DPS):
        for i, (xv, gv) in enumerate(zip(x64.tolist(), got.tolist())):
            r = mpmath.exp(mpmath.mpf(xv))
            _, e = mpmath.frexp(r)  # r = f * 2**e, f in [0.5, 1)
            ulp = mpmath.ldexp(1, max(int(e) - 1, emin) - p + 1)
            rf = float(r) if r < mpmath.mpf(2) ** 1024 else math.inf
            ref[i] = rf
            if math.isinf(gv):
                err[i] = 0.0 if math.isinf(rf) else math.inf
            elif math.isnan(gv):
                err[i] = math.inf
            else:
                err[i] = float(abs(mpmath.mpf(gv) - r) / ulp)
    return err, ref
