# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython skin over the C kernels of src_c/.

Each function takes typed memoryviews of the canonical (outer, n, inner)
view (read-only inputs work), converts byte strides to element strides and
calls the kernel with the GIL released. Axis handling, dtype promotion,
allocation and empty inputs live in ``_numpy.py``; ``fast`` below is the
one shortcut past them, for the plain case that small calls meet most.
"""

import operator
import sys

from libc.stddef cimport ptrdiff_t

cimport numpy as cnp
from cpython.ref cimport Py_INCREF

from ._outcache import MIN_BYTES as _OC_MIN_BYTES
from ._outcache import empty as _oc_empty

cnp.import_array()

ctypedef fused real:
    float
    double

cdef extern from "lsm.h" nogil:
    int lsm_logsumexp_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                          const ptrdiff_t *, float *, const ptrdiff_t *)
    int lsm_logsumexp_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                          const ptrdiff_t *, double *, const ptrdiff_t *)
    int lsm_logsumexp_weighted_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                   const float *, const ptrdiff_t *,
                                   const float *, const ptrdiff_t *,
                                   float *, const ptrdiff_t *,
                                   float *, const ptrdiff_t *)
    int lsm_logsumexp_weighted_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                   const double *, const ptrdiff_t *,
                                   const double *, const ptrdiff_t *,
                                   double *, const ptrdiff_t *,
                                   double *, const ptrdiff_t *)
    int lsm_softmax_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                        const ptrdiff_t *, float *, const ptrdiff_t *)
    int lsm_softmax_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                        const ptrdiff_t *, double *, const ptrdiff_t *)
    int lsm_log_softmax_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                            const ptrdiff_t *, float *, const ptrdiff_t *)
    int lsm_log_softmax_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t, const double *,
                            const ptrdiff_t *, double *, const ptrdiff_t *)
    int lsm_log_softmax_jvp_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                const float *, const ptrdiff_t *,
                                const float *, const ptrdiff_t *,
                                float *, const ptrdiff_t *,
                                float *, const ptrdiff_t *)
    int lsm_log_softmax_jvp_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                const double *, const ptrdiff_t *,
                                const double *, const ptrdiff_t *,
                                double *, const ptrdiff_t *,
                                double *, const ptrdiff_t *)
    int lsm_log_softmax_vjp_f32(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                const float *, const ptrdiff_t *,
                                const float *, const ptrdiff_t *,
                                float *, const ptrdiff_t *)
    int lsm_log_softmax_vjp_f64(ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                const double *, const ptrdiff_t *,
                                const double *, const ptrdiff_t *,
                                double *, const ptrdiff_t *)
    int lsm_exp_f32(ptrdiff_t, const float *, ptrdiff_t, float *, ptrdiff_t)
    int lsm_exp_f64(ptrdiff_t, const double *, ptrdiff_t, double *, ptrdiff_t)
    const char *lsm_isa()
    void lsm_set_num_threads(int n)
    int lsm_get_num_threads()
    void lsm_set_stream_bytes(ptrdiff_t nbytes)
    ptrdiff_t lsm_get_stream_bytes()


def isa():
    """Name of the instruction-set level the kernels use ("baseline", "avx2",
    "avx512", or "generic" for a build without run-time dispatch)."""
    return lsm_isa().decode("ascii")


def set_num_threads(n):
    """Set how many threads each kernel call may use.

    Parameters
    ----------
    n : int
        The most threads a call shares its work among (a call on a small
        array uses fewer: at least 32768 elements per thread). ``0`` (the
        default) follows OpenMP's own setting, which ``OMP_NUM_THREADS`` and
        ``threadpoolctl.threadpool_limits`` control.

    Notes
    -----
    Results are the same, bit for bit, whatever the thread count. A build
    without OpenMP always runs on the calling thread.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"set_num_threads: n must be >= 0, got {n}")
    lsm_set_num_threads(n)


def get_num_threads():
    """The most threads a kernel call uses now (see `set_num_threads`); 1 in
    a build without OpenMP."""
    return lsm_get_num_threads()


