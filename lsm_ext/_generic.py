"""Generic backend: max-shift formulas in any array-API namespace.

Arrays of libraries other than NumPy and CuPy (PyTorch, JAX, array-api-strict,
...) are computed here with the namespace's own functions only (``xp.max``,
``xp.exp``, ``xp.sum``, ``xp.log``, ``xp.where``, ...), so the result is an
array of the caller's library on its device, and autodiff and tracing
(``torch.autograd``, ``jax.grad``, ``jax.jit``) see ordinary operations: no
Python branch depends on array values.

Semantics are the NumPy path's: the same dtype rules (integers to float, see
``_float_dtype``; float16 computed in float32), the entries equal to the max
summed apart (``c``) so that results near the max keep their accuracy, rows
whose max is not finite (or that hold a nan) given scipy.special's IEEE
answers, ``b == 0`` entries ignored even where ``a`` is inf or nan. Special
rows are handled per row (a replacement for the log-sum that the same
elementwise formula turns into nan / -inf), so a call costs a handful of
full-size operations; the dispatcher runs it under ``np.errstate(all=
"ignore")`` for namespaces that wrap NumPy.
"""

from __future__ import annotations

import numpy as np

from . import _numpy as _np_backend


def _float_dtype(xp, dt, name, lse):
    """Result dtype: floats stay; integers as NumPy's exp (int8 -> float16,
    int16 -> float32, wider -> float64; logsumexp: float64); bool is refused
    by softmax-like ops (as the NumPy path)."""
    if xp.isdtype(dt, "real floating"):
        return dt
    if xp.isdtype(dt, "complex floating"):
        raise TypeError(f"{name}: complex input is supported on NumPy arrays only")
    if dt == xp.bool:
        if lse:
            return xp.float64
        raise TypeError(
            f"{name} does not support boolean input; convert it to a float dtype"
        )
    if not xp.isdtype(dt, "integral"):
        raise TypeError(f"{name} does not support arrays of dtype {dt!r}")
    if lse:
        return xp.float64
    bits = xp.iinfo(dt).bits
    # float16 where the namespace has it (array-api-strict does not)
    small = getattr(xp, "float16", xp.float32)
    return small if bits == 8 else (xp.float32 if bits == 16 else xp.float64)


def _compute(xp, dt):
    f16 = getattr(xp, "float16", None)
    return xp.float32 if f16 is not None and dt == f16 else dt


def _stats(xp, x, axes, w=None):
    """Per-row (m, finite, d, e, c, r) with keepdims: m the max (nan when
    the row holds a nan), d = x - m (x - 0 in rows whose max is not
    finite: their outputs come from the row values alone), e = w exp(d),
    c the weight at the max, r the rest. Full-size operations: a subtract,
    an exp, a compare, two sums (and the weights' own)."""
    inf = float("inf")
    zero = xp.asarray(0, dtype=x.dtype)
    xa = x if w is None else xp.where(w != 0, x, xp.asarray(-inf, dtype=x.dtype))
    m = xp.max(xa, axis=axes, keepdims=True)
    finite = (m > -inf) & (m < inf)
    d = xa - xp.where(finite, m, zero)
    e = xp.exp(d)
    at_max = (d == 0) & finite
    if w is None:
        c = xp.sum(xp.astype(at_max, x.dtype), axis=axes, keepdims=True)
        r = xp.sum(xp.where(at_max, zero, e), axis=axes, keepdims=True)
    else:
        c = xp.sum(xp.where(at_max, w, zero), axis=axes, keepdims=True)
        e = xp.where(w == 0, zero, w * e)
        r = xp.sum(xp.where(at_max, zero, e), axis=axes, keepdims=True)
    return m, finite, d, e, c, r


def _special_row(xp, m, finite):
    """Per row, what replaces l (or the sum) where the max is not finite so
    that the same elementwise formula gives scipy's answers: +inf where m is
    +inf (x - inf: -inf, nan at +inf), nan otherwise (nan everywhere)."""
    inf, nan = float("inf"), float("nan")
    return xp.where(
        finite,
        xp.zeros_like(m),
        xp.where(m == inf, xp.full_like(m, inf), xp.full_like(m, nan)),
    )


def _log_sum(xp, c, r, finite):
    """log|c + r|, as log|c| + log1p(r / c) where |r| <= |c| (accurate next
    to the max); c is nonzero in finite rows."""
    one = xp.ones_like(c)
    cs = xp.where(finite & (c != 0), c, one)
    t = c + r
    ts = xp.where(t != 0, xp.abs(t), one)
    near = (c != 0) & (xp.abs(r) <= xp.abs(c))
    q = xp.where(near, r / cs, xp.zeros_like(r))  # in [-1, 1] where taken
    q = xp.where(q > -1, q, xp.zeros_like(q))  # log1p(-1): the other branch
    res = xp.where(near & (r / cs > -1), xp.log1p(q) + xp.log(xp.abs(cs)), xp.log(ts))
    return xp.where(t == 0, xp.full_like(res, -float("inf")), res)


