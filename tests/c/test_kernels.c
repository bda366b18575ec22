/*
 * C-only test of the kernels (run by `meson test`, also under ASan/UBSan).
 *
 * Checks every public kernel, float and double, against a long double
 * reference on random rows, over contiguous, strided and inner-contiguous
 * ("column") layouts, plus the inf/nan rows and the accuracy of the exp.
 * Exit status 0 when all checks pass; prints "N passed, N failed".
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_exp.h"

#define EPS_f32 FLT_EPSILON
#define EPS_f64 DBL_EPSILON

static int n_pass = 0, n_fail = 0;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            n_pass++;                                                          \
        } else {                                                               \
            n_fail++;                                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

static unsigned long long rng_state = 88172645463325252ULL;
static double urand(void) { /* xorshift64 in [0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}
static double nrand(void) { /* rough normal: sum of 4 uniforms */
    return (urand() + urand() + urand() + urand() - 2.0) * 1.7;
}

/* reference log-sum-exp of n values at stride s, in long double */
static long double ref_lse(const double *x, ptrdiff_t n, ptrdiff_t s) {
    long double m = -INFINITY, acc = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        if (x[i * s] > m) {
            m = x[i * s];
        }
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        acc += expl((long double)x[i * s] - m);
    }
    return m + logl(acc);
}

static double scale_of(long double lse, const double *x, ptrdiff_t n,
                       ptrdiff_t s) {
    double sc = fmax(1.0, fabs((double)lse));
    for (ptrdiff_t i = 0; i < n; i++) {
        sc = fmax(sc, fabs(x[i * s]));
    }
    return sc;
}

/* Elements between calloc's pointer and the data of check_layout: the
 * column kernels cut their blocks by the data's offset from a cache line. */
static ptrdiff_t data_offset = 0;

/* One (outer, n, inner) case, laid out by `order`: 0 rows contiguous (the
 * reduced axis last), 1 reduced axis strided with inner contiguous, 2 every
 * axis strided (a gap of 2 between elements). */
static void check_layout(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                         int order, int dbl) {
    ptrdiff_t gap = order == 2 ? 2 : 1;
    ptrdiff_t total = outer * n * inner * gap;
    ptrdiff_t xs[3];
    if (order == 0) { /* (outer, inner, n) in memory */
        xs[1] = gap;
        xs[2] = n * gap;
        xs[0] = n * inner * gap;
    } else { /* (outer, n, inner) in memory */
        xs[2] = gap;
        xs[1] = inner * gap;
        xs[0] = n * inner * gap;
    }
    /* every array starts data_offset elements past calloc's pointer */
    const size_t alloc = (size_t)(total + data_offset);
    double *xd0 = calloc(alloc, sizeof(double)), *xd = xd0 + data_offset;
    double *vd0 = calloc(alloc, sizeof(double)), *vd = vd0 + data_offset;
    float *xf0 = calloc(alloc, sizeof(float)), *xf = xf0 + data_offset;
    float *vf0 = calloc(alloc, sizeof(float)), *vf = vf0 + data_offset;
    double *yd0 = calloc(alloc, sizeof(double)), *yd = yd0 + data_offset;
    double *dyd0 = calloc(alloc, sizeof(double)), *dyd = dyd0 + data_offset;
    float *yf0 = calloc(alloc, sizeof(float)), *yf = yf0 + data_offset;
    float *dyf0 = calloc(alloc, sizeof(float)), *dyf = dyf0 + data_offset;
    double *od = calloc((size_t)(outer * inner), sizeof(double));
    float *of = calloc((size_t)(outer * inner), sizeof(float));
    for (ptrdiff_t i = 0; i < total; i++) {
        xf[i] = (float)(nrand() * 3.0);
        xd[i] = dbl ? nrand() * 3.0 : (double)xf[i];
        vf[i] = (float)nrand();
        vd[i] = dbl ? nrand() : (double)vf[i];
    }
    ptrdiff_t os[2] = {inner, 1};
    double eps = dbl ? 0x1p-52 : 0x1p-23;
    const double k = 8.0; /* error bound, in units of eps * scale */
    int rc;
    if (dbl) {
        rc = lsm_logsumexp_f64(outer, n, inner, xd, xs, od, os);
    } else {
        rc = lsm_logsumexp_f32(outer, n, inner, xf, xs, of, os);
    }
    CHECK(rc == 0, "logsumexp rc %d", rc);
    if (dbl) {
        rc = lsm_log_softmax_jvp_f64(outer, n, inner, xd, xs, vd, xs, yd, xs,
                                     dyd, xs);
    } else {
        rc = lsm_log_softmax_jvp_f32(outer, n, inner, xf, xs, vf, xs, yf, xs,
                                     dyf, xs);
    }
    CHECK(rc == 0, "jvp rc %d", rc);
    double worst_lse = 0, worst_y = 0, worst_dy = 0;
    for (ptrdiff_t o = 0; o < outer; o++) {
        for (ptrdiff_t k2 = 0; k2 < inner; k2++) {
            ptrdiff_t base = o * xs[0] + k2 * xs[2];
            const double *row = xd + base;
            long double lse = ref_lse(row, n, xs[1]);
            double sc = scale_of(lse, row, n, xs[1]);
            double got = dbl ? od[o * inner + k2] : (double)of[o * inner + k2];
            worst_lse = fmax(worst_lse, fabs((double)(got - lse)) / (eps * sc));
            long double tv = 0;
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = base + j * xs[1];
                double v = dbl ? vd[at] : (double)vf[at];
                tv += expl((long double)row[j * xs[1]] - lse) * v;
            }
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = base + j * xs[1];
                long double yref = (long double)row[j * xs[1]] - lse;
                double y = dbl ? yd[at] : (double)yf[at];
                double v = dbl ? vd[at] : (double)vf[at];
                double dy = dbl ? dyd[at] : (double)dyf[at];
                worst_y = fmax(worst_y, fabs((double)(y - yref)) / (eps * sc));
                worst_dy = fmax(worst_dy, fabs((double)(dy - (v - tv))) /
                                              (eps * fmax(1.0, fabs(v)) * 4));
            }
        }
    }
    CHECK(worst_lse <= k, "logsumexp %s order %d n %td: %.2f eps",
          dbl ? "f64" : "f32", order, n, worst_lse);
    CHECK(worst_y <= k, "jvp y %s order %d n %td: %.2f eps",
          dbl ? "f64" : "f32", order, n, worst_y);
    CHECK(worst_dy <= k * 8, "jvp dy %s order %d n %td: %.2f eps",
          dbl ? "f64" : "f32", order, n, worst_dy);

    /* softmax, log_softmax (same as jvp's y) and vjp of y with g = v */
    if (dbl) {
        rc = lsm_log_softmax_f64(outer, n, inner, xd, xs, dyd, xs);
        CHECK(rc == 0 && memcmp(dyd, yd, (size_t)total * sizeof(double)) == 0,
              "log_softmax f64 differs from jvp's y");
        rc = lsm_softmax_f64(outer, n, inner, xd, xs, yd, xs);
    } else {
        rc = lsm_log_softmax_f32(outer, n, inner, xf, xs, dyf, xs);
        CHECK(rc == 0 && memcmp(dyf, yf, (size_t)total * sizeof(float)) == 0,
              "log_softmax f32 differs from jvp's y");
        rc = lsm_softmax_f32(outer, n, inner, xf, xs, yf, xs);
    }
    CHECK(rc == 0, "softmax rc %d", rc);
    double worst_p = 0, worst_sum = 0;
    for (ptrdiff_t o = 0; o < outer; o++) {
        for (ptrdiff_t k2 = 0; k2 < inner; k2++) {
            ptrdiff_t base = o * xs[0] + k2 * xs[2];
            long double lse = ref_lse(xd + base, n, xs[1]);
            long double sum = 0;
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = base + j * xs[1];
                long double z = (long double)xd[at] - lse;
                long double pref = expl(z);
                double p = dbl ? yd[at] : (double)yf[at];
                sum += p;
                /* exp of a rounded argument (|z| eps), and the sum d,
                 * whose relative error grows like log2(n) */
                double tol =
                    eps * (double)pref *
                        (fmax(1.0, fabs((double)z)) + log2((double)n)) +
                    (dbl ? 0x1p-1022 : 0x1p-126);
                worst_p = fmax(worst_p, fabs((double)(p - pref)) / tol);
            }
            worst_sum = fmax(worst_sum, fabs((double)(sum - 1)) / (eps * n));
        }
    }
    CHECK(worst_p <= k, "softmax %s order %d n %td: %.2f", dbl ? "f64" : "f32",
          order, n, worst_p);
    CHECK(worst_sum <= 2, "softmax sum %s: %.2f", dbl ? "f64" : "f32",
          worst_sum);

    /* vjp: dx = g - exp(y) sum(g), with y = log_softmax(x), g = v */
    if (dbl) {
        lsm_log_softmax_f64(outer, n, inner, xd, xs, yd, xs);
        rc = lsm_log_softmax_vjp_f64(outer, n, inner, yd, xs, vd, xs, dyd, xs);
    } else {
        lsm_log_softmax_f32(outer, n, inner, xf, xs, yf, xs);
        rc = lsm_log_softmax_vjp_f32(outer, n, inner, yf, xs, vf, xs, dyf, xs);
    }
    CHECK(rc == 0, "vjp rc %d", rc);
    double worst_dx = 0;
    for (ptrdiff_t o = 0; o < outer; o++) {
        for (ptrdiff_t k2 = 0; k2 < inner; k2++) {
            ptrdiff_t base = o * xs[0] + k2 * xs[2];
            long double sg = 0, sabs = 0;
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = base + j * xs[1];
                double g = dbl ? vd[at] : (double)vf[at];
                sg += g;
                sabs += fabs(g);
            }
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = base + j * xs[1];
                double y = dbl ? yd[at] : (double)yf[at];
                double g = dbl ? vd[at] : (double)vf[at];
                double dx = dbl ? dyd[at] : (double)dyf[at];
                long double ref = g - expl((long double)y) * sg;
                double tol = eps * (fabs(g) + exp(y) * (double)sabs) * 4;
                worst_dx = fmax(worst_dx, fabs((double)(dx - ref)) / tol);
            }
        }
    }
    CHECK(worst_dx <= k, "vjp %s order %d n %td: %.2f", dbl ? "f64" : "f32",
          order, n, worst_dx);
    free(xd0);
    free(vd0);
    free(xf0);
    free(vf0);
    free(yd0);
    free(dyd0);
    free(yf0);
    free(dyf0);
    free(od);
    free(of);
}

