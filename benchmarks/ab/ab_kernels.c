/*
 * ab_kernels.c -- A/B timing of two builds of the C kernels in one process.
 *
 * On a shared, noisy machine, times taken in separate runs move by 10-45%
 * within minutes; calls of the two builds alternated round by round, and
 * the median of the per-round ratios, resolve differences of 2-3%. The two
 * builds are linked side by side under different symbol suffixes
 * (-DLSM_ISA_SFX=_old / _new); ab_kernels.sh builds them from a git
 * revision and the working tree.
 *
 * usage: ab_kernels OP DTYPE ROWS N [ROUNDS]
 *   OP: lse softmax log_softmax jvp vjp; DTYPE: f32 f64
 *   ROWS x N, C order, over the last axis (AB_AXIS0=1: over axis 0)
 *   AB_COLD=1: read 64 MiB before each call, so its arrays start in memory
 *   (AB_COLD set to anything, 0 included, means cold: leave it unset for
 *   warm runs)
 *   (AB_COLD_MB=m: m MiB; twice the last-level cache for a cache as large
 *   as the arrays, e.g. 520 on a 260 MB L3)
 * Runs on one thread (lsm_set_num_threads(1)); AB_THREADS=n to change.
 * AB_STREAM=bytes: lsm_set_stream_bytes(bytes) for both builds (0 streams
 * every output, -1 none).
 * The arrays are 2 MiB-aligned and, on Linux, advised as huge pages, as
 * NumPy advises its large arrays (AB_HUGE=0: plain 4 KiB pages).
 * AB_OFFSET=bytes: x, v, y and dy start that many bytes (0-63, a multiple
 * of the element size) past their 2 MiB boundary; NumPy's large arrays
 * start 16 bytes past a page (glibc's mmap'd chunks), hence AB_OFFSET=16.
 * AB_OFFSET_NEW=bytes: the new build gets arrays of its own (the same
 * values) at that offset, the old build keeps AB_OFFSET's: build both from
 * one revision (ab_kernels.sh HEAD with a clean tree) to time one build at
 * two alignments side by side.
 * After the timing, one call of each build on the same inputs: the line ends
 * with "OUTPUTS DIFFER" when their outputs are not the same bits.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsm.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* n bytes, 2 MiB-aligned, advised as transparent huge pages unless
 * AB_HUGE=0 (NumPy does the same for arrays of 4 MiB and more). */
static void *alloc_big(size_t n) {
    const size_t A = (size_t)2 << 20, size = (n + A - 1) / A * A;
    void *p = aligned_alloc(A, size);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const char *h = getenv("AB_HUGE");
    if (p && !(h && strcmp(h, "0") == 0)) {
        madvise(p, size, MADV_HUGEPAGE);
    }
#endif
    return p;
}

/* The byte offset from the environment variable `name` (0 when unset) into
 * *off; 1 (after a message) when it is not 0-63 and a multiple of es. */
static int env_offset(const char *name, size_t es, size_t *off) {
    const char *s = getenv(name);
    *off = s ? (size_t)atoi(s) : 0;
    if (*off >= 64 || *off % es) {
        fprintf(stderr, "%s: 0-63, a multiple of the element size\n", name);
        return 1;
    }
    return 0;
}

/* x, v, y and dy (a[0..3]) of `bytes` each, `off` bytes past a 2 MiB
 * boundary (alloc_big); 1 when out of memory. */
static int alloc_arrays(char *a[4], size_t bytes, size_t off) {
    for (int k = 0; k < 4; k++) {
        a[k] = alloc_big(bytes + 64);
        if (!a[k]) {
            return 1;
        }
        a[k] += off;
    }
    return 0;
}

#define DECLARE(T, S, V)                                                       \
    int lsm_logsumexp_##S##V(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,       \
                             const ptrdiff_t *, T *, const ptrdiff_t *);       \
    int lsm_softmax_##S##V(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,         \
                           const ptrdiff_t *, T *, const ptrdiff_t *);         \
    int lsm_log_softmax_##S##V(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *,     \
                               const ptrdiff_t *, T *, const ptrdiff_t *);     \
    int lsm_log_softmax_jvp_##S##V(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *, \
                                   const ptrdiff_t *, const T *,               \
                                   const ptrdiff_t *, T *, const ptrdiff_t *,  \
                                   T *, const ptrdiff_t *);                    \
    int lsm_log_softmax_vjp_##S##V(ptrdiff_t, ptrdiff_t, ptrdiff_t, const T *, \
                                   const ptrdiff_t *, const T *,               \
                                   const ptrdiff_t *, T *, const ptrdiff_t *);
