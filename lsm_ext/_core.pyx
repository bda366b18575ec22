# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin Cython skin over the C kernels of src_c/.

Each function takes typed memoryviews of the canonical (outer, n, inner)
view (read-only inputs work), converts byte strides to element strides and
calls the kernel with the GIL released. Axis handling, dtype promotion,
allocation and empty inputs live in ``_numpy.py``.
"""

from libc.stddef cimport ptrdiff_t

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