/* softmax of rows long enough for the two-exp pass (LSM_LONG_ROW): rows
 * with +inf or nan give nan, as scipy does, and leading -inf entries 0 (the
 * others within check_layout's bound of the reference). */
#define CHECK_LONG_SOFTMAX(T, SFX)                                             \
    do {                                                                       \
        const ptrdiff_t n = 3300000, xs[3] = {n, 1, 1};                        \
        T *x = malloc((size_t)n * sizeof(T)),                                  \
          *y = malloc((size_t)n * sizeof(T));                                  \
        for (int c = 0; c < 3; c++) {                                          \
            for (ptrdiff_t i = 0; i < n; i++) {                                \
                x[i] = c == 2 && i < 1000000 ? -(T)INFINITY : (T)(i % 7) - 3;  \
            }                                                                  \
            if (c == 0) {                                                      \
                x[2000000] = (T)INFINITY;                                      \
            } else if (c == 1) {                                               \
                x[2000000] = (T)NAN;                                           \
            }                                                                  \
            lsm_softmax_##SFX(1, n, 1, x, xs, y, xs);                          \
            ptrdiff_t i_bad = -1;                                              \
            long double d = 0, want_bad = 0;                                   \
            for (ptrdiff_t i = 1000000; i < n; i++) {                          \
                d += expl((long double)x[i] - 3);                              \
            }                                                                  \
            for (ptrdiff_t i = 0; i < n && i_bad < 0; i++) {                   \
                long double want = c < 2 ? NAN                                 \
                                   : i < 1000000                               \
                                       ? 0                                     \
                                       : expl((long double)x[i] - 3) / d;      \
                /* check_layout's bound: eps (|z| + log2 n) with k = 8 */      \
                long double z = (long double)x[i] - 3 - logl(d);               \
                int ok = c < 2 ? isnan(y[i])                                   \
                         : want == 0                                           \
                             ? y[i] == 0                                       \
                             : fabsl((long double)y[i] - want) <=              \
                                   8 * EPS_##SFX * (fabsl(z) + 22) * want;     \
                if (!ok) {                                                     \
                    i_bad = i;                                                 \
                    want_bad = want;                                           \
                }                                                              \
            }                                                                  \
            CHECK(i_bad < 0,                                                   \
                  "long softmax row " #SFX " case %d: y[%ld] = %Lg, want %Lg", \
                  c, (long)(i_bad), (long double)y[i_bad < 0 ? 0 : i_bad],     \
                  want_bad);                                                   \
        }                                                                      \
        free(x);                                                               \
        free(y);                                                               \
    } while (0)

static void check_long_softmax(void) {
    CHECK_LONG_SOFTMAX(float, f32);
    CHECK_LONG_SOFTMAX(double, f64);
}

/* got is want (both nan counting as equal), or within 1e-15 of it */
static int same_or_close(double got, double want) {
    return (isnan(got) && isnan(want)) || got == want ||
           fabs(got - want) <= 1e-15 * fabs(want);
}