def set_stream_bytes(nbytes):
    """Set the output size from which the NumPy kernels use streaming stores.

    Parameters
    ----------
    nbytes : int
        A call whose output array is at least `nbytes` bytes writes it with
        non-temporal (streaming) stores on x86-64: the output goes to
        memory without first being read into the cache, so writing it moves
        about two thirds of the bytes that plain stores move, and it does not
        displace what the cache holds. ``0`` streams every output, a
        negative value none. The default is 8 MiB (``8 << 20``).

    Notes
    -----
    The values written are the same either way, bit for bit; only the
    speed changes. Streaming suits outputs larger than the last-level cache;
    an output that the next operation reads at once is found in the cache
    when it was written with plain stores, so a smaller one is better
    written that way. Other architectures always use plain stores.
    """
    nbytes = operator.index(nbytes)
    lsm_set_stream_bytes(-1 if nbytes < 0 else min(nbytes, sys.maxsize))


def get_stream_bytes():
    """The output size in bytes from which the NumPy kernels use streaming
    stores (see `set_stream_bytes`); -1 when they never do."""
    return lsm_get_stream_bytes()


cdef inline int _strides3(const real[:, :, :] a, ptrdiff_t *s) except -1:
    cdef int i
    for i in range(3):
        if a.strides[i] % <ptrdiff_t>sizeof(real):
            raise ValueError("array strides must be multiples of the itemsize")
        s[i] = a.strides[i] // <ptrdiff_t>sizeof(real)
    return 0


cdef inline int _strides2(const real[:, :] a, ptrdiff_t *s) except -1:
    cdef int i
    for i in range(2):
        if a.strides[i] % <ptrdiff_t>sizeof(real):
            raise ValueError("array strides must be multiples of the itemsize")
        s[i] = a.strides[i] // <ptrdiff_t>sizeof(real)
    return 0


cdef inline int _same3(const real[:, :, :] a, const real[:, :, :] b) except -1:
    if (a.shape[0] != b.shape[0] or a.shape[1] != b.shape[1]
            or a.shape[2] != b.shape[2]):
        raise ValueError("arrays of the (outer, n, inner) view differ in shape")
    return 0


cdef inline int _check(int rc) except -1:
    if rc != 0:
        raise ValueError(f"lsm kernel rejected its arguments (code {rc})")
    return 0


cdef inline bint _empty3(const real[:, :, :] a):
    return a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0


def logsumexp(const real[:, :, :] x, real[:, :] out):
    """out[o, k] = log(sum_j exp(x[o, j, k]))."""
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t os[2]
    cdef int rc
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[2]:
        raise ValueError("out must have shape (outer, inner)")
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    if x.shape[1] == 0:
        raise ValueError("logsumexp kernel needs n >= 1")
    _strides3(x, xs)
    _strides2(out, os)
    with nogil:
        if real is float:
            rc = lsm_logsumexp_f32(x.shape[0], x.shape[1], x.shape[2],
                                   &x[0, 0, 0], xs, &out[0, 0], os)
        else:
            rc = lsm_logsumexp_f64(x.shape[0], x.shape[1], x.shape[2],
                                   &x[0, 0, 0], xs, &out[0, 0], os)
    _check(rc)


def logsumexp_weighted(const real[:, :, :] x, const real[:, :, :] b,
                       real[:, :] out, real[:, :] sign=None):
    """out = log|sum_j b exp(x)| (nan where negative unless sign is given)."""
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t bs[3]
    cdef ptrdiff_t os[2]
    cdef ptrdiff_t ss[2]
    cdef real *sp = NULL
    cdef int rc
    _same3(x, b)
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[2]:
        raise ValueError("out must have shape (outer, inner)")
    if sign is not None and (sign.shape[0] != out.shape[0]
                             or sign.shape[1] != out.shape[1]):
        raise ValueError("sign must have the shape of out")
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    if x.shape[1] == 0:
        raise ValueError("logsumexp kernel needs n >= 1")
    _strides3(x, xs)
    _strides3(b, bs)
    _strides2(out, os)
    if sign is not None:
        _strides2(sign, ss)
        sp = &sign[0, 0]
    with nogil:
        if real is float:
            rc = lsm_logsumexp_weighted_f32(
                x.shape[0], x.shape[1], x.shape[2], &x[0, 0, 0], xs,
                &b[0, 0, 0], bs, &out[0, 0], os, sp, ss)
        else:
            rc = lsm_logsumexp_weighted_f64(
                x.shape[0], x.shape[1], x.shape[2], &x[0, 0, 0], xs,
                &b[0, 0, 0], bs, &out[0, 0], os, sp, ss)
    _check(rc)


