/*
 * lsm_threads.c -- how many threads the kernels use, and from what output
 * size they stream their stores (compiled once, shared by every
 * instruction-set build of the kernels).
 *
 * With OpenMP, a call uses at most lsm_get_num_threads() threads: the count
 * set by lsm_set_num_threads, or (0, the default) OpenMP's own setting,
 * omp_get_max_threads(), which follows OMP_NUM_THREADS and threadpoolctl.
 * Built without OpenMP, every call runs on the calling thread; so does every
 * call in a child process created by fork() (see lsm_mark_forked).
 */
#include "lsm_threads.h"
#include "lsm.h"

#include <stdint.h>

#if !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
static _Atomic int lsm_nthreads = 0;
static _Atomic ptrdiff_t lsm_stream_bytes = LSM_STREAM_BYTES_DEFAULT;
#define LSM_LOAD(v) atomic_load_explicit(&(v), memory_order_relaxed)
#define LSM_STORE(v, x) atomic_store_explicit(&(v), (x), memory_order_relaxed)
#else
static volatile int lsm_nthreads = 0;
static volatile ptrdiff_t lsm_stream_bytes = LSM_STREAM_BYTES_DEFAULT;
#define LSM_LOAD(v) (v)
#define LSM_STORE(v, x) ((v) = (x))
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* GNU OpenMP's thread pool does not survive fork(): a child process that
 * enters a parallel region after its parent used the pool hangs. So a
 * child (multiprocessing's "fork" start method, say) runs every call on
 * its calling thread: pthread_atfork marks it at the fork. */
#if defined(_OPENMP) && defined(__unix__) &&                                   \
    (defined(__GNUC__) || defined(__clang__))
#include <pthread.h>
static volatile int lsm_forked = 0;
static void lsm_mark_forked(void) { lsm_forked = 1; }
__attribute__((constructor)) static void lsm_threads_init(void) {
    pthread_atfork(NULL, NULL, lsm_mark_forked);
}
#define LSM_FORKED() (lsm_forked != 0)
#else
#define LSM_FORKED() 0
#endif

void lsm_set_stream_bytes(ptrdiff_t nbytes) {
    LSM_STORE(lsm_stream_bytes, nbytes < 0 ? PTRDIFF_MAX : nbytes);
}

ptrdiff_t lsm_get_stream_bytes(void) {
    const ptrdiff_t b = LSM_LOAD(lsm_stream_bytes);
    return b == PTRDIFF_MAX ? -1 : b;
}

int lsm_stream_(ptrdiff_t nbytes) {
    return nbytes >= LSM_LOAD(lsm_stream_bytes);
}

void lsm_set_num_threads(int n) { LSM_STORE(lsm_nthreads, n > 0 ? n : 0); }

int lsm_get_num_threads(void) {
#ifdef _OPENMP
    if (LSM_FORKED()) {
        return 1;
    }
    int n = LSM_LOAD(lsm_nthreads);
    return n > 0 ? n : omp_get_max_threads();
#else
    return 1;
#endif
}

int lsm_threads_for_(ptrdiff_t items, double work) {
#ifdef _OPENMP
    if (items < 2 || work < 2.0 * LSM_MIN_WORK) {
        return 1; /* not worth waking a second thread */
    }
    double most = work / LSM_MIN_WORK;
    int n = lsm_get_num_threads();
    n = (double)n > most ? (int)most : n;
    n = (ptrdiff_t)n > items ? (int)items : n;
    return n < 1 ? 1 : n;
#else
    (void)items;
    (void)work;
    return 1;
#endif
}

void lsm_share_(ptrdiff_t items, ptrdiff_t unit, ptrdiff_t *lo, ptrdiff_t *hi) {
#ifdef _OPENMP
    const ptrdiff_t t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
    const ptrdiff_t t = 0, nt = 1;
#endif
    /* whole units, as evenly as they go: thread t gets units [u0, u1) */
    const ptrdiff_t units = (items + unit - 1) / unit;
    const ptrdiff_t u0 = units * t / nt, u1 = units * (t + 1) / nt;
    *lo = u0 * unit < items ? u0 * unit : items;
    *hi = u1 * unit < items ? u1 * unit : items;
}