static void check_special_rows(void) {
    const double inf = INFINITY, nan = NAN;
    /* rows of 2: expected logsumexp, and log_softmax / softmax outputs */
    struct {
        double x[2], lse, ls[2], sm[2];
    } cases[] = {
        {{inf, 1}, inf, {nan, -inf}, {nan, nan}},
        {{-inf, -inf}, -inf, {nan, nan}, {nan, nan}},
        {{nan, 1}, nan, {nan, nan}, {nan, nan}},
        {{inf, -inf}, inf, {nan, -inf}, {nan, nan}},
        {{inf, nan}, nan, {nan, nan}, {nan, nan}},
        {{-inf, 1}, 1, {-inf, 0}, {0, 1}},
        {{nan, -inf}, nan, {nan, nan}, {nan, nan}},
        {{0, -40},
         4.248354255291589e-18,
         {-4.248354255291589e-18, -40},
         {1, 4.248354255291589e-18}},
    };
    ptrdiff_t xs[3] = {2, 1, 1}, os[2] = {1, 1};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double out, y[2];
        lsm_logsumexp_f64(1, 2, 1, cases[c].x, xs, &out, os);
        CHECK(same_or_close(out, cases[c].lse),
              "special lse case %zu: got %g want %g", c, out, cases[c].lse);
        lsm_log_softmax_f64(1, 2, 1, cases[c].x, xs, y, xs);
        for (int i = 0; i < 2; i++) {
            double w = cases[c].ls[i];
            CHECK(same_or_close(y[i], w),
                  "special log_softmax case %zu[%d]: got %g want %g", c, i,
                  y[i], w);
        }
        lsm_softmax_f64(1, 2, 1, cases[c].x, xs, y, xs);
        for (int i = 0; i < 2; i++) {
            double w = cases[c].sm[i];
            CHECK(same_or_close(y[i], w),
                  "special softmax case %zu[%d]: got %g want %g", c, i, y[i],
                  w);
        }
    }
    /* weighted: b == 0 ignores inf/nan; sign output */
    double x[3] = {inf, 1.0, nan}, b[3] = {0, -1, 0}, out, sign;
    ptrdiff_t xs3[3] = {3, 1, 1};
    lsm_logsumexp_weighted_f64(1, 3, 1, x, xs3, b, xs3, &out, os, &sign, os);
    CHECK(out == 1.0 && sign == -1.0, "weighted sign: %g %g", out, sign);
    lsm_logsumexp_weighted_f64(1, 3, 1, x, xs3, b, xs3, &out, os, NULL, NULL);
    CHECK(isnan(out), "weighted negative without sign gives nan: %g", out);
}

/* Rows of one call are grouped (their logs computed together) and
 * pipelined (each row's output written during a later row's statistics
 * pass): the rows of one call, regular and special (+inf in a later chunk,
 * all -inf, nan, -inf for a whole first chunk) in any order, give bit for
 * bit what each row gives on its own, out of place and in place, for
 * log_softmax and the JVP, and for logsumexp (which takes rows shorter
 * than 1280 bytes two at a time, a special row's neighbour then alone). */
#define DEFINE_CHECK_PIPELINE(T, SFX)                                          \
    static void check_pipeline_##SFX(ptrdiff_t R, ptrdiff_t n) {               \
        const ptrdiff_t N = R * n, s[3] = {n, 1, 1};                           \
        T *x = malloc(sizeof(T) * (size_t)N),                                  \
          *v = malloc(sizeof(T) * (size_t)N);                                  \
        T *y = malloc(sizeof(T) * (size_t)N),                                  \
          *d = malloc(sizeof(T) * (size_t)N);                                  \
        T *y1 = malloc(sizeof(T) * (size_t)N),                                 \
          *d1 = malloc(sizeof(T) * (size_t)N);                                 \
        for (ptrdiff_t i = 0; i < N; i++) {                                    \
            x[i] = (T)(4 * nrand());                                           \
            v[i] = (T)nrand();                                                 \
        }                                                                      \
        for (ptrdiff_t r0 = 0; r0 < R; r0 += 8) { /* in every 8 rows: */       \
            T *b = x + r0 * n;                                                 \
            b[1 * n + n - 1] = (T)INFINITY; /* +inf in the last chunk */       \
            for (ptrdiff_t j = 0; j < n; j++) {                                \
                b[2 * n + j] = -(T)INFINITY; /* all -inf */                    \
            }                                                                  \
            b[4 * n + n / 2] = (T)NAN; /* nan among finite */                  \
            for (ptrdiff_t j = 0; j < n && j < 1024; j++) {                    \
                b[5 * n + j] = -(T)INFINITY; /* a first chunk of -inf */       \
            }                                                                  \
            b[7 * n] = (T)NAN;                                                 \
        }                                                                      \
        { /* logsumexp: rows two by two (mid lengths) or one by one */         \
            const ptrdiff_t os[2] = {1, 1};                                    \
            lsm_logsumexp_##SFX(R, n, 1, x, s, y, os);                         \
            for (ptrdiff_t r = 0; r < R; r++) {                                \
                lsm_logsumexp_##SFX(1, n, 1, x + r * n, s, y1 + r, os);        \
            }                                                                  \
            CHECK(memcmp(y1, y, sizeof(T) * (size_t)R) == 0,                   \
                  "logsumexp of rows " #SFX " n %td: each row alone", n);      \
        }                                                                      \
        for (int inplace = 0; inplace < 2; inplace++) {                        \
            T *yo = y, *dyo = d;                                               \
            if (inplace) {                                                     \
                memcpy(y, x, sizeof(T) * (size_t)N);                           \
                memcpy(d, v, sizeof(T) * (size_t)N);                           \
                lsm_log_softmax_##SFX(R, n, 1, y, s, y, s);                    \
            } else {                                                           \
                lsm_log_softmax_##SFX(R, n, 1, x, s, y, s);                    \
            }                                                                  \
            for (ptrdiff_t r = 0; r < R; r++) {                                \
                lsm_log_softmax_##SFX(1, n, 1, x + r * n, s, y1 + r * n, s);   \
            }                                                                  \
            CHECK(memcmp(y1, yo, sizeof(T) * (size_t)N) == 0,                  \
                  "pipelined log_softmax " #SFX " n %td in place %d", n,       \
                  inplace);                                                    \
            if (inplace) {                                                     \
                memcpy(y, x, sizeof(T) * (size_t)N);                           \
                lsm_log_softmax_jvp_##SFX(R, n, 1, y, s, d, s, y, s, d, s);    \
            } else {                                                           \
                lsm_log_softmax_jvp_##SFX(R, n, 1, x, s, v, s, y, s, d, s);    \
            }                                                                  \
            for (ptrdiff_t r = 0; r < R; r++) {                                \
                lsm_log_softmax_jvp_##SFX(1, n, 1, x + r * n, s, v + r * n, s, \
                                          y1 + r * n, s, d1 + r * n, s);       \
            }                                                                  \
            CHECK(memcmp(y1, yo, sizeof(T) * (size_t)N) == 0 &&                \
                      memcmp(d1, dyo, sizeof(T) * (size_t)N) == 0,             \
                  "pipelined jvp " #SFX " n %td in place %d", n, inplace);     \
        }                                                                      \
        free(x);                                                               \
        free(v);                                                               \
        free(y);                                                               \
        free(d);                                                               \
        free(y1);                                                              \
        free(d1);                                                              \
    }
DEFINE_CHECK_PIPELINE(double, f64)
DEFINE_CHECK_PIPELINE(float, f32)

