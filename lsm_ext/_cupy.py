"""CuPy backend: the same semantics as the NumPy path, on the GPU.

CuPy is imported only when a CuPy array arrives (``import lsm_ext`` never
imports it). Each call maps its arrays onto the ``(outer, n, inner)`` view of
the NumPy path (the same ``_plan``: a transpose and a reshape, copying only
when the layout needs it) and launches one fused kernel from
``_cuda/lsm_kernels.cuh`` (two for lines split across blocks) on CuPy's
current stream. The kernels handle inf/nan rows themselves, so a call never
waits for the device (no ``.item()``, no host-side checks of values).

Kernel choice by line length n (elements reduced over) and layout:

* inner == 1 (the reduced axis is the fastest-varying of the view), n <= 16384:
  ``lsm_rows``, the line in registers: n <= 32 one to 32 threads per line
  (several lines per warp); <= 1024 a warp per line; <= 8192 a block of 256;
  <= 16384 a block of 1024 (which leaves 64 registers per thread);
* inner == 1, longer lines: ``lsm_lines`` with a block of 1024 threads per
  line (online statistics, then the output); when there are too few lines to
  fill the GPU, each line is split across blocks whose states are merged;
* inner > 1 (reduced axis not last): ``lsm_lines`` with 32 adjacent lines
  (adjacent in memory) per block and up to 32 threads along each, split
  across blocks likewise when the blocks would be too few.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from . import _numpy as _np_backend

_OPS = {
    "logsumexp": 0,
    "logsumexp_sign": 1,
    "logsumexp_w": 2,
    "softmax": 3,
    "log_softmax": 4,
    "log_softmax_jvp": 5,
    "log_softmax_vjp": 6,
}
_TYPE = {
    np.dtype(np.float16): "lsm_half",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}
_SOURCE = os.path.join(os.path.dirname(__file__), "_cuda", "lsm_kernels.cuh")

# lsm_rows: (TPR, VPT) by line length, and the block size
_ROW_BLOCK = 128
_ROWS_MAX = 16384
_LONG_CY = 1024


def _pow2(n):
    return 1 << max(0, (int(n) - 1).bit_length())


def _rows_variant(n):
    """(threads per line, values per thread) of lsm_rows for lines of n."""
    if n <= 32:
        return _pow2(n), 1
    if n <= 1024:
        return 32, _pow2(-(-n // 32))
    if n <= 8192:
        return 256, _pow2(-(-n // 256))
    # 1024 threads leave 64 registers each: at most 16 values (and 16 of v)
    return 1024, _pow2(-(-n // 1024))


def kernel_names():
    """Every kernel instance the backend can launch (the CI compile check
    builds each of them)."""
    names = []
    rows = sorted({_rows_variant(n) for n in range(1, _ROWS_MAX + 1)})
    for t in _TYPE.values():
        for op in range(7):
            for tpr, vpt in rows:
                names.append(f"lsm_rows<{t},{op},{tpr},{vpt}>")
            for bx, cy in [(1, _LONG_CY)] + [(32, c) for c in (1, 2, 4, 8, 16, 32)]:
                for mode in (0, 1, 2):
                    names.append(f"lsm_lines<{t},{op},{bx},{cy},{mode}>")
    return names


def source():
    with open(_SOURCE, encoding="utf-8") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def _cp():
    import cupy

    return cupy


@functools.lru_cache(maxsize=None)
def _function(name, device_id):
    """The compiled kernel `name` on device `device_id` (NVRTC, once)."""
    cp = _cp()
    with cp.cuda.Device(device_id):
        mod = cp.RawModule(
            code=source(), options=("-std=c++17",), name_expressions=[name]
        )
        return mod.get_function(name)


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    cp = _cp()
    return cp.cuda.Device(device_id).attributes["MultiProcessorCount"]


def is_cupy_array(a):
    """True for a cupy.ndarray, without importing CuPy for other inputs."""
    t = type(a)
    return t.__module__.startswith("cupy") and t.__name__ == "ndarray"


# ------------------------------------------------------------- launches


def _device_id(a):
    return a.device.id


def _strides(a, itemsize):
    return [np.int64(s // itemsize) for s in a.strides]


def plan(op, dtype, n, inner, lines, sms, lse):
    """The launches of op over `lines` lines of n elements (inner: the
    lines' inner extent, 1 when the reduced axis is the fastest-varying) on
    a GPU of `sms` multiprocessors: a list of (kernel name, grid, block,
    (seg, nseg) or None), and the number of segments per line (> 1: a
    workspace of lines x nseg x 4 doubles is needed)."""
    t = _TYPE[np.dtype(dtype)]
    if inner == 1 and n <= _ROWS_MAX:
        tpr, vpt = _rows_variant(n)
        block = max(tpr, _ROW_BLOCK)
        grid = -(-lines // (block // tpr))
        return [(f"lsm_rows<{t},{op},{tpr},{vpt}>", (grid,), (block,), None)], 1
    if inner == 1:
        bx, cy = 1, _LONG_CY
    else:
        bx, cy = 32, min(32, _pow2(n))
    blocks = -(-lines // bx)
    nseg = 1
    if blocks < 2 * sms and n >= 64 * cy:
        nseg = max(1, min(-(-4 * sms // blocks), n // (16 * cy), 1024))
    seg = -(-n // nseg)
    nseg = -(-n // seg)
    name = f"lsm_lines<{t},{op},{bx},{cy},"
    if nseg == 1:
        return [(name + "0>", (blocks, 1), (bx, cy), (n, 1))], 1
    return [
        (name + "1>", (blocks, nseg), (bx, cy), (seg, nseg)),
        (name + "2>", (blocks, 1 if lse else nseg), (bx, cy), (seg, nseg)),
    ], nseg


def _launch(op, x3, v3, y3, z3, lse):
    """Run op over the (outer, n, inner) views x3 (v3: b, the tangent or g,
    or None) into y3 (and z3: dy or the sign, or None). For logsumexp ops y3
    and z3 are (outer, inner)."""
    cp = _cp()
    outer, n, inner = x3.shape
    lines = outer * inner
    if lines == 0 or n == 0:
        return
    it = x3.dtype.itemsize
    dev = _device_id(x3)
    vv = x3 if v3 is None else v3  # a placeholder where the op reads no v
    zz = y3 if z3 is None else z3
    if lse:  # (outer, inner) results
        ys = [_strides(y3, it)[0], np.int64(0), _strides(y3, it)[1]]
        zs = [_strides(zz, it)[0], np.int64(0), _strides(zz, it)[1]]
    else:
        ys, zs = _strides(y3, it), _strides(zz, it)
    args = (
        np.int64(lines),
        np.int64(n),
        np.int64(inner),
        x3,
        *_strides(x3, it),
        vv,
        *_strides(vv, it),
        y3,
        *ys,
        zz,
        *zs,
    )
    launches, nseg = plan(op, x3.dtype, n, inner, lines, _sm_count(dev), lse)
    ws = x3
    if nseg > 1:
        ws = cp.empty((lines, nseg, 4), dtype=np.float64)
    for name, grid, block, segs in launches:
        extra = () if segs is None else (np.int64(segs[0]), np.int64(segs[1]), ws)
        _function(name, dev)(grid, block, args + extra)


# ------------------------------------------------------------ front ends


def _asarray(obj, name):
    """obj as a CuPy array; NumPy arrays (other libraries) are refused."""
    cp = _cp()
    if is_cupy_array(obj):
        return obj
    if isinstance(obj, (bool, int, float, complex, np.generic)):
        return cp.asarray(obj)
    raise TypeError(
        f"{name}: cannot mix a cupy.ndarray with {type(obj).__module__}."
        f"{type(obj).__name__}; move the arrays to one library first"
    )


def _kernel_dtype(rdt, name):
    if rdt not in _TYPE:
        raise TypeError(
            f"{name}: the CuPy backend computes float16/float32/float64; "
            f"got {rdt} (convert to a real floating dtype first)"
        )
    return rdt


def _view3(a, perm, dims):
    if tuple(perm) != tuple(range(a.ndim)):
        a = a.transpose(perm)
    return a.reshape(dims)


def _check_out(out, results, name):
    cp = _cp()
    outs = list(out) if isinstance(out, tuple) else [out]
    if len(outs) != len(results):
        raise ValueError(f"{name}: out must be a tuple of {len(results)} arrays")
    for o, r in zip(outs, results):
        if not is_cupy_array(o):
            raise TypeError(
                f"{name}: out must be a cupy.ndarray, got {type(o).__name__}"
            )
        if o.shape != r.shape:
            raise ValueError(f"{name}: out has shape {o.shape}, expected {r.shape}")
        if not np.can_cast(r.dtype, o.dtype, casting="same_kind"):
            raise TypeError(
                f"{name}: cannot cast the result from {r.dtype} "
                f"to out's {o.dtype} with casting rule 'same_kind'"
            )
    for o, r in zip(outs, results):
        cp.copyto(o, r, casting="same_kind")
    return out


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, out=None):
    cp = _cp()
    if out is not None:
        res = logsumexp(a, axis, b, keepdims, return_sign)
        return _check_out(out, list(res) if return_sign else [res], "logsumexp")
    a = _asarray(a, "logsumexp")
    if b is None:
        dt = a.dtype
    else:
        b_in = b
        b = _asarray(b, "logsumexp")
        # a Python scalar b stays 'weak' in the promotion, as in NumPy
        dt = np.result_type(a.dtype, b.dtype if is_cupy_array(b_in) else b_in)
    rdt = _np_backend._lse_dtype(_np_backend._reject(np.dtype(dt), "logsumexp"))
    cdt = _kernel_dtype(rdt, "logsumexp")
    if a.ndim == 0:
        a = a.reshape(1)
    if b is not None:
        shape = np.broadcast_shapes(a.shape, b.shape)
        a = cp.broadcast_to(a, shape)
        b = cp.broadcast_to(b.astype(cdt, copy=False), shape)
    a = a.astype(cdt, copy=False)
    axes = _np_backend._axes(axis, a.ndim)
    shape = a.shape
    rshape = _np_backend._reduced_shape(shape, axes, keepdims)
    if a.size == 0:
        res = cp.full(rshape, -np.inf, dtype=rdt)
        if return_sign:
            return res, cp.full(rshape, -1, dtype=rdt)
        return res
    perm, n_outer, dims = _np_backend._plan(
        shape, a.strides, axes, a.flags.c_contiguous
    )
    x3 = _view3(a, perm, dims)
    w3 = None if b is None else _view3(b, perm, dims)
    buf = cp.empty((dims[0], dims[2]), dtype=cdt)
    sbuf = cp.empty((dims[0], dims[2]), dtype=cdt) if return_sign else None
    op = 0 if b is None and not return_sign else (1 if return_sign else 2)
    if op != 0 and w3 is None:
        w3 = cp.broadcast_to(cp.ones((), cdt), x3.shape)
    _launch(op, x3, w3, buf, sbuf, lse=True)

    def shaped(r):
        kept = perm[:n_outer] + perm[n_outer + len(axes) :]
        r = r.reshape(tuple(shape[d] for d in kept))
        order = sorted(range(len(kept)), key=kept.__getitem__)
        if order != list(range(len(kept))):
            r = r.transpose(order)
        return r.reshape(rshape)

    if return_sign:
        return shaped(buf), shaped(sbuf)
    return shaped(buf)


def _elementwise(op, name, axis, arrays, n_out, out=None):
    cp = _cp()
    arrs = [_asarray(arrays[0], name)] + [_asarray(o, name) for o in arrays[1:]]
    _np_backend.check_same_shape(name, arrs)
    dt = arrs[0].dtype
    if dt.kind == "b":
        _np_backend._softmax_dtype(dt, name)  # raises, as the NumPy path
    if any(o.dtype != dt for o in arrs[1:]):
        dt = np.result_type(*[o.dtype for o in arrs])
    rdt = _np_backend._softmax_dtype(_np_backend._reject(np.dtype(dt), name), name)
    cdt = _kernel_dtype(rdt, name)
    scalar = arrs[0].ndim == 0
    arrs = [a.astype(cdt, copy=False) for a in arrs]
    if scalar:
        arrs = [a.reshape(1) for a in arrs]
    shape = arrs[0].shape
    axes = _np_backend._axes(axis, len(shape))
    if arrs[0].size == 0:
        outs = [cp.empty(shape, dtype=rdt) for _ in range(n_out)]
    else:
        perm, _, dims = _np_backend._plan(
            shape, arrs[0].strides, axes, all(a.flags.c_contiguous for a in arrs)
        )
        ins3 = [_view3(a, perm, dims) for a in arrs]
        outs, outs3 = [], []
        inverse = [0] * len(perm)
        for i, d in enumerate(perm):
            inverse[d] = i
        for _ in range(n_out):
            buf = cp.empty(tuple(shape[d] for d in perm), dtype=cdt)
            outs3.append(buf.reshape(dims))
            outs.append(buf.transpose(inverse))
        _launch(
            op,
            ins3[0],
            ins3[1] if len(ins3) > 1 else None,
            outs3[0],
            outs3[1] if n_out > 1 else None,
            lse=False,
        )
    if scalar:
        outs = [o.reshape(()) for o in outs]
    if out is not None:
        return _check_out(out, outs, name)
    return tuple(outs) if n_out > 1 else outs[0]


def softmax(x, axis=None, out=None):
    return _elementwise(3, "softmax", axis, (x,), 1, out)


def log_softmax(x, axis=None, out=None):
    return _elementwise(4, "log_softmax", axis, (x,), 1, out)


def log_softmax_jvp(x, v, axis=None, out=None):
    return _elementwise(5, "log_softmax_jvp", axis, (x, v), 2, out)


def log_softmax_vjp(y, g, axis=None, out=None):
    return _elementwise(6, "log_softmax_vjp", axis, (y, g), 1, out)


def gpu_available():
    """True when CuPy imports and sees a CUDA device."""
    try:
        cp = _cp()
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        return False


__all__ = [
    "kernel_names",
    "source",
    "is_cupy_array",
    "gpu_available",
    "logsumexp",
    "softmax",
    "log_softmax",
    "log_softmax_jvp",
    "log_softmax_vjp",
]
