"""Plain NumPy formulas for the dtypes the C kernels do not cover.

Complex input (logsumexp as scipy.special defines it) and ``np.longdouble``
go through here. Arrays arrive already promoted to the result dtype and with
the reduced axes normalised; results keep the reduced axes (keepdims=True).
Speed is not the point of this module; matching scipy.special is.
"""

from __future__ import annotations

import numpy as np


def _wrap_phase(z):
    """z with its imaginary part wrapped into (-pi, pi]."""
    im = z.imag
    wrapped = -(np.mod(-im + np.pi, 2 * np.pi) - np.pi)
    return z.real + 1j * np.where(np.abs(im) < np.pi, im, wrapped)


def _max_real(a, axes):
    """Per-row element with the largest real part (any one of them)."""
    if not np.iscomplexobj(a):
        return np.max(a, axis=axes, keepdims=True)
    re = a.real
    top = re == np.max(re, axis=axes, keepdims=True)
    # keep only the last element of each row that reaches the max real part
    idx = np.where(top, np.arange(a.size).reshape(a.shape), -1)
    pick = idx == np.max(idx, axis=axes, keepdims=True)
    return np.sum(np.where(pick, a, 0), axis=axes, keepdims=True)


def logsumexp(a, b, axes, return_sign):
    """(out, sign) with keepdims; sign is None unless return_sign."""
    with np.errstate(all="ignore"):
        if b is not None:
            a = np.where(b == 0, -np.inf, a)
        direct = np.sum(
            np.exp(a) if b is None else b * np.exp(a), axis=axes, keepdims=True
        )
        amax = _max_real(a, axes)
        shift = np.where(np.isfinite(amax), amax, 0)
        terms = np.exp(a - shift)
        if b is not None:
            terms = b * terms
        total = np.sum(terms, axis=axes, keepdims=True)
        # finite rows: log|total| + shift; others: the direct IEEE formula
        finite = np.isfinite(amax)
        total = np.where(finite, total, direct)
        shift = np.where(finite, shift, 0)
        if np.iscomplexobj(total):
            if return_sign:
                mag = np.log(np.abs(total)) + shift.real
                phase = total / np.abs(total) * np.exp(1j * shift.imag)
                return mag.real, phase
            return _wrap_phase(np.log(total) + shift), None
        sgn = np.sign(total)
        out = np.log(np.abs(total)) + shift
        if return_sign:
            return out, sgn
        return np.where(sgn < 0, np.nan, out), None


def softmax(x, axes):
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axes, keepdims=True)
        e = np.exp(x - m)
        return e / np.sum(e, axis=axes, keepdims=True)


def log_softmax(x, axes):
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        t = x - m
        return t - np.log(np.sum(np.exp(t), axis=axes, keepdims=True))


def log_softmax_jvp(x, v, axes):
    with np.errstate(all="ignore"):
        y = log_softmax(x, axes)
        return y, v - np.sum(softmax(x, axes) * v, axis=axes, keepdims=True)


def log_softmax_vjp(y, g, axes):
    with np.errstate(all="ignore"):
        return g - np.exp(y) * np.sum(g, axis=axes, keepdims=True)