static void check_pipeline(void) {
    /* 8 rows; 40 rows (groups of up to 16 rows: specials on both sides of
     * group edges, a shorter last group) */
    const ptrdiff_t ns[] = {65, 100, 319, 1000, 1024, 2500};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        check_pipeline_f64(8, ns[i]);
        check_pipeline_f32(8, ns[i]);
        check_pipeline_f64(40, ns[i]);
        check_pipeline_f32(40, ns[i]);
    }
}

/* Every kernel gives the same bits with 1 and with 2 threads (rows,
 * short packed rows, column blocks, strided rows), and the thread setting
 * reads back. Without OpenMP both runs are serial and agree trivially. */
#define DEFINE_CHECK_AGREE(T, SFX)                                             \
    static int run_all_##SFX(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,    \
                             const ptrdiff_t s[3], const T *x, const T *v,     \
                             T *out, ptrdiff_t N) {                            \
        const ptrdiff_t os[2] = {inner, 1};                                    \
        int rc = 0;                                                            \
        rc |= lsm_logsumexp_##SFX(outer, n, inner, x, s, out, os);             \
        rc |= lsm_logsumexp_weighted_##SFX(outer, n, inner, x, s, v, s,        \
                                           out + N, os, out + 2 * N, os);      \
        rc |= lsm_softmax_##SFX(outer, n, inner, x, s, out + 3 * N, s);        \
        rc |= lsm_log_softmax_##SFX(outer, n, inner, x, s, out + 4 * N, s);    \
        rc |= lsm_log_softmax_jvp_##SFX(outer, n, inner, x, s, v, s,           \
                                        out + 5 * N, s, out + 6 * N, s);       \
        rc |= lsm_log_softmax_vjp_##SFX(outer, n, inner, x, s, v, s,           \
                                        out + 7 * N, s);                       \
        rc |= lsm_exp_##SFX(N, x, 1, out + 8 * N, 1);                          \
        return rc;                                                             \
    }                                                                          \
    /* every kernel run twice, its outputs compared bit for bit: with 1 and    \
     * 2 threads (stream 0), or with streaming stores off and on for every     \
     * output (stream 1), on data and outputs off elements from the start      \
     * of their allocation */                                                  \
    static void check_agree_##SFX(ptrdiff_t outer, ptrdiff_t n,                \
                                  ptrdiff_t inner, int axis_last,              \
                                  ptrdiff_t off, int stream) {                 \
        const ptrdiff_t N = outer * n * inner;                                 \
        ptrdiff_t s[3] = {n * inner, inner, 1};                                \
        if (axis_last) { /* (outer, inner, n) in memory */                     \
            s[0] = n * inner;                                                  \
            s[1] = 1;                                                          \
            s[2] = n;                                                          \
        }                                                                      \
        T *x0 = malloc(sizeof(T) * (size_t)(N + off)),                         \
          *v0 = malloc(sizeof(T) * (size_t)(N + off));                         \
        T *a0 = calloc((size_t)(9 * N + off), sizeof(T));                      \
        T *b0 = calloc((size_t)(9 * N + off), sizeof(T));                      \
        T *x = x0 + off, *v = v0 + off, *a = a0 + off, *b = b0 + off;          \
        for (ptrdiff_t i = 0; i < N; i++) {                                    \
            x[i] = (T)(4 * nrand());                                           \
            v[i] = (T)nrand();                                                 \
        }                                                                      \
        if (outer * inner > 2) { /* special rows among regular ones */         \
            x[N / 2] = (T)INFINITY;                                            \
            x[N / 3] = (T)NAN;                                                 \
        }                                                                      \
        if (stream) {                                                          \
            lsm_set_stream_bytes(-1);                                          \
        } else {                                                               \
            lsm_set_num_threads(1);                                            \
        }                                                                      \
        int rc = run_all_##SFX(outer, n, inner, s, x, v, a, N);                \
        if (stream) {                                                          \
            lsm_set_stream_bytes(0);                                           \
        } else {                                                               \
            lsm_set_num_threads(2);                                            \
        }                                                                      \
        rc |= run_all_##SFX(outer, n, inner, s, x, v, b, N);                   \
        CHECK(rc == 0 && memcmp(a, b, sizeof(T) * (size_t)(9 * N)) == 0,       \
              "%s agree: " #SFX " (%td, %td, %td) last %d offset %td",         \
              stream ? "streamed and plain stores" : "1 and 2 threads", outer, \
              n, inner, axis_last, off);                                       \
        free(x0);                                                              \
        free(v0);                                                              \
        free(a0);                                                              \
        free(b0);                                                              \
    }
DEFINE_CHECK_AGREE(double, f64)
DEFINE_CHECK_AGREE(float, f32)

/* Streaming stores write the same bits as plain ones: every kernel with
 * streaming off and with every output streamed, on data and outputs at
 * offsets of 0-3 elements from a cache line (heads, whole lines, tails). */
