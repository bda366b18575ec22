"""Dask backend: blocked computations whose blocks run the NumPy kernels.

Results are lazy dask arrays; nothing is computed until the caller asks.
Along axes that are not reduced, blocks are independent. A reduced axis held
in one chunk: the kernels run on whole blocks (``map_blocks``). A reduced
axis cut into several chunks:

* logsumexp without ``b``: each block's logsumexp (our kernel), merged by
  logsumexp (all terms positive: nothing is lost);
* logsumexp with ``b`` or ``return_sign``: per block the max ``m_b`` (of entries of nonzero weight) and
  ``(l_b, sign_b) = logsumexp(x - m_b, b)`` from our kernel, merged as
  ``m = max(m_b)``, ``l = logsumexp(m_b - m + l_b, b=sign_b)`` -- the
  associative combine of per-block ``(max, sum)`` states -- in a tree of at
  most ``_FAN`` states per task;
* softmax, log_softmax, the JVP: per row the max ``m`` and ``l = log(sum
  exp(x - m))``, merged as ``m = max(m_b)``, ``l = logsumexp(m_b - m + l_b)``
  (exact in the blocks that hold the max: log_softmax's max entry keeps its
  accuracy), then ``(x - m) - l`` block by block; the JVP's ``sum(softmax *
  v)`` and the VJP's ``sum(g)`` are dask sums.

Special rows get the NumPy path's answers: a nan makes ``m`` nan (all out
nan), a max of +inf gives nan at +inf and -inf elsewhere (log_softmax),
rows of only -inf give nan; logsumexp's specials carry through the combine.
"""

from __future__ import annotations

import numpy as np

from . import _numpy

_FAN = 32  # partial states merged per task


def _da():
    import dask.array as da

    return da


def _float_dtype(dt, name, lse):
    dt = _numpy._reject(np.dtype(dt), name)
    if dt.kind == "c":
        raise TypeError(f"{name}: complex input is supported on NumPy arrays only")
    return _numpy._lse_dtype(dt) if lse else _numpy._softmax_dtype(dt, name)


def _one_chunk(x, axes):
    return all(len(x.chunks[d]) == 1 for d in axes)


def _state_chunks(chunks, axes):
    """Chunks of per-block states: one element per block along `axes`."""
    return tuple((1,) * len(c) if d in axes else c for d, c in enumerate(chunks))


def _tree(parts, merge, axes, dtype):
    """Merge per-block states along `axes` (at most _FAN per task) until one
    state per row is left."""
    da = _da()
    while True:
        one = _one_chunk(parts, axes)
        if not one:
            parts = parts.rechunk({d: _FAN for d in axes})
        parts = da.map_blocks(
            merge,
            parts,
            axes=axes,
            dtype=dtype,
            chunks=_state_chunks(parts.chunks, axes),
        )
        if one:
            return parts


# ------------------------------------------------------------- logsumexp

_MLS = {
    np.dtype(np.float32): np.dtype([("m", "f4"), ("l", "f4"), ("s", "f4")]),
    np.dtype(np.float64): np.dtype([("m", "f8"), ("l", "f8"), ("s", "f8")]),
}


def _pack_mls(m, l, s):
    out = np.empty(np.shape(m), _MLS[np.asarray(m).dtype])
    out["m"], out["l"], out["s"] = m, l, s
    return out


def _lse_block(a, b, axes):
    """A block's state: m its max over entries of nonzero weight (nan if one
    is nan), (l, s) = logsumexp(a - m) with its sign -- shifted by 0 where m
    is not finite, which leaves the IEEE answer of the special terms."""
    with np.errstate(all="ignore"):
        m = np.max(np.where(b != 0, a, -np.inf), axis=axes, keepdims=True)
        sh = np.where(np.isfinite(m), m, 0)
        l, s = _numpy.logsumexp(a - sh, axis=axes, b=b, keepdims=True, return_sign=True)
        return _pack_mls(m, l, s)