DECLARE(float, f32, _old)
DECLARE(float, f32, _new)
DECLARE(double, f64, _old)
DECLARE(double, f64, _new)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* one call of op by build w (0 old, 1 new) */
#define CALL(T, S)                                                             \
    static void call_##S(int op, int w, ptrdiff_t o, ptrdiff_t n, ptrdiff_t i, \
                         const T *x, const T *v, const ptrdiff_t *xs, T *y,    \
                         T *dy, T *out, const ptrdiff_t *os) {                 \
        switch (op) {                                                          \
        case 0:                                                                \
            (w ? lsm_logsumexp_##S##_new                                       \
               : lsm_logsumexp_##S##_old)(o, n, i, x, xs, out, os);            \
            break;                                                             \
        case 1:                                                                \
            (w ? lsm_softmax_##S##_new : lsm_softmax_##S##_old)(o, n, i, x,    \
                                                                xs, y, xs);    \
            break;                                                             \
        case 2:                                                                \
            (w ? lsm_log_softmax_##S##_new                                     \
               : lsm_log_softmax_##S##_old)(o, n, i, x, xs, y, xs);            \
            break;                                                             \
        case 3:                                                                \
            (w ? lsm_log_softmax_jvp_##S##_new                                 \
               : lsm_log_softmax_jvp_##S##_old)(o, n, i, x, xs, v, xs, y, xs,  \
                                                dy, xs);                       \
            break;                                                             \
        default:                                                               \
            (w ? lsm_log_softmax_vjp_##S##_new                                 \
               : lsm_log_softmax_vjp_##S##_old)(o, n, i, x, xs, v, xs, y, xs); \
        }                                                                      \
    }
CALL(float, f32)
CALL(double, f64)

/* call_f64 or call_f32 (dbl) on the arrays as bytes */
static void call(int dbl, int op, int w, ptrdiff_t o, ptrdiff_t n, ptrdiff_t i,
                 char *x, char *v, const ptrdiff_t *xs, char *y, char *dy,
                 char *out, const ptrdiff_t *os) {
    if (dbl) {
        call_f64(op, w, o, n, i, (double *)x, (double *)v, xs, (double *)y,
                 (double *)dy, (double *)out, os);
    } else {
        call_f32(op, w, o, n, i, (float *)x, (float *)v, xs, (float *)y,
                 (float *)dy, (float *)out, os);
    }
}

int main(int argc, char **argv) {
    static const char *ops[] = {"lse", "softmax", "log_softmax", "jvp", "vjp"};
    if (argc < 5) {
        fprintf(stderr, "usage: %s OP DTYPE ROWS N [ROUNDS]\n", argv[0]);
        return 2;
    }
    int op = -1;
    for (int k = 0; k < 5; k++) {
        op = strcmp(argv[1], ops[k]) == 0 ? k : op;
    }
    const int dbl = strcmp(argv[2], "f64") == 0;
    const ptrdiff_t rows = atol(argv[3]), n = atol(argv[4]);
    const int R = argc > 5 ? atoi(argv[5]) : 21;
    if (op < 0 || rows < 1 || n < 1 || R < 1 || R > 10000) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    const ptrdiff_t N = rows * n;
    const size_t es = dbl ? sizeof(double) : sizeof(float);
    /* arrays[w]: x, v, y and dy of build w (0 old, 1 new); the new build's
     * are the old's, or copies at AB_OFFSET_NEW */
    size_t off, off2;
    if (env_offset("AB_OFFSET", es, &off) ||
        env_offset("AB_OFFSET_NEW", es, &off2)) {
        return 2;
    }
    char *arrays[2][4];
    const int own = getenv("AB_OFFSET_NEW") != NULL;
    int oom = alloc_arrays(arrays[0], (size_t)N * es, off);
    if (own) {
        oom |= alloc_arrays(arrays[1], (size_t)N * es, off2);
    } else {
        memcpy(arrays[1], arrays[0], sizeof arrays[0]);
    }
    char *x = arrays[0][0], *v = arrays[0][1];
    char *y = arrays[0][2], *dy = arrays[0][3];
    char *out = malloc((size_t)(rows > n ? rows : n) * es);
    const char *cm = getenv("AB_COLD_MB");
    const size_t EB = (size_t)(cm && atoi(cm) > 0 ? atoi(cm) : 64) << 20;
    char *ev = alloc_big(EB);
    double *t0 = malloc(sizeof(double) * (size_t)R);
    double *t1 = malloc(sizeof(double) * (size_t)R);
    double *ratio = malloc(sizeof(double) * (size_t)R);
    if (oom || !out || !ev || !t0 || !t1 || !ratio) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(ev, 1, EB);
    srand(1);
    for (ptrdiff_t k = 0; k < N; k++) { /* uniform in [-4, 4) */
        const double a = 8.0 * rand() / ((double)RAND_MAX + 1) - 4.0;
        const double b = 2.0 * rand() / ((double)RAND_MAX + 1) - 1.0;
        if (dbl) {
            ((double *)x)[k] = a;
            ((double *)v)[k] = b;
        } else {
            ((float *)x)[k] = (float)a;
            ((float *)v)[k] = (float)b;
        }
    }
    if (own) {
        memcpy(arrays[1][0], x, (size_t)N * es);
        memcpy(arrays[1][1], v, (size_t)N * es);
    }
    /* (outer, n, inner) view: rows of n, or (AB_AXIS0) n columns of rows */
    ptrdiff_t o = rows, nn = n, in = 1, xs[3] = {n, 1, 1}, os[2] = {1, 1};
    if (getenv("AB_AXIS0")) {
        o = 1;
        nn = rows;
        in = n;
        xs[0] = N;
        xs[1] = n;
        os[0] = n;
    }
    const char *th = getenv("AB_THREADS");
    lsm_set_num_threads(th ? atoi(th) : 1);
    const char *sb = getenv("AB_STREAM");
    if (sb) {
        lsm_set_stream_bytes((ptrdiff_t)atoll(sb));
    }
    const int cold = getenv("AB_COLD") != NULL;
    for (int r = -1; r < R; r++) { /* round -1: warm-up, not timed */
        for (int k = 0; k < 2; k++) {
            const int w = (r & 1) ? 1 - k : k; /* alternate who goes first */
            volatile char sink = 0;
            for (size_t b = 0; cold && b < EB; b += 64) {
                sink += ev[b];
            }
            const double s = now();
            call(dbl, op, w, o, nn, in, arrays[w][0], arrays[w][1], xs,
                 arrays[w][2], arrays[w][3], out, os);
            if (r >= 0) {
                (w ? t1 : t0)[r] = now() - s;
            }
        }
    }
    /* the two builds' outputs, compared bit for bit (y, dy and the
     * reductions' out, which ever the op writes) */
    const size_t ob = (size_t)(rows > n ? rows : n) * es;
    char *keep = malloc(2 * (size_t)N * es + ob);
    int same = -1;
    if (keep) {
        for (int w = 0; w < 2; w++) {
            memset(y, 0, (size_t)N * es);
            memset(dy, 0, (size_t)N * es);
            memset(out, 0, ob);
            call(dbl, op, w, o, nn, in, x, v, xs, y, dy, out, os);
            if (w == 0) {
                memcpy(keep, y, (size_t)N * es);
                memcpy(keep + (size_t)N * es, dy, (size_t)N * es);
                memcpy(keep + 2 * (size_t)N * es, out, ob);
            }
        }
        same = memcmp(keep, y, (size_t)N * es) == 0 &&
               memcmp(keep + (size_t)N * es, dy, (size_t)N * es) == 0 &&
               memcmp(keep + 2 * (size_t)N * es, out, ob) == 0;
        free(keep);
    }
    for (int r = 0; r < R; r++) {
        ratio[r] = t1[r] / t0[r];
    }
    qsort(t0, (size_t)R, sizeof *t0, cmp);
    qsort(t1, (size_t)R, sizeof *t1, cmp);
    qsort(ratio, (size_t)R, sizeof *ratio, cmp);
    printf("%s %s (%td, %td)%s: old %.3f new %.3f ns/elem; new/old %.3f "
           "(quartiles %.3f %.3f, %d rounds)%s\n",
           ops[op], argv[2], rows, n, getenv("AB_AXIS0") ? " axis 0" : "",
           t0[R / 2] * 1e9 / (double)N, t1[R / 2] * 1e9 / (double)N,
           ratio[R / 2], ratio[R / 4], ratio[3 * R / 4], R,
           same == 1   ? ""
           : same == 0 ? "; OUTPUTS DIFFER"
                       : "");
    return 0;
}
