"""NumPy backend: dtype rules, axis handling and allocation around the C kernels.

Every function here maps its input onto the kernels' canonical
``(outer, n, inner)`` view:

* the reduced axes are moved (by a transpose, which is only a view) between
  the kept axes with larger strides ("outer") and those with smaller strides
  ("inner"), each group ordered by decreasing stride;
* ``reshape`` then merges each group into one dimension. NumPy does that
  without a copy whenever the layout allows (C order, F order, most slices,
  negative strides) and copies only when it does not.

Outputs are allocated C-contiguous in the permuted order and transposed back,
so the result has the input's memory order.
"""

from __future__ import annotations

import operator
from math import prod

import numpy as np

from . import _core, _fallback
from ._outcache import empty as _empty

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # pragma: no cover - NumPy 1.25/1.26
    from numpy.core.numeric import normalize_axis_tuple  # type: ignore[no-redef]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_KERNEL_DTYPES = (_F32, _F64)
_PY_SCALARS = (bool, int, float, complex)
_IDENTITY = [tuple(range(n)) for n in range(65)]


# --------------------------------------------------------------- dtypes


def _dtype_of(obj, arr):
    """The dtype NumPy's promotion sees: Python scalars stay 'weak'."""
    return obj if type(obj) in _PY_SCALARS else arr.dtype


def _reject(dt, name):
    """Refuse non-numeric dtypes; return dt in native byte order."""
    if dt.kind not in "biufc":
        raise TypeError(
            f"{name} does not support arrays of dtype {dt!r}; "
            "expected a real or complex numeric dtype"
        )
    return dt if dt.isnative else dt.newbyteorder("=")


def _lse_dtype(dt):
    """scipy.special.logsumexp's result dtype: integers and bool give float64."""
    return _F64 if dt.kind in "biu" else dt


def _softmax_dtype(dt, name):
    """The dtype np.exp gives for x (int8 -> float16, int16 -> float32, ...).

    Bool is refused, as in scipy.special.softmax (NumPy cannot subtract bools).
    """
    if dt.kind == "b":
        raise TypeError(
            f"{name} does not support boolean input; convert it to a float dtype"
        )
    if dt.kind in "iu":
        return np.promote_types(dt, _F16)
    return dt


def _real_dtype(dt):
    """The real dtype of dt's magnitude (complex128 -> float64)."""
    return np.empty(0, dtype=dt).real.dtype


def _compute_dtype(dt):
    """Kernel dtype for result dtype dt, or None when NumPy does the work."""
    if dt == _F16:
        return _F32
    if dt in _KERNEL_DTYPES:
        return dt
    return None  # complex, longdouble


def _as_kernel_array(a, cdt):
    """a as an aligned, native-byte-order array of dtype cdt (a view if it is)."""
    if a.dtype is not cdt:
        a = np.asarray(a, dtype=cdt)
    if not a.flags.aligned:
        a = a.copy()
    return a


# ----------------------------------------------------------------- axes


def _axes(axis, ndim):
    """Normalised, sorted tuple of axes (AxisError / ValueError as NumPy)."""
    if axis is None:
        return _IDENTITY[ndim]
    if axis == -1 and type(axis) is int and ndim:
        return (ndim - 1,)
    if isinstance(axis, (tuple, list)):
        axes = normalize_axis_tuple(tuple(operator.index(a) for a in axis), ndim)
    else:
        axes = normalize_axis_tuple(operator.index(axis), ndim)
    return tuple(sorted(axes))


def _plan(shape, strides, axes, c_contiguous=False):
    """Permutation and (outer, n, inner) sizes for reducing over `axes`.

    Returns ``perm, n_outer_axes, (outer, n, inner)``: ``perm`` lists the
    outer axes, then the reduced axes, then the inner axes.
    """
    ndim = len(shape)
    if c_contiguous and axes and axes[-1] - axes[0] == len(axes) - 1:
        # consecutive axes of a C-contiguous array: no transpose needed
        a0, a1 = axes[0], axes[-1] + 1
        return (
            _IDENTITY[ndim],
            a0,
            (prod(shape[:a0]), prod(shape[a0:a1]), prod(shape[a1:])),
        )
    key = {d: -abs(strides[d]) for d in range(ndim)}
    red = sorted(axes, key=key.__getitem__)
    live = [abs(strides[d]) for d in axes if shape[d] > 1]
    smallest = min(live) if live else 0
    others = sorted((d for d in range(ndim) if d not in axes), key=key.__getitem__)
    outer_ax = [d for d in others if shape[d] <= 1 or abs(strides[d]) >= smallest]
    inner_ax = [d for d in others if not (shape[d] <= 1 or abs(strides[d]) >= smallest)]
    perm = tuple(outer_ax + red + inner_ax)
    outer = n = inner = 1
    for d in outer_ax:
        outer *= shape[d]
    for d in red:
        n *= shape[d]
    for d in inner_ax:
        inner *= shape[d]
    return perm, len(outer_ax), (outer, n, inner)