def logsumexp(xp, a, axis=None, b=None, keepdims=False, return_sign=False):
    rdt = _float_dtype(
        xp, a.dtype if b is None else xp.result_type(a, b), "logsumexp", True
    )
    cdt = _compute(xp, rdt)
    a = xp.astype(a, cdt)
    if a.ndim == 0:
        a = xp.reshape(a, (1,))
    if b is not None:
        if isinstance(b, (bool, int, float, complex, list, tuple)):
            b = xp.asarray(b, dtype=cdt)
        else:  # an array of xp already (asarray would copy a tensor's grad flag)
            b = xp.astype(b, cdt)
        shape = np.broadcast_shapes(a.shape, b.shape)
        a = xp.broadcast_to(a, shape)
        b = xp.broadcast_to(b, shape)
    axes = _np_backend._axes(axis, a.ndim)
    rshape = _np_backend._reduced_shape(a.shape, axes, keepdims)
    inf, nan = float("inf"), float("nan")
    if any(n == 0 for n in a.shape):
        res = xp.full(rshape, -inf, dtype=rdt)
        return (res, xp.full(rshape, -1.0, dtype=rdt)) if return_sign else res
    w = b
    if w is None and return_sign:
        w = xp.ones_like(a)
    m, finite, _, _, c, r = _stats(xp, a, axes, w)
    t = c + r
    res = _log_sum(xp, c, r, finite) + xp.where(finite, m, xp.zeros_like(m))
    if w is None:
        # rows whose max is not finite: nan (a nan in the row), +inf or -inf
        # -- the max itself
        res = xp.where(finite, res, m)
        sign = xp.ones_like(res)
    else:
        sign = xp.sign(t)
        # rows whose max is not finite: the IEEE sum of the terms w x that
        # are nan or +inf (nan for +inf - inf), as the C kernels
        zero = xp.asarray(0, dtype=a.dtype)
        odd = (w != 0) & (xp.isnan(a) | (a == inf))
        s = xp.sum(
            xp.where(odd, w * xp.where(odd, a, zero), zero), axis=axes, keepdims=True
        )
        one = xp.ones_like(s)
        s_log = xp.where(
            s == 0, xp.full_like(s, -inf), xp.log(xp.where(s == 0, one, xp.abs(s)))
        )
        res = xp.where(finite, res, s_log)
        sign = xp.where(finite, sign, xp.sign(s))
    if not return_sign:
        res = xp.where(sign < 0, xp.full_like(res, nan), res)
    res = xp.astype(xp.reshape(res, rshape), rdt)
    if return_sign:
        return res, xp.astype(xp.reshape(sign, rshape), rdt)
    return res


def _prepare(xp, name, arrays):
    _np_backend.check_same_shape(name, arrays)
    dt = arrays[0].dtype
    if dt == xp.bool:
        _float_dtype(xp, dt, name, False)
    if any(o.dtype != dt for o in arrays[1:]):
        dt = xp.result_type(*arrays)
    rdt = _float_dtype(xp, dt, name, False)
    cdt = _compute(xp, rdt)
    return [xp.astype(o, cdt) for o in arrays], rdt


def _elementwise(xp, op, name, axis, arrays):
    (xs, rdt) = _prepare(xp, name, arrays)
    x = xs[0]
    scalar = x.ndim == 0
    if scalar:
        xs = [xp.reshape(o, (1,)) for o in xs]
        x = xs[0]
    axes = _np_backend._axes(axis, x.ndim)
    nan = float("nan")
    if op == "vjp":
        y, g = xs
        out = (g - xp.exp(y) * xp.sum(g, axis=axes, keepdims=True),)
    else:
        m, finite, d, e, c, r = _stats(xp, x, axes)
        sp = _special_row(xp, m, finite)
        if op == "softmax":
            # special rows: nan throughout (x / nan)
            s = xp.where(finite, c + r, xp.full_like(c, nan))
            out = (e / s,)
        else:
            l = xp.where(finite, _log_sum(xp, c, r, finite), sp)
            y = d - l
            out = (y,)
            if op == "jvp":
                v = xs[1]
                tot = xp.where(finite, c + r, xp.ones_like(c))
                q = xp.sum(e * v, axis=axes, keepdims=True) / tot
                q = xp.where(finite, q, xp.full_like(q, nan))
                out = (y, v - q)
    out = tuple(xp.astype(o, rdt) for o in out)
    if scalar:
        out = tuple(xp.reshape(o, ()) for o in out)
    return out if len(out) > 1 else out[0]


def softmax(xp, x, axis=None):
    return _elementwise(xp, "softmax", "softmax", axis, [x])


def log_softmax(xp, x, axis=None):
    return _elementwise(xp, "log_softmax", "log_softmax", axis, [x])


def log_softmax_jvp(xp, x, v, axis=None):
    return _elementwise(xp, "jvp", "log_softmax_jvp", axis, [x, v])


def log_softmax_vjp(xp, y, g, axis=None):
    return _elementwise(xp, "vjp", "log_softmax_vjp", axis, [y, g])