static void check_stream(void) {
    /* {3, 9000}: log_softmax rows streamed and pipelined (float64 under
     * LSM_PIPE_LS_f64 bytes), float32 at avx512 streamed unpipelined (over
     * LSM_PIPE_LS_f32); {2, 70000}: float64 rows over LSM_PIPE_LS_f64
     * (streamed unpipelined at avx512, pipelined with plain stores below);
     * {40, 1024}: rows of one chunk, streamed and pipelined. (Not float32
     * softmax rows of 64-256 KB: streamed, they take the two-exp pass
     * (two_exp_), which rounds differently from row_softmax_.) */
    const ptrdiff_t shapes[][4] = {
        {2000, 8, 1, 1},  {1500, 12, 1, 1}, {301, 40, 1, 1}, {40, 100, 1, 1},
        {30, 300, 1, 1},  {3, 1000, 1, 1},  {2, 5000, 1, 1}, {5, 333, 3, 0},
        {2, 50, 300, 0},  {3, 1000, 7, 1},  {3, 9000, 1, 1}, {1, 1100000, 1, 1},
        {40, 1024, 1, 1}, {2, 70000, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const ptrdiff_t *sh = shapes[i];
        for (ptrdiff_t off = 0; off < 4; off++) {
            check_agree_f64(sh[0], sh[1], sh[2], (int)sh[3], off, 1);
            check_agree_f32(sh[0], sh[1], sh[2], (int)sh[3], off, 1);
        }
    }
    { /* softmax of a row long enough for its two-exp path */
        const ptrdiff_t n = 3300000, s[3] = {n, 1, 1};
        float *x = malloc(sizeof(float) * (size_t)n);
        float *a = malloc(sizeof(float) * (size_t)n);
        float *b = malloc(sizeof(float) * (size_t)(n + 1));
        for (ptrdiff_t i = 0; i < n; i++) {
            x[i] = (float)(4 * nrand());
        }
        lsm_set_stream_bytes(-1);
        lsm_softmax_f32(1, n, 1, x, s, a, s);
        lsm_set_stream_bytes(0);
        lsm_softmax_f32(1, n, 1, x, s, b + 1, s);
        CHECK(memcmp(a, b + 1, sizeof(float) * (size_t)n) == 0,
              "streamed and plain stores agree: softmax of one long row");
        free(x);
        free(a);
        free(b);
    }
    lsm_set_stream_bytes(-1);
    CHECK(lsm_get_stream_bytes() == -1, "streaming off reads back: %td",
          lsm_get_stream_bytes());
}

/* softmax (op 0), log_softmax (1) and the JVP (2) of rows of W = 4, 8, 16
 * (at AVX-512 rows of 4 and 8, and float32 rows of 16, fill 512-bit
 * vectors and are computed in them): the output at each of 16 offsets from
 * a cache line, streamed and plain, in place, and each row alone give the
 * same bits, for row counts around the groups of 8 vectors, with special
 * rows (+inf, nan, all -inf) and rows with ties at the max among regular
 * ones (some with -inf entries), and the JVP's y the bits of log_softmax;
 * every regular row within a few eps of a long double reference (checks
 * rows8_*_ok_), special rows as scipy.special gives them. */
#define DEFINE_CHECK_ROWS8(T, SFX, EPS, TINY, CUT)                             \
    static void rows8_run_##SFX(int op, ptrdiff_t R, ptrdiff_t W, const T *x,  \
                                const T *v, T *y, T *dy) {                     \
        const ptrdiff_t s[3] = {W, 1, 1};                                      \
        if (op == 0) {                                                         \
            lsm_softmax_##SFX(R, W, 1, x, s, y, s);                            \
        } else if (op == 1) {                                                  \
            lsm_log_softmax_##SFX(R, W, 1, x, s, y, s);                        \
        } else {                                                               \
            lsm_log_softmax_jvp_##SFX(R, W, 1, x, s, v, s, y, s, dy, s);       \
        }                                                                      \
    }                                                                          \
    /* a row of op's outputs y, dy against long double: softmax within (4      \
     * max(1, |d|) + W) eps relative (d = x - m, rounded in T: its             \
     * condition; the sum of W terms: up to W roundings), log_softmax          \
     * within eps (2 |d| + (W + 4) |l| + 2 sum p |d| + 2 |y|), l = log sum     \
     * exp(d), p = exp(d - l) (each term the condition |d| of its exp; the     \
     * max's entry, -l, keeps its relative accuracy), dy within eps (|dy| +    \
     * (W + 4) sum p |v| + 2 sum p |d v|), plus W terms of e^-87 (float32)     \
     * or e^-708 (float64), below which the sums' terms are dropped (|v| <     \
     * 8); special rows nan (softmax, dy), or nan at +inf and -inf             \
     * elsewhere (log_softmax of a row with +inf and no nan) */                \
    static int rows8_ok_##SFX(int op, ptrdiff_t W, const T *x, const T *v,     \
                              const T *y, const T *dy) {                       \
        long double m = -INFINITY, sum = 0, q = 0, qa = 0;                     \
        int has_nan = 0;                                                       \
        for (int j = 0; j < W; j++) {                                          \
            m = x[j] > m ? x[j] : m;                                           \
            has_nan |= x[j] != x[j];                                           \
        }                                                                      \
        if (has_nan || !(m > -INFINITY && m < INFINITY)) {                     \
            int ok = 1;                                                        \
            for (int j = 0; j < W; j++) {                                      \
                const int want_nan =                                           \
                    op == 0 || has_nan || m != INFINITY || x[j] == INFINITY;   \
                ok &= want_nan ? isnan(y[j]) : y[j] == -INFINITY;              \
                ok &= op != 2 || isnan(dy[j]);                                 \
            }                                                                  \
            return ok;                                                         \
        }                                                                      \
        long double cnt = 0, rest = 0; /* at the max, the others */            \
        for (int j = 0; j < W; j++) {                                          \
            cnt += x[j] == m;                                                  \
            rest += x[j] == m ? 0 : expl((long double)x[j] - m);               \
        }                                                                      \
        sum = cnt + rest;                                                      \
        long double pd = 0, pdv = 0; /* the terms' conditions |d| */           \
        for (int j = 0; j < W; j++) {                                          \
            const long double dj = (long double)x[j] - m;                      \
            const long double p = expl(dj) / sum;                              \
            q += p * v[j];                                                     \
            qa += p * fabsl((long double)v[j]);                                \
            pd += dj > -INFINITY ? p * -dj : 0;                                \
            pdv += dj > -INFINITY ? p * -dj * fabsl((long double)v[j]) : 0;    \
        }                                                                      \
        /* (log(sum) would lose the terms below ulp(cnt) in sum) */            \
        const long double l = logl(cnt) + log1pl(rest / cnt);                  \
        int ok = 1;                                                            \
        for (int j = 0; j < W; j++) {                                          \
            const long double d = (long double)x[j] - m;                       \
            if (op == 0) {                                                     \
                const long double want = expl(d) / sum;                        \
                const long double k = 4 * (fabsl(d) > 1 ? fabsl(d) : 1) + W;   \
                ok &= y[j] == want || /* 0 for x = -inf */                     \
                      fabsl(y[j] - want) <= k * EPS * want + TINY;             \
                continue;                                                      \
            }                                                                  \
            const long double want = d - l;                                    \
            ok &= y[j] == want ||                                              \
                  fabsl(y[j] - want) <= EPS * (2 * fabsl(d) + (W + 4) * l +    \
                                               2 * pd + 2 * fabsl(want)) +     \
                                            W * CUT;                           \
            if (op == 2) {                                                     \
                const long double dw = v[j] - q;                               \
                ok &=                                                          \
                    fabsl(dy[j] - dw) <=                                       \
                    EPS * (fabsl(dw) + (W + 4) * qa + 2 * pdv) + W * CUT * 8;  \
            }                                                                  \
        }                                                                      \
        return ok;                                                             \
    }                                                                          \
    static void check_rows8_##SFX(ptrdiff_t W) {                               \
        const ptrdiff_t stream0 = lsm_get_stream_bytes();                      \
        const ptrdiff_t counts[] = {1, 2, 3, 15, 16, 17, 31, 33, 50, 1001};    \
        for (int op = 0; op < 3; op++) {                                       \
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {    \
                const ptrdiff_t R = counts[c], N = W * R;                      \
                const size_t sz = sizeof(T) * (size_t)N;                       \
                T *x = malloc(sz), *v = malloc(sz), *one = malloc(sz);         \
                T *done = malloc(sz), *ly = malloc(sz);                        \
                T *a = malloc(sizeof(T) * (size_t)(N + 32));                   \
                T *b = malloc(sizeof(T) * (size_t)(N + 32));                   \
                T *da = malloc(sizeof(T) * (size_t)(N + 32));                  \
                T *db = malloc(sizeof(T) * (size_t)(N + 32));                  \
                for (ptrdiff_t i = 0; i < N; i++) {                            \
                    x[i] = (T)(6 * nrand());                                   \
                    v[i] = (T)nrand();                                         \
                }                                                              \
                if (R > 3) {                                                   \
                    x[W * 1 + 3] = -INFINITY; /* regular, a -inf entry */      \
                    x[W * 2 + 1] = INFINITY;  /* special */                    \
                    x[W * (R - 1) - 1] = NAN; /* nan row */                    \
                    for (int j = 0; j < W; j++) {                              \
                        x[W * (R / 2) + j] = -INFINITY;      /* all -inf */    \
                        x[W * 3 + j] = (T)(j % 2 ? 40 : -1); /* ties */        \
                    }                                                          \
                    x[W * (R - 1)] = (T)90; /* far above its row */            \
                }                                                              \
                for (ptrdiff_t r = 0; r < R; r++) {                            \
                    rows8_run_##SFX(op, 1, W, x + W * r, v + W * r,            \
                                    one + W * r, done + W * r);                \
                }                                                              \
                int bad = 0, inacc = 0;                                        \
                for (ptrdiff_t r = 0; r < R; r++) {                            \
                    inacc |= !rows8_ok_##SFX(op, W, x + W * r, v + W * r,      \
                                             one + W * r, done + W * r);       \
                }                                                              \
                CHECK(!inacc,                                                  \
                      #SFX " op %d, rows of %td: %td rows alone within "       \
                           "bounds of a long double reference, specials as "   \
                           "scipy's",                                          \
                      op, W, R);                                               \
                if (op == 2) {                                                 \
                    rows8_run_##SFX(1, R, W, x, v, ly, NULL);                  \
                    bad |= memcmp(ly, one, sz) != 0;                           \
                }                                                              \
                for (int off = 0; off < 16; off++) {                           \
                    lsm_set_stream_bytes(-1);                                  \
                    rows8_run_##SFX(op, R, W, x, v, a + off, da + 15 - off);   \
                    lsm_set_stream_bytes(0);                                   \
                    rows8_run_##SFX(op, R, W, x, v, b + off, db + off);        \
                    bad |= memcmp(a + off, one, sz) != 0;                      \
                    bad |= memcmp(b + off, one, sz) != 0;                      \
                    if (op == 2) {                                             \
                        bad |= memcmp(da + 15 - off, done, sz) != 0;           \
                        bad |= memcmp(db + off, done, sz) != 0;                \
                        memcpy(db + off, v, sz);                               \
                    }                                                          \
                    memcpy(b + off, x, sz);                                    \
                    rows8_run_##SFX(op, R, W, b + off, db + off, b + off,      \
                                    db + off);                                 \
                    bad |= memcmp(b + off, one, sz) != 0;                      \
                    bad |= op == 2 && memcmp(db + off, done, sz) != 0;         \
                }                                                              \
                lsm_set_stream_bytes(stream0);                                 \
                CHECK(!bad,                                                    \
                      #SFX " op %d, rows of %td: %td rows streamed, plain "    \
                           "and in place at 16 offsets give each row's bits "  \
                           "(the JVP's y those of log_softmax)",               \
                      op, W, R);                                               \
                free(x);                                                       \
                free(v);                                                       \
                free(one);                                                     \
                free(done);                                                    \
                free(ly);                                                      \
                free(a);                                                       \
                free(b);                                                       \
                free(da);                                                      \
                free(db);                                                      \
            }                                                                  \
        }                                                                      \
    }