def _view3(a, perm, dims):
    """a transposed by perm and merged to dims (a view whenever possible)."""
    if perm is not _IDENTITY[a.ndim] and perm != _IDENTITY[a.ndim]:
        a = a.transpose(perm)
    return a.reshape(dims)


def _empty_like_perm(a, perm, dtype, inner, op):
    """An output of op (an _core op) of a's shape whose memory order follows
    perm, and the output seen in a's axis order; at a's offset from a cache
    line or on one, as _core.fast's (_core.output_at_input)."""
    like = a if _core.output_at_input(op, dtype == np.float32, inner) else None
    if perm is _IDENTITY[a.ndim] or perm == _IDENTITY[a.ndim]:
        buf = _empty(a.shape, dtype, like)
        return buf, buf
    buf = _empty(tuple(a.shape[d] for d in perm), dtype, like)
    inverse = [0] * len(perm)
    for i, d in enumerate(perm):
        inverse[d] = i
    return buf, buf.transpose(inverse)


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)


def _reduce_out(shape, perm, n_outer, n_red, dims, dtype):
    """Output of a reduction: a 2-D (outer, inner) buffer and the N-d result view
    (kept axes in their original order)."""
    kept = perm[:n_outer] + perm[n_outer + n_red :]
    buf = np.empty((dims[0], dims[2]), dtype=dtype)
    res = buf.reshape(tuple(shape[d] for d in kept))
    order = sorted(range(len(kept)), key=kept.__getitem__)
    if order != list(range(len(kept))):
        res = res.transpose(order)
    return buf, res


def _finish(res, axes, keepdims, ndim_in):
    if keepdims:
        res = np.expand_dims(res, axes) if axes else res
    return res[()] if res.ndim == 0 else res


# -------------------------------------------------------------- logsumexp


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, out=None):
    if out is not None:
        # the result is reduced (small): computed apart, then copied
        res = logsumexp(a, axis, b, keepdims, return_sign)
        res = res if return_sign else (res,)
        outs = _check_out(
            out, [np.result_type(r) for r in res], np.shape(res[0]), "logsumexp"
        )
        for o, r in zip(outs, res):
            np.copyto(o, r, casting="same_kind")
        return out
    if b is None and not return_sign:
        r = _core.fast(_core.LOGSUMEXP, a, None, axis, keepdims)
        if r is not None:
            return r
    a_arr = np.asarray(a)
    if b is None:
        dt = a_arr.dtype
    else:
        b_arr = np.asarray(b)
        dt = np.result_type(_dtype_of(a, a_arr), _dtype_of(b, b_arr))
    rdt = _lse_dtype(_reject(dt, "logsumexp"))
    cdt = _compute_dtype(rdt)
    if a_arr.ndim == 0:
        a_arr = a_arr.reshape(1)
    if b is not None:
        shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
        a_arr = np.broadcast_to(a_arr, shape)
        b_arr = np.broadcast_to(b_arr, shape)
    axes = _axes(axis, a_arr.ndim)

    shape = a_arr.shape
    if a_arr.size == 0:
        out = np.full(_reduced_shape(shape, axes, keepdims), -np.inf, dtype=rdt)
        if return_sign:
            # SciPy: sign -1 for real input, nan for complex (0 / |0|)
            sgn = np.full_like(out, complex(np.nan, np.nan) if rdt.kind == "c" else -1)
            return _finish(out, (), False, 0), _finish(sgn, (), False, 0)
        return _finish(out, (), False, 0)

    if cdt is None:
        out, sgn = _fallback.logsumexp(
            a_arr.astype(rdt, copy=False),
            None if b is None else b_arr.astype(rdt, copy=False),
            axes,
            return_sign,
        )
        out = out.astype(_real_dtype(rdt) if return_sign else rdt, copy=False)
        sgn = sgn.astype(rdt, copy=False) if sgn is not None else None
        out = _finish(out if keepdims else np.squeeze(out, axes), axes, False, 0)
        if return_sign:
            sgn = _finish(sgn if keepdims else np.squeeze(sgn, axes), axes, False, 0)
            return out, sgn
        return out

    x = _as_kernel_array(a_arr, cdt)
    perm, n_outer, dims = _plan(shape, x.strides, axes, x.flags.c_contiguous)
    x3 = _view3(x, perm, dims)
    buf, res = _reduce_out(shape, perm, n_outer, len(axes), dims, cdt)
    if b is None and not return_sign:
        _core.logsumexp(x3, buf)
        sbuf = sres = None
    else:
        # the sign needs the weighted kernel (0 for all -inf, nan for nan rows)
        w = np.broadcast_to(np.ones((), cdt), shape) if b is None else b_arr
        w3 = _view3(_as_kernel_array(w, cdt), perm, dims)
        if return_sign:
            sbuf, sres = _reduce_out(shape, perm, n_outer, len(axes), dims, cdt)
        else:
            sbuf = sres = None
        _core.logsumexp_weighted(x3, w3, buf, sbuf)
    if rdt != cdt:
        res = res.astype(rdt)
        sres = sres.astype(rdt) if sres is not None else None
    out = _finish(res, axes, keepdims, len(shape))
    if return_sign:
        return out, _finish(sres, axes, keepdims, len(shape))
    return out


