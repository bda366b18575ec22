/*
 * lsm_threads.h -- internal: how the kernels share their work among threads.
 * Not part of the public API (see lsm.h for lsm_set_num_threads).
 */
#ifndef LSM_THREADS_H
#define LSM_THREADS_H

#include <stddef.h>

/* Least work (elements read) that a thread is given: below it, waking a
 * thread costs more than it saves. */
#define LSM_MIN_WORK 32768.0

/* Threads to run `items` independent work items of `work` elements in all
 * with: 1 without OpenMP, else at most lsm_get_num_threads(), at most one
 * per item and per LSM_MIN_WORK elements. */
int lsm_threads_for_(ptrdiff_t items, double work);

/* Inside a parallel region: this thread's share [*lo, *hi) of `items`
 * items, cut at multiples of `unit` (whole units per thread, contiguous,
 * in thread order). Outside one (or without OpenMP): all of them. */
void lsm_share_(ptrdiff_t items, ptrdiff_t unit, ptrdiff_t *lo, ptrdiff_t *hi);

/* The default of lsm_set_stream_bytes. */
#define LSM_STREAM_BYTES_DEFAULT ((ptrdiff_t)8 << 20)

/* Whether an output of nbytes bytes is written with streaming stores (at
 * least lsm_get_stream_bytes(), see lsm.h). */
int lsm_stream_(ptrdiff_t nbytes);

#endif /* LSM_THREADS_H */