DEFINE_CHECK_ROWS8(float, f32, 0x1p-24, 0x1p-149, 0x1p-125)
DEFINE_CHECK_ROWS8(double, f64, 0x1p-53, 0x1p-1074, 0x1p-1021)

static void check_threads(void) {
    const ptrdiff_t shapes[][4] = {
        {20000, 8, 1, 1},   {301, 1000, 1, 1}, {3, 3000, 7, 1},
        {4, 700, 300, 0},   {2, 5, 40000, 0},  {64, 2500, 1, 1},
        {1, 1100000, 1, 1}, /* one long row: its blocks split */
        {1, 1100000, 1, 0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const ptrdiff_t *sh = shapes[i];
        check_agree_f64(sh[0], sh[1], sh[2], (int)sh[3], 0, 0);
        check_agree_f32(sh[0], sh[1], sh[2], (int)sh[3], 0, 0);
    }
    { /* softmax of one row long enough for its two-exp path: split too */
        const ptrdiff_t n = 3200000, s[3] = {n, 1, 1};
        float *x = malloc(sizeof(float) * (size_t)n);
        float *a = malloc(sizeof(float) * (size_t)n);
        float *b = malloc(sizeof(float) * (size_t)n);
        for (ptrdiff_t i = 0; i < n; i++) {
            x[i] = (float)(4 * nrand());
        }
        lsm_set_num_threads(1);
        lsm_softmax_f32(1, n, 1, x, s, a, s);
        lsm_set_num_threads(2);
        lsm_softmax_f32(1, n, 1, x, s, b, s);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)n) == 0,
              "1 and 2 threads agree: softmax of one long row");
        free(x);
        free(a);
        free(b);
    }
    lsm_set_num_threads(3);
    CHECK(lsm_get_num_threads() == 3 || lsm_get_num_threads() == 1,
          "thread count reads back (1 without OpenMP): %d",
          lsm_get_num_threads());
    lsm_set_num_threads(0);
    CHECK(lsm_get_num_threads() >= 1, "default thread count %d",
          lsm_get_num_threads());
}

/* The kernels' log of a sum d >= 1, against logl: relative error at most
 * 2^-50, 2^-38 for the float32 kernels' shorter series (one term fewer
 * gives 2^-34.2); over d near 1
 * (where log d is small: relative accuracy is what carries terms below
 * ulp(1)) and over 1 to e^70. */
static void check_log(void) {
    double worst[2] = {0, 0};
    for (int i = 0; i <= 200000; i++) {
        const double d =
            i % 2 ? 1.0 + (double)(i / 2) * 0x1p-52 : exp((double)i * 0.00035);
        const long double r = logl((long double)d);
        for (int f32 = 0; f32 < 2 && r != 0; f32++) {
            const double y = f32 ? lsm_log_f64_n(d, 1) : lsm_log_f64(d);
            worst[f32] = fmax(worst[f32], (double)(fabsl(y - r) / r));
        }
    }
    CHECK(worst[0] <= 0x1p-50, "log f64 relative error %.3g", worst[0]);
    CHECK(worst[1] <= 0x1p-38, "log (float32 terms) relative error %.3g",
          worst[1]);
    CHECK(isinf(lsm_log_f64(INFINITY)) && isnan(lsm_log_f64(NAN)) &&
              lsm_log_f64(1.0) == 0.0,
          "log of inf, nan, 1");
}

/* The exp of the terms of sums (x <= 0 after the max shift), against expl:
 * relative error within 4 * 2^-24 (float32, a degree-5 polynomial: 3.3 *
 * 2^-24 measured, 2.5 ulp) and 3 * 2^-53 (float64) for x in
 * [-10, 0], where terms are large enough to matter beside the max's 1;
 * within 8 * 2^-24 down to -87 (the one-fma range reduction's |k| * 2e-9),
 * and exactly 1 at 0 (the count of entries at the max relies on it), 0
 * below the smallest normal, nan for nan. */