def _lse_merge(p, axes):
    """Blocks' states merged: l = logsumexp(shift_b - shift + l_b) with the
    signs as weights, shift = m where finite, else 0 (the blocks holding the
    max enter exactly, so no log-sum is lost next to a huge max)."""
    with np.errstate(all="ignore"):
        m = np.max(p["m"], axis=axes, keepdims=True)
        sh_b = np.where(np.isfinite(p["m"]), p["m"], 0)
        sh = np.where(np.isfinite(m), m, 0)
        l, s = _numpy.logsumexp(
            (sh_b - sh) + p["l"], axis=axes, b=p["s"], keepdims=True, return_sign=True
        )
        return _pack_mls(m, l, s)


def _lse_merge_plain(r, axes):
    return np.asarray(_numpy.logsumexp(r, axis=axes, keepdims=True))


def _lse_result(p):
    with np.errstate(all="ignore"):
        m = p["m"]
        return np.where(np.isnan(m), np.nan, np.where(np.isfinite(m), m, 0) + p["l"])


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, out=None):
    da = _da()
    if out is not None:
        raise TypeError("logsumexp: out= is supported for NumPy and CuPy arrays")
    bdt = None if b is None else getattr(b, "dtype", None)
    dt = (
        a.dtype
        if b is None
        else (
            np.result_type(a.dtype, bdt)
            if bdt is not None
            else np.result_type(a.dtype, b)
        )
    )
    rdt = _float_dtype(dt, "logsumexp", True)
    cdt = _numpy._compute_dtype(rdt)
    a = a.astype(cdt)
    if a.ndim == 0:
        a = a.reshape(1)
    axes = _numpy._axes(axis, a.ndim)
    if b is None and not return_sign and a.size:
        # unweighted: every term is positive, so the blocks' logsumexps
        # (our kernel) merged by logsumexp lose nothing (each within an ulp
        # of its own result, as the NumPy path's)
        parts = da.map_blocks(
            _numpy.logsumexp,
            a,
            axis=axes,
            keepdims=True,
            dtype=cdt,
            chunks=_state_chunks(a.chunks, axes),
        )
        r = _tree(parts, _lse_merge_plain, axes, cdt)
        return (r if keepdims else r.squeeze(axes)).astype(rdt)
    b = da.ones_like(a) if b is None else da.asarray(b).astype(cdt)
    a, b = da.broadcast_arrays(a, b)
    b = b.rechunk(a.chunks)
    rshape = _numpy._reduced_shape(a.shape, axes, keepdims)
    if a.size == 0:
        res = da.full(rshape, -np.inf, dtype=rdt)
        return (res, da.full(rshape, -1.0, dtype=rdt)) if return_sign else res
    st = _MLS[np.dtype(cdt)]
    parts = da.map_blocks(
        _lse_block, a, b, axes=axes, dtype=st, chunks=_state_chunks(a.chunks, axes)
    )
    mls = _tree(parts, _lse_merge, axes, st)
    r = da.map_blocks(_lse_result, mls, dtype=cdt)
    s = da.where(da.isnan(mls["m"]), np.nan, mls["s"])
    if not keepdims:
        r, s = r.squeeze(axes), s.squeeze(axes)
    if not return_sign:
        return da.where(s < 0, np.nan, r).astype(rdt)
    return r.astype(rdt), s.astype(rdt)


# --------------------------------------------------- softmax-like ops

_ML = {
    np.dtype(np.float32): np.dtype([("m", "f4"), ("l", "f4")]),
    np.dtype(np.float64): np.dtype([("m", "f8"), ("l", "f8")]),
}


def _pack_ml(m, l):
    out = np.empty(np.shape(m), _ML[np.asarray(m).dtype])
    out["m"], out["l"] = m, l
    return out


def _ml_block(x, axes):
    with np.errstate(all="ignore"):
        m = np.max(x, axis=axes, keepdims=True)  # nan in a row: nan
        fin = np.isfinite(m)
        l = _numpy.logsumexp(x - np.where(fin, m, 0), axis=axes, keepdims=True)
        return _pack_ml(m, np.where(fin, l, 0))


def _ml_merge(p, axes):
    with np.errstate(all="ignore"):
        m = np.max(p["m"], axis=axes, keepdims=True)
        fin = np.isfinite(m)
        l = _numpy.logsumexp(
            (p["m"] - np.where(fin, m, 0)) + p["l"], axis=axes, keepdims=True
        )
        return _pack_ml(m, np.where(fin, l, 0))


