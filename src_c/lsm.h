/*
 * lsm.h -- public C API of the lsm_ext kernels.
 *
 * Plain C11, no Python. Every kernel works on a strided 3-D view
 * (outer, n, inner) of an array and reduces over the middle axis `n`:
 *
 *     element (o, j, k) of x lives at  x[o * xs[0] + j * xs[1] + k * xs[2]]
 *
 * Strides are in elements (not bytes) and may be zero or negative. Results
 * of reductions (logsumexp) are 2-D views (outer, inner) with strides
 * os[0], os[1]; elementwise results (softmax, ...) are 3-D views like x.
 * Any single axis of an N-d array maps onto this view; the caller merges
 * several axes into one.
 *
 * All kernels are numerically stable (max shift, chunked online max-and-sum,
 * one exp per element in the reduction pass) and follow IEEE semantics for
 * inf and nan as scipy.special does. Outputs must not overlap inputs unless
 * they alias them exactly (same pointer and strides, elementwise kernels).
 *
 * Return value: 0 on success, LSM_EINVAL when a length is negative or a
 * required pointer is NULL.
 */
#ifndef LSM_H
#define LSM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LSM_VERSION_MAJOR 0
#define LSM_VERSION_MINOR 1
#define LSM_VERSION_PATCH 0

#define LSM_OK 0
#define LSM_EINVAL (-1)

/* The kernels, one per op and dtype (T = float: _f32, T = double: _f64). */
#define LSM_DECLARE(T, SFX, ISA)                                               \
    /* out[o, k] = log(sum_j exp(x[o, j, k])) */                               \
    int lsm_logsumexp_##SFX##ISA(                                              \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], T *out, const ptrdiff_t os[2]);                 \
    /* out[o, k] = log|sum_j b[o, j, k] exp(x[o, j, k])|; terms with b == 0    \
     * are ignored even where x is inf or nan. sign (may be NULL) receives     \
     * the sign of the sum (+1, -1, 0 or nan); when sign is NULL a negative    \
     * sum gives nan, as scipy.special.logsumexp does. */                      \
    int lsm_logsumexp_weighted_##SFX##ISA(                                     \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], const T *b, const ptrdiff_t bs[3], T *out,      \
        const ptrdiff_t os[2], T *sign, const ptrdiff_t ss[2]);                \
    /* y = exp(x - logsumexp(x)) along n */                                    \
    int lsm_softmax_##SFX##ISA(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,  \
                               const T *x, const ptrdiff_t xs[3], T *y,        \
                               const ptrdiff_t ys[3]);                         \
    /* y = x - logsumexp(x) along n (the max entry keeps full accuracy) */     \
    int lsm_log_softmax_##SFX##ISA(                                            \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], T *y, const ptrdiff_t ys[3]);                   \
    /* y = log_softmax(x), dy = v - sum_j softmax(x) * v, in one kernel */     \
    int lsm_log_softmax_jvp_##SFX##ISA(                                        \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], const T *v, const ptrdiff_t vs[3], T *y,        \
        const ptrdiff_t ys[3], T *dy, const ptrdiff_t dys[3]);                 \
    /* dx = g - exp(y) * sum_j g, y being log_softmax output */                \
    int lsm_log_softmax_vjp_##SFX##ISA(                                        \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *y,             \
        const ptrdiff_t ys[3], const T *g, const ptrdiff_t gs[3], T *dx,       \
        const ptrdiff_t dxs[3]);                                               \
    /* y = exp(x) over a strided vector, with the library's vectorised exp */  \
    int lsm_exp_##SFX##ISA(ptrdiff_t n, const T *x, ptrdiff_t xs, T *y,        \
                           ptrdiff_t ys);

LSM_DECLARE(float, f32, )
LSM_DECLARE(double, f64, )

/* Name of the instruction-set level the kernels run with: "baseline",
 * "avx2" or "avx512" on x86-64 builds with run-time dispatch (chosen from
 * the CPU at first use; the environment variable LSM_EXT_ISA forces a lower
 * level), "generic" when the library was built without dispatch. */
const char *lsm_isa(void);

/* Threads: a kernel call splits its work (rows, column blocks) among at
 * most lsm_get_num_threads() threads, fewer for small arrays; results are
 * the same, bit for bit, whatever the count. lsm_set_num_threads(n > 0)
 * sets the count for every later call; 0 (the default) follows OpenMP's
 * setting (OMP_NUM_THREADS, omp_set_num_threads, threadpoolctl). Built
 * without OpenMP, or in a child process made by fork() (GNU OpenMP's pool
 * does not survive it): always 1. */
void lsm_set_num_threads(int n);
int lsm_get_num_threads(void);

/* Streaming stores: a call whose output (each output array) is at least
 * lsm_get_stream_bytes() bytes writes it with non-temporal stores, which
 * send it to memory without first reading it into the cache (a copy then
 * moves two thirds of the bytes of one with plain stores) and without
 * displacing the cache, on x86-64; elsewhere the stores are plain. The
 * values written are the same either way. The default, 8 MiB, leaves
 * outputs that fit in a typical L3 beside their input where the next
 * operation finds them. lsm_set_stream_bytes(nbytes) sets the threshold
 * for every later call: 0 streams every output, a negative value none. */
void lsm_set_stream_bytes(ptrdiff_t nbytes);
ptrdiff_t lsm_get_stream_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* LSM_H */
