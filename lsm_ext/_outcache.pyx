# cython: language_level=3
"""Output buffers of lsm_ext's NumPy path, allocated through a small cache
(see _outcache.h): a loop over arrays of one shape reuses the blocks of the
outputs it has dropped instead of paying the operating system's page faults
for fresh ones. Outputs of 1 MiB or more start on a 64-byte boundary."""

import os

import numpy as np

cimport numpy as cnp
from libc.stdint cimport uint64_t

cnp.import_array()

cdef extern from "_outcache.h":
    size_t LSM_OC_MIN
    int lsm_oc_init(size_t limit) except -1
    size_t lsm_oc_set_limit(size_t limit) nogil
    void lsm_oc_stats(size_t *held, uint64_t *hits, uint64_t *misses) nogil
    object lsm_oc_capsule "PyCapsule_New"(void *p, const char *name, void *d)
    void *lsm_oc_handler_ptr "(void *)&lsm_oc_handler"
    object PyDataMem_SetHandler(object handler)

DEFAULT_LIMIT_MB = 256


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


cdef size_t _limit = _limit_from_env()
lsm_oc_init(_limit)
cdef object _handler = lsm_oc_capsule(lsm_oc_handler_ptr, b"mem_handler", NULL)


def empty(shape, dtype):
    """np.empty(shape, dtype) (C order); when it is large, 64-byte aligned and
    through the cache."""
    cdef object a, old
    dt = np.dtype(dtype)
    cdef size_t nbytes = dt.itemsize
    for s in (shape if isinstance(shape, tuple) else (shape,)):
        nbytes *= <size_t>s
    if nbytes < LSM_OC_MIN:
        return np.empty(shape, dt)
    old = PyDataMem_SetHandler(_handler)
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
    64-byte boundary either way. The default is 256 MiB, or the
    environment variable ``LSM_EXT_OUTPUT_CACHE_MB`` read at import.

    Returns the previous limit in bytes.
    """
    global _limit
    n = int(nbytes)
    if n < 0:
        raise ValueError(f"nbytes must be >= 0, not {nbytes!r}")
    _limit = n
    return lsm_oc_set_limit(n)


def output_cache_info():
    """The output cache's state: a dict with the limit and the bytes held (in
    bytes), and the hits and misses of allocations of at least 1 MiB."""
    cdef size_t held
    cdef uint64_t hits, misses
    lsm_oc_stats(&held, &hits, &misses)
    return {"limit": _limit, "held": held, "hits": hits, "misses": misses}