static void check_expsum(void) {
    double near32 = 0, far32 = 0, near64 = 0;
    for (int i = 0; i <= 870000; i++) {
        const float xf = -(float)i * 1e-4f;
        const long double rf = expl((long double)xf);
        const double ef = (double)(fabsl(lsm_expsum_f32(xf) - rf) / rf);
        far32 = fmax(far32, ef);
        if (xf >= -10.0f) {
            near32 = fmax(near32, ef);
            const double xd = -(double)i * 1.17e-5;
            const long double rd = expl((long double)xd);
            near64 =
                fmax(near64, (double)(fabsl(lsm_expsum_f64(xd) - rd) / rd));
        }
    }
    CHECK(near32 <= 4 * 0x1p-24 && far32 <= 8 * 0x1p-24,
          "expsum f32 relative error %.3g (x >= -10), %.3g (x >= -87)", near32,
          far32);
    CHECK(near64 <= 3 * 0x1p-53, "expsum f64 relative error %.3g", near64);
    CHECK(lsm_expsum_f32(0.0f) == 1.0f && lsm_expsum_f64(0.0) == 1.0 &&
              lsm_expsum_f32(-88.0f) == 0.0f &&
              lsm_expsum_f32(-INFINITY) == 0.0f &&
              lsm_expsum_f64(-INFINITY) == 0.0 && isnan(lsm_expsum_f32(NAN)) &&
              isnan(lsm_expsum_f64(NAN)),
          "expsum at 0, -88, -inf, nan");
}

static void check_exp(void) {
    double worst32 = 0, worst64 = 0;
    for (int i = 0; i <= 200000; i++) {
        float xf = (float)(-104.0 + (89.0 + 104.0) * i / 200000.0);
        double xd = -745.0 + (709.0 + 745.0) * i / 200000.0;
        float yf;
        double yd;
        lsm_exp_f32(1, &xf, 1, &yf, 1);
        lsm_exp_f64(1, &xd, 1, &yd, 1);
        long double rf = expl((long double)xf), rd = expl((long double)xd);
        if (rf >= 0x1p-126 && rf < 0x1p127) {
            worst32 = fmax(worst32, (double)(fabsl(yf - rf) / rf) / 0x1p-24);
        }
        if (rd >= 0x1p-1022 && rd < 0x1p1023) {
            worst64 = fmax(worst64, (double)(fabsl(yd - rd) / rd) / 0x1p-53);
        }
    }
    CHECK(worst32 <= 3, "exp f32 error %.2f half-ulps", worst32);
    CHECK(worst64 <= 3, "exp f64 error %.2f half-ulps", worst64);
    float sf[4] = {-INFINITY, INFINITY, NAN, 100.0f}, of[4];
    lsm_exp_f32(4, sf, 1, of, 1);
    CHECK(of[0] == 0 && isinf(of[1]) && isnan(of[2]) && isinf(of[3]),
          "exp f32 specials");
    double sd[4] = {-INFINITY, INFINITY, NAN, 720.0}, od[4];
    lsm_exp_f64(4, sd, 1, od, 1);
    CHECK(od[0] == 0 && isinf(od[1]) && isnan(od[2]) && isinf(od[3]),
          "exp f64 specials");
    double sub = -740.0, outsub;
    lsm_exp_f64(1, &sub, 1, &outsub, 1);
    CHECK(fabs(outsub - exp(-740.0)) <= 0x1p-1074, "exp f64 subnormal");
}

/* softmax of rows [0, x] (and [0, x, -inf, ...]) for x far below 0: the
 * second entry is exp(x) / (1 + exp(x)), down into the subnormal range,
 * through the short-row, long-row and column paths (the exp that softmax
 * uses, at every ISA level the test runs with). */
#define TAIL_G 4001
static void check_softmax_tail(void) {
    static float xf[TAIL_G * 100], yf[TAIL_G * 100];
    static double xd[TAIL_G * 100], yd[TAIL_G * 100];
    for (int layout = 0; layout < 3; layout++) {
        const ptrdiff_t n = layout == 1 ? 100 : 2;
        ptrdiff_t outer = TAIL_G, inner = 1, xs[3] = {n, 1, 1};
        if (layout == 2) { /* reduce along axis 0 of a (2, G) array */
            outer = 1;
            inner = TAIL_G;
            xs[0] = 2 * TAIL_G;
            xs[1] = TAIL_G;
        }
        for (ptrdiff_t g = 0; g < TAIL_G; g++) {
            /* x in [-106, -18] (float32), [-750, -38] (float64) */
            const double tf = -18.0 - 88.0 * (double)g / (TAIL_G - 1);
            const double td = -38.0 - 712.0 * (double)g / (TAIL_G - 1);
            for (ptrdiff_t j = 0; j < n; j++) {
                ptrdiff_t at = layout == 2 ? j * xs[1] + g : g * n + j;
                xf[at] = j == 1 ? (float)tf : (j == 0 ? 0.0f : -INFINITY);
                xd[at] = j == 1 ? td : (j == 0 ? 0.0 : -INFINITY);
            }
        }
        lsm_softmax_f32(outer, n, inner, xf, xs, yf, xs);
        lsm_softmax_f64(outer, n, inner, xd, xs, yd, xs);
        double worst32 = 0, worst64 = 0;
        for (ptrdiff_t g = 0; g < TAIL_G; g++) {
            ptrdiff_t at = layout == 2 ? xs[1] + g : g * n + 1;
            long double ef = expl((long double)xf[at]);
            long double ed = expl((long double)xd[at]);
            long double rf = ef / (1 + ef), rd = ed / (1 + ed);
            /* half-ulps of the result; an ulp is 2^-149 / 2^-1074 at least
             * (subnormal results) */
            long double uf = fmaxl(rf * 0x1p-24L, 0x1p-150L);
            long double ud = fmaxl(rd * 0x1p-53L, 0x1p-1075L);
            worst32 = fmax(worst32, (double)(fabsl(yf[at] - rf) / uf));
            worst64 = fmax(worst64, (double)(fabsl(yd[at] - rd) / ud));
        }
        CHECK(worst32 <= 4, "softmax tail f32 layout %d: %.2f half-ulps",
              layout, worst32);
        CHECK(worst64 <= 4, "softmax tail f64 layout %d: %.2f half-ulps",
              layout, worst64);
    }
}

static void check_args(void) {
    ptrdiff_t xs[3] = {1, 1, 1}, os[2] = {1, 1};
    double x = 0, out = 0;
    CHECK(lsm_logsumexp_f64(-1, 1, 1, &x, xs, &out, os) == LSM_EINVAL,
          "negative length rejected");
    CHECK(lsm_logsumexp_f64(1, 1, 1, NULL, xs, &out, os) == LSM_EINVAL,
          "NULL input rejected");
}

/* In-place calls (output = input, same pointer and strides) give exactly the
 * out-of-place results, on the short-row, row and column paths, with an inf
 * and a nan row/column among regular ones. */
