# cython: language_level=3
"""Output buffers of lsm_ext's NumPy path, allocated through a small cache
(see _outcache.h): a loop over arrays of one shape reuses the blocks of the
outputs it has dropped instead of paying the operating system's page faults
for fresh ones. Outputs of 1 MiB or more start on a page boundary, or at
their input's offset from a 64-byte line past one (see _outcache.h)."""

import os

import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint64_t, uintptr_t

cnp.import_array()

cdef extern from "_outcache.h":
    size_t LSM_OC_MIN
    int lsm_oc_init(size_t limit) except -1
    size_t lsm_oc_set_limit(size_t limit) nogil
    void lsm_oc_stats(size_t *limit, size_t *held, uint64_t *hits,
                      uint64_t *misses) nogil
    int LSM_OC_LINE, LSM_OC_STEP, LSM_OC_OFFSETS
    object lsm_oc_handler_capsule(int i)
    object PyDataMem_SetHandler(object handler)

DEFAULT_LIMIT_MB = 256
MIN_BYTES = LSM_OC_MIN  # smaller outputs are plain np.empty


def _limit_from_env():
    v = os.environ.get("LSM_EXT_OUTPUT_CACHE_MB", "")
    if not v.strip():
        return DEFAULT_LIMIT_MB << 20
    try:
        mb = float(v)
    except ValueError:
        raise ValueError(
            f"LSM_EXT_OUTPUT_CACHE_MB must be a number of MiB, not {v!r}") from None
    if not mb >= 0:
        raise ValueError(f"LSM_EXT_OUTPUT_CACHE_MB must be >= 0, not {v!r}")
    return int(mb * (1 << 20))


lsm_oc_init(_limit_from_env())
cdef list _handlers = [lsm_oc_handler_capsule(i) for i in range(LSM_OC_OFFSETS)]


def empty(shape, dtype, like=None):
    """np.empty(shape, dtype) (C order); when it is large, through the cache,
    starting on a 64-byte boundary, or at the same offset from one as the
    data of the ndarray `like` (when its offset is a multiple of 4 bytes)."""
    cdef object a, old
    cdef size_t off = 0
    dt = np.dtype(dtype)
    cdef size_t nbytes = dt.itemsize
    for s in (shape if isinstance(shape, tuple) else (shape,)):
        nbytes *= <size_t>s
    if nbytes < LSM_OC_MIN:
        return np.empty(shape, dt)
    if like is not None:
        off = <size_t>(<uintptr_t>cnp.PyArray_DATA(like) % LSM_OC_LINE)
        if off % LSM_OC_STEP:
            off = 0
    old = PyDataMem_SetHandler(_handlers[off // LSM_OC_STEP])
    try:
        a = np.empty(shape, dt)
    finally:
        PyDataMem_SetHandler(old)
    return a


def set_output_cache(nbytes):
    """Set the most bytes of dropped outputs that lsm_ext keeps for reuse.

    Outputs of at least 1 MiB are allocated through a small cache (8 blocks
    at most): when such an output is freed, its memory is kept, up to
    `nbytes` in all (the oldest blocks go first), and handed back to the next
    output of the same size, which then costs no page faults. ``0`` turns the
    cache off and frees what it holds. Outputs of 1 MiB or more start on a
    page boundary or at their input's offset from a 64-byte line past one,
    whichever the kernels write faster, either way. The default is 256 MiB,
    or the environment variable ``LSM_EXT_OUTPUT_CACHE_MB`` read at import.

    Returns the previous limit in bytes.
    """
    n = int(nbytes)
    if n < 0:
        raise ValueError(f"nbytes must be >= 0, not {nbytes!r}")
    return lsm_oc_set_limit(n)


def output_cache_info():
    """The output cache's state: a dict with the limit and the bytes held (in
    bytes), and the hits and misses of allocations of at least 1 MiB."""
    cdef size_t limit, held
    cdef uint64_t hits, misses
    lsm_oc_stats(&limit, &held, &hits, &misses)
    return {"limit": limit, "held": held, "hits": hits, "misses": misses}
