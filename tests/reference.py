"""Independent high-precision references for the lsm_ext accuracy tests.

Nothing here calls lsm_ext or scipy. Two kinds of reference are provided:

* ``mp``: mpmath at 50 significant digits. Used for float64 inputs, on small
  arrays only (a few thousand elements: mpmath.exp costs ~10 us).
* ``f64``: float64 arithmetic with a max shift and an exactly rounded sum
  (``math.fsum``), used for float32 inputs. Each term exp(x - m) carries a
  relative error of ~1e-16 and the sum is correctly rounded, so the result is
  ~2**29 times more accurate than float32 can resolve.

All functions take an array, an ``axis`` argument with the meaning of
scipy.special (None, int or tuple) and return float64 arrays (the reference
values, rounded to float64 at the very end); the reduction is done row by row
on a (rows, n) view whose last axis holds the reduced elements.

The shifted quantity ``L = lse - m = log(sum exp(x - m))`` is computed as
``log1p(sum_j exp(x_j - m) - 1)`` with the ``- 1`` folded into the exact sum,
so that log_softmax at the max entry (``-L``) keeps its relative accuracy even
when L is tiny (``log_softmax([0, -40])[0] = -4.25e-18``).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

MP_DPS = 50


# ------------------------------------------------------------ axis handling


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(a % ndim for a in axis))
    return (axis % ndim,)


def to_rows(x, axis):
    """(rows, n) float64 copy of x with the reduced axes last, and a function
    mapping a (rows, n) result back to x's shape."""
    x = np.asarray(x)
    axes = _norm_axes(axis, x.ndim)
    kept = [d for d in range(x.ndim) if d not in axes]
    perm = kept + list(axes)
    xt = np.transpose(x, perm)
    tshape = xt.shape
    n = int(np.prod([x.shape[d] for d in axes])) if axes else 1
    rows = xt.reshape(-1, n)
    inv = np.argsort(perm)

    def back(r):
        return np.transpose(np.asarray(r).reshape(tshape), inv)

    return rows, back


def reduced_shape(shape, axis):
    axes = _norm_axes(axis, len(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)


# ------------------------------------------------ per-row kernels (float64)


def _row_stats_f64(row):
    """(m, L) for one float64 row: m = max, L = log(sum exp(row - m)) with the
    - 1 of the max term folded into an exact sum."""
    m = float(np.max(row))
    if not math.isfinite(m):
        raise ValueError("reference rows must have a finite max")
    t = np.exp(row - m)  # float64: rel. error ~1e-16 per term
    s1 = math.fsum(np.append(t, -1.0))  # sum - 1, correctly rounded
    return m, math.log1p(s1)


def _row_stats_mp(row):
    """(m, L) for one row in mpmath (mpf values)."""
    with mpmath.workdps(MP_DPS):
        m = mpmath.mpf(float(np.max(row)))
        if not mpmath.isfinite(m):
            raise ValueError("reference rows must have a finite max")
        s = mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) - m) for v in row)
        return m, mpmath.log(s)


def _method(x, method):
    if method is None:
        method = "mp" if np.asarray(x).dtype == np.float64 else "f64"
    if method not in ("mp", "f64"):
        raise ValueError(method)
    return method


# ------------------------------------------------------------ public refs


def lse_ref(x, axis=None, method=None):
    """log(sum(exp(x))) along axis, as float64. method: "mp" (mpmath, default
    for float64 input) or "f64" (fsum in float64, default otherwise)."""
    method = _method(x, method)
    rows, _ = to_rows(x, axis)
    out = np.empty(rows.shape[0])
    for i, r in enumerate(rows.astype(np.float64)):
        if method == "mp":
            m, L = _row_stats_mp(r)
            with mpmath.workdps(MP_DPS):
                out[i] = float(m + L)
        else:
            m, L = _row_stats_f64(r)
            out[i] = m + L  # one float64 rounding
    return out.reshape(reduced_shape(np.shape(x), axis))


def _elementwise_ref(x, axis, method, f_mp, f_64):
    method = _method(x, method)
    rows, back = to_rows(x, axis)
    rows = rows.astype(np.float64)
    out = np.empty_like(rows)
    for i, r in enumerate(rows):
        if method == "mp":
            m, L = _row_stats_mp(r)
            with mpmath.workdps(MP_DPS):
                out[i] = [float(f_mp(mpmath.mpf(float(v)) - m - L)) for v in r]
        else:
            m, L = _row_stats_f64(r)
            out[i] = f_64((r - m) - L)
    return back(out)