#define DEFINE_CHECK_IN_PLACE(T, SFX)                                          \
    static void check_in_place_##SFX(ptrdiff_t outer, ptrdiff_t n,             \
                                     ptrdiff_t inner) {                        \
        const ptrdiff_t N = outer * n * inner;                                 \
        const ptrdiff_t s[3] = {n * inner, inner, 1};                          \
        T *x = malloc(sizeof(T) * (size_t)N),                                  \
          *v = malloc(sizeof(T) * (size_t)N);                                  \
        T *y = malloc(sizeof(T) * (size_t)N),                                  \
          *d = malloc(sizeof(T) * (size_t)N);                                  \
        T *a = malloc(sizeof(T) * (size_t)N),                                  \
          *b = malloc(sizeof(T) * (size_t)N);                                  \
        for (ptrdiff_t i = 0; i < N; i++) {                                    \
            x[i] = (T)(4 * nrand());                                           \
            v[i] = (T)nrand();                                                 \
        }                                                                      \
        x[0] = (T)INFINITY;                                                    \
        x[N - 1] = (T)NAN;                                                     \
        for (int op = 0; op < 4; op++) {                                       \
            memcpy(a, x, sizeof(T) * (size_t)N);                               \
            memcpy(b, v, sizeof(T) * (size_t)N);                               \
            int ok = 1;                                                        \
            if (op == 0) {                                                     \
                lsm_softmax_##SFX(outer, n, inner, x, s, y, s);                \
                lsm_softmax_##SFX(outer, n, inner, a, s, a, s);                \
            } else if (op == 1) {                                              \
                lsm_log_softmax_##SFX(outer, n, inner, x, s, y, s);            \
                lsm_log_softmax_##SFX(outer, n, inner, a, s, a, s);            \
            } else if (op == 2) { /* y over v, dy over x: crossed */           \
                lsm_log_softmax_jvp_##SFX(outer, n, inner, x, s, v, s, y, s,   \
                                          d, s);                               \
                lsm_log_softmax_jvp_##SFX(outer, n, inner, a, s, b, s, b, s,   \
                                          a, s);                               \
                ok = memcmp(a, d, sizeof(T) * (size_t)N) == 0;                 \
                memcpy(a, b, sizeof(T) * (size_t)N);                           \
            } else {                                                           \
                lsm_log_softmax_vjp_##SFX(outer, n, inner, x, s, v, s, y, s);  \
                lsm_log_softmax_vjp_##SFX(outer, n, inner, a, s, b, s, a, s);  \
            }                                                                  \
            ok = ok && memcmp(a, y, sizeof(T) * (size_t)N) == 0;               \
            CHECK(ok,                                                          \
                  "in place == out of place: " #SFX " op %d (%td, %td, %td)",  \
                  op, outer, n, inner);                                        \
        }                                                                      \
        free(x);                                                               \
        free(v);                                                               \
        free(y);                                                               \
        free(d);                                                               \
        free(a);                                                               \
        free(b);                                                               \
    }
DEFINE_CHECK_IN_PLACE(double, f64)
DEFINE_CHECK_IN_PLACE(float, f32)

static void check_in_place(void) {
    const ptrdiff_t shapes[][3] = {{301, 7, 1},
                                   {40, 100, 1},
                                   {3, 1000, 1},
                                   {2, 3000, 1},
                                   {2, 50, 300},
                                   {1, 9, 2000},
                                   {500, 8, 1},
                                   {300, 16, 1},
                                   {400, 11, 1},
                                   /* column blocks whose statistics run
                                    * between the previous block's output
                                    * rows (LSM_COL_PIPE_MIN) */
                                   {2, 1100, 300}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_in_place_f64(shapes[i][0], shapes[i][1], shapes[i][2]);
        check_in_place_f32(shapes[i][0], shapes[i][1], shapes[i][2]);
    }
}

static void check_all(void) {
    const ptrdiff_t ns[] = {1, 2, 7, 8, 33, 64, 65, 100, 319, 1000, 1025, 5000};
    for (int dbl = 0; dbl < 2; dbl++) {
        for (int order = 0; order < 3; order++) {
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                check_layout(3, ns[i], 5, order, dbl);
                check_layout(2, ns[i], 300, order, dbl);
                check_layout(301, ns[i], 1, order, dbl); /* short rows */
            }
        }
    }
    /* column blocks at every offset from a cache line: the first block of
     * a row is cut short to end on a line (outer stride a multiple of 64
     * bytes for (3, 200, 300), not for (2, 100, 301)) */
    for (int dbl = 0; dbl < 2; dbl++) {
        for (data_offset = 0; data_offset < 16; data_offset++) {
            check_layout(3, 200, 300, 1, dbl);
            check_layout(2, 100, 301, 1, dbl);
        }
    }
    data_offset = 0;
    /* streamed float32 softmax rows of 64-256 KB: the two-exp pass (output
     * of 8 MiB and more, so streamed at the default threshold) */
    check_layout(70, 32000, 1, 0, 0);
    /* an axis long enough that a column block's inputs exceed
     * LSM_COL_BLOCK_CACHE (4 MB: n > 4096 float32, 8192 float64): the
     * output pass of log_softmax and the JVP row by row over the whole
     * width, from the parameters of every column (colwise_) */
    check_layout(1, 4200, 300, 1, 0);
    check_layout(1, 8300, 130, 1, 1);
    /* every short length that has its own transpose instance (2..16) and
     * the ones either side, over several blocks of the short-row path */
    for (int dbl = 0; dbl < 2; dbl++) {
        for (ptrdiff_t n = 1; n <= 17; n++) {
            check_layout(1500, n, 1, 0, dbl);
        }
    }
    /* a row longer than LSM_SEGS chunks: softmax's segments of 2 chunks */
    for (int dbl = 0; dbl < 2; dbl++) {
        check_layout(1, 1100000, 1, 0, dbl); /* contiguous */
        check_layout(1, 1100000, 1, 2, dbl); /* strided: gathered chunks */
        /* softmax's two-exp pass for rows of LSM_LONG_ROW or more */
        check_layout(1, 3300000, 1, 0, dbl);
        check_layout(1, 3300000, 1, 2, dbl);
    }
    check_special_rows();
    check_long_softmax();
    check_exp();
    check_expsum();
    check_log();
    check_softmax_tail();
    check_args();
    check_in_place();
    for (ptrdiff_t w = 4; w <= 128; w *= 2) {
        check_rows8_f32(w);
        check_rows8_f64(w);
    }
    check_pipeline();
    check_threads();
}

int main(void) {
    printf("isa: %s\n", lsm_isa());
    check_all();
    /* every output written by streaming stores (the default streams only
     * outputs of 8 MiB and more): the same bits as plain stores */
    const ptrdiff_t dflt = lsm_get_stream_bytes();
    CHECK(dflt == ((ptrdiff_t)8 << 20), "default stream bytes %td", dflt);
    check_stream();
    lsm_set_stream_bytes(0);
    CHECK(lsm_get_stream_bytes() == 0, "stream bytes read back: %td",
          lsm_get_stream_bytes());
    lsm_set_stream_bytes(dflt);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