# ------------------------------------------------------- elementwise ops


def _prepare(x, name, others=()):
    """Common front of softmax-like ops: (arrays as kernel dtype, result dtype,
    kernel dtype, was_0d)."""
    if not others:
        a = np.asarray(x)
        dt = a.dtype
        if dt in _KERNEL_DTYPES:
            return [a], dt, dt, a.ndim == 0
        rdt = _softmax_dtype(_reject(dt, name), name)
        return [a], rdt, _compute_dtype(rdt), a.ndim == 0
    arrs = [np.asarray(x)] + [np.asarray(o) for o in others]
    check_same_shape(name, arrs)
    dt = arrs[0].dtype
    if dt.kind == "b":
        _softmax_dtype(dt, name)  # raises, as for log_softmax(bool)
    if any(o.dtype != dt for o in arrs[1:]):
        dt = np.result_type(*arrs)
    rdt = _softmax_dtype(_reject(dt, name), name)
    return arrs, rdt, _compute_dtype(rdt), arrs[0].ndim == 0


def check_same_shape(name, arrays):
    """ValueError unless every array has the shape of the first (the JVP's
    x and v, the VJP's y and g); shared by every backend."""
    shape0 = arrays[0].shape
    for o in arrays[1:]:
        if o.shape != shape0:
            raise ValueError(
                f"{name}: arrays must have the same shape, got {shape0} and {o.shape}"
            )


def _check_out(out, dtypes, shape, name):
    """out= as a list of arrays of the given shape, one per result dtype in
    dtypes, to which that dtype casts under NumPy's same_kind rule (errors as
    NumPy)."""
    outs = list(out) if isinstance(out, tuple) else [out]
    if len(outs) != len(dtypes):
        raise ValueError(f"{name}: out must be a tuple of {len(dtypes)} arrays")
    for o, dtype in zip(outs, dtypes):
        if not isinstance(o, np.ndarray):
            raise TypeError(
                f"{name}: out must be a numpy.ndarray, got {type(o).__name__}"
            )
        if o.shape != shape:
            raise ValueError(f"{name}: out has shape {o.shape}, expected {shape}")
        if not o.flags.writeable:
            raise ValueError(f"{name}: out is a read-only array")
        if not np.can_cast(dtype, o.dtype, casting="same_kind"):
            raise TypeError(
                f"{name}: cannot cast the result from {dtype} to out's "
                f"{o.dtype} with casting rule 'same_kind'"
            )
    if len(outs) == 2 and np.shares_memory(outs[0], outs[1]):
        raise ValueError(f"{name}: the arrays of out must not overlap each other")
    return outs