def softmax(const real[:, :, :] x, real[:, :, :] y):
    """y = exp(x - logsumexp(x)) along axis 1."""
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t ys[3]
    cdef int rc
    _same3(x, y)
    if _empty3(x):
        return
    _strides3(x, xs)
    _strides3(y, ys)
    with nogil:
        if real is float:
            rc = lsm_softmax_f32(x.shape[0], x.shape[1], x.shape[2],
                                 &x[0, 0, 0], xs, &y[0, 0, 0], ys)
        else:
            rc = lsm_softmax_f64(x.shape[0], x.shape[1], x.shape[2],
                                 &x[0, 0, 0], xs, &y[0, 0, 0], ys)
    _check(rc)


def log_softmax(const real[:, :, :] x, real[:, :, :] y):
    """y = x - logsumexp(x) along axis 1."""
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t ys[3]
    cdef int rc
    _same3(x, y)
    if _empty3(x):
        return
    _strides3(x, xs)
    _strides3(y, ys)
    with nogil:
        if real is float:
            rc = lsm_log_softmax_f32(x.shape[0], x.shape[1], x.shape[2],
                                     &x[0, 0, 0], xs, &y[0, 0, 0], ys)
        else:
            rc = lsm_log_softmax_f64(x.shape[0], x.shape[1], x.shape[2],
                                     &x[0, 0, 0], xs, &y[0, 0, 0], ys)
    _check(rc)


def log_softmax_jvp(const real[:, :, :] x, const real[:, :, :] v,
                    real[:, :, :] y, real[:, :, :] dy):
    """y = log_softmax(x), dy = v - sum(softmax(x) * v) along axis 1."""
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t vs[3]
    cdef ptrdiff_t ys[3]
    cdef ptrdiff_t ds[3]
    cdef int rc
    _same3(x, v)
    _same3(x, y)
    _same3(x, dy)
    if _empty3(x):
        return
    _strides3(x, xs)
    _strides3(v, vs)
    _strides3(y, ys)
    _strides3(dy, ds)
    with nogil:
        if real is float:
            rc = lsm_log_softmax_jvp_f32(
                x.shape[0], x.shape[1], x.shape[2], &x[0, 0, 0], xs,
                &v[0, 0, 0], vs, &y[0, 0, 0], ys, &dy[0, 0, 0], ds)
        else:
            rc = lsm_log_softmax_jvp_f64(
                x.shape[0], x.shape[1], x.shape[2], &x[0, 0, 0], xs,
                &v[0, 0, 0], vs, &y[0, 0, 0], ys, &dy[0, 0, 0], ds)
    _check(rc)


def log_softmax_vjp(const real[:, :, :] y, const real[:, :, :] g,
                    real[:, :, :] dx):
    """dx = g - exp(y) * sum(g) along axis 1."""
    cdef ptrdiff_t ys[3]
    cdef ptrdiff_t gs[3]
    cdef ptrdiff_t ds[3]
    cdef int rc
    _same3(y, g)
    _same3(y, dx)
    if _empty3(y):
        return
    _strides3(y, ys)
    _strides3(g, gs)
    _strides3(dx, ds)
    with nogil:
        if real is float:
            rc = lsm_log_softmax_vjp_f32(
                y.shape[0], y.shape[1], y.shape[2], &y[0, 0, 0], ys,
                &g[0, 0, 0], gs, &dx[0, 0, 0], ds)
        else:
            rc = lsm_log_softmax_vjp_f64(
                y.shape[0], y.shape[1], y.shape[2], &y[0, 0, 0], ys,
                &g[0, 0, 0], gs, &dx[0, 0, 0], ds)
    _check(rc)