def _log_softmax_block(x, ml):
    """(x - m) - l, in two passes; rows whose max is not finite (rare) get
    nan where x is +inf and -inf elsewhere when m is +inf, else nan."""
    with np.errstate(all="ignore"):
        m, l = ml["m"], ml["l"]
        y = np.subtract(x, m)
        y -= l
        fin = np.isfinite(m)
        if not fin.all():
            special = np.where((m == np.inf) & (x != np.inf), -np.inf, np.nan)
            y = np.where(fin, y, special).astype(x.dtype, copy=False)
        return y


def _prepare(name, arrays):
    da = _da()
    arrays = [da.asarray(a) for a in arrays]
    _numpy.check_same_shape(name, arrays)
    dt = np.result_type(*[a.dtype for a in arrays])
    if arrays[0].dtype == np.bool_:
        dt = arrays[0].dtype
    rdt = _float_dtype(dt, name, False)
    cdt = _numpy._compute_dtype(rdt)
    arrays = [a.astype(cdt) for a in arrays]
    if arrays[0].ndim == 0:
        arrays = [a.reshape(1) for a in arrays]
    arrays = [arrays[0]] + [a.rechunk(arrays[0].chunks) for a in arrays[1:]]
    return arrays, rdt


def _elementwise(op, name, axis, arrays, out):
    da = _da()
    if out is not None:
        raise TypeError(f"{name}: out= is supported for NumPy and CuPy arrays")
    scalar = np.ndim(arrays[0]) == 0
    xs, rdt = _prepare(name, arrays)
    x = xs[0]
    axes = _numpy._axes(axis, x.ndim)
    if x.size == 0 or _one_chunk(x, axes):
        fn = {
            "softmax": _numpy.softmax,
            "log_softmax": _numpy.log_softmax,
            "jvp": _numpy.log_softmax_jvp,
            "vjp": _numpy.log_softmax_vjp,
        }[op]
        if op == "jvp":
            y = da.map_blocks(lambda a, b: fn(a, b, axis=axes)[0], *xs, dtype=x.dtype)
            dy = da.map_blocks(lambda a, b: fn(a, b, axis=axes)[1], *xs, dtype=x.dtype)
            outs = (y, dy)
        else:
            outs = (da.map_blocks(lambda *a: fn(*a, axis=axes), *xs, dtype=x.dtype),)
    elif op == "vjp":
        y, g = xs
        outs = (g - da.exp(y) * g.sum(axis=axes, keepdims=True),)
    else:
        st = _ML[np.dtype(x.dtype)]
        parts = da.map_blocks(
            _ml_block, x, axes=axes, dtype=st, chunks=_state_chunks(x.chunks, axes)
        )
        ml = _tree(parts, _ml_merge, axes, st)
        y = da.map_blocks(_log_softmax_block, x, ml, dtype=x.dtype)
        if op == "softmax":  # rows whose max is not finite: nan throughout
            outs = (da.where(da.isfinite(ml["m"]), da.exp(y), np.nan).astype(x.dtype),)
        elif op == "log_softmax":
            outs = (y,)
        else:
            v = xs[1]
            q = (da.exp(y) * v).sum(axis=axes, keepdims=True)
            fin = da.isfinite(ml["m"])
            outs = (y, da.where(fin, v - q, np.nan).astype(x.dtype))
    outs = tuple(o.astype(rdt) for o in outs)
    if scalar:
        outs = tuple(o.reshape(()) for o in outs)
    return outs if len(outs) > 1 else outs[0]


def softmax(x, axis=None, out=None):
    return _elementwise("softmax", "softmax", axis, [x], out)


def log_softmax(x, axis=None, out=None):
    return _elementwise("log_softmax", "log_softmax", axis, [x], out)


def log_softmax_jvp(x, v, axis=None, out=None):
    return _elementwise("jvp", "log_softmax_jvp", axis, [x, v], out)


def log_softmax_vjp(y, g, axis=None, out=None):
    return _elementwise("vjp", "log_softmax_vjp", axis, [y, g], out)
