/*
 * lsm_dispatch.c -- run-time choice of the instruction-set level (x86-64).
 *
 * lsm_kernels.c is compiled three times: for baseline x86-64 (_base), for
 * x86-64-v3 (AVX2 + FMA, _avx2) and for x86-64-v4 (AVX-512, _avx512). The
 * public lsm_* functions defined here forward to the best level the CPU
 * supports, chosen once, at first use. LSM_EXT_ISA=baseline|avx2|avx512
 * in the environment asks for a level (never above what the CPU has).
 */
#include "lsm.h"

#include <stdlib.h>
#include <string.h>

LSM_DECLARE(float, f32, _base)
LSM_DECLARE(double, f64, _base)
LSM_DECLARE(float, f32, _avx2)
LSM_DECLARE(double, f64, _avx2)
LSM_DECLARE(float, f32, _avx512)
LSM_DECLARE(double, f64, _avx512)

/* One entry per op; its members have the signatures declared in lsm.h. */
#define LSM_TABLE_MEMBERS(T, SFX)                                              \
    int (*logsumexp_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,         \
                           const ptrdiff_t *, T *, const ptrdiff_t *);         \
    int (*logsumexp_weighted_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t,           \
                                    const T *, const ptrdiff_t *, const T *,   \
                                    const ptrdiff_t *, T *, const ptrdiff_t *, \
                                    T *, const ptrdiff_t *);                   \
    int (*softmax_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,           \
                         const ptrdiff_t *, T *, const ptrdiff_t *);           \
    int (*log_softmax_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,       \
                             const ptrdiff_t *, T *, const ptrdiff_t *);       \
    int (*log_softmax_jvp_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,   \
                                 const ptrdiff_t *, const T *,                 \
                                 const ptrdiff_t *, T *, const ptrdiff_t *,    \
                                 T *, const ptrdiff_t *);                      \
    int (*log_softmax_vjp_##SFX)(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,   \
                                 const ptrdiff_t *, const T *,                 \
                                 const ptrdiff_t *, T *, const ptrdiff_t *);   \
    int (*exp_##SFX)(ptrdiff_t, const T *, ptrdiff_t, T *, ptrdiff_t);

typedef struct {
    const char *name;
    LSM_TABLE_MEMBERS(float, f32)
    LSM_TABLE_MEMBERS(double, f64)
} lsm_table;

#define LSM_TABLE_INIT(SFX, ISA)                                               \
    lsm_logsumexp_##SFX##ISA, lsm_logsumexp_weighted_##SFX##ISA,               \
        lsm_softmax_##SFX##ISA, lsm_log_softmax_##SFX##ISA,                    \
        lsm_log_softmax_jvp_##SFX##ISA, lsm_log_softmax_vjp_##SFX##ISA,        \
        lsm_exp_##SFX##ISA

static const lsm_table lsm_tables[3] = {
    {"baseline", LSM_TABLE_INIT(f32, _base), LSM_TABLE_INIT(f64, _base)},
    {"avx2", LSM_TABLE_INIT(f32, _avx2), LSM_TABLE_INIT(f64, _avx2)},
    {"avx512", LSM_TABLE_INIT(f32, _avx512), LSM_TABLE_INIT(f64, _avx512)},
};

static int lsm_cpu_level(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) {
        return 2;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("bmi2")) {
        return 1;
    }
#endif
    return 0;
}

static int lsm_choose_level(void) {
    int level = lsm_cpu_level();
    const char *want = getenv("LSM_EXT_ISA");
    if (want != NULL) {
        for (int i = 0; i < 3; i++) {
            if (strcmp(want, lsm_tables[i].name) == 0 && i < level) {
                level = i;
            }
        }
    }
    return level;
}

/* -1 until chosen; a race between first calls only stores the same value. */
#if !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
static _Atomic int lsm_level = -1;
static const lsm_table *lsm_active(void) {
    int level = atomic_load_explicit(&lsm_level, memory_order_relaxed);
    if (level < 0) {
        level = lsm_choose_level();
        atomic_store_explicit(&lsm_level, level, memory_order_relaxed);
    }
    return &lsm_tables[level];
}
#else
static const lsm_table *lsm_active(void) {
    static volatile int level = -1;
    if (level < 0) {
        level = lsm_choose_level();
    }
    return &lsm_tables[level];
}
#endif

const char *lsm_isa(void) { return lsm_active()->name; }

#define LSM_FORWARD(T, SFX)                                                    \
    int lsm_logsumexp_##SFX(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,     \
                            const T *x, const ptrdiff_t xs[3], T *out,         \
                            const ptrdiff_t os[2]) {                           \
        return lsm_active()->logsumexp_##SFX(outer, n, inner, x, xs, out, os); \
    }                                                                          \
    int lsm_logsumexp_weighted_##SFX(                                          \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], const T *b, const ptrdiff_t bs[3], T *out,      \
        const ptrdiff_t os[2], T *sign, const ptrdiff_t ss[2]) {               \
        return lsm_active()->logsumexp_weighted_##SFX(                         \
            outer, n, inner, x, xs, b, bs, out, os, sign, ss);                 \
    }                                                                          \
    int lsm_softmax_##SFX(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,       \
                          const T *x, const ptrdiff_t xs[3], T *y,             \
                          const ptrdiff_t ys[3]) {                             \
        return lsm_active()->softmax_##SFX(outer, n, inner, x, xs, y, ys);     \
    }                                                                          \
    int lsm_log_softmax_##SFX(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,   \
                              const T *x, const ptrdiff_t xs[3], T *y,         \
                              const ptrdiff_t ys[3]) {                         \
        return lsm_active()->log_softmax_##SFX(outer, n, inner, x, xs, y, ys); \
    }                                                                          \
    int lsm_log_softmax_jvp_##SFX(                                             \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,             \
        const ptrdiff_t xs[3], const T *v, const ptrdiff_t vs[3], T *y,        \
        const ptrdiff_t ys[3], T *dy, const ptrdiff_t dys[3]) {                \
        return lsm_active()->log_softmax_jvp_##SFX(outer, n, inner, x, xs, v,  \
                                                   vs, y, ys, dy, dys);        \
    }                                                                          \
    int lsm_log_softmax_vjp_##SFX(                                             \
        ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *y,             \
        const ptrdiff_t ys[3], const T *g, const ptrdiff_t gs[3], T *dx,       \
        const ptrdiff_t dxs[3]) {                                              \
        return lsm_active()->log_softmax_vjp_##SFX(outer, n, inner, y, ys, g,  \
                                                   gs, dx, dxs);               \
    }                                                                          \
    int lsm_exp_##SFX(ptrdiff_t n, const T *x, ptrdiff_t xs, T *y,             \
                      ptrdiff_t ys) {                                          \
        return lsm_active()->exp_##SFX(n, x, xs, y, ys);                       \
    }

LSM_FORWARD(float, f32)
LSM_FORWARD(double, f64)