def exp(const real[:] x, real[:] y):
    """y = exp(x) with the library's vectorised exp (used by the tests)."""
    cdef int rc
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y differ in length")
    if x.shape[0] == 0:
        return
    if x.strides[0] % <ptrdiff_t>sizeof(real) or y.strides[0] % <ptrdiff_t>sizeof(real):
        raise ValueError("array strides must be multiples of the itemsize")
    with nogil:
        if real is float:
            rc = lsm_exp_f32(x.shape[0], &x[0], x.strides[0] // <ptrdiff_t>sizeof(real),
                             &y[0], y.strides[0] // <ptrdiff_t>sizeof(real))
        else:
            rc = lsm_exp_f64(x.shape[0], &x[0], x.strides[0] // <ptrdiff_t>sizeof(real),
                             &y[0], y.strides[0] // <ptrdiff_t>sizeof(real))
    _check(rc)


# ----------------------------------------------------------- the fast path
#
# A call on a small array costs more in Python than in its kernel (a
# 10-element softmax through _dispatch and _numpy: 4-6 us, the kernel well
# under 1 us). `fast` does the common case in one step: exact ndarrays of
# native float32/float64, C-contiguous, aligned, not empty, of one shape,
# reduced over one int axis or all; it returns None for anything else, and
# the general path then runs (and raises the errors).

cdef enum:
    OP_LOGSUMEXP = 0
    OP_SOFTMAX = 1
    OP_LOG_SOFTMAX = 2
    OP_JVP = 3
    OP_VJP = 4

LOGSUMEXP, SOFTMAX, LOG_SOFTMAX, JVP, VJP = range(5)

cdef int _PLAIN = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED


cdef inline int _plain_type(object a):
    """The type number of an exact ndarray of native float32 or float64 that
    is C-contiguous, aligned and not empty; -1 for anything else."""
    if not cnp.PyArray_CheckExact(a):
        return -1
    cdef cnp.ndarray arr = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        return -1
    if ((cnp.PyArray_FLAGS(arr) & _PLAIN) != _PLAIN
            or not cnp.PyArray_ISNOTSWAPPED(arr)
            or cnp.PyArray_NDIM(arr) == 0 or cnp.PyArray_SIZE(arr) == 0):
        return -1
    return t


cpdef bint output_at_input(int op, bint f32, ptrdiff_t inner):
    """Whether op's large outputs start at their input's offset from a cache
    line (else on a line): when the kernel writes by column blocks (inner >
    1: the blocks are cut to the input's lines), for the VJP, and for the
    float32 log_softmax and JVP. Rows read on other lines than they are
    written to cost the VJP (two inputs, one output) 1.2-1.85x the time
    (Zen 4, 1 thread, inputs 16 bytes past a line as NumPy allocates them:
    output on a line against at the inputs' offset, (4096, 1024),
    (512, 32000) and (8, 2M), float32 and float64), the float32
    log_softmax and JVP 1.0-1.19x ((65536, 128), (4096, 1024), (8, 2M),
    (4M,)); the float64 log_softmax and JVP were mixed (0.84-1.13x) and
    softmax 0.96-1.07x: those stay on a line."""
    return inner > 1 or op == OP_VJP or (f32 and (op == OP_LOG_SOFTMAX
                                                  or op == OP_JVP))


cdef object _new(cnp.ndarray like, int t, ptrdiff_t inner, int op):
    """An uninitialised array of like's shape and type t for op's output:
    large ones through the output cache, at like's offset from a cache line
    or on one (output_at_input; as _numpy's _empty_like_perm)."""
    if cnp.PyArray_SIZE(like) * cnp.PyArray_ITEMSIZE(like) < _OC_MIN_BYTES:
        return cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(like),
                                     cnp.PyArray_DIMS(like), t)
    cdef object a = like
    at = output_at_input(op, t == cnp.NPY_FLOAT, inner)
    return _oc_empty(a.shape, a.dtype, a if at else None)


def fast(int op, a, v, axis, bint keepdims=False):
    """op (LOGSUMEXP, SOFTMAX, LOG_SOFTMAX, JVP, VJP) of a (and v, the
    second input of the JVP and VJP, else None) over axis (None or an int),
    in the plain case; None when the general path must run. logsumexp gives
    a NumPy scalar for a 0-d result, the JVP a tuple (y, dy)."""
    cdef int t = _plain_type(a)
    if t < 0:
        return None
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef cnp.ndarray w = None
    cdef int nd = cnp.PyArray_NDIM(x)
    cdef cnp.npy_intp *shape = cnp.PyArray_DIMS(x)
    cdef int i, ax
    if op == OP_JVP or op == OP_VJP:
        if _plain_type(v) != t:
            return None
        w = <cnp.ndarray>v
        if cnp.PyArray_NDIM(w) != nd:
            return None
        for i in range(nd):
            if cnp.PyArray_DIMS(w)[i] != shape[i]:
                return None
    # (outer, n, inner)
    cdef ptrdiff_t outer = 1, n, inner = 1
    if axis is None:
        ax = -1
        n = cnp.PyArray_SIZE(x)
    else:
        if type(axis) is not int or not -nd <= axis < nd:
            return None
        ax = axis
        if ax < 0:
            ax += nd
        for i in range(ax):
            outer *= shape[i]
        n = shape[ax]
        for i in range(ax + 1, nd):
            inner *= shape[i]
    cdef ptrdiff_t xs[3]
    cdef ptrdiff_t os[2]
    xs[0] = n * inner
    xs[1] = inner
    xs[2] = 1
    os[0] = inner
    os[1] = 1
    cdef int rc = 0
    cdef cnp.npy_intp rdims[64]  # NPY_MAXDIMS
    cdef int rnd = 0
    cdef cnp.ndarray y, dy
    cdef bint f32 = t == cnp.NPY_FLOAT
    cdef void *px = cnp.PyArray_DATA(x)
    cdef void *pw = NULL if w is None else cnp.PyArray_DATA(w)
    cdef void *py
    cdef void *pd
    if op == OP_LOGSUMEXP:
        for i in range(nd):
            if i == ax or ax < 0:
                if keepdims:
                    rdims[rnd] = 1
                    rnd += 1
            else:
                rdims[rnd] = shape[i]
                rnd += 1
        y = <cnp.ndarray>cnp.PyArray_SimpleNew(rnd, rdims, t)
        py = cnp.PyArray_DATA(y)
        with nogil:
            if f32:
                rc = lsm_logsumexp_f32(outer, n, inner, <const float *>px, xs,
                                       <float *>py, os)
            else:
                rc = lsm_logsumexp_f64(outer, n, inner, <const double *>px, xs,
                                       <double *>py, os)
        _check(rc)
        if rnd == 0:  # a NumPy scalar, as SciPy gives
            Py_INCREF(y)  # PyArray_Return steals a reference
            return cnp.PyArray_Return(y)
        return y
    y = <cnp.ndarray>_new(x, t, inner, op)
    py = cnp.PyArray_DATA(y)
    if op == OP_SOFTMAX:
        with nogil:
            if f32:
                rc = lsm_softmax_f32(outer, n, inner, <const float *>px, xs,
                                     <float *>py, xs)
            else:
                rc = lsm_softmax_f64(outer, n, inner, <const double *>px, xs,
                                     <double *>py, xs)
    elif op == OP_LOG_SOFTMAX:
        with nogil:
            if f32:
                rc = lsm_log_softmax_f32(outer, n, inner, <const float *>px,
                                         xs, <float *>py, xs)
            else:
                rc = lsm_log_softmax_f64(outer, n, inner, <const double *>px,
                                         xs, <double *>py, xs)
    elif op == OP_VJP:
        with nogil:
            if f32:
                rc = lsm_log_softmax_vjp_f32(outer, n, inner, <const float *>px,
                                             xs, <const float *>pw, xs,
                                             <float *>py, xs)
            else:
                rc = lsm_log_softmax_vjp_f64(outer, n, inner,
                                             <const double *>px, xs,
                                             <const double *>pw, xs,
                                             <double *>py, xs)
    elif op == OP_JVP:
        dy = <cnp.ndarray>_new(x, t, inner, op)
        pd = cnp.PyArray_DATA(dy)
        with nogil:
            if f32:
                rc = lsm_log_softmax_jvp_f32(outer, n, inner, <const float *>px,
                                             xs, <const float *>pw, xs,
                                             <float *>py, xs, <float *>pd, xs)
            else:
                rc = lsm_log_softmax_jvp_f64(outer, n, inner,
                                             <const double *>px, xs,
                                             <const double *>pw, xs,
                                             <double *>py, xs, <double *>pd, xs)
        _check(rc)
        return (y, dy)
    else:
        raise ValueError(f"fast: unknown op {op}")
    _check(rc)
    return y