def log_softmax_ref(x, axis=None, method=None):
    """x - logsumexp(x) along axis, as float64."""
    return _elementwise_ref(x, axis, method, lambda y: y, lambda y: y)


def softmax_ref(x, axis=None, method=None):
    """exp(x - logsumexp(x)) along axis, as float64."""
    return _elementwise_ref(x, axis, method, mpmath.exp, np.exp)


def _sum_keep(a, axis, method):
    """Exact-ish sum of a float64/mpf array along axis, keepdims, as float64."""
    rows, back = to_rows(a, axis)
    s = np.array([math.fsum(r) for r in rows])
    return back(np.repeat(s[:, None], rows.shape[1], axis=1))


def jvp_ref(x, v, axis=None, method=None):
    """(y, dy) with y = log_softmax(x), dy = v - sum(softmax(x) * v), float64.

    "mp": everything in mpmath, rounded once at the end. "f64": softmax from
    the float64 reference, product and exact sum in float64."""
    method = _method(x, method)
    x = np.asarray(x)
    v = np.asarray(v)
    if method == "f64":
        y = log_softmax_ref(x, axis, "f64")
        p = softmax_ref(x, axis, "f64")
        q = _sum_keep(p * v.astype(np.float64), axis, method)
        return y, v.astype(np.float64) - q
    xr, back = to_rows(x, axis)
    vr, _ = to_rows(v, axis)
    y = np.empty(xr.shape)
    dy = np.empty(xr.shape)
    for i, (r, vv) in enumerate(zip(xr.astype(np.float64), vr.astype(np.float64))):
        m, L = _row_stats_mp(r)
        with mpmath.workdps(MP_DPS):
            ys = [mpmath.mpf(float(a)) - m - L for a in r]
            q = mpmath.fsum(mpmath.exp(yy) * mpmath.mpf(float(b))
                            for yy, b in zip(ys, vv))
            y[i] = [float(yy) for yy in ys]
            dy[i] = [float(mpmath.mpf(float(b)) - q) for b in vv]
    return back(y), back(dy)


def vjp_ref(y, g, axis=None, method=None):
    """g - exp(y) * sum(g) along axis (y taken as given, exactly), float64."""
    method = _method(y, method)
    y = np.asarray(y)
    g = np.asarray(g)
    if method == "f64":
        s = _sum_keep(g.astype(np.float64), axis, method)
        return g.astype(np.float64) - np.exp(y.astype(np.float64)) * s
    yr, back = to_rows(y, axis)
    gr, _ = to_rows(g, axis)
    out = np.empty(yr.shape)
    for i, (yy, gg) in enumerate(zip(yr.astype(np.float64), gr.astype(np.float64))):
        with mpmath.workdps(MP_DPS):
            s = mpmath.fsum(mpmath.mpf(float(b)) for b in gg)
            out[i] = [float(mpmath.mpf(float(b)) - mpmath.exp(mpmath.mpf(float(a))) * s)
                      for a, b in zip(yy, gg)]
    return back(out)


# ----------------------------------------------------------------- exp refs


def exp_ref_f64_of_f32(x32):
    """exp of float32 inputs in float64 (error ~2**-29 float32 ulp)."""
    return np.exp(np.asarray(x32, dtype=np.float64))


def exp_ref_mp(x64):
    """exp of float64 inputs with mpmath, returned as (mantissa-exact enough)
    pairs: float64 value of the reference and its float64 ulp-scale error
    measure is computed by the caller from ``exp_ulp_error_mp``."""
    with mpmath.workdps(MP_DPS):
        return [mpmath.exp(mpmath.mpf(float(v))) for v in x64]


def ulp_error_mp(got, ref_mp, p=53, emin=-1022):
    """|got - ref| in ulps of ref in a binary format with p-bit significands
    and minimum normal exponent emin (subnormal ulp = 2**(emin - p + 1)).
    ref_mp: list of mpf; got: float array. Returns a float64 array."""
    out = np.empty(len(ref_mp))
    with mpmath.workdps(MP_DPS):
        for i, (g, r) in enumerate(zip(np.asarray(got, dtype=np.float64), ref_mp)):
            if r == 0:
                out[i] = 0.0 if g == 0 else math.inf
                continue
            e = int(mpmath.floor(mpmath.log(abs(r), 2)))
            e = max(e, emin)
            ulp = mpmath.ldexp(1, e - p + 1)
            if not math.isfinite(g):
                out[i] = math.inf
            else:
                out[i] = float(abs(mpmath.mpf(g) - r) / ulp)
    return out