def _same_memory(a, b):
    """a and b are the same elements in the same layout (an in-place call)."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _elementwise(kernel, op, name, axis, arrays, n_out, out=None):
    """Run an elementwise kernel (softmax, log_softmax, jvp, vjp) over `axis`."""
    arrs, rdt, cdt, scalar = arrays
    if out is not None:
        outs_user = _check_out(out, [rdt] * n_out, arrs[0].shape, name)
    if scalar:
        arrs = [a.reshape(1) for a in arrs]
    shape = arrs[0].shape
    axes = _axes(axis, len(shape))
    direct = None  # kernel views of out when the kernel can write into it
    if arrs[0].size == 0:
        outs = tuple(np.empty(shape, dtype=rdt) for _ in range(n_out))
    elif cdt is None:
        outs = getattr(_fallback, name)(
            *[a.astype(rdt, copy=False) for a in arrs], axes
        )
        if n_out == 1:
            outs = (outs,)
    else:
        xs = [_as_kernel_array(a, cdt) for a in arrs]
        perm, _, dims = _plan(
            shape, xs[0].strides, axes, all(a.flags.c_contiguous for a in xs)
        )
        if out is not None:
            direct = _out_views(outs_user, xs, perm, dims, cdt, rdt, scalar)
            if direct is not None:
                # inputs that overlap out other than exactly are copied first
                xs = [
                    a.copy()
                    if any(
                        np.may_share_memory(a, o)
                        and not _same_memory(a, o.reshape(a.shape))
                        for o in outs_user
                    )
                    else a
                    for a in xs
                ]
        ins3 = [_view3(a, perm, dims) for a in xs]
        if direct is not None:
            kernel(*ins3, *direct)
            return out
        outs, outs3 = [], []
        for _ in range(n_out):
            buf, res = _empty_like_perm(xs[0], perm, cdt, dims[2], op)
            outs.append(res)
            outs3.append(buf.reshape(dims))
        kernel(*ins3, *outs3)
        if rdt != cdt and out is None:
            outs = [o.astype(rdt) for o in outs]
    if out is not None:
        for o, r in zip(outs_user, outs):
            np.copyto(o, r.reshape(o.shape), casting="same_kind")
        return out
    if scalar:
        outs = [o.reshape(())[()] for o in outs]
    return tuple(outs) if n_out > 1 else outs[0]


def _out_views(outs_user, xs, perm, dims, cdt, rdt, scalar):
    """(outer, n, inner) views of the user's out arrays that the kernel can
    write into, or None (then the result is computed apart and copied)."""
    if cdt != rdt:
        return None
    views = []
    for o in outs_user:
        if o.dtype != cdt or not o.flags.aligned:
            return None
        if scalar:
            o = o.reshape(1)
        v = _view3(o, perm, dims)
        if not np.may_share_memory(v, o):  # the reshape had to copy
            return None
        views.append(v)
    if len(views) == 2 and np.may_share_memory(views[0], views[1]):
        return None
    return views


def softmax(x, axis=None, out=None):
    if out is None:
        r = _core.fast(_core.SOFTMAX, x, None, axis)
        if r is not None:
            return r
    return _elementwise(
        _core.softmax, _core.SOFTMAX, "softmax", axis, _prepare(x, "softmax"), 1, out
    )


def log_softmax(x, axis=None, out=None):
    if out is None:
        r = _core.fast(_core.LOG_SOFTMAX, x, None, axis)
        if r is not None:
            return r
    return _elementwise(
        _core.log_softmax,
        _core.LOG_SOFTMAX,
        "log_softmax",
        axis,
        _prepare(x, "log_softmax"),
        1,
        out,
    )


def log_softmax_jvp(x, v, axis=None, out=None):
    if out is None:
        r = _core.fast(_core.JVP, x, v, axis)
        if r is not None:
            return r
    return _elementwise(
        _core.log_softmax_jvp,
        _core.JVP,
        "log_softmax_jvp",
        axis,
        _prepare(x, "log_softmax_jvp", (v,)),
        2,
        out,
    )


def log_softmax_vjp(y, g, axis=None, out=None):
    if out is None:
        r = _core.fast(_core.VJP, y, g, axis)
        if r is not None:
            return r
    return _elementwise(
        _core.log_softmax_vjp,
        _core.VJP,
        "log_softmax_vjp",
        axis,
        _prepare(y, "log_softmax_vjp", (g,)),
        1,
        out,
    )
