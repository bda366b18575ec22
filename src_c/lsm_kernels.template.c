/*
 * lsm_kernels.template.c -- the kernels, written once for both dtypes.
 *
 * Included by lsm_kernels.c with
 *     LSM_T    the element type (float or double)
 *     LSM_SFX  the name suffix (f32 or f64)
 *     LSM_TBITS the width of T in bits (32 or 64)
 * and compiled once per inclusion. Not a translation unit on its own.
 *
 * Layout of the work (see lsm.h for the (outer, n, inner) view):
 *   - rows along n are walked in chunks of LSM_CHUNK elements that stay in
 *     L1 between the passes of the chunk; a strided row is gathered into a
 *     stack buffer chunk by chunk (and results scattered back);
 *   - the row statistics are the online max-and-sum state (m, c, rest):
 *     m the running max, c the count (or summed weight) of the entries equal
 *     to m, rest = sum of exp(x - m) over the other entries. A chunk whose max
 *     exceeds m rescales the state once; every element costs one exp.
 *     log(sum exp) = m + log(c) + log1p(rest / c) keeps the accuracy of
 *     results close to m (logsumexp([0, -40]) = 4.25e-18, not 0);
 *   - when the reduced axis is strided but inner is contiguous, columns are
 *     processed side by side in blocks (vectorised across inner), never
 *     through a transposed copy;
 *   - rows whose max is +-inf or nan-only take a short scalar path that gives
 *     scipy.special's IEEE answers.
 * Partial sums over LSM_SUB elements are in T (per SIMD lane, so at most
 * 64 float32 or 128 float64 sequential adds); across them they are in
 * double, so float32 rows of millions of elements keep their accuracy.
 */

#define T LSM_T
#define FN(name) LSM_CAT(name, LSM_SFX)
/* exported names: lsm_<op>_<dtype><isa suffix> (empty suffix when the file
 * is built once, without run-time dispatch) */
#define API(name) LSM_CAT(FN(name), LSM_ISA_SFX)
#define EXP FN(lsm_exp_scalar_)
#define EXPSUM FN(lsm_expsum_)
#define EXPNEG FN(lsm_expneg_)
#define EXPNEG_MUL FN(lsm_expneg_mul_)
#define EXPNEG_FACTOR FN(lsm_expneg_factor_)
#define NT_LINE LSM_CAT(lsm_nt_line_, LSM_CAT(LSM_SFX, _))
/* 1 where the build has an explicitly vectorised exp for T's sum terms */
#define HAVE_VEXP LSM_CAT(LSM_HAVE_VEXP_, LSM_SFX)
#define HAVE_ROW8 LSM_CAT(LSM_HAVE_ROW8_, LSM_SFX)
#define HAVE_VSUM LSM_CAT(LSM_HAVE_VSUM_, LSM_SFX)
#define T_INF ((T)INFINITY)
/* the most elements of a short block (short_per_block_) */
#define SHORT_MAX (sizeof(T) == 4 ? LSM_SHORT_BLOCK32 : LSM_SHORT_BLOCK)
#define TILE_BIG LSM_CAT(LSM_TILE_BIG_, LSM_SFX)
#define TILE_BIG_K LSM_CAT(LSM_TILE_BIG_K_, LSM_SFX)
#define TILE_SMALL LSM_CAT(LSM_TILE_SMALL_, LSM_SFX)
#define TILE_SMALL_K LSM_CAT(LSM_TILE_SMALL_K_, LSM_SFX)
/* an integer as wide as T, for counts kept in SIMD lanes beside T sums */
#define ITYPE LSM_CAT(LSM_CAT(int, LSM_TBITS), _t)
/* the 512-bit vector of T and its operations (lsm_v_NAME_f32 or _f64, in
 * lsm_kernels.c), where the build has them */
#define V LSM_CAT(lsm_v_, LSM_SFX)
#define VF(name) LSM_CAT(LSM_CAT(lsm_v_, name), LSM_CAT(_, LSM_SFX))

typedef struct {
    T m;         /* running max (over entries with nonzero weight) */
    double c;    /* count / summed weight of entries equal to m */
    double rest; /* sum of w * exp(x - m) over the other entries */
    double tv;   /* JVP: sum of exp(x - m) * v over all entries */
} FN(stats_);
#define STATS FN(stats_)
/* The max of a row's first chunk, taken by the previous row's last chunk
 * (row_stats_, logsumexp of float64 at AVX-512, lse_rows_range_): next is
 * the row to take it from (NULL: none); have, whether m holds it. A/B (1
 * thread, Zen 4, cold, avx512, huge pages, 3 runs): rows of 256 to 2048
 * 0.79-0.96x the time, rows of 32000 unchanged. next2 (NULL: none): the row
 * after next, whose first chunk that last chunk also hints (logsumexp), so
 * that the max it takes from next is read from the cache: the max alone,
 * read at the pace of the exps, left the row waiting on memory. A/B (1
 * thread, Intel Xeon family 6 model 207, cold, 16 bytes past a line,
 * avx512) against none: float32 (4096, 1024) 0.61-0.66x the time (hot
 * 0.59x, 2 threads 0.65x), (8192, 512) 0.64x, (5000, 700) 0.66x, (2048,
 * 2048) 0.75x (2 threads 0.89x); float64 (8192, 512) 0.60x (2 threads
 * 0.74x), (16384, 256) 0.68x, (1024, 4096) 0.93x; rows of 16000 and more
 * 0.96-1.01x. */
typedef struct {
    const T *next, *next2;
    T m;
    int have;
} FN(carry_);
/* Row r of the rows at x (outer x inner, strides xs) if r < hi, else NULL:
 * a carry_'s next and next2 */
static inline const T *FN(carry_row_)(const T *x, const ptrdiff_t xs[3],
                                      ptrdiff_t inner, ptrdiff_t r,
                                      ptrdiff_t hi) {
    return r < hi ? x + r / inner * xs[0] + r % inner * xs[2] : NULL;
}
/* Elements per chunk of logsumexp's row statistics (row_stats_): 4 KB in
 * both dtypes, where the other ops take LSM_CHUNK (8 KB of float64). A/B
 * (1 thread, Zen 4, cold, 8M elements), float64 against LSM_CHUNK:
 * rows of 1024 to 8M 0.84-0.99x the time at avx512, 0.9-0.97x at avx2
 * (rows of 256 elements per chunk: no better); float32 chunks of 512
 * elements took 1.0-1.06x. log_softmax and the JVP in 4 KB float64 chunks
 * were mixed (0.93-1.11x). Weighted rows keep LSM_CHUNK. */
#define LSE_CHUNK (sizeof(T) == 8 ? LSM_CHUNK / 2 : LSM_CHUNK)

/* Whether an output of `elems` elements is written with streaming stores
 * (LSM_OUT_LOOP). */
static int FN(stream_)(ptrdiff_t elems) {
    return LSM_HAVE_NT && lsm_stream_(elems * (ptrdiff_t)sizeof(T));
}

/* Hints that the lines at either end of the output row y (n elements)
 * will be written, where they are partial: a streamed row (LSM_OUT_LOOP)
 * writes them with plain stores, and each such store that misses waits for
 * its line to be read (read for ownership) while the streamed stores queue
 * up behind it. NumPy's large arrays start 16 bytes past a cache line, so
 * every row of a whole number of lines has two such ends (one line shared
 * with each neighbour). Measured (1 thread, Intel Xeon family 6 model 207,
 * cold, ab_kernels AB_OFFSET_NEW=16 against 0, one build): without the
 * hints float32 log_softmax of (4096, 1024) took 1.25x the time of aligned
 * arrays, the JVP 1.18x, softmax of (512, 32000) 1.09x; with them
 * 1.0-1.06x. A/B at 16 bytes past a line against no hints, avx512:
 * float32 log_softmax (4096, 1024) 0.80x the time, the JVP 0.9x, softmax
 * (512, 32000) 0.94x, (100000, 80) 0.76x, the JVP (512, 32000) 0.87-0.89x,
 * (100000, 80) 0.75x; float64 JVP (100000, 80) 0.9x, (65536, 128) 0.95x;
 * avx2: float32 softmax (100000, 80) 0.66x, (65536, 128) 0.79-0.91x, the
 * JVP 0.70x and 0.74-0.79x, log_softmax (65536, 128) 0.91-0.93x; aligned
 * arrays 0.97-1.03x (the hints are skipped where no row has a partial
 * line, out_partial_). */
static LSM_ALWAYS_INLINE void FN(out_ends_)(T *y, ptrdiff_t n) {
    if ((uintptr_t)y % 64 != 0) {
        LSM_PREFETCHW(y);
    }
    LSM_PREFETCHW_END(y, n);
}

/* y[0:n] = b[0:n] with streaming stores (y and b apart). */
static void FN(stream_copy_)(T *restrict y, const T *restrict b, ptrdiff_t n) {
    LSM_OUT_LOOP(1, y, n, b[i]);
}

/* ---------------------------------------------------------------- chunks */

/* Prefetch the w elements at p (one hint per 64-byte line). */
static void FN(prefetch_)(const T *p, ptrdiff_t w, int write) {
    const ptrdiff_t step = (ptrdiff_t)(64 / sizeof(T));
    for (ptrdiff_t k = 0; k < w; k += step) {
        if (write) {
            LSM_PREFETCH(p + k, 1);
        } else {
            LSM_PREFETCH(p + k, 0);
        }
    }
}

/* Hints for the elements [j0, j1) of the next chunk at pf (pfn elements, pf
 * may be NULL): the chunk passes issue them a part at a time, so that the
 * next chunk (or row) streams in from memory while this one computes from
 * L1. l2: into L2 only (see short_l2_). Inlined always, so that a constant
 * l2 leaves no branch; the branch stays inside the one loop: written as
 * two loops guarded by l2 and !l2, GCC 12 deleted the hint loops of
 * row_softmax_ and short_sums_all_ (no prefetch instruction was left). */
static LSM_ALWAYS_INLINE void FN(prefetch_part_)(const T *pf, ptrdiff_t pfn,
                                                 ptrdiff_t j0, ptrdiff_t j1,
                                                 int l2) {
    const ptrdiff_t step = (ptrdiff_t)(64 / sizeof(T));
    j1 = j1 < pfn ? j1 : pfn;
    for (ptrdiff_t i = j0; pf && i < j1; i += step) {
        if (l2) {
            LSM_PREFETCH_L2(pf + i);
        } else {
            LSM_PREFETCH(pf + i, 0);
        }
    }
}

/* max(m, x[0..n)): four SIMD vectors of partial maxima, so that the loop
 * runs at load throughput rather than at the latency of one max chain. */
static T FN(chunk_max_)(const T *restrict x, ptrdiff_t n, T m) {
    enum { A = 4 * LSM_VEC_BYTES / (int)sizeof(T) };
    if (n < 4 * A) { /* short: one vector of maxima reduces faster */
#pragma omp simd reduction(max : m)
        for (ptrdiff_t i = 0; i < n; i++) {
            m = x[i] > m ? x[i] : m;
        }
        return m;
    }
    T acc[A];
    for (int l = 0; l < A; l++) {
        acc[l] = m;
    }
    ptrdiff_t i = 0;
    for (; i + A <= n; i += A) {
#pragma omp simd
        for (int l = 0; l < A; l++) {
            acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
        }
    }
    for (; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
#pragma omp simd reduction(max : m)
    for (int l = 0; l < A; l++) {
        m = acc[l] > m ? acc[l] : m;
    }
    return m;
}

static T FN(chunk_max_w_)(const T *restrict x, const T *restrict w, ptrdiff_t n,
                          T m) {
#pragma omp simd reduction(max : m)
    for (ptrdiff_t i = 0; i < n; i++) {
        m = (w[i] != 0 && x[i] > m) ? x[i] : m;
    }
    return m;
}

static int FN(chunk_has_nan_)(const T *restrict x, const T *restrict w,
                              ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        if (x[i] != x[i] && (w == NULL || w[i] != 0)) {
            return 1;
        }
    }
    return 0;
}

/* A row whose output is still to be written (see rowwise_): log_softmax
 * y = (x - m) - l and, when v is set (the JVP), dy = v - q. In place is
 * allowed (y and dy any of x and v): each element of x and v is read before
 * the outputs at its index are written. */
typedef struct {
    const T *x, *v;
    T *y, *dy;
    T m, l, q;
    int nt; /* its stores streaming (LSM_OUT_LOOP) */
} FN(pending_);

/* p, its pointers moved on by i0 elements (or all NULL when p is NULL). */
static FN(pending_) FN(pending_at_)(const FN(pending_) * p, ptrdiff_t i0) {
    FN(pending_) q = {NULL, NULL, NULL, NULL, 0, 0, 0, 0};
    if (p) {
        q = *p;
        q.x += i0;
        q.y += i0;
        q.v = q.v ? q.v + i0 : NULL;
        q.dy = q.dy ? q.dy + i0 : NULL;
    }
    return q;
}

/* y = (x - m) - lse_m, streamed when nt; y may be x (in place) */
static void FN(chunk_log_softmax_)(const T *x, ptrdiff_t n, T m, T lse_m, T *y,
                                   int nt) {
    LSM_OUT_LOOP(nt, y, n, (x[i] - m) - lse_m);
}

/* Write the pending row p's output over its first n elements (p's pointers
 * moved on to where to start). */
static void FN(pending_out_)(const FN(pending_) * p, ptrdiff_t n) {
    const T *x = p->x, *v = p->v;
    T *y = p->y, *dy = p->dy;
    const T m = p->m, l = p->l, q = p->q;
    if (v == NULL) {
        FN(chunk_log_softmax_)(x, n, m, l, y, p->nt);
        return;
    }
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        T a = (x[i] - m) - l, b = v[i] - q;
        y[i] = a;
        dy[i] = b;
    }
}

/* a[0] + ... + a[LN - 1] in a fixed tree order: log2(LN) vector adds,
 * where an "omp simd reduction" ends in an in-order chain of LN scalar
 * adds. */
static LSM_ALWAYS_INLINE T FN(lanes_sum_)(T *restrict a) {
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    for (int h = LN / 2; h > 0; h /= 2) {
#pragma omp simd
        for (int k = 0; k < h; k++) {
            a[k] += a[k + h];
        }
    }
    return a[0];
}

/* TERM(i, l) for the elements i of [j0, j1), element i in lane l: whole
 * vectors of LN lanes, then the rest in lanes 0, 1, ... (LN in scope) */
#define LSM_LANES(j0, j1, TERM)                                                \
    do {                                                                       \
        ptrdiff_t i_ = (j0);                                                   \
        for (; i_ + LN <= (j1); i_ += LN) {                                    \
            _Pragma("omp simd") for (int l_ = 0; l_ < LN; l_++) {              \
                TERM(i_ + l_, l_);                                             \
            }                                                                  \
        }                                                                      \
        const int r_ = (int)((j1) - i_);                                       \
        _Pragma("omp simd") for (int l_ = 0; l_ < r_; l_++) {                  \
            TERM(i_ + l_, l_);                                                 \
        }                                                                      \
    } while (0)

/* Adds to st the lanes' sums of all terms (a) and of the terms of entries
 * below the max (e): c gets all - rest, the count of entries at the max
 * plus rounding errors far below 1/2 (the lane loops run on blocks shorter
 * than LSM_MID_BYTES: fewer than LSM_MID_BYTES / LSM_VEC_BYTES terms a
 * lane). */
static LSM_ALWAYS_INLINE void FN(lanes_stats_)(T *restrict a, T *restrict e,
                                               STATS *st) {
    const T rest = FN(lanes_sum_)(e);
    st->c += rint((double)FN(lanes_sum_)(a) - (double)rest);
    st->rest += (double)rest;
}

#if HAVE_VEXP || HAVE_VSUM
/* The hint of step i of a vector loop (float64 8 lanes, float32 16: one
 * 64-byte line a step)
 * for the next chunk's pfn elements at pf (NULL: none): hints spread over
 * the loop, one a step, rather than prefetch_part_'s burst before it. A
 * burst of LSM_SUB elements (128 lines of float64 at avx512) held the core
 * while the hints waited for miss buffers (perf: ~10% of the pass on the
 * hint loop). l2: into L2 only. */
static LSM_ALWAYS_INLINE void FN(vec_hint_)(const T *pf, ptrdiff_t pfn,
                                            ptrdiff_t i, int l2) {
    if (pf && i < pfn) {
        if (l2) {
            LSM_PREFETCH_L2(pf + i);
        } else {
            LSM_PREFETCH(pf + i, 0);
        }
    }
}

#endif

#if HAVE_VEXP || HAVE_VSUM
/* One step of the vector sums (sumexp_vec_ for float64, sumexp_vec16_ for
 * float32): the elements [i, i + L) of lanes k, the
 * others read as x = -inf, v = 0 (terms 0, not stored). Each term t =
 * exp(x - m) goes to a (all terms) and, where x != m, to e; where below (no
 * entry at the max), to e only. hv: f += t * v. xn (NULL: none): *vmx
 * raised by xn's elements. has_prev: pending row p's output over the same
 * elements. */
static LSM_ALWAYS_INLINE void FN(vsum_step_)(const T *restrict x,
                                             const T *restrict v, ptrdiff_t i,
                                             unsigned k, V vm, V *a, V *e, V *f,
                                             V *vmx, const FN(pending_) * p,
                                             int has_prev, int hv, int below,
                                             const T *restrict xn) {
    const V ninf = VF(set1)(-INFINITY);
    const int full = k == VF(lanes)(64 / (ptrdiff_t)sizeof(T));
    const V xv = full ? VF(loadu)(x + i) : VF(mask_loadu)(ninf, k, x + i);
    const V d = VF(sub)(xv, vm);
    const V t = VF(expsum)(d);
    if (below) {
        *e = VF(add)(*e, t);
    } else {
        *a = VF(add)(*a, t);
        *e = VF(mask_add)(*e, VF(ne)(d, VF(zero)()), t);
    }
    if (hv) {
        *f = VF(fmadd)(t, VF(maskz_loadu)(k, v + i), *f);
    }
    if (xn) {
        *vmx = VF(max)(VF(mask_loadu)(ninf, k, xn + i), *vmx);
    }
    if (has_prev) {
        const V py =
            VF(sub)(VF(sub)(VF(maskz_loadu)(k, p->x + i), VF(set1)(p->m)),
                    VF(set1)(p->l));
        if (hv) {
            const V pd = VF(sub)(VF(maskz_loadu)(k, p->v + i), VF(set1)(p->q));
            VF(mask_storeu)(p->dy + i, k, pd);
        }
        VF(mask_storeu)(p->y + i, k, py);
    }
}
#endif

#if HAVE_VEXP
/* lanes_stats_ of the 8 lanes of a (all terms) and e (the terms below the
 * max), each summed by _mm512_reduce_add_pd. */
static LSM_ALWAYS_INLINE void FN(vec_stats_)(__m512d a, __m512d e, STATS *st) {
    const double rest = _mm512_reduce_add_pd(e);
    st->c += rint(_mm512_reduce_add_pd(a) - rest);
    st->rest += rest;
}

/* The sums of sumexp_block_ (v NULL, hv 0) and sumexp_v_block_ (v and hv
 * set) over [j0, j1) with lsm_vexpsum_f64_, 8 lanes at a time and the last
 * lanes masked, fused with pending row p's output when has_prev. The same
 * rest with and without v, so that log_softmax and the JVP's y agree.
 * A/B (1 thread, Zen 4, cold, 8M elements, against lsm_expsum_f64 in the
 * compiler's loops): logsumexp of rows of 1024 to 4M 0.80-0.84x the
 * time, log_softmax 0.90-0.97x, the JVP 0.92-1.0x; mid-length rows (80
 * and 128 elements, in pairs: pair_vec_) 0.81, 0.89-0.91 and 0.96-0.97x.
 * sumexp_short_ (so sumexp_block_ and sumexp_v_block_) and pair_sums_
 * call it for blocks of any length.
 * xn (NULL: none): the max of its elements [i, i + 8) for the full steps
 * i with i + 8 <= nn is also taken into mx (chunk_sumexp_max_).
 * pf and pfv (NULL: none): each full step i with i < pfn hints the line at
 * pf + i (and pfv + i) into L1 (vec_hint_). */
static LSM_ALWAYS_INLINE void
FN(sumexp_vec_)(const T *restrict x, const T *restrict v, ptrdiff_t j0,
                ptrdiff_t j1, T m, STATS *st, const FN(pending_) * p,
                int has_prev, int hv, const T *restrict xn, ptrdiff_t nn,
                __m512d *mx, const T *pf, const T *pfv, ptrdiff_t pfn) {
    const __m512d vm = _mm512_set1_pd(m);
    __m512d a = _mm512_setzero_pd(), e = a, f = a;
    ptrdiff_t i = j0;
    const __mmask8 all8 = 0xff;
    for (; i + 8 <= j1; i += 8) {
        FN(vec_hint_)(pf, pfn, i, 0);
        FN(vec_hint_)(pfv, pfn, i, 0);
        FN(vsum_step_)
        (x, v, i, all8, vm, &a, &e, &f, NULL, p, has_prev, hv, 0, NULL);
        if (xn && i + 8 <= nn) {
            *mx = _mm512_max_pd(_mm512_loadu_pd(xn + i), *mx);
        }
    }
    if (i < j1) {
        const __mmask8 k = lsm_lanes8_(j1 - i);
        FN(vsum_step_)
        (x, v, i, k, vm, &a, &e, &f, NULL, p, has_prev, hv, 0, NULL);
    }
    FN(vec_stats_)(a, e, st);
    if (hv) {
        st->tv += _mm512_reduce_add_pd(f);
    }
}

/* sumexp_vec_ of two rows side by side (no pending row): each row's
 * steps, adds and order are sumexp_vec_'s, so a row gets the same sums
 * paired or alone. */
static LSM_ALWAYS_INLINE void
FN(pair_vec_)(const T *restrict x0, const T *restrict x1, const T *restrict v0,
              const T *restrict v1, ptrdiff_t j0, ptrdiff_t j1, T m0, T m1,
              STATS *s0, STATS *s1, int hv) {
    const __m512d vm0 = _mm512_set1_pd(m0), vm1 = _mm512_set1_pd(m1);
    __m512d a0 = _mm512_setzero_pd(), e0 = a0, f0 = a0;
    __m512d a1 = a0, e1 = a0, f1 = a0;
    const __mmask8 all8 = 0xff;
    ptrdiff_t i = j0;
    for (; i + 8 <= j1; i += 8) {
        FN(vsum_step_)
        (x0, v0, i, all8, vm0, &a0, &e0, &f0, NULL, NULL, 0, hv, 0, NULL);
        FN(vsum_step_)
        (x1, v1, i, all8, vm1, &a1, &e1, &f1, NULL, NULL, 0, hv, 0, NULL);
    }
    if (i < j1) {
        const __mmask8 k = lsm_lanes8_(j1 - i);
        FN(vsum_step_)
        (x0, v0, i, k, vm0, &a0, &e0, &f0, NULL, NULL, 0, hv, 0, NULL);
        FN(vsum_step_)
        (x1, v1, i, k, vm1, &a1, &e1, &f1, NULL, NULL, 0, hv, 0, NULL);
    }
    FN(vec_stats_)(a0, e0, s0);
    FN(vec_stats_)(a1, e1, s1);
    if (hv) {
        s0->tv += _mm512_reduce_add_pd(f0);
        s1->tv += _mm512_reduce_add_pd(f1);
    }
}
#endif

#if HAVE_VSUM
/* The float32 sums of sumexp_block_ and sumexp_v_block_ over blocks of
 * LSM_MID_BYTES and more, written with AVX-512 intrinsics (the role of
 * sumexp_vec_ for float64): 16 lanes a step, the last step's lanes masked
 * (they read as x = -inf, v = 0: terms 0, not stored), each lane's terms in
 * order and the lanes summed by _mm512_reduce_add_ps. Every path that sums
 * such a block comes here (rows alone or in groups, pipelined or not,
 * log_softmax and the JVP, any thread count), so they agree bit for bit
 * whatever code the compiler makes of the loops it would otherwise write.
 * v (hv): the JVP's tv. has_prev: pending row p's output over the same
 * elements. below (no entry at the max m; no v): all terms are "rest" (the
 * same sums, one add a step fewer). xn (NULL: none): *mx raised by
 * xn[j0, j1). pf, pfv (NULL: none): step i hints the line at pf + i (and
 * pfv + i) while i < pfn, spread over the loop (see vec_hint_). hv,
 * has_prev, below and whether xn is set are constants where it is
 * inlined. */
static LSM_ALWAYS_INLINE void
FN(sumexp_vec16_)(const T *restrict x, const T *restrict v, ptrdiff_t j0,
                  ptrdiff_t j1, T m, STATS *st, const FN(pending_) * p,
                  int has_prev, int hv, int below, const T *restrict xn, T *mx,
                  const T *pf, const T *pfv, ptrdiff_t pfn) {
    const __m512 vm = _mm512_set1_ps(m);
    __m512 a = _mm512_setzero_ps(), e = a, f = a;
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    ptrdiff_t i = j0;
    for (; i + 16 <= j1; i += 16) {
        FN(vec_hint_)(pf, pfn, i, 0);
        FN(vec_hint_)(pfv, pfn, i, 0);
        FN(vsum_step_)
        (x, v, i, 0xffffu, vm, &a, &e, &f, &vmx, p, has_prev, hv, below, xn);
    }
    if (i < j1) {
        const __mmask16 k = (__mmask16)((1u << (j1 - i)) - 1u);
        FN(vsum_step_)
        (x, v, i, k, vm, &a, &e, &f, &vmx, p, has_prev, hv, below, xn);
    }
    const float rest = _mm512_reduce_add_ps(e);
    if (!below) {
        st->c += rint((double)_mm512_reduce_add_ps(a) - (double)rest);
    }
    st->rest += (double)rest;
    if (hv) {
        st->tv += (double)_mm512_reduce_add_ps(f);
    }
    if (xn) {
        const T r = _mm512_reduce_max_ps(vmx);
        *mx = r > *mx ? r : *mx;
    }
}
#endif

/* sumexp_block_ and sumexp_v_block_ over blocks shorter than
 * LSM_MID_BYTES (a mid-length row's only block, a long row's last), lane by
 * lane and summed in a fixed tree (lanes_sum_), as pair_stats_ does, rather
 * than an "omp simd reduction" ending in an in-order chain of LN scalar adds
 * whose latency such short blocks do not hide. v (the JVP) when hv; the
 * pending row p's output (with dy when hv) when has_prev. The same c and
 * rest with and without v, so that log_softmax and the JVP's y agree.
 * Where HAVE_VEXP: blocks of any length, by sumexp_vec_. */
static LSM_ALWAYS_INLINE void
FN(sumexp_short_)(const T *restrict x, const T *restrict v, ptrdiff_t j0,
                  ptrdiff_t j1, T m, STATS *st, const FN(pending_) * p,
                  int has_prev, int hv) {
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    const T *xp = has_prev ? p->x : NULL, *vp = has_prev && hv ? p->v : NULL;
    T *yp = has_prev ? p->y : NULL, *dyp = has_prev && hv ? p->dy : NULL;
    const T mp = has_prev ? p->m : 0, lp = has_prev ? p->l : 0;
    const T qp = has_prev && hv ? p->q : 0;
#if HAVE_VEXP
    (void)xp, (void)vp, (void)yp, (void)dyp, (void)mp, (void)lp, (void)qp;
    FN(sumexp_vec_)
    (x, v, j0, j1, m, st, p, has_prev, hv, NULL, 0, NULL, NULL, NULL, 0);
    return;
#endif
    T a[LN], e[LN], f[LN];
    for (int l = 0; l < LN; l++) {
        a[l] = e[l] = f[l] = 0;
    }
#define LSM_SHORT_TERM(I, L)                                                   \
    do {                                                                       \
        const T d = x[I] - m, t = EXPSUM(d);                                   \
        a[L] += t;                                                             \
        e[L] += d != 0 ? t : (T)0;                                             \
        if (hv) {                                                              \
            f[L] += t * v[I];                                                  \
        }                                                                      \
        if (has_prev) {                                                        \
            const T py = (xp[I] - mp) - lp;                                    \
            if (hv) {                                                          \
                const T pd = vp[I] - qp;                                       \
                dyp[I] = pd;                                                   \
            }                                                                  \
            yp[I] = py;                                                        \
        }                                                                      \
    } while (0)
    LSM_LANES(j0, j1, LSM_SHORT_TERM);
#undef LSM_SHORT_TERM
    FN(lanes_stats_)(a, e, st);
    if (hv) {
        st->tv += (double)FN(lanes_sum_)(f);
    }
}

/* The sums of chunk_sumexp_ over [j0, j1) of x, fused with the output of
 * pending row p over the same elements when has_prev (p's pointers at the
 * chunk's start), or with *mx raised to the max of xn[j0, j1) when xn (the
 * next chunk, chunk_sumexp_maxp_). below, has_prev and whether xn is set
 * are constants where it is inlined, so each variant is its own loop, and
 * the sums are the same in all of them. p's y may be its x (each element is
 * read before it is written, at the same index); p's rows never overlap
 * x. */
static LSM_ALWAYS_INLINE void
FN(sumexp_block_)(const T *restrict x, ptrdiff_t j0, ptrdiff_t j1, T m,
                  STATS *st, const FN(pending_) * p, int below, int has_prev,
                  const T *restrict xn, T *mx) {
    const T *xp = has_prev ? p->x : NULL;
    T *yp = has_prev ? p->y : NULL;
    const T mp = has_prev ? p->m : 0, lp = has_prev ? p->l : 0;
    T mxl = xn ? *mx : (T)0;
#if HAVE_VSUM
    if ((j1 - j0) * (ptrdiff_t)sizeof(T) >= LSM_MID_BYTES) {
        if (below && !has_prev) {
            FN(sumexp_vec16_)
            (x, NULL, j0, j1, m, st, p, 0, 0, 1, xn, mx, NULL, NULL, 0);
        } else {
            FN(sumexp_vec16_)
            (x, NULL, j0, j1, m, st, p, has_prev, 0, 0, xn, mx, NULL, NULL, 0);
        }
        return;
    }
#endif
    if (HAVE_VEXP || (j1 - j0) * (ptrdiff_t)sizeof(T) < LSM_MID_BYTES) {
        FN(sumexp_short_)(x, NULL, j0, j1, m, st, p, has_prev, 0);
        if (xn) {
            *mx = FN(chunk_max_)(xn + j0, j1 - j0, mxl);
        }
        return;
    }
    if (below) { /* no entry of the chunk is at the max: all are rest */
        T rest = 0;
#pragma omp simd reduction(+ : rest) reduction(max : mxl)
        for (ptrdiff_t i = j0; i < j1; i++) {
            rest += EXPSUM(x[i] - m);
            if (has_prev) {
                yp[i] = (xp[i] - mp) - lp;
            }
            if (xn) {
                mxl = xn[i] > mxl ? xn[i] : mxl;
            }
        }
        st->rest += (double)rest;
        if (xn) {
            *mx = mxl;
        }
        return;
    }
    /* all: every term; rest: the terms of entries below the max. The
     * entries at the max add exactly 1 each to all, so all - rest is their
     * count plus rounding errors far below 1/2 (<= 1024 terms, at most 64
     * per lane). */
    T all = 0, rest = 0;
#pragma omp simd reduction(+ : all, rest) reduction(max : mxl)
    for (ptrdiff_t i = j0; i < j1; i++) {
        T d = x[i] - m;
        T t = EXPSUM(d);
        all += t;
        rest += d != 0 ? t : (T)0;
        if (has_prev) {
            yp[i] = (xp[i] - mp) - lp;
        }
        if (xn) {
            mxl = xn[i] > mxl ? xn[i] : mxl;
        }
    }
    st->c += rint((double)all - (double)rest);
    st->rest += (double)rest;
    if (xn) {
        *mx = mxl;
    }
}

#if HAVE_VEXP
/* sumexp_vec_ over [j0, j1) with the hints for the next chunk (pf, pfv:
 * pfn elements) spread over its loop, and pending row p's output when
 * has_prev: a loop of its own for each has_prev (hv constant where it is
 * inlined). */
static LSM_ALWAYS_INLINE void
FN(sumexp_hinted_)(const T *restrict x, const T *restrict v, ptrdiff_t j0,
                   ptrdiff_t j1, T m, STATS *st, const FN(pending_) * p,
                   int has_prev, int hv, const T *pf, const T *pfv,
                   ptrdiff_t pfn) {
    if (has_prev) {
        FN(sumexp_vec_)
        (x, v, j0, j1, m, st, p, 1, hv, NULL, 0, NULL, pf, pfv, pfn);
    } else {
        FN(sumexp_vec_)
        (x, v, j0, j1, m, st, p, 0, hv, NULL, 0, NULL, pf, pfv, pfn);
    }
}
#endif

/* c += #(x == m), rest += sum exp(x - m) over x != m (nan propagates);
 * below: the chunk's own max is below m. When p is given (not NULL), also
 * writes pending row p's log_softmax over the same n elements. */
static void FN(chunk_sumexp_)(const T *restrict x, ptrdiff_t n, T m, int below,
                              STATS *st, const T *pf, ptrdiff_t pfn,
                              const FN(pending_) * p) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        /* a streamed pending row is not fused: the sums, then its stores */
        const int fused = p && !p->nt;
#if HAVE_VEXP /* sumexp_block_'s loop, with the hints spread over it */
        (void)below;
        FN(sumexp_hinted_)(x, NULL, j0, j1, m, st, p, fused, 0, pf, NULL, pfn);
#else
        FN(prefetch_part_)(pf, pfn, j0, j1, 0);
        if (below && fused) {
            FN(sumexp_block_)(x, j0, j1, m, st, p, 1, 1, NULL, NULL);
        } else if (below) {
            FN(sumexp_block_)(x, j0, j1, m, st, p, 1, 0, NULL, NULL);
        } else if (fused) {
            FN(sumexp_block_)(x, j0, j1, m, st, p, 0, 1, NULL, NULL);
        } else {
            FN(sumexp_block_)(x, j0, j1, m, st, p, 0, 0, NULL, NULL);
        }
#endif
        if (p && p->nt) {
            const FN(pending_) pj = FN(pending_at_)(p, j0);
            FN(chunk_log_softmax_)(pj.x, j1 - j0, pj.m, pj.l, pj.y, 1);
        }
    }
}

#if HAVE_VEXP
/* chunk_sumexp_ of x (chunk_sumexp_v_ with v; no pending row; the same
 * sums) with, fused into its loop, the max of xn[0, nn) (the next chunk of
 * the row or the next row's first, nn <= n), returned, so that the next
 * chunk is read from memory while this one's exps are computed, instead of
 * by a pass of its own. A/B (1 thread, Zen 4, cold, avx512, huge pages, two
 * runs): logsumexp of float64 rows of 1024 to 4M 0.91-0.97x the time (rows
 * of one chunk: unchanged), log_softmax of (4M,) 0.84-0.85x. With a pending
 * row's output in the same loop (pipelined log_softmax) it was mixed
 * (0.9-1.07x): not there. */
static T FN(chunk_sumexp_max_)(const T *restrict x, const T *restrict v,
                               ptrdiff_t n, T m, STATS *st,
                               const T *restrict xn, ptrdiff_t nn, const T *pf,
                               const T *pfv, ptrdiff_t pfn) {
    __m512d mx = _mm512_set1_pd(-INFINITY);
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        if (v) {
            FN(sumexp_vec_)
            (x, v, j0, j1, m, st, NULL, 0, 1, xn, nn, &mx, pf, pfv, pfn);
        } else {
            FN(sumexp_vec_)
            (x, NULL, j0, j1, m, st, NULL, 0, 0, xn, nn, &mx, pf, NULL, pfn);
        }
    }
    const ptrdiff_t done = (n < nn ? n : nn) / 8 * 8;
    return FN(chunk_max_)(xn + done, nn - done, _mm512_reduce_max_pd(mx));
}
#endif

static void FN(chunk_sumexp_w_)(const T *restrict x, const T *restrict w,
                                ptrdiff_t n, T m, STATS *st) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        T c = 0, rest = 0;
#pragma omp simd reduction(+ : c, rest)
        for (ptrdiff_t i = j0; i < j1; i++) {
            T t = w[i] * EXP(x[i] - m);
            int at_max = x[i] == m;
            int skip = at_max || w[i] == 0;
            rest += skip ? (T)0 : t;
            c += (at_max && w[i] != 0) ? w[i] : (T)0;
        }
        st->c += (double)c;
        st->rest += (double)rest;
    }
}

/* The sums of chunk_sumexp_v_ over [j0, j1), fused with the output of
 * pending row p (a JVP row, v set) over the same elements when has_prev, or
 * with the max of xn[j0, j1) when xn (constants where it is inlined); as
 * sumexp_block_. */
static LSM_ALWAYS_INLINE void
FN(sumexp_v_block_)(const T *restrict x, const T *restrict v, ptrdiff_t j0,
                    ptrdiff_t j1, T m, STATS *st, const FN(pending_) * p,
                    int has_prev, const T *restrict xn, T *mx) {
    const T *xp = has_prev ? p->x : NULL, *vp = has_prev ? p->v : NULL;
    T *yp = has_prev ? p->y : NULL, *dyp = has_prev ? p->dy : NULL;
    const T mp = has_prev ? p->m : 0, lp = has_prev ? p->l : 0;
    const T qp = has_prev ? p->q : 0;
    T mxl = xn ? *mx : (T)0;
#if HAVE_VSUM
    if ((j1 - j0) * (ptrdiff_t)sizeof(T) >= LSM_MID_BYTES) {
        FN(sumexp_vec16_)
        (x, v, j0, j1, m, st, p, has_prev, 1, 0, xn, mx, NULL, NULL, 0);
        return;
    }
#endif
    if (HAVE_VEXP || (j1 - j0) * (ptrdiff_t)sizeof(T) < LSM_MID_BYTES) {
        FN(sumexp_short_)(x, v, j0, j1, m, st, p, has_prev, 1);
        if (xn) {
            *mx = FN(chunk_max_)(xn + j0, j1 - j0, mxl);
        }
        return;
    }
    T c = 0, rest = 0, tv = 0;
#pragma omp simd reduction(+ : c, rest, tv) reduction(max : mxl)
    for (ptrdiff_t i = j0; i < j1; i++) {
        T t = EXPSUM(x[i] - m); /* as log_softmax's sum: same y */
        int at_max = x[i] == m;
        rest += at_max ? (T)0 : t;
        c += at_max ? (T)1 : (T)0;
        tv += t * v[i];
        if (has_prev) {
            T a = (xp[i] - mp) - lp, b = vp[i] - qp;
            yp[i] = a;
            dyp[i] = b;
        }
        if (xn) {
            mxl = xn[i] > mxl ? xn[i] : mxl;
        }
    }
    st->c += (double)c;
    st->rest += (double)rest;
    st->tv += (double)tv;
    if (xn) {
        *mx = mxl;
    }
}

#if !HAVE_VEXP && LSM_VEC_BYTES >= 32
/* The portable chunk_sumexp_max_ (no pending row): chunk_sumexp_'s (with
 * v: chunk_sumexp_v_'s) sums of x[0, n) with the max of xn[0, nn), returned,
 * taken in the sums' loops (sumexp_block_ and sumexp_v_block_ with xn: the
 * same sums, bit for bit) over the blocks within nn, so that the next chunk
 * comes from memory while this one's exps are computed. */
static T FN(chunk_sumexp_maxp_)(const T *restrict x, const T *restrict v,
                                ptrdiff_t n, T m, int below, STATS *st,
                                const T *restrict xn, ptrdiff_t nn, const T *pf,
                                ptrdiff_t pfn) {
    T mx = -T_INF;
    ptrdiff_t done = 0; /* xn[0, done) taken into mx */
    (void)pf, (void)pfn;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        const int with = j1 <= nn;
#if HAVE_VSUM /* sumexp_block_'s sums, with the hints spread over the loop */
        if (v && (j1 - j0) * (ptrdiff_t)sizeof(T) >= LSM_MID_BYTES) {
            const T *pfv = pf ? v + (pf - x) : NULL;
            if (with) {
                FN(sumexp_vec16_)
                (x, v, j0, j1, m, st, NULL, 0, 1, 0, xn, &mx, pf, pfv, pfn);
            } else {
                FN(sumexp_vec16_)
                (x, v, j0, j1, m, st, NULL, 0, 1, 0, NULL, NULL, pf, pfv, pfn);
            }
            done = with ? j1 : done;
            continue;
        }
        if (!v && (j1 - j0) * (ptrdiff_t)sizeof(T) >= LSM_MID_BYTES) {
            if (below && with) {
                FN(sumexp_vec16_)
                (x, NULL, j0, j1, m, st, NULL, 0, 0, 1, xn, &mx, pf, NULL, pfn);
            } else if (below) {
                FN(sumexp_vec16_)
                (x, NULL, j0, j1, m, st, NULL, 0, 0, 1, NULL, NULL, pf, NULL,
                 pfn);
            } else if (with) {
                FN(sumexp_vec16_)
                (x, NULL, j0, j1, m, st, NULL, 0, 0, 0, xn, &mx, pf, NULL, pfn);
            } else {
                FN(sumexp_vec16_)
                (x, NULL, j0, j1, m, st, NULL, 0, 0, 0, NULL, NULL, pf, NULL,
                 pfn);
            }
            done = with ? j1 : done;
            continue;
        }
#endif
        if (v && with) {
            FN(sumexp_v_block_)(x, v, j0, j1, m, st, NULL, 0, xn, &mx);
        } else if (v) {
            FN(sumexp_v_block_)(x, v, j0, j1, m, st, NULL, 0, NULL, NULL);
        } else if (with) {
            FN(sumexp_block_)(x, j0, j1, m, st, NULL, below, 0, xn, &mx);
        } else {
            FN(sumexp_block_)(x, j0, j1, m, st, NULL, below, 0, NULL, NULL);
        }
        done = with ? j1 : done;
    }
    return FN(chunk_max_)(xn + done, nn - done, mx);
}
#endif

/* chunk_sumexp_ plus tv += sum exp(x - m) * v; p as there (a JVP row). */
static void FN(chunk_sumexp_v_)(const T *restrict x, const T *restrict v,
                                ptrdiff_t n, T m, STATS *st, const T *pf,
                                const T *pfv, ptrdiff_t pfn,
                                const FN(pending_) * p) {
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
#if HAVE_VEXP /* sumexp_v_block_'s loop, with the hints spread over it */
        FN(sumexp_hinted_)(x, v, j0, j1, m, st, p, p != NULL, 1, pf, pfv, pfn);
#else
        FN(prefetch_part_)(pf, pfn, j0, j1, 0);
        FN(prefetch_part_)(pfv, pfn, j0, j1, 0);
        if (p) {
            FN(sumexp_v_block_)(x, v, j0, j1, m, st, p, 1, NULL, NULL);
        } else {
            FN(sumexp_v_block_)(x, v, j0, j1, m, st, p, 0, NULL, NULL);
        }
#endif
    }
}

static double FN(chunk_sum_)(const T *restrict g, ptrdiff_t n) {
    double s = 0;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        T sj = 0;
#pragma omp simd reduction(+ : sj)
        for (ptrdiff_t i = j0; i < j1; i++) {
            sj += g[i];
        }
        s += (double)sj;
    }
    return s;
}

#if HAVE_VEXP
/* y[i] = exp(x[i] - m) * rd for i in [0, n) with lsm_vexpneg_f64_, 8 at a
 * time: m and rd the values at mv and rdv (per 0: chunk_softmax_), or per
 * element, mv[i] and rdv[i] (per 1: softmax's output pass over a strided
 * axis, colwise_range_, where the compiler's vectorisation of EXPNEG_MUL
 * ran before; with cols_strip_, A/B, 1 thread, Intel Xeon family 6 model
 * 207, float64 softmax over axis 0 took 0.86-0.92x the time in the cache
 * ((300, 1000), (1000, 100), (5000, 37)), 0.97x cold (2048, 4096)). Streamed
 * when nt as LSM_OUT_LOOP is (from the first 64-byte boundary of y, its partial
 * end lines hinted, out_ends_), hinting the line at pf + i a step while i < pfn
 * (pf NULL: none). */
static LSM_ALWAYS_INLINE void
FN(softmax_vec_out_)(const T *restrict x, ptrdiff_t n, const T *restrict mv,
                     const T *restrict rdv, int per, T *restrict y, int nt,
                     const T *pf, ptrdiff_t pfn) {
#define LSM_SM_AT(i, k)                                                        \
    _mm512_mul_pd(                                                             \
        lsm_vexpneg_f64_(_mm512_sub_pd(                                        \
            _mm512_maskz_loadu_pd(k, x + (i)),                                 \
            per ? _mm512_maskz_loadu_pd(k, mv + (i)) : _mm512_set1_pd(*mv))),  \
        per ? _mm512_maskz_loadu_pd(k, rdv + (i)) : _mm512_set1_pd(*rdv))
    const __mmask8 all8 = 0xff;
    ptrdiff_t i = 0;
    if (nt && (uintptr_t)y % sizeof(T) == 0) {
        FN(out_ends_)(y, n); /* (its ends: plain stores) */
        ptrdiff_t h = (ptrdiff_t)((64 - (uintptr_t)y % 64) % 64) / 8;
        h = h < n ? h : n;
        const __mmask8 k = lsm_lanes8_(h);
        _mm512_mask_storeu_pd(y, k, LSM_SM_AT(0, k));
        for (i = h; i + 8 <= n; i += 8) {
            FN(vec_hint_)(pf, pfn, i, 0);
            _mm512_stream_pd(y + i, LSM_SM_AT(i, all8));
        }
    } else {
        for (; i + 8 <= n; i += 8) {
            _mm512_storeu_pd(y + i, LSM_SM_AT(i, all8));
        }
    }
    if (i < n) {
        const __mmask8 k = lsm_lanes8_(n - i);
        _mm512_mask_storeu_pd(y + i, k, LSM_SM_AT(i, k));
    }
#undef LSM_SM_AT
}
#endif

/* y = exp(x - m) * rd (softmax of a long row, rd = 1 / sum rounded once).
 * EXPNEG_MUL, one multiply fewer per element than EXPNEG(x - m) * rd, the
 * same bits but for subnormal terms: A/B (1 thread, Zen 4, cold) float32
 * rows of 4M 0.95-0.97x the time at avx512, 0.95-1.01x at avx2. */
static void FN(chunk_softmax_)(const T *restrict x, ptrdiff_t n, T m, T rd,
                               T *restrict y, int nt, const T *pf,
                               ptrdiff_t pfn) {
#if HAVE_VEXP
    FN(softmax_vec_out_)(x, n, &m, &rd, 0, y, nt, pf, pfn);
#else
    const T f = EXPNEG_FACTOR(rd);
    LSM_OUT_LOOP_PF(nt, y, n, EXPNEG_MUL(x[i] - m, f), pf, pfn);
#endif
}

static void FN(chunk_jvp_)(const T *restrict x, const T *restrict v,
                           ptrdiff_t n, T m, T lse_m, T q, T *restrict y,
                           T *restrict dy, int nt) {
    if (nt) { /* two streams of streaming stores */
        LSM_OUT_LOOP(1, y, n, (x[i] - m) - lse_m);
        LSM_OUT_LOOP(1, dy, n, v[i] - q);
        return;
    }
#pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) {
        y[i] = (x[i] - m) - lse_m;
        dy[i] = v[i] - q;
    }
}

static void FN(chunk_vjp_)(const T *restrict y, const T *restrict g,
                           ptrdiff_t n, T s, T *restrict dx, int nt) {
    LSM_OUT_LOOP(nt, dx, n, g[i] - EXP(y[i]) * s);
}

/* ------------------------------------------------------ strided row access */

/* Pointer to n elements starting at p with stride s: p itself when
 * contiguous, else a gathered copy in buf. */
static const T *FN(gather_)(const T *p, ptrdiff_t s, ptrdiff_t n,
                            T *restrict buf) {
    if (s == 1) {
        return p;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        buf[i] = p[i * s];
    }
    return buf;
}

/* gather_ for the input of a pass that writes its output as it goes: a copy
 * in buf also when contiguous if the output is the same memory (in-place
 * calls, out= x), so that reads never see written values and restrict
 * holds. */
static const T *FN(load_)(const T *p, ptrdiff_t s, ptrdiff_t n, T *restrict buf,
                          int aliased) {
    if (s == 1 && aliased) {
        memcpy(buf, p, (size_t)n * sizeof(T));
        return buf;
    }
    return FN(gather_)(p, s, n, buf);
}

static void FN(scatter_)(const T *restrict buf, ptrdiff_t n, T *p,
                         ptrdiff_t s) {
    if (s == 1) {
        if (p != buf) {
            memmove(p, buf, (size_t)n * sizeof(T));
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        p[i * s] = buf[i];
    }
}

/* Where a chunk of output goes: straight to p when contiguous, else buf. */
static T *FN(dest_)(T *p, ptrdiff_t s, T *buf) { return s == 1 ? p : buf; }

/* Fold a chunk max cm into the running state. */
static void FN(stats_raise_)(STATS *st, T cm) {
    if (cm > st->m) {
        if (st->m > -T_INF) {
            double f = exp((double)st->m - (double)cm);
            st->rest = (st->rest + st->c) * f;
            st->tv *= f;
        }
        st->c = 0;
        st->m = cm;
    }
}

/* The row to prefetch while row (o, k) of the (outer, n, inner) view p with
 * strides ps is read: NULL when there is none, when the rows are strided,
 * or when they are shorter than 1.5 KB (the hardware prefetchers follow
 * such rows, a few per page, on their own; prefetching rows of 0.4-1 KB
 * gained nothing and cost the JVP up to 1.07x). Usually the next row; for
 * rows of 1.5-2 KB of one input stream, the second on. Rows of 3-6 KB of
 * one input stream took none (but in pipelined passes) until the
 * Intel Xeon family 6 model 207, where the next row against none (A/B, 1
 * thread, cold, 16 bytes past a line) took softmax of float32 (4096, 1024)
 * 0.95x the time at avx512 (hot 0.87x, 2 threads 0.90x; avx2 0.90x),
 * (5000, 1200) 0.96x, float64 (8192, 512) and (10000, 400) 0.65-0.73x
 * (avx2 0.90-0.94x), logsumexp 0.98-0.99x (avx2 0.74-0.97x); the second row
 * on did about as well. Those rows once prefetched the third row on, measured
 * on an earlier AVX-512 machine (a5a7caa, model not recorded; A/B, 1 thread,
 * avx512, float32 rows of 1024: logsumexp 0.88-0.99x the time, log_softmax
 * 0.87-0.93x, softmax 0.96x); on a Zen 4 that prefetch cost time, and none at
 * all, against it (A/B, 1 thread, cold, 1M and 8M elements), took float32 rows
 * of 768-1536 0.71-0.89x at avx512 (logsumexp), 0.77-0.94x (softmax); float64
 * rows of 384-768 0.76-0.86x and 0.76-0.96x; avx2 alike. The pipelined
 * log_softmax there did better with the next row (float32 rows of 768
 * 0.81-0.83x against the third, none 1.09-1.12x). Rows of 1.5-4 KB, prefetched
 * since (they had none, whatever their byte size below 512 elements), against
 * none: float32 rows of 384-511 logsumexp 0.6-0.98x, log_softmax 0.6-0.79x,
 * softmax 0.73-1.03x; float64 rows of 200-500 logsumexp 0.61-0.99x, log_softmax
 * 0.63-0.92x, softmax 0.56-1.02x (cold caches alike); the JVP (two streams)
 * keeps its rows of 512 elements and up, as it lost 1.1-1.17x on float64
 * rows of 200. */
static const T *FN(next_row_)(const T *p, const ptrdiff_t ps[3],
                              ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                              ptrdiff_t o, ptrdiff_t k, int streams) {
    const ptrdiff_t bytes = n * (ptrdiff_t)sizeof(T);
    if (ps[1] != 1 || bytes < 1536 || (streams == 2 && n < LSM_CHUNK / 2)) {
        return NULL;
    }
    if (streams == 1 && inner == 1 && bytes < 2048) {
        return o + 2 < outer ? p + (o + 2) * ps[0] : NULL;
    }
    if (k + 1 < inner) {
        return p + o * ps[0] + (k + 1) * ps[2];
    }
    return o + 1 < outer ? p + (o + 1) * ps[0] : NULL;
}

/* What a chunk pass prefetches once the chunk ending at i1 of row p (n
 * elements at stride s) is in L1: the rest of the row when contiguous (the
 * chunk `ahead` chunks on while the row lasts, else the next one), else the
 * next row nxt (may be NULL); *pn gets how many elements (a chunk at
 * most). */
static const T *FN(prefetch_after_)(const T *p, ptrdiff_t s, ptrdiff_t n,
                                    ptrdiff_t i1, const T *nxt, ptrdiff_t *pn,
                                    ptrdiff_t ahead) {
    const ptrdiff_t far = i1 + (ahead - 1) * LSM_CHUNK;
    if (s == 1 && ahead > 1 && far < n) {
        *pn = n - far < LSM_CHUNK ? n - far : LSM_CHUNK;
        return p + far;
    }
    const ptrdiff_t left = i1 < n ? n - i1 : n;
    *pn = left < LSM_CHUNK ? left : LSM_CHUNK;
    return i1 < n ? (s == 1 ? p + i1 : NULL) : nxt;
}

/* Row statistics. w (weights) and v (JVP tangent) may be NULL, not both
 * set. nx and nv (may be NULL) are the next rows of x and v, contiguous and
 * n long, which the last chunk prefetches. pf: the chunks of a contiguous
 * row also prefetch the chunk after them; without pf they leave the row to
 * the hardware prefetchers. Only log_softmax rows of 4-16 KB gained by it
 * on a Zen 4 (A/B, 1 thread, cold, float32 rows of 2048 and 4096: without
 * pf 1.03-1.08x the time, at avx512 and avx2); without it, logsumexp took
 * float32 rows of 4096 to 4M 0.70-0.92x the time at avx512 and avx2,
 * float64 0.87-0.95x (rows of 2048-4096, 1.0-1.06x); log_softmax rows of
 * 8192 to 4M 0.79-0.94x; the JVP 0.74-0.97x (float32 and float64). Returns
 * 0 for a regular row, 1 when the max is +-inf (or there is no entry with
 * nonzero weight), which the caller handles with special_*. p (may be NULL;
 * only with sx == 1 and no w): a pending row of n elements (a JVP row, with
 * v, exactly when v is given) whose output the passes over each chunk write
 * for the same range of indices; all of it is written on return. */
static int FN(row_stats_)(const T *x, ptrdiff_t sx, const T *w, ptrdiff_t sw,
                          const T *v, ptrdiff_t sv, ptrdiff_t n, STATS *st,
                          T *restrict bx, T *restrict bw, const T *nx,
                          const T *nv, int pf, const FN(pending_) * p,
                          ptrdiff_t chunk, FN(carry_) * cy) {
    int nan_seen = 0;
    st->m = -T_INF;
    st->c = st->rest = st->tv = 0;
#if HAVE_VEXP
    /* a contiguous row without a pending output (logsumexp, unpipelined
     * log_softmax and JVP rows): each chunk's sums also take the max of the
     * next chunk (chunk_sumexp_max_); the last chunk that of cy's next row
     * (logsumexp) */
    const int fuse = !w && !p && sx == 1 && (!v || sv == 1);
    /* and, in rows of LSM_FUSE_MIN bytes or more, hint the chunk
     * LSM_FUSE_AHEAD chunks on (x and v; see there) */
    const int fuse_pf = n * (ptrdiff_t)sizeof(T) >= LSM_FUSE_MIN;
#elif LSM_VEC_BYTES >= 32
    /* the same with chunk_sumexp_maxp_ (float32): A/B (1 thread, Zen 4,
     * cold, avx512) logsumexp of rows of 1024 0.84-0.86x the time, of 8192
     * to 4M 0.90-1.0x; log_softmax of rows of 32000 to 4M 0.88-0.97x;
     * softmax of (4M,) 0.96x; the JVP of rows of 1024-4096 0.67-0.83x, of
     * 8192-16384 0.90-0.96x, while rows of 32768-65536 gave 0.97-1.01x and
     * rows of 500K-2M 1.04-1.12x, so its rows of more than 64 KB keep the
     * max pass (but see LSM_JVP_FUSE_ALL). (Rows of one chunk have no next
     * chunk: what they gain is the next row's prefetch, which the fused path
     * does not issue; without it and with the max pass, rows of 1024 took
     * 0.97-1.01x the fused path's time, rows of 4096-16384 1.04-1.32x.) At
     * avx2, whose exps take longer than the chunk's reads, logsumexp gave
     * 0.97-1.11x (rows of 32000 1.11x) and keeps the max pass; the float32 JVP
     * (two input streams) 0.83-0.95x for rows of 1024-2048, 0.95-1.0x for
     * 4096-16384; the float64 JVP (no vectorised exp of its own at avx2)
     * 0.98-1.10x, and keeps it. */
    const int small_v =
        sizeof(T) == 4 && v && sv == 1 &&
        (LSM_JVP_FUSE_ALL || n * (ptrdiff_t)sizeof(T) <= ((ptrdiff_t)1 << 16));
    const int fuse =
        !w && !p && sx == 1 && (small_v || (!v && LSM_VEC_BYTES >= 64));
#endif
    int have_next = cy && cy->have;
    T next_m = have_next ? cy->m : -T_INF;
    if (cy) {
        cy->have = 0;
    }
    for (ptrdiff_t i0 = 0; i0 < n; i0 += chunk) {
        ptrdiff_t len = n - i0 < chunk ? n - i0 : chunk;
        const T *xc = FN(gather_)(x + i0 * sx, sx, len, bx);
        const T *wc = w ? FN(gather_)(w + i0 * sw, sw, len, bw) : NULL;
        const T *vc = v ? FN(gather_)(v + i0 * sv, sv, len, bw) : NULL;
        const T cm = have_next ? next_m
                     : wc      ? FN(chunk_max_w_)(xc, wc, len, -T_INF)
                               : FN(chunk_max_)(xc, len, -T_INF);
        have_next = 0;
        FN(stats_raise_)(st, cm);
        /* the pending row's output over this chunk */
        const FN(pending_) pc = FN(pending_at_)(p, i0);
        if (st->m == T_INF) {
            if (p) { /* the rest of it */
                FN(pending_out_)(&pc, n - i0);
            }
            return 1;
        }
        if (st->m == -T_INF) {
            nan_seen |= FN(chunk_has_nan_)(xc, wc, len);
            if (p) {
                FN(pending_out_)(&pc, len);
            }
            continue;
        }
#if HAVE_VEXP
        if (fuse) { /* no prefetch of the next row: 1.08-1.09x with it */
            const ptrdiff_t nn = n - i0 - len < chunk ? n - i0 - len : chunk;
            if (nn == 0 && cy && cy->next) { /* the next row's first chunk */
                const ptrdiff_t cn = n < chunk ? n : chunk;
                cy->m =
                    FN(chunk_sumexp_max_)(xc, vc, len, st->m, st, cy->next, cn,
                                          cy->next2, NULL, cy->next2 ? cn : 0);
                cy->have = 1;
                continue;
            }
            ptrdiff_t pn = 0;
            const T *px = fuse_pf
                              ? FN(prefetch_after_)(x, sx, n, i0 + len, NULL,
                                                    &pn, LSM_FUSE_AHEAD)
                              : NULL;
            const T *pv = px && v ? v + (px - x) : NULL;
            next_m = FN(chunk_sumexp_max_)(xc, vc, len, st->m, st, xc + len, nn,
                                           px, pv, pn);
            have_next = nn > 0;
            continue;
        }
#elif LSM_VEC_BYTES >= 32
        if (fuse) {
            const ptrdiff_t nn = n - i0 - len < chunk ? n - i0 - len : chunk;
            const int below = cm < st->m;
            if (nn == 0 && cy && cy->next) { /* the next row's first chunk */
                const ptrdiff_t cn = n < chunk ? n : chunk;
                cy->m = FN(chunk_sumexp_maxp_)(xc, vc, len, st->m, below, st,
                                               cy->next, cn, cy->next2,
                                               cy->next2 ? cn : 0);
                cy->have = 1;
                continue;
            }
            /* through sumexp_vec16_ (no v), rows of LSM_FUSE_MIN32 bytes
             * or more hint the chunk LSM_FUSE_AHEAD32 chunks on */
            ptrdiff_t pn = 0;
            const T *px =
                HAVE_VSUM && n * (ptrdiff_t)sizeof(T) >= LSM_FUSE_MIN32
                    ? FN(prefetch_after_)(x, sx, n, i0 + len, NULL, &pn,
                                          LSM_FUSE_AHEAD32)
                    : NULL;
            next_m = FN(chunk_sumexp_maxp_)(xc, vc, len, st->m, below, st,
                                            xc + len, nn, px, pn);
            have_next = nn > 0;
            continue;
        }
#endif
        /* with pf, a float32 pass that only reads x prefetches 3 chunks
         * ahead: A/B on the machine of a5a7caa (1 thread, avx512)
         * logsumexp of (4M,) 0.87-0.96x the time, (8, 2M) 0.94-0.98x,
         * (512, 32000) 0.94-0.99x, log_softmax of (4M,) 0.92-0.98x; with a
         * pending row's output or v to stream too 1.02-1.03x, float64
         * (slower exp) 1.02-1.03x: one chunk there. On a Zen 4 those long
         * rows did better still with no prefetch (pf, above) */
        const ptrdiff_t ahead = p || v || sizeof(T) == 8 ? 1 : 3;
        ptrdiff_t pn;
        const int last = i0 + len >= n;
        const T *px =
            pf || last ? FN(prefetch_after_)(x, sx, n, i0 + len, nx, &pn, ahead)
                       : NULL;
        const T *pv = v && (pf || last)
                          ? FN(prefetch_after_)(v, sv, n, i0 + len, nv, &pn, 1)
                          : NULL;
        if (wc) {
            FN(chunk_sumexp_w_)(xc, wc, len, st->m, st);
        } else if (vc) {
            FN(chunk_sumexp_v_)
            (xc, vc, len, st->m, st, px, pv, pn, p ? &pc : NULL);
        } else {
            FN(chunk_sumexp_)
            (xc, len, st->m, cm < st->m, st, px, pn, p ? &pc : NULL);
        }
    }
    if (st->m == -T_INF) {
        return 1;
    }
    if (nan_seen) {
        st->rest = NAN;
    }
    return 0;
}

/* ------------------------------------------------ mid-length rows in pairs */

/* Element I (lane L) of row r of a pair: its terms. */
#define LSM_PAIR_TERM(r, I, L)                                                 \
    do {                                                                       \
        const T d = x##r[I] - m##r, t = EXPSUM(d);                             \
        a##r[L] += t;                                                          \
        e##r[L] += d != 0 ? t : (T)0;                                          \
        if (hv) {                                                              \
            f##r[L] += t * v##r[I];                                            \
        }                                                                      \
    } while (0)

/* The sums of two rows over [j0, j1), added to s0 and s1, lane by lane
 * (with the JVP's tv, of v0 and v1, when hv): each row's lanes, adds and
 * order are sumexp_short_'s, so a row gets the same sums paired or
 * alone. */
static LSM_ALWAYS_INLINE void
FN(pair_sums_)(const T *restrict x0, const T *restrict x1, const T *restrict v0,
               const T *restrict v1, ptrdiff_t j0, ptrdiff_t j1, T m0, T m1,
               STATS *s0, STATS *s1, int hv) {
#if HAVE_VEXP
    FN(pair_vec_)(x0, x1, v0, v1, j0, j1, m0, m1, s0, s1, hv);
    return;
#endif
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    T a0[LN], e0[LN], a1[LN], e1[LN], f0[LN], f1[LN];
    for (int l = 0; l < LN; l++) {
        a0[l] = e0[l] = a1[l] = e1[l] = f0[l] = f1[l] = 0;
    }
#define LSM_PAIR_TERMS(I, L)                                                   \
    do {                                                                       \
        LSM_PAIR_TERM(0, I, L);                                                \
        LSM_PAIR_TERM(1, I, L);                                                \
    } while (0)
    LSM_LANES(j0, j1, LSM_PAIR_TERMS);
#undef LSM_PAIR_TERMS
    FN(lanes_stats_)(a0, e0, s0);
    FN(lanes_stats_)(a1, e1, s1);
    if (hv) {
        s0->tv += (double)FN(lanes_sum_)(f0);
        s1->tv += (double)FN(lanes_sum_)(f1);
    }
}

/* The statistics (for logsumexp) of the contiguous rows x0 and x1 (x1
 * NULL: x0 alone) of n elements (mid_rows_), their sums side by side: two
 * independent chains of adds per loop, where a row alone leaves the fixed
 * latency of its max, exps and sums to hold up the next. Returns 1 when a
 * row is special (max +-inf or no finite entry): the caller then takes the
 * rows one by one (pair_stats_ again for the others, so that a row's sums
 * never depend on its neighbour). */
static int FN(pair_stats_)(const T *x0, const T *x1, ptrdiff_t n, STATS *s0,
                           STATS *s1) {
    const T m0 = FN(chunk_max_)(x0, n, -T_INF);
    const T m1 = x1 ? FN(chunk_max_)(x1, n, -T_INF) : m0;
    if (!(m0 > -T_INF && m0 < T_INF && m1 > -T_INF && m1 < T_INF)) {
        return 1;
    }
    *s0 = (STATS){m0, 0, 0, 0};
    if (x1) {
        *s1 = (STATS){m1, 0, 0, 0};
        FN(pair_sums_)(x0, x1, NULL, NULL, 0, n, m0, m1, s0, s1, 0);
    } else {
        FN(sumexp_short_)(x0, NULL, 0, n, m0, s0, NULL, 0, 0);
    }
    return 0;
}

/* The statistics of the contiguous rows x0 and x1 of n elements
 * (mid_rows_), with the JVP's tv of v0 and v1 when hv, their sums side by
 * side in the blocks of chunk_sumexp_ (chunk_sumexp_v_): the values of
 * log_softmax_short_ (jvp_short_). Returns 1, s0 and s1 unset, when a
 * row's max is +-inf or no entry is finite. */
static LSM_ALWAYS_INLINE int FN(pair_block_stats_)(const T *x0, const T *x1,
                                                   const T *v0, const T *v1,
                                                   ptrdiff_t n, STATS *s0,
                                                   STATS *s1, int hv) {
    const T m0 = FN(chunk_max_)(x0, n, -T_INF);
    const T m1 = FN(chunk_max_)(x1, n, -T_INF);
    if (!(m0 > -T_INF && m0 < T_INF && m1 > -T_INF && m1 < T_INF)) {
        return 1;
    }
    *s0 = (STATS){m0, 0, 0, 0};
    *s1 = (STATS){m1, 0, 0, 0};
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) {
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        FN(pair_sums_)(x0, x1, v0, v1, j0, j1, m0, m1, s0, s1, hv);
    }
    return 0;
}

/* Whether the rows of the (outer, n, inner) view with strides xs are
 * mid-length rows (pair_stats_, softmax_short_): contiguous rows one after
 * another, shorter than LSM_MID_BYTES. */
static int FN(mid_rows_)(ptrdiff_t n, ptrdiff_t inner, const ptrdiff_t *xs) {
    return n > 0 && n * (ptrdiff_t)sizeof(T) < LSM_MID_BYTES && inner == 1 &&
           xs[1] == 1;
}

/* Hints for `rows` rows of the mid-length rows at x (row stride s, outer
 * rows of n elements) some LSM_AHEAD_BYTES on from row r (2 rows at least),
 * where they exist: a pair of rows (or a row) prefetches the pair (the row)
 * that far ahead, so that the rows stream in from memory while the core
 * computes; the hardware prefetchers alone left the memory idle during each
 * pair's compute. A/B (1 thread, Intel Xeon family 6 model 207, cold, 8M
 * elements) against no hints, at avx512: logsumexp of float32 rows of 80 and
 * 128 0.67-0.8x the time, float64 0.71-0.75x; softmax of float64 rows of 80 and
 * 128 0.76-0.77x, log_softmax 0.8-0.83x, the JVP (now in pairs, see
 * rowwise_range_) 0.72-0.74x; the float32 JVP of rows of 300 0.86x; at
 * avx2 0.8-0.87x (float32 JVP 0.97x); 2 threads 0.83-0.93x. Where the core
 * bounds the passes (float32 rows of 100 and 150, float32 logsumexp of rows
 * of 300) 0.99-1.02x. Distances of 2 to 16 rows
 * measured: rows of 512 bytes did best 8-16 rows on, of 1 KB 2-8, of 1.2
 * KB 2-3. Arrays of LSM_AHEAD_MIN bytes or less take none: hot in L2 or
 * L3 they gain nothing (logsumexp of float32 (4000, 128) and (16000, 128),
 * 2 and 8 MB, repeated: 1.04-1.08x the time with the hints; float64 0.88-
 * 1.1x; into L2 only, 1.02-1.1x). */
static LSM_ALWAYS_INLINE void FN(rows_ahead_)(const T *x, ptrdiff_t s,
                                              ptrdiff_t r, ptrdiff_t outer,
                                              ptrdiff_t n, ptrdiff_t rows) {
    const ptrdiff_t b = n * (ptrdiff_t)sizeof(T);
    const ptrdiff_t a = LSM_AHEAD_BYTES / b > 2 ? LSM_AHEAD_BYTES / b : 2;
    if (x && r + a + rows <= outer && outer * b > LSM_AHEAD_MIN) {
        FN(prefetch_)(x + (r + a) * s, rows * n, 0);
    }
}

/* Whether rows of n elements s apart from y (NULL: none) have partial
 * lines at their ends (out_ends_). */
static int FN(out_partial_)(const T *y, ptrdiff_t s, ptrdiff_t n) {
    return y && ((uintptr_t)y % 64 != 0 || (s * (ptrdiff_t)sizeof(T)) % 64 ||
                 (n * (ptrdiff_t)sizeof(T)) % 64);
}

/* out_ends_ of `rows` output rows (n elements, s apart, of [0, end)) as
 * far ahead of row r as rows_ahead_ hints their inputs: short rows are
 * written too soon after a hint at their own start for it to help. Only
 * where out_partial_ (the caller's test, once). */
static LSM_ALWAYS_INLINE void FN(out_ahead_)(T *y, ptrdiff_t s, ptrdiff_t r,
                                             ptrdiff_t end, ptrdiff_t n,
                                             ptrdiff_t rows) {
    const ptrdiff_t b = n * (ptrdiff_t)sizeof(T);
    const ptrdiff_t a = LSM_AHEAD_BYTES / b > 2 ? LSM_AHEAD_BYTES / b : 2;
    for (ptrdiff_t j = r + a; j < r + a + rows && j < end; j++) {
        FN(out_ends_)(y + j * s, n);
    }
}

/* log(sum) - m for a regular row, and the sign of the sum. */
static double FN(stats_log_)(const STATS *st, double *sign) {
    double c = st->c, rest = st->rest;
    double t = c + rest;
    *sign = t > 0 ? 1.0 : (t < 0 ? -1.0 : (t == 0 ? 0.0 : t));
    if (c != 0 && fabs(rest) <= fabs(c)) {
        /* log|c| + log1p(rest / c): keeps the small terms next to the max
         * (log(1 + 4e-18) is 4e-18); |rest / c| <= 1, so no overflow even
         * when c, the weight at the max, is subnormal */
        return log1p(rest / c) + log(fabs(c));
    }
    /* the other terms dominate (or rest is nan): the plain sum is as good */
    return log(fabs(t));
}

/* log(c + rest) for a regular unweighted row (c >= 1 entries at the max,
 * rest >= 0 the other terms): the rounding error of the sum is carried
 * (TwoSum) so that log(1 + 4e-18) is 4e-18, not 0. Inline and branch-free:
 * it vectorises across rows and columns. float32 kernels take the shorter
 * series (relative error below 2^-39; their results are rounded to
 * float32). */
static inline double FN(log_sum_)(double c, double rest) {
    double d = c + rest;
    double bp = d - c;
    double err = (c - (d - bp)) + (rest - bp);
    return lsm_log_f64_n(d, sizeof(T) == 4) + err / d;
}

/* IEEE answer of log|sum w exp(x)| when no entry is finite-and-maximal: only
 * +inf and nan entries (with nonzero weight) matter. */
static double FN(special_sum_)(const T *x, ptrdiff_t sx, const T *w,
                               ptrdiff_t sw, ptrdiff_t n) {
    double s = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        double wi = w ? (double)w[i * sw] : 1.0;
        double xi = (double)x[i * sx];
        if (wi != 0 && (xi != xi || xi == INFINITY)) {
            s += wi * xi;
        }
    }
    return s;
}

static int FN(row_has_nan_)(const T *x, ptrdiff_t sx, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        if (x[i * sx] != x[i * sx]) {
            return 1;
        }
    }
    return 0;
}

/* log_softmax of a special row: nan where x is +inf or everywhere if the row
 * has a nan or is all -inf; -inf elsewhere (scipy's answers). */
static void FN(special_log_softmax_)(const T *x, ptrdiff_t sx, ptrdiff_t n, T m,
                                     T *y, ptrdiff_t sy) {
    int all_nan = m != T_INF || FN(row_has_nan_)(x, sx, n);
    for (ptrdiff_t i = 0; i < n; i++) {
        T xi = x[i * sx];
        y[i * sy] = (all_nan || xi == T_INF) ? (T)NAN : -T_INF;
    }
}

static void FN(fill_)(T *y, ptrdiff_t sy, ptrdiff_t n, T val) {
    for (ptrdiff_t i = 0; i < n; i++) {
        y[i * sy] = val;
    }
}

/* ------------------------------------------------------------- long rows */

/* Block length of the statistics of a row of n >= LSM_SPLIT_MIN elements
 * (depends on n only). */
static ptrdiff_t FN(split_len_)(ptrdiff_t n) {
    ptrdiff_t b = (n + LSM_SPLIT_MAX - 1) / LSM_SPLIT_MAX;
    b = b < LSM_SPLIT_BLOCK ? LSM_SPLIT_BLOCK : b;
    return (b + LSM_CHUNK - 1) / LSM_CHUNK * LSM_CHUNK;
}

/* acc += b: the state of a row's blocks so far, then the next block's. */
static void FN(stats_merge_)(STATS *acc, const STATS *b) {
    if (b->m > acc->m) {
        FN(stats_raise_)(acc, b->m); /* acc rescaled to b's max */
        acc->c = b->c;
        acc->rest += b->rest;
        acc->tv += b->tv;
    } else if (b->m == acc->m) {
        acc->c += b->c;
        acc->rest += b->rest;
        acc->tv += b->tv;
    } else { /* b below: all its terms are rest (f = 0 when b->m = -inf) */
        double f = exp((double)b->m - (double)acc->m);
        acc->rest += (b->rest + b->c) * f;
        acc->tv += b->tv * f;
    }
}

/* The state of one block of a long row (v may be NULL; p: the block's part
 * of a pending row, or NULL). Returns 1 when the block holds +inf (the row
 * is special); a block with no finite entry gives m = -inf, sums 0, or nan
 * when it holds a nan, which the merge carries into the row's sums. */
static int FN(block_stats_)(const T *x, ptrdiff_t sx, const T *v, ptrdiff_t sv,
                            ptrdiff_t len, STATS *st, T *restrict bx,
                            T *restrict bv, const FN(pending_) * p,
                            ptrdiff_t chunk) {
    if (!FN(row_stats_)(x, sx, NULL, 0, v, sv, len, st, bx, bv, NULL, NULL, 0,
                        p, chunk, NULL)) {
        return 0;
    }
    if (st->m == T_INF) {
        return 1;
    }
    st->c = st->tv = 0;
    st->rest = FN(row_has_nan_)(x, sx, len) ? (double)NAN : 0.0;
    return 0;
}

/* row_stats_ of a row of n >= LSM_SPLIT_MIN elements (no weights), block by
 * block on this thread; the same state as row_stats_split_. */
static int FN(row_stats_long_)(const T *x, ptrdiff_t sx, const T *v,
                               ptrdiff_t sv, ptrdiff_t n, STATS *st,
                               T *restrict bx, T *restrict bv,
                               const FN(pending_) * p, ptrdiff_t chunk) {
    const ptrdiff_t B = FN(split_len_)(n);
    *st = (STATS){-T_INF, 0, 0, 0};
    for (ptrdiff_t i0 = 0; i0 < n; i0 += B) {
        const ptrdiff_t len = n - i0 < B ? n - i0 : B;
        const FN(pending_) pb = FN(pending_at_)(p, i0);
        STATS sb;
        if (FN(block_stats_)(x + i0 * sx, sx, v ? v + i0 * sv : NULL, sv, len,
                             &sb, bx, bv, p ? &pb : NULL, chunk)) {
            if (p && i0 + len < n) { /* the pending row's remaining blocks */
                const FN(pending_) pr = FN(pending_at_)(p, i0 + len);
                FN(pending_out_)(&pr, n - i0 - len);
            }
            st->m = T_INF;
            return 1;
        }
        FN(stats_merge_)(st, &sb);
    }
    return !(st->m > -T_INF);
}

/* row_stats_ of any unweighted row: long rows by blocks. */
static int FN(row_stats_any_)(const T *x, ptrdiff_t sx, const T *v,
                              ptrdiff_t sv, ptrdiff_t n, STATS *st,
                              T *restrict bx, T *restrict bv, const T *nx,
                              const T *nv, int pf, const FN(pending_) * p,
                              ptrdiff_t chunk, FN(carry_) * cy) {
    if (n >= LSM_SPLIT_MIN) {
        if (cy) {
            cy->have = 0;
        }
        return FN(row_stats_long_)(x, sx, v, sv, n, st, bx, bv, p, chunk);
    }
    return FN(row_stats_)(x, sx, NULL, 0, v, sv, n, st, bx, bv, nx, nv, pf, p,
                          chunk, cy);
}

/* row_stats_long_ with the blocks shared among threads (the same state). */
static int FN(row_stats_split_)(const T *x, ptrdiff_t sx, const T *v,
                                ptrdiff_t sv, ptrdiff_t n, STATS *st,
                                ptrdiff_t chunk) {
    const ptrdiff_t B = FN(split_len_)(n), nb = (n + B - 1) / B;
    STATS sb[LSM_SPLIT_MAX];
    int sp[LSM_SPLIT_MAX];
    LSM_SHARED(nb, 1, n * (v ? 2 : 1), {
        T bx[LSM_CHUNK], bv[LSM_CHUNK];
        for (ptrdiff_t b = lo_; b < hi_; b++) {
            const ptrdiff_t i0 = b * B, len = n - i0 < B ? n - i0 : B;
            sp[b] = FN(block_stats_)(x + i0 * sx, sx, v ? v + i0 * sv : NULL,
                                     sv, len, &sb[b], bx, bv, NULL, chunk);
        }
    });
    *st = (STATS){-T_INF, 0, 0, 0};
    for (ptrdiff_t b = 0; b < nb; b++) {
        if (sp[b]) {
            st->m = T_INF;
            return 1;
        }
        FN(stats_merge_)(st, &sb[b]);
    }
    return !(st->m > -T_INF);
}

/* ------------------------------------------------- inner-contiguous blocks */

/* Column blocks: w columns (contiguous in memory, stride 1) processed side
 * by side; row j of the block starts at base + j * s. Each function keeps
 * per-column state in small arrays and vectorises across columns. */

/* Raise the per-column state to the maxima cm of the next rows: where
 * cm > m, the sums so far are rescaled by exp(m - cm) (the count c at the
 * old max joins rest) and m = cm. */
static LSM_ALWAYS_INLINE void FN(cols_raise_)(ptrdiff_t w, const T *restrict cm,
                                              T *restrict m, double *restrict c,
                                              double *restrict rest,
                                              double *restrict tv) {
#pragma omp simd
    for (ptrdiff_t k = 0; k < w; k++) {
        const int g = cm[k] > m[k];
        const double f = g ? (double)EXP(m[k] - cm[k]) : 1.0;
        rest[k] = g ? (rest[k] + c[k]) * f : rest[k];
        c[k] = g ? 0.0 : c[k];
        tv[k] *= f;
        m[k] = g ? cm[k] : m[k];
    }
}

#if !HAVE_ROW8
/* Whether the hints for the next chunk of a column pass (cols_stats_, a
 * row per row) go to L2 only (prefetcht1): a float32 chunk (LSM_COL_ROWS
 * rows of LSM_COL_BYTES, 64 KB, twice a typical L1), where hints into L1
 * evicted the chunk being computed; a float64 chunk (32 KB) into L1. A/B
 * (1 thread, Zen 4, cold, axis 0 of (2048, 4096), (8192, 1024), (256,
 * 32768), (2000, 4000)), float32: logsumexp 0.82-0.91x the time at avx512,
 * 0.92-0.98x at avx2, 1.02x at baseline (bound by its exp); log_softmax
 * 0.87-0.95x and 0.95-1.01x, the JVP 0.85-0.95x and 0.81-0.94x (baseline
 * 0.89-0.98x). float64 into L2 took 0.94-1.18x there, and stays in L1
 * (at AVX-512, cols_strip_ hints both types into L2). */
static int FN(cols_l2_)(void) { return sizeof(T) == 4; }
#endif

#if HAVE_ROW8
/* Vectors of columns per strip of cols_strip_ */
#ifndef LSM_COL_STRIP
#define LSM_COL_STRIP 4
#endif
/* The exp pass of cols_stats_ over one chunk (J rows s apart from r0; v's
 * rows vs apart from q0 when hv) for the columns [k0, k0 + LSM_COL_STRIP
 * vectors) of the w, at AVX-512: the strip's rows one after the other, its
 * partial sums held in registers, where the loops over a whole row segment
 * keep them in memory (a load and a store per vector and row, and twice
 * that with the count). Each column's terms and adds are those of the
 * loops (lsm_vexpsum_*_ computes lsm_expsum's values), in the same order,
 * so the sums are the same bits. The chunk comes from L2, where the max
 * pass left it. The strip's lines of the next chunk's row j (pfn rows) are
 * hinted as row j goes, one line per vector. below: no entry of
 * the chunk at its column's shift sh (no count). A/B against the loops (1
 * thread, Intel Xeon family 6 model 207, avx512, 16 bytes past a line),
 * cold, axis 0 of (2048, 4096) (with float64's hints into L2): logsumexp
 * float32 0.85x the time, float64 0.8x; log_softmax 0.92x and 0.93x, the
 * JVP 0.97x; in the cache, (1000, 100) 0.86-0.93x, (300, 1000) 0.87-0.97x,
 * (5000, 37) float32 0.59-0.78x, (64, 4096) float32 1.0-1.03x. Strips of 8
 * vectors: 0.95-1.0x (float32 more spills), of 2: 1.0-1.08x. */
static LSM_ALWAYS_INLINE void
FN(cols_strip_)(const T *r0, ptrdiff_t s, const T *q0, ptrdiff_t vs,
                ptrdiff_t J, ptrdiff_t pfn, ptrdiff_t k0, ptrdiff_t w,
                const T *restrict sh, T *restrict cc, T *restrict rr,
                T *restrict tt, int hv, int below) {
    enum { L = 64 / (int)sizeof(T), G = LSM_COL_STRIP };
    V shv[G], c[G], r[G], t[G];
    unsigned km[G];
    const V one = VF(set1)(1.0);
    for (int g = 0; g < G; g++) {
        const ptrdiff_t left = w - k0 - (ptrdiff_t)g * L;
        km[g] = left > 0 ? VF(lanes)(left) : 0u;
        shv[g] = VF(maskz_loadu)(km[g], sh + k0 + g * L);
        c[g] = r[g] = t[g] = VF(zero)();
    }
    for (ptrdiff_t j = 0; j < J; j++) {
        const T *ru = r0 + j * s + k0;
        const T *qu = hv ? q0 + j * vs + k0 : NULL;
        for (int g = 0; g < G; g++) {
            if (!km[g]) {
                break;
            }
            /* into L2, float64 too: on an Intel Xeon family 6 model 207
             * (2 MB L2), cold, logsumexp over axis 0 of (2048, 4096),
             * (8192, 1024) and (512, 8192) took 0.93-0.97x the time of
             * hints into L1 (a chunk's rows, a power-of-2 stride apart,
             * share a few L1 sets: of a float64 chunk's 32 KB, L1 then
             * holds 6 KB) */
            if (j < pfn) {
                LSM_PREFETCH_L2(ru + J * s + g * L);
                if (hv) {
                    LSM_PREFETCH_L2(qu + J * vs + g * L);
                }
            }
            const V x = VF(maskz_loadu)(km[g], ru + g * L);
            const V e = VF(expsum)(VF(sub)(x, shv[g]));
            if (below) {
                r[g] = VF(add)(r[g], e);
            } else {
                const unsigned at = VF(eq)(x, shv[g]);
                r[g] = VF(mask_add)(r[g], ~at, e);
                c[g] = VF(mask_add)(c[g], at, one);
            }
            if (hv) {
                t[g] = VF(fmadd)(e, VF(maskz_loadu)(km[g], qu + g * L), t[g]);
            }
        }
    }
    for (int g = 0; g < G; g++) {
        VF(mask_storeu)(cc + k0 + g * L, km[g], c[g]);
        VF(mask_storeu)(rr + k0 + g * L, km[g], r[g]);
        if (hv) {
            VF(mask_storeu)(tt + k0 + g * L, km[g], t[g]);
        }
    }
}
#endif

/* Online per-column statistics of a block of w <= LSM_COLS(T) columns (rows
 * s apart from base; v at vbase, rows vs apart, or NULL): per column m, c,
 * rest, tv as in STATS. The rows go in chunks of LSM_COL_ROWS, and each
 * pass over a chunk reads it row by row, each row's segment front to back:
 * one short sequential stream at a time, whatever the stride. (Reading a
 * strip of columns down the chunk from memory instead keeps the state in
 * registers, but the rows it reads side by side then share cache sets, and
 * at a stride of a multiple of 4 KB they ran 1.5x slower; the exp pass at
 * AVX-512 reads strips from L2, where the max pass left the chunk.) A
 * chunk's maxima come
 * first (a max per element, no exp), so that the state is raised and
 * rescaled at most once per chunk; then one exp per element against the
 * fixed shift, into partial sums of at most LSM_COL_ROWS terms in T that
 * are added to the double state at the end of the chunk. Where every
 * element of the chunk is below its column's max (common once the first
 * rows are in), the exp loop skips the count of entries at the max. The
 * exp pass prefetches the next chunk, a row per row (cols_l2_). At
 * AVX-512 the exp pass goes strip by strip (cols_strip_). cols_stats_
 * starts the state (cols_stats_start_), then adds each chunk to it
 * (cols_stats_chunk_: the chunk of rows [j0, j0 + LSM_COL_ROWS)), which
 * colwise_range_ also does chunk by chunk between its output rows. */
static LSM_ALWAYS_INLINE void FN(cols_stats_start_)(ptrdiff_t w, T *restrict m,
                                                    double *restrict c,
                                                    double *restrict rest,
                                                    double *restrict tv) {
    for (ptrdiff_t k = 0; k < w; k++) {
        m[k] = -T_INF;
        c[k] = rest[k] = tv[k] = 0;
    }
}

static void FN(cols_stats_chunk_)(const T *base, ptrdiff_t s, const T *vbase,
                                  ptrdiff_t vs, ptrdiff_t n, ptrdiff_t w,
                                  ptrdiff_t j0, T *restrict m,
                                  double *restrict c, double *restrict rest,
                                  double *restrict tv) {
    T cm[LSM_COLS(T)], sh[LSM_COLS(T)];
    T cc[LSM_COLS(T)], rr[LSM_COLS(T)], tt[LSM_COLS(T)];
    const ptrdiff_t J = n - j0 < LSM_COL_ROWS ? n - j0 : LSM_COL_ROWS;
    const ptrdiff_t left = n - j0 - J;
    const ptrdiff_t pfn = left < J ? left : J;
    const T *r0 = base + j0 * s;
    const T *q0 = vbase ? vbase + j0 * vs : NULL;
#pragma omp simd
    for (ptrdiff_t k = 0; k < w; k++) {
        cm[k] = -T_INF;
    }
    for (ptrdiff_t j = 0; j < J; j++) {
        const T *restrict ru = r0 + j * s;
#pragma omp simd
        for (ptrdiff_t k = 0; k < w; k++) {
            cm[k] = ru[k] > cm[k] ? ru[k] : cm[k];
        }
    }
    int grow = 0, below = 1;
#pragma omp simd reduction(| : grow) reduction(& : below)
    for (ptrdiff_t k = 0; k < w; k++) {
        grow |= cm[k] > m[k];
        below &= cm[k] < m[k];
    }
    if (grow) {
        FN(cols_raise_)(w, cm, m, c, rest, tv);
    }
#pragma omp simd
    for (ptrdiff_t k = 0; k < w; k++) {
        /* a column still at -inf: shift by 0 so -inf gives 0, nan nan */
        sh[k] = m[k] == -T_INF ? (T)0 : m[k];
        cc[k] = rr[k] = tt[k] = 0;
    }
#if HAVE_ROW8
    for (ptrdiff_t k0 = 0; k0 < w; k0 += LSM_COL_STRIP * 64 / sizeof(T)) {
        if (q0) {
            FN(cols_strip_)
            (r0, s, q0, vs, J, pfn, k0, w, sh, cc, rr, tt, 1, 0);
        } else if (below) {
            FN(cols_strip_)
            (r0, s, NULL, 0, J, pfn, k0, w, sh, cc, rr, tt, 0, 1);
        } else {
            FN(cols_strip_)
            (r0, s, NULL, 0, J, pfn, k0, w, sh, cc, rr, tt, 0, 0);
        }
    }
#else
    for (ptrdiff_t j = 0; j < J; j++) {
        const T *restrict ru = r0 + j * s;
        if (j < pfn) {
            FN(prefetch_part_)(ru + J * s, w, 0, w, FN(cols_l2_)());
            if (q0) {
                FN(prefetch_part_)
                (q0 + (J + j) * vs, w, 0, w, FN(cols_l2_)());
            }
        }
        if (q0) {
            const T *restrict qu = q0 + j * vs;
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                const T t = EXPSUM(ru[k] - sh[k]);
                const int at_max = ru[k] == sh[k];
                rr[k] += at_max ? (T)0 : t;
                cc[k] += at_max ? (T)1 : (T)0;
                tt[k] += t * qu[k];
            }
        } else if (below) {
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                rr[k] += EXPSUM(ru[k] - sh[k]);
            }
        } else {
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                const T t = EXPSUM(ru[k] - sh[k]);
                const int at_max = ru[k] == sh[k];
                rr[k] += at_max ? (T)0 : t;
                cc[k] += at_max ? (T)1 : (T)0;
            }
        }
    }
#endif
#pragma omp simd
    for (ptrdiff_t k = 0; k < w; k++) {
        c[k] += (double)cc[k];
        rest[k] += (double)rr[k];
        tv[k] += (double)tt[k];
    }
}

static void FN(cols_stats_)(const T *base, ptrdiff_t s, const T *vbase,
                            ptrdiff_t vs, ptrdiff_t n, ptrdiff_t w,
                            T *restrict m, double *restrict c,
                            double *restrict rest, double *restrict tv) {
    FN(cols_stats_start_)(w, m, c, rest, tv);
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_COL_ROWS) {
        FN(cols_stats_chunk_)(base, s, vbase, vs, n, w, j0, m, c, rest, tv);
    }
}

/* softmax of a column block (w <= LSM_COLS(T) columns, rows s apart from
 * base; y rows ys apart from yb) with one exp per element, where the output
 * pass of colwise_range_ computes exp(x - m) again. The rows go in at most
 * LSM_COL_SEGS segments of whole chunks of LSM_COL_ROWS rows: a segment's
 * maxima first (raising the state m, c, rest as cols_stats_ does), then
 * y = exp(x - sh) against its shift sh (the running max), stored and summed
 * in partial sums of at most LSM_COL_ROWS terms. Once the block's statistics
 * are known, a second pass scales each segment's rows by
 * exp(sh - m) / (c + rest); a column whose max is +-inf (+inf present, or
 * only -inf and nan) is nan throughout. Works in place (y the memory of x):
 * every element is read before it is written. */
static void FN(cols_softmax_)(const T *base, ptrdiff_t s, ptrdiff_t n,
                              ptrdiff_t w, T *yb, ptrdiff_t ys, T *restrict m,
                              double *restrict c, double *restrict rest) {
    T shs[LSM_COL_SEGS][LSM_COLS(T)];
    T cm[LSM_COLS(T)], sh[LSM_COLS(T)], cc[LSM_COLS(T)], rr[LSM_COLS(T)];
    const ptrdiff_t chunks = (n + LSM_COL_ROWS - 1) / LSM_COL_ROWS;
    const ptrdiff_t S =
        LSM_COL_ROWS * ((chunks + LSM_COL_SEGS - 1) / LSM_COL_SEGS);
    double tv[LSM_COLS(T)]; /* (cols_raise_ rescales it; unused here) */
    for (ptrdiff_t k = 0; k < w; k++) {
        m[k] = -T_INF;
        c[k] = rest[k] = tv[k] = 0;
    }
    for (ptrdiff_t g = 0, j0 = 0; j0 < n; g++, j0 += S) {
        const ptrdiff_t J = n - j0 < S ? n - j0 : S;
#pragma omp simd
        for (ptrdiff_t k = 0; k < w; k++) {
            cm[k] = -T_INF;
        }
        for (ptrdiff_t j = j0; j < j0 + J; j++) {
            const T *restrict ru = base + j * s;
            if (j + LSM_AHEAD < j0 + J) {
                FN(prefetch_)(ru + LSM_AHEAD * s, w, 0);
            }
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                cm[k] = ru[k] > cm[k] ? ru[k] : cm[k];
            }
        }
        FN(cols_raise_)(w, cm, m, c, rest, tv);
#pragma omp simd
        for (ptrdiff_t k = 0; k < w; k++) {
            shs[g][k] = m[k];
            /* a column still at -inf: shift by 0 so -inf gives 0, nan nan */
            sh[k] = m[k] == -T_INF ? (T)0 : m[k];
        }
        for (ptrdiff_t i0 = j0; i0 < j0 + J; i0 += LSM_COL_ROWS) {
            const ptrdiff_t i1 =
                j0 + J - i0 < LSM_COL_ROWS ? j0 + J : i0 + LSM_COL_ROWS;
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                cc[k] = rr[k] = 0;
            }
            for (ptrdiff_t j = i0; j < i1; j++) {
                const T *restrict ru = base + j * s;
                T *restrict yu = yb + j * ys;
                if (j + LSM_AHEAD < j0 + J) {
                    FN(prefetch_)(ru + LSM_AHEAD * s, w, 0);
                    FN(prefetch_)(yu + LSM_AHEAD * ys, w, 1);
                }
#pragma omp simd
                for (ptrdiff_t k = 0; k < w; k++) {
                    const T t = EXPNEG(ru[k] - sh[k]);
                    const int at_max = ru[k] == sh[k];
                    yu[k] = t;
                    rr[k] += at_max ? (T)0 : t;
                    cc[k] += at_max ? (T)1 : (T)0;
                }
            }
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                c[k] += (double)cc[k];
                rest[k] += (double)rr[k];
            }
        }
    }
    for (ptrdiff_t g = 0, j0 = 0; j0 < n; g++, j0 += S) {
        const ptrdiff_t J = n - j0 < S ? n - j0 : S;
#pragma omp simd
        for (ptrdiff_t k = 0; k < w; k++) {
            /* rows of a segment whose shift was -inf hold zeros (or nan);
             * a column whose max is +-inf is nan throughout, as SciPy's */
            const double f =
                shs[g][k] == -T_INF ? 0.0 : (double)EXP(shs[g][k] - m[k]);
            const int special = !(m[k] > -T_INF && m[k] < T_INF);
            sh[k] = special ? (T)NAN : (T)(f / (c[k] + rest[k]));
        }
        for (ptrdiff_t j = j0; j < j0 + J; j++) {
            T *restrict yu = yb + j * ys;
            if (j + LSM_AHEAD < n) {
                FN(prefetch_)(yu + LSM_AHEAD * ys, w, 1);
            }
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                yu[k] *= sh[k];
            }
        }
    }
}

/* Per-column finish: lse - m (as T) into lm, 1 / (c + rest) into rd (softmax
 * multiplies by it), and a flag for columns that need the special path (max
 * +-inf). */
static void FN(cols_finish_)(ptrdiff_t w, const T *restrict m,
                             const double *restrict c,
                             const double *restrict rest, T *restrict lm,
                             T *restrict rd, unsigned char *restrict special) {
    for (ptrdiff_t k = 0; k < w; k++) {
        special[k] = !(m[k] > -T_INF && m[k] < T_INF);
    }
#pragma omp simd
    for (ptrdiff_t k = 0; k < w; k++) {
        lm[k] = (T)FN(log_sum_)(c[k], rest[k]);
        rd[k] = (T)(1.0 / (c[k] + rest[k]));
    }
}

/* ------------------------------------------------------------ short rows */

/* Rows per block of the short-row path for op (0 softmax, 1 log_softmax,
 * 2 the JVP, 3 logsumexp, 4 the VJP). Blocks of LSM_SHORT_BLOCK elements,
 * LSM_SHORT_BLOCK32 for float32 rows of more than 4, with smaller blocks
 * where they measured faster (A/B, 1 thread, Zen 4, cold, 8M elements,
 * avx512 and avx2, two runs, time against the larger block):
 *   - float32 rows of 5-16 (all but the VJP) in half of LSM_SHORT_BLOCK32
 *     (8 KB): softmax 0.78-0.93x, log_softmax 0.86-0.99x, the JVP
 *     0.87-0.98x, logsumexp 0.81-0.99x (rows of 10 and 13: 0.94-1.05x);
 *     (1M, 8) 0.77-0.89x, 0.9-0.93x, 0.87-0.91x, 0.91-0.96x. The VJP's
 *     were 0.99-1.05x, rows of 24 and 64 1.03-1.17x;
 *   - logsumexp and softmax of rows of up to 64 bytes (float32 rows of up
 *     to 4, float64 of up to 8) in half of LSM_SHORT_BLOCK: logsumexp
 *     0.81-1.0x (float32 rows of 2-4 0.9-1.0x), softmax float32
 *     rows of 2-3 0.82-0.86x, float64 rows of 2-8 0.79-0.97x (rows of 4 in
 *     float32 0.95-1.02x, of 6 in float64 at avx2 1.09x). log_softmax and
 *     the JVP were mixed (0.77-1.19x) and keep LSM_SHORT_BLOCK;
 *   - the VJP of float32 rows of 2-3 (transposed, no prefetches: bursts
 *     of them took 1.1-1.47x) in a quarter of LSM_SHORT_BLOCK: 0.52-0.69x
 *     (blocks of 128: 0.49-0.61x, of 512: 0.66-0.72x; in L2 1.07-1.08x);
 *     float32 rows of 4 and float64 rows gained nothing from smaller
 *     blocks (0.96-1.03x);
 *   - softmax and log_softmax of float32 rows of 2 (binary
 *     classification) in blocks of 256 elements too: softmax 0.75-0.9x
 *     against 512, log_softmax 0.88-0.91x against 1024; rows of 3 took
 *     1.19-1.25x, logsumexp and the JVP 1.0-1.4x, and keep theirs. */
static ptrdiff_t FN(short_per_block_)(int op, ptrdiff_t n) {
    ptrdiff_t elems = LSM_SHORT_BLOCK;
    if (sizeof(T) == 4 && n > 4) {
        elems = n > 16 || op == 4 ? LSM_SHORT_BLOCK32 : LSM_SHORT_BLOCK32 / 2;
    } else if (sizeof(T) == 4 &&
               ((op == 4 && n <= 3) || ((op == 0 || op == 1) && n == 2))) {
        elems = LSM_SHORT_BLOCK / 4;
    } else if ((op == 0 || op == 3) && n * (ptrdiff_t)sizeof(T) <= 64) {
        elems = LSM_SHORT_BLOCK / 2;
    }
    const ptrdiff_t R = elems / n;
    return R < LSM_CHUNK ? R : LSM_CHUNK;
}

/* R rows of n elements (R <= short_per_block_(op, n)) packed back to back:
 * row r of x at x + r * n, likewise v, y, dy; logsumexp results at out[r *
 * os]. Loops over a row of a few elements do not vectorise, so the block is
 * transposed into L1 (element j of row r at xt[j * R + r]) and every step
 * runs across rows, one SIMD lane per row: the max, the sums (each row's
 * terms added in order, as a loop over the row would), the log, the output;
 * outputs are transposed back. op: 0 softmax, 1 log_softmax, 2 jvp, 3
 * logsumexp. */
/* The rows of a short block whose max m[r] is not finite get scipy's IEEE
 * answers (overwriting what the vector loops wrote there). */
static void FN(short_special_)(int op, ptrdiff_t R, ptrdiff_t n, const T *x,
                               const T *m, T *y, T *dy, T *out, ptrdiff_t os) {
    for (ptrdiff_t r = 0; r < R; r++) {
        if (m[r] > -T_INF && m[r] < T_INF) {
            continue;
        }
        const T *xr = x + r * n;
        if (op == 3) {
            out[r * os] = (T)log(fabs(FN(special_sum_)(xr, 1, NULL, 0, n)));
        } else if (op == 0) {
            FN(fill_)(y + r * n, 1, n, (T)NAN);
        } else {
            FN(special_log_softmax_)(xr, 1, n, m[r], y + r * n, 1);
            if (op == 2) {
                FN(fill_)(dy + r * n, 1, n, (T)NAN);
            }
        }
    }
}

/* The transposes of a short block: R rows of n elements at x into xt
 * (element j of row r at xt[j * R + r]), and back, where transpose_ has no
 * tiles for n. A loop with n a compile-time constant vectorises (loads or
 * stores of whole vectors and shuffles); with n a variable it runs element
 * by element, 4-5x slower at n = 8. So n = 2..16 each get their own
 * instance, in float32: A/B (1 thread, avx512) logsumexp of (1M, 8)
 * 0.74-0.83x the time, (2M, 4) 0.71x, (500k, 16) 0.77x, softmax and
 * log_softmax 0.65-0.84x; float64, whose exp costs twice as much, showed no
 * gain (0.95-1.16x). */
static LSM_ALWAYS_INLINE void FN(transpose_n_)(ptrdiff_t R, ptrdiff_t n,
                                               const T *restrict a,
                                               T *restrict b, int back) {
#pragma omp simd
    for (ptrdiff_t r = 0; r < R; r++) {
        for (ptrdiff_t j = 0; j < n; j++) {
            if (back) {
                b[r * n + j] = a[j * R + r];
            } else {
                b[j * R + r] = a[r * n + j];
            }
        }
    }
}

/* One column j of a transposed short block (xj, and vj for the JVP when
 * hv): each row's terms added to its sums, the max's terms (exactly 1 each)
 * counted apart from the others, so that terms below ulp(1) still reach
 * the sum. sm (softmax): t = exp(x - m) by EXPNEG, kept in yj. first (column
 * 0): the sums start from 0 here, so that the block needs no zeroing pass
 * (GCC made that a memset, 8% of the time of logsumexp of (1M, 8)).
 * float64 at AVX-512: the same terms and adds with lsm_vexpsum_f64_
 * (lsm_vexpneg_f64_ for softmax), 8 rows at a time (A/B, 1 thread, Zen 4,
 * cold, rows of 2-32: logsumexp 0.93-1.0x the time, log_softmax
 * 0.96-0.98x, the JVP 0.94-1.04x, softmax 0.92-0.97x, rows of 2
 * 0.98-1.05x). */
static LSM_ALWAYS_INLINE void
FN(short_sums_)(ptrdiff_t R, const T *restrict xj, const T *restrict vj,
                T *restrict yj, const T *restrict m, T *restrict c,
                T *restrict rest, T *restrict tv, int hv, int sm, int first) {
#if HAVE_VEXP
    for (ptrdiff_t r = 0; r < R; r += 8) {
        const __mmask8 km = lsm_lanes8_(R - r);
        const __m512d x = _mm512_maskz_loadu_pd(km, xj + r);
        const __m512d mv = _mm512_maskz_loadu_pd(km, m + r);
        const __m512d d = _mm512_sub_pd(x, mv);
        const __m512d t = sm ? lsm_vexpneg_f64_(d) : lsm_vexpsum_f64_(d);
        if (sm) {
            _mm512_mask_storeu_pd(yj + r, km, t);
        }
        const __mmask8 at = _mm512_cmp_pd_mask(x, mv, _CMP_EQ_OQ);
        const __m512d z = _mm512_setzero_pd();
        const __m512d c0 = first ? z : _mm512_maskz_loadu_pd(km, c + r);
        const __m512d r0 = first ? z : _mm512_maskz_loadu_pd(km, rest + r);
        _mm512_mask_storeu_pd(
            c + r, km, _mm512_mask_add_pd(c0, at, c0, _mm512_set1_pd(1.0)));
        _mm512_mask_storeu_pd(rest + r, km,
                              _mm512_mask_add_pd(r0, (__mmask8)~at, r0, t));
        if (hv) {
            const __m512d t0 = first ? z : _mm512_maskz_loadu_pd(km, tv + r);
            _mm512_mask_storeu_pd(
                tv + r, km,
                _mm512_fmadd_pd(t, _mm512_maskz_loadu_pd(km, vj + r), t0));
        }
    }
#else
#pragma omp simd
    for (ptrdiff_t r = 0; r < R; r++) {
        const T d = xj[r] - m[r];
        const T t = sm ? EXPNEG(d) : EXPSUM(d);
        const int at_max = xj[r] == m[r];
        if (sm) {
            yj[r] = t;
        }
        c[r] = (first ? (T)0 : c[r]) + (at_max ? (T)1 : (T)0);
        rest[r] = (first ? (T)0 : rest[r]) + (at_max ? (T)0 : t);
        if (hv) {
            tv[r] = (first ? (T)0 : tv[r]) + t * vj[r];
        }
    }
#endif
}

/* Whether a short block's hints for the next block (short_ahead_) go to
 * L2 only (prefetcht1) rather than L1, for op (as short_block_): the JVP,
 * whose block keeps x, v, y and dy (transposed, and streamed from buffers)
 * beside the next block's two inputs, more than L1 holds, and float32
 * logsumexp and log_softmax. A/B (1 thread, Zen 4, cold, 8M elements, rows
 * of 4, 8, 16, 32, 40 and 64; three runs at avx512, two at avx2): the JVP
 * float32 0.8-0.91x the time at avx512, 0.84-0.96x at avx2, float64
 * 0.8-0.97x and 0.81-1.03x (rows of 40: 0.98-1.02x); float32 log_softmax
 * 0.91-0.96x and 0.96-1.02x (rows of 40: 1.01-1.02x), logsumexp 0.92-1.02x
 * and 0.96-1.02x. float64 logsumexp and log_softmax and all softmax gained
 * nothing (0.95-1.05x) and keep L1. The flat block (short_block_flat_:
 * float32 log_softmax and JVP) takes L2 too. */
static int FN(short_l2_)(int op) {
    return op == 2 || (sizeof(T) == 4 && op != 0);
}

/* The sums of all n columns of a transposed short block (op as
 * short_block_: 0 softmax, 2 the JVP, else log_softmax or logsumexp). pf and
 * pv (NULL: none): the pfn elements of the next block's x and v, prefetched
 * a part per column (short_ahead_). */
static void FN(short_sums_all_)(int op, ptrdiff_t R, ptrdiff_t n,
                                const T *restrict xt, const T *restrict vt,
                                T *restrict yt, const T *restrict m,
                                T *restrict c, T *restrict rest, T *restrict tv,
                                const T *pf, const T *pv, ptrdiff_t pfn) {
    const ptrdiff_t ps = (pfn + n - 1) / n;
    const int l2 = FN(short_l2_)(op);
    for (ptrdiff_t j = 0; j < n; j++) {
        FN(prefetch_part_)(pf, pfn, j * ps, (j + 1) * ps, l2);
        FN(prefetch_part_)(pv, pfn, j * ps, (j + 1) * ps, l2);
        const T *xj = xt + j * R;
        const T *vj = op == 2 ? vt + j * R : NULL;
        T *yj = op == 0 ? yt + j * R : NULL;
        if (op == 0) {
            if (j == 0) {
                FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 0, 1, 1);
            } else {
                FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 0, 1, 0);
            }
        } else if (op == 2) {
            if (j == 0) {
                FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 1, 0, 1);
            } else {
                FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 1, 0, 0);
            }
        } else if (j == 0) {
            FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 0, 0, 1);
        } else {
            FN(short_sums_)(R, xj, vj, yj, m, c, rest, tv, 0, 0, 0);
        }
    }
}

#if LSM_HAVE_TILES
/* transpose_ in K x K tiles (TILE_BIG or TILE_SMALL) as far as they go:
 * the rows past the last whole tile one element at a time, the columns
 * past the last whole tile (n % K of them) one column at a time */
static LSM_ALWAYS_INLINE void FN(transpose_tiles_)(ptrdiff_t R, ptrdiff_t n,
                                                   const T *restrict a,
                                                   T *restrict b, int back,
                                                   int K) {
    const ptrdiff_t nk = n - n % K;
    ptrdiff_t r = 0;
    for (; r + K <= R; r += K) {
        for (ptrdiff_t j = 0; j < nk; j += K) {
            const T *src = back ? a + j * R + r : a + r * n + j;
            T *dst = back ? b + r * n + j : b + j * R + r;
            const ptrdiff_t ss = back ? R : n, ds = back ? n : R;
            if (K == TILE_BIG_K) {
                TILE_BIG(src, ss, dst, ds);
            } else {
                TILE_SMALL(src, ss, dst, ds);
            }
        }
    }
    for (; r < R; r++) {
        for (ptrdiff_t j = 0; j < nk; j++) {
            if (back) {
                b[r * n + j] = a[j * R + r];
            } else {
                b[j * R + r] = a[r * n + j];
            }
        }
    }
    for (ptrdiff_t j = nk; j < n; j++) {
#pragma omp simd
        for (ptrdiff_t q = 0; q < R; q++) {
            if (back) {
                b[q * n + j] = a[j * R + q];
            } else {
                b[j * R + q] = a[q * n + j];
            }
        }
    }
}
#endif

/* R rows of n elements at a into the transposed block b (back = 0), or the
 * transposed block a back into rows at b (back = 1). In tiles where they
 * divide n: A/B (1 thread, avx2, in L2) against the loops, logsumexp of
 * float32 rows of 8 0.76x the time, 16 0.71x, 32 0.52x; log_softmax of rows
 * of 8 0.79x; float64 rows of 2-32 0.81-0.88x, all ops. */
static void FN(transpose_)(ptrdiff_t R, ptrdiff_t n, const T *restrict a,
                           T *restrict b, int back) {
#if LSM_HAVE_TILES
    if (n % TILE_BIG_K == 0) {
        FN(transpose_tiles_)(R, n, a, b, back, TILE_BIG_K);
        return;
    }
    /* (float32 rows of 4 with AVX: GCC's loop does as well as 4 x 4 tiles,
     * which took softmax 1.16-1.23x the time; float64 rows of 6 and 10 at
     * AVX-512 take 4 x 4 tiles and 2 columns apart: softmax 0.93-0.95x the
     * time of 2 x 2 tiles, A/B 1 thread, cold; float32 rows of 12 and 20
     * kept 4 x 4 tiles: 8 x 8 and 4 columns apart took 1.02-1.04x) */
    if (n % TILE_SMALL_K == 0 && !(TILE_BIG_K == 8 && n == 4) &&
        !(sizeof(T) == 8 && n > TILE_BIG_K)) {
        FN(transpose_tiles_)(R, n, a, b, back, TILE_SMALL_K);
        return;
    }
    /* other n: whole tiles and the n % K columns past them one at a time,
     * not every column by GCC's gathers: A/B (1 thread, avx512, cold)
     * float32 rows of 10 0.73-0.79x the time, 7 0.84-0.88x, 13 0.78-0.86x,
     * all ops */
    if (n > TILE_BIG_K) {
        FN(transpose_tiles_)(R, n, a, b, back, TILE_BIG_K);
        return;
    }
    if (n > TILE_SMALL_K && TILE_SMALL_K < TILE_BIG_K) {
        FN(transpose_tiles_)(R, n, a, b, back, TILE_SMALL_K);
        return;
    }
#endif
    if (sizeof(T) == 4 && back) {
        LSM_SHORT_CASES(FN(transpose_n_), a, b, 1)
    } else if (sizeof(T) == 4) {
        LSM_SHORT_CASES(FN(transpose_n_), a, b, 0)
    } else {
        FN(transpose_n_)(R, n, a, b, back);
    }
}

/* (inlined always: with its second caller, short_rows_stream_, GCC kept it
 * out of line, and short_rows_range_ took 1.1-1.2x the time on float32 rows
 * of 40, A/B, 1 thread, avx2) */
static LSM_ALWAYS_INLINE void
FN(short_block_)(int op, ptrdiff_t R, ptrdiff_t n, const T *restrict x,
                 const T *restrict v, T *restrict y, T *restrict dy,
                 T *restrict out, ptrdiff_t os, const T *pf, const T *pv,
                 ptrdiff_t pfn) {
    T xt[SHORT_MAX], yt[SHORT_MAX];
    T vt[SHORT_MAX], dyt[SHORT_MAX];
    T m[LSM_CHUNK], c[LSM_CHUNK], rest[LSM_CHUNK], l[LSM_CHUNK];
    T tv[LSM_CHUNK], q[LSM_CHUNK];
    FN(transpose_)(R, n, x, xt, 0);
    if (op == 2) {
        FN(transpose_)(R, n, v, vt, 0);
    }
#if HAVE_VSUM
    /* logsumexp and log_softmax: a vector of rows at a time, its max, count
     * and sum kept in registers across the n columns (rather than a column
     * at a time for every row, through m, c and rest in memory). A/B (1
     * thread, avx512, cold): logsumexp float32 rows of 8 0.90x the time, 4
     * 0.91x, 7 0.90x, 16 0.89x, 32 0.96x; log_softmax float32 rows of 5,
     * 7, 10 and 12 0.87-0.95x, 32 1.0x; float64 rows of 7-32 0.98-1.04x.
     * Same bits. (The JVP, with its sum of t v kept too, gained nothing:
     * 1.0-1.03x.) */
    if (op == 3 || op == 1) {
        enum { LV = 64 / (int)sizeof(T) };
        const ptrdiff_t steps = (R + LV - 1) / LV;
        const ptrdiff_t ps = (pfn + steps - 1) / steps;
        const V one = VF(set1)(1.0);
        for (ptrdiff_t r = 0, g = 0; r < R; r += LV, g++) {
            FN(prefetch_part_)(pf, pfn, g * ps, (g + 1) * ps, 1);
            const unsigned k = VF(lanes)(R - r);
            V mx = VF(set1)(-INFINITY);
            for (ptrdiff_t j = 0; j < n; j++) {
                mx = VF(max)(VF(maskz_loadu)(k, xt + j * R + r), mx);
            }
            V cv = VF(zero)(), rv = VF(zero)();
            for (ptrdiff_t j = 0; j < n; j++) {
                const V xv = VF(maskz_loadu)(k, xt + j * R + r);
                const V t = VF(expsum)(VF(sub)(xv, mx));
                const unsigned at = (unsigned)VF(eq)(xv, mx);
                cv = VF(mask_add)(cv, at, one);
                rv = VF(mask_add)(rv, ~at, t);
            }
            VF(mask_storeu)(m + r, k, mx);
            VF(mask_storeu)(c + r, k, cv);
            VF(mask_storeu)(rest + r, k, rv);
        }
    } else
#endif
    {
        for (ptrdiff_t r = 0; r < R; r++) {
            m[r] = -T_INF;
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            const T *restrict xj = xt + j * R;
#pragma omp simd
            for (ptrdiff_t r = 0; r < R; r++) {
                m[r] = xj[r] > m[r] ? xj[r] : m[r];
            }
        }
        FN(short_sums_all_)(op, R, n, xt, vt, yt, m, c, rest, tv, pf, pv, pfn);
    }
    int any_special = 0;
    for (ptrdiff_t r = 0; r < R; r++) {
        any_special |= !(m[r] > -T_INF && m[r] < T_INF);
    }
    if (op == 0) {
        for (ptrdiff_t r = 0; r < R; r++) {
            l[r] = (T)(1.0 / ((double)c[r] + (double)rest[r]));
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            T *restrict yj = yt + j * R;
#pragma omp simd
            for (ptrdiff_t r = 0; r < R; r++) {
                yj[r] = yj[r] * l[r];
            }
        }
    } else {
        /* l = log(c + rest): float32 rows take the float log (half the
         * vectors of the float64 one, which took a fifth of logsumexp's
         * time on rows of 8) */
        if (sizeof(T) == 4) {
#pragma omp simd
            for (ptrdiff_t r = 0; r < R; r++) {
                l[r] = (T)lsm_log_sum_f32((float)c[r], (float)rest[r]);
            }
        } else {
#pragma omp simd
            for (ptrdiff_t r = 0; r < R; r++) {
                l[r] = (T)FN(log_sum_)((double)c[r], (double)rest[r]);
            }
        }
        if (op == 3) {
            for (ptrdiff_t r = 0; r < R; r++) {
                out[r * os] = (T)((double)l[r] + (double)m[r]);
            }
        } else {
            for (ptrdiff_t j = 0; j < n; j++) {
                const T *restrict xj = xt + j * R;
                T *restrict yj = yt + j * R;
#pragma omp simd
                for (ptrdiff_t r = 0; r < R; r++) {
                    yj[r] = (xj[r] - m[r]) - l[r];
                }
            }
            if (op == 2) {
#pragma omp simd
                for (ptrdiff_t r = 0; r < R; r++) {
                    q[r] =
                        (T)((double)tv[r] / ((double)c[r] + (double)rest[r]));
                }
                for (ptrdiff_t j = 0; j < n; j++) {
                    const T *restrict vj = vt + j * R;
                    T *restrict dyj = dyt + j * R;
#pragma omp simd
                    for (ptrdiff_t r = 0; r < R; r++) {
                        dyj[r] = vj[r] - q[r];
                    }
                }
                FN(transpose_)(R, n, dyt, dy, 1);
            }
        }
    }
    if (op != 3) {
        FN(transpose_)(R, n, yt, y, 1);
    }
    if (any_special) {
        FN(short_special_)(op, R, n, x, m, y, dy, out, os);
    }
}

#if HAVE_ROW8
static void FN(row_softmax_)(const T *x, ptrdiff_t sx, ptrdiff_t n, T *y,
                             ptrdiff_t sy, T *restrict bx, T *restrict by,
                             const T *nx, int nt, T *scr);

#define ROW8F(name) LSM_CAT(LSM_CAT(lsm_row8_, name), LSM_CAT(_, LSM_SFX))
/* The rows (`rows` rows of w elements, at most P G: P rows to a vector)
 * at x into G vectors; lanes past the rows read as 0. */
static LSM_ALWAYS_INLINE void FN(row8_load_)(const T *restrict x,
                                             ptrdiff_t rows, V *xv, int w) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    for (int g = 0; g < G; g++) {
        const ptrdiff_t left = w * rows - L * g;
        xv[g] = w * rows == G * L ? VF(loadu)(x + L * g)
                : left <= 0       ? VF(zero)()
                                  : VF(maskz_loadu)(VF(lanes)(left), x + L * g);
    }
}

/* The special rows among those of row8_pairs_ or row8_logs_ (a max of
 * +-inf or nan), found again one by one: their outputs in o (and od) get
 * scipy.special's IEEE answers, by row_softmax_ (op 0) or
 * special_log_softmax_ (op 1; op 2 also dy = nan). Rare. */
static void FN(row8_special_)(int op, const T *x, ptrdiff_t rows, V *o, V *od,
                              int w) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    T t[G * L], td[G * L];
    for (int g = 0; g < G; g++) {
        VF(storeu)(t + L * g, o[g]);
        if (op == 2) {
            VF(storeu)(td + L * g, od[g]);
        }
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const T *xr = x + w * r;
        T mr = -T_INF;
        for (int j = 0; j < w; j++) {
            mr = xr[j] > mr || xr[j] != xr[j] ? xr[j] : mr;
        }
        if (mr > -T_INF && mr < T_INF) {
            continue;
        }
        if (op == 0) {
            T bx[LSM_CHUNK], by[LSM_CHUNK];
            FN(row_softmax_)(xr, 1, w, t + w * r, 1, bx, by, NULL, 0, NULL);
        } else {
            FN(special_log_softmax_)(xr, 1, w, mr, t + w * r, 1);
        }
        if (op == 2) {
            FN(fill_)(td + w * r, 1, w, (T)NAN);
        }
    }
    for (int g = 0; g < G; g++) {
        o[g] = VF(loadu)(t + L * g);
        if (op == 2) {
            od[g] = VF(loadu)(td + L * g);
        }
    }
}

/* softmax of `rows` rows of w (a power of 2 from 4 to G L elements, a
 * constant where it is inlined) at x (at most LSM_ROW8_G vectors' worth; P
 * rows to a vector, or a row over w / L vectors; into o: lanes past the
 * rows read as 0 and give rows of 1/w), in registers: no transposes. The
 * outputs are u / sum u (one rounding; rows over several vectors u times
 * 1 / sum, as row_softmax_). A row with a max of +-inf or nan takes
 * row_softmax_ (the IEEE answers of scipy.special). */
static LSM_ALWAYS_INLINE void FN(row8_pairs_)(const T *restrict x,
                                              ptrdiff_t rows, V *o, int w) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    V xv[G], m[G];
    LSM_CAT(lsm_m_, LSM_SFX) any = 0;
    FN(row8_load_)(x, rows, xv, w);
    for (int g = 0; g < G; g++) {
        m[g] = xv[g];
    }
    ROW8F(max)(m, w);
    for (int g = 0; g < G; g++) {
        any |= VF(bad)(m[g]);
        m[g] = VF(sub)(xv[g], m[g]);
    }
    V u[G], s[G];
    ROW8F(exp64)(m, u);
    for (int g = 0; g < G; g++) {
        s[g] = u[g];
    }
    ROW8F(sum)(s, w);
    if (w > L) { /* t times 1 / sum, one division per row, as row_softmax_ */
        for (int g = 0; g < G; g += w / L) {
            s[g] = VF(div)(VF(set1)(1.0), s[g]);
        }
        for (int g = 0; g < G; g++) {
            o[g] = VF(mul)(u[g], s[g - g % (w / L)]);
        }
    } else {
        for (int g = 0; g < G; g++) {
            o[g] = VF(div)(u[g], s[g]);
        }
    }
    if (any) {
        FN(row8_special_)(0, x, rows, o, NULL, w);
    }
}

/* log_softmax (v NULL) or its JVP of `rows` rows of w at x (and v), as
 * row8_pairs_, into o (y) and od (dy): the terms t = exp(x - m) of each row
 * and their sums as short_block_ makes them (the max's terms, exactly 1,
 * counted apart from the rest; tv = sum t v), each row's sums by swaps
 * within its lanes (and a tree across its vectors). The rows' logs (in
 * float64) take one lane each of one or two vectors: rows of w <= L lanes
 * (P to a vector) from vector g = C k + i (C = min(w, G)) into vector k's
 * lanes w h + i, longer rows (nv vectors each) into lane g / nv, by masked
 * moves; the logs and q = tv / sum come back to every lane of their rows by
 * one permute per vector. A row's count of entries at the max is 1 unless
 * the vectors' counts sum to more than their rows (ties, or the tail's
 * empty rows): then each row's is counted. */
static LSM_ALWAYS_INLINE void FN(row8_logs_)(const T *restrict x,
                                             const T *restrict v,
                                             ptrdiff_t rows, V *o, V *od,
                                             int w) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    const int wide = w > L, RG = G * L / w;
    const int P = wide ? 1 : L / w, C = wide ? G : w < G ? w : G;
    const int nv = wide ? w / L : 1, NC = wide ? 1 : G / C;
    V xv[G], vv[G], d[G], u[G], r[G];
    LSM_CAT(lsm_m_, LSM_SFX) any = 0, at[G];
    int ones = 0;
    FN(row8_load_)(x, rows, xv, w);
    for (int g = 0; g < G; g++) {
        d[g] = xv[g];
        vv[g] = VF(zero)(); /* (read only with v) */
    }
    if (v) {
        FN(row8_load_)(v, rows, vv, w);
    }
    ROW8F(max)(d, w);
    for (int g = 0; g < G; g++) {
        any |= VF(bad)(d[g]);
        at[g] = VF(eq)(xv[g], d[g]);
        ones += __builtin_popcount(at[g]);
        d[g] = VF(sub)(xv[g], d[g]);
    }
    ROW8F(expsum)(d, u);
    for (int g = 0; g < G; g++) {
        r[g] = VF(maskz_mov)((unsigned)(LSM_CAT(lsm_m_, LSM_SFX)) ~at[g], u[g]);
    }
    ROW8F(sum)(r, w);
    if (v) {
        for (int g = 0; g < G; g++) {
            u[g] = VF(mul)(u[g], vv[g]);
        }
        ROW8F(sum)(u, w);
    }
    V cc[G / 4], rc[G / 4], tc[G / 4], lc[G / 4], qc[G / 4];
    for (int k = 0; k < NC; k++) {
        rc[k] = r[C * k];
        tc[k] = v ? u[C * k] : rc[k];
        for (int i = 1; i < (wide ? RG : C); i++) {
            unsigned mask = wide ? 1u << i : 0;
            for (int j = i; !wide && j < L; j += C) {
                mask |= 1u << j;
            }
            rc[k] = VF(mask_mov)(rc[k], mask, r[C * k + nv * i]);
            if (v) {
                tc[k] = VF(mask_mov)(tc[k], mask, u[C * k + nv * i]);
            }
        }
        cc[k] = VF(set1)(1.0);
    }
    if (ones != RG) {
        T cnt[G / 4][L];
        for (int k = 0; k < NC; k++) {
            for (int j = 0; j < L; j++) {
                cnt[k][j] = 0;
            }
        }
        for (int g = 0; g < G; g++) {
            for (int h = 0; h < P; h++) {
                const unsigned bits = (unsigned)at[g] >> (wide ? 0 : w * h);
                const T c = (T)__builtin_popcount(
                    wide ? bits : bits & ((1u << w) - 1u));
                if (wide) {
                    cnt[0][g / nv] += c;
                } else {
                    cnt[g / C][w * h + g % C] = c;
                }
            }
        }
        for (int k = 0; k < NC; k++) {
            for (int j = 0; j < L; j++) {
                cnt[k][j] = cnt[k][j] > 0 ? cnt[k][j] : 1; /* unused lanes */
            }
            cc[k] = VF(loadu)(cnt[k]);
        }
    }
    for (int k = 0; k < NC; k++) {
        ROW8F(log)
        (cc[k], rc[k], tc[k], v != NULL, wide || P * C < L, &lc[k], &qc[k]);
    }
    for (int g = 0; g < G; g++) {
        const __m512i idx = wide ? VF(spread)(L, g / nv) : VF(spread)(w, g % C);
        const int k = wide ? 0 : g / C;
        o[g] = VF(sub)(d[g], VF(from)(idx, lc[k]));
        if (v) {
            od[g] = VF(sub)(vv[g], VF(from)(idx, qc[k]));
        }
    }
    if (any) {
        FN(row8_special_)(v ? 2 : 1, x, rows, o, od, w);
    }
}

/* The G vectors of outputs of rows at x (and v) for op (0 softmax, 1
 * log_softmax, 2 its JVP) */
static LSM_ALWAYS_INLINE void FN(row8_group_)(int op, const T *x, const T *v,
                                              ptrdiff_t rows, V *o, V *od,
                                              int w) {
    if (op == 0) {
        FN(row8_pairs_)(x, rows, o, w);
    } else {
        FN(row8_logs_)(x, op == 2 ? v : NULL, rows, o, od, w);
    }
}

/* Streaming stores of a run of output vectors to y: each 64-byte line of y
 * put together from two vectors by one permute (none when y starts on a
 * line). */
typedef struct {
    T *y;   /* the next line to store */
    V prev; /* the last vector given */
    __m512i idx;
    int h; /* y + h: the first line of the run */
} FN(row8_sink_);

/* the run's first G vectors o */
static LSM_ALWAYS_INLINE void FN(row8_sink_start_)(FN(row8_sink_) * s, T *y,
                                                   const V *o) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    /* line j of y from y + h is vector j's lanes h.. then vector j + 1's
     * lanes ..h-1 */
    s->h = (int)((64 - (uintptr_t)y % 64) % 64 / sizeof(T));
    s->idx = VF(idx)(s->h);
    VF(mask_storeu)(y, (1u << s->h) - 1u, o[0]);
    s->prev = o[0];
    s->y = y + s->h;
    for (int g = 1; g < G; g++) {
        VF(stream)(s->y, VF(shift)(s->prev, s->idx, o[g]));
        s->y += L;
        s->prev = o[g];
    }
}

/* the next G vectors */
static LSM_ALWAYS_INLINE void FN(row8_sink_put_)(FN(row8_sink_) * s,
                                                 const V *o) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    if (s->h == 0) { /* y on a line: no permutes */
        VF(stream)(s->y, s->prev);
        for (int g = 0; g < G - 1; g++) {
            VF(stream)(s->y + L * (g + 1), o[g]);
        }
        s->y += L * G;
        s->prev = o[G - 1];
        return;
    }
    for (int g = 0; g < G; g++) {
        VF(stream)(s->y, VF(shift)(s->prev, s->idx, o[g]));
        s->y += L;
        s->prev = o[g];
    }
}

/* the last vector's lanes h.. */
static LSM_ALWAYS_INLINE void FN(row8_sink_end_)(FN(row8_sink_) * s) {
    enum { L = 64 / (int)sizeof(T) };
    VF(mask_storeu)(s->y - s->h, VF(lanes)(L) & ~((1u << s->h) - 1u), s->prev);
}

/* Hints for group k + ahead of x (and v for the JVP, op 2) of the K
 * groups of G vectors: rows_ahead_, with a group for a row. As for the
 * pairs of mid-length rows, the hardware prefetchers alone left the memory
 * idle while a group computed. A/B (1 thread, Intel Xeon family 6 model
 * 207, cold, avx512, 8M elements, 15 rounds) against none: softmax float32
 * (65536, 128) 0.74x the time, (1M, 8) 0.81x, (500K, 16) 0.83x, float64
 * (131072, 64) 0.72x, (1M, 8) 0.86x; log_softmax float32 (65536, 128) 0.79x,
 * (262144, 32) and (1M, 8) 0.83-0.87x, float64 (1M, 8) 0.86x; the JVP
 * 0.86-0.92x; 2 threads 0.75-0.89x; distances of 2, 4 and 8 KB alike (within
 * 0.04x); hot arrays (under LSM_AHEAD_MIN, no hints) 0.99-1.01x. */
static LSM_ALWAYS_INLINE void FN(row8_ahead_)(int op, const T *x, const T *v,
                                              ptrdiff_t k, ptrdiff_t K) {
    enum { GL = LSM_ROW8_G * 64 / (int)sizeof(T) };
    FN(rows_ahead_)(x, GL, k, K, GL, 1);
    if (op == 2) {
        FN(rows_ahead_)(v, GL, k, K, GL, 1);
    }
}

/* op (0 softmax, 1 log_softmax, 2 its JVP) of R rows of w (as row8_pairs_;
 * back to back at x, and v) into y (and dy; may be x or v): with streaming
 * stores (row8_sink_) when nt. */
static LSM_ALWAYS_INLINE void FN(row8_rows_)(int op, ptrdiff_t R, const T *x,
                                             const T *v, T *y, T *dy, int nt,
                                             int w) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    const int RG = G * L / w; /* rows per group */
    const ptrdiff_t K = R / RG;
    ptrdiff_t k = 0;
    V o[G], od[G];
    if (nt && K > 1) {
        FN(row8_sink_) sy, sd;
        FN(row8_group_)(op, x, v, RG, o, od, w);
        FN(row8_sink_start_)(&sy, y, o);
        if (op == 2) {
            FN(row8_sink_start_)(&sd, dy, od);
        }
        for (k = 1; k < K; k++) {
            FN(row8_ahead_)(op, x, v, k, K);
            FN(row8_group_)
            (op, x + L * G * k, op == 2 ? v + L * G * k : NULL, RG, o, od, w);
            FN(row8_sink_put_)(&sy, o);
            if (op == 2) {
                FN(row8_sink_put_)(&sd, od);
            }
        }
        FN(row8_sink_end_)(&sy);
        if (op == 2) {
            FN(row8_sink_end_)(&sd);
        }
        lsm_nt_fence_();
    }
    for (; k < K; k++) {
        FN(row8_ahead_)(op, x, v, k, K);
        FN(row8_group_)
        (op, x + L * G * k, op == 2 ? v + L * G * k : NULL, RG, o, od, w);
        for (int g = 0; g < G; g++) {
            VF(storeu)(y + L * (G * k + g), o[g]);
            if (op == 2) {
                VF(storeu)(dy + L * (G * k + g), od[g]);
            }
        }
    }
    const ptrdiff_t done = RG * K;
    if (done < R) { /* the last rows, fewer than P G */
        FN(row8_group_)
        (op, x + w * done, op == 2 ? v + w * done : NULL, R - done, o, od, w);
        for (int g = 0; g < G; g++) {
            const ptrdiff_t left = w * (R - done) - L * g;
            if (left > 0) {
                VF(mask_storeu)(y + w * done + L * g, VF(lanes)(left), o[g]);
                if (op == 2) {
                    VF(mask_storeu)
                    (dy + w * done + L * g, VF(lanes)(left), od[g]);
                }
            }
        }
    }
}

/* Whether packed rows of n take row8_rows_: rows of a power of 2 from 4
 * elements up to G vectors (rows longer than a vector span several). */
static int FN(row8_n_)(ptrdiff_t n) {
    enum { G = LSM_ROW8_G, L = 64 / (int)sizeof(T) };
    return n >= 4 && n <= G * L && (n & (n - 1)) == 0;
}

/* row8_rows_ with its op and row length constants, a function each; w
 * capped at G vectors (float64's 128: never called) */
#define ROW8_INSTANCE(op, w, most)                                             \
    static void FN(row8_##op##_##w##_)(ptrdiff_t R, const T *x, const T *v,    \
                                       T *y, T *dy, int nt) {                  \
        FN(row8_rows_)(op, R, x, v, y, dy, nt, (w) < (most) ? (w) : (most));   \
    }
#define ROW8_GL (LSM_ROW8_G * 64 / (int)sizeof(T))
#define ROW8_INSTANCES(op)                                                     \
    ROW8_INSTANCE(op, 4, ROW8_GL)                                              \
    ROW8_INSTANCE(op, 8, ROW8_GL)                                              \
    ROW8_INSTANCE(op, 16, ROW8_GL)                                             \
    ROW8_INSTANCE(op, 32, ROW8_GL)                                             \
    ROW8_INSTANCE(op, 64, ROW8_GL)                                             \
    ROW8_INSTANCE(op, 128, ROW8_GL)
ROW8_INSTANCES(0)
ROW8_INSTANCES(1)
ROW8_INSTANCES(2)
#undef ROW8_INSTANCES
#undef ROW8_GL
#undef ROW8_INSTANCE
static void FN(row8_run_)(int op, ptrdiff_t R, ptrdiff_t n, const T *x,
                          const T *v, T *y, T *dy, int nt) {
    typedef void (*run_fn)(ptrdiff_t, const T *, const T *, T *, T *, int);
    static const run_fn run[3][6] = {
        {FN(row8_0_4_), FN(row8_0_8_), FN(row8_0_16_), FN(row8_0_32_),
         FN(row8_0_64_), FN(row8_0_128_)},
        {FN(row8_1_4_), FN(row8_1_8_), FN(row8_1_16_), FN(row8_1_32_),
         FN(row8_1_64_), FN(row8_1_128_)},
        {FN(row8_2_4_), FN(row8_2_8_), FN(row8_2_16_), FN(row8_2_32_),
         FN(row8_2_64_), FN(row8_2_128_)}};
    int k = 0;
    while ((ptrdiff_t)4 << k < n) {
        k++;
    }
    run[op][k](R, x, v, y, dy, nt);
}
#undef ROW8F
#endif

/* log_softmax (v, dy NULL) or its JVP of R short rows packed back to back
 * (as short_block_), each row statistic spread over the row's elements
 * ("expanded") so that every step is one flat SIMD loop over the block; the
 * same values as short_block_. Measured against the transposed block (A/B,
 * 1 thread): the JVP 0.9-1.0x the time, log_softmax of float32 rows of 32
 * and 64 0.9x (fewer rows per block, shorter loops across them); the
 * transposed block wins elsewhere (0.5-0.9x). pf, pv, pfn: the next block,
 * prefetched as by short_sums_all_. */
static void FN(short_block_flat_)(ptrdiff_t R, ptrdiff_t n, const T *restrict x,
                                  const T *restrict v, T *restrict y,
                                  T *restrict dy, const T *pf, const T *pv,
                                  ptrdiff_t pfn) {
    T mb[SHORT_MAX], tb[SHORT_MAX], cb[SHORT_MAX];
    T m[LSM_CHUNK];
    double lsum[LSM_CHUNK];
    const ptrdiff_t N = R * n;
    int any_special = 0;
    for (ptrdiff_t r = 0; r < R; r++) {
        T mm = -T_INF;
        for (ptrdiff_t j = 0; j < n; j++) {
            mm = x[r * n + j] > mm ? x[r * n + j] : mm;
        }
        m[r] = mm;
        any_special |= !(mm > -T_INF && mm < T_INF);
        for (ptrdiff_t j = 0; j < n; j++) {
            mb[r * n + j] = mm;
        }
    }
    for (ptrdiff_t i0 = 0; i0 < N; i0 += LSM_SUB) {
        const ptrdiff_t i1 = N - i0 < LSM_SUB ? N : i0 + LSM_SUB;
        FN(prefetch_part_)(pf, pfn, i0, i1, 1);
        FN(prefetch_part_)(pv, pfn, i0, i1, 1);
#pragma omp simd
        for (ptrdiff_t i = i0; i < i1; i++) {
            T t = EXPSUM(x[i] - mb[i]);
            int at_max = x[i] == mb[i];
            tb[i] = at_max ? (T)0 : t;
            cb[i] = at_max ? (T)1 : (T)0;
        }
    }
    if (v) { /* dy holds t * v until the end; t = tb + cb exactly */
#pragma omp simd
        for (ptrdiff_t i = 0; i < N; i++) {
            dy[i] = (tb[i] + cb[i]) * v[i];
        }
    }
    double cr[LSM_CHUNK], rr[LSM_CHUNK];
    for (ptrdiff_t r = 0; r < R; r++) {
        T c = 0, rest = 0, tv = 0;
        for (ptrdiff_t j = 0; j < n; j++) {
            c += cb[r * n + j];
            rest += tb[r * n + j];
        }
        cr[r] = (double)c;
        rr[r] = (double)rest;
        if (v) { /* cb: the per-row q = tv / d, expanded */
            for (ptrdiff_t j = 0; j < n; j++) {
                tv += dy[r * n + j];
            }
            T q = (T)((double)tv / ((double)c + (double)rest));
            for (ptrdiff_t j = 0; j < n; j++) {
                cb[r * n + j] = q;
            }
        }
    }
#pragma omp simd
    for (ptrdiff_t r = 0; r < R; r++) {
        lsum[r] = FN(log_sum_)(cr[r], rr[r]);
    }
    for (ptrdiff_t r = 0; r < R; r++) {
        for (ptrdiff_t j = 0; j < n; j++) {
            tb[r * n + j] = (T)lsum[r];
        }
    }
#pragma omp simd
    for (ptrdiff_t i = 0; i < N; i++) {
        y[i] = (x[i] - mb[i]) - tb[i];
    }
    if (v) {
#pragma omp simd
        for (ptrdiff_t i = 0; i < N; i++) {
            dy[i] = v[i] - cb[i];
        }
    }
    if (any_special) {
        FN(short_special_)(v ? 2 : 1, R, n, x, m, y, dy, NULL, 0);
    }
}

/* Whether the rows of an (outer, n, inner) view are short and packed. */
static int FN(short_rows_)(ptrdiff_t n, ptrdiff_t inner, const ptrdiff_t *s) {
    return n <= LSM_SHORT && inner == 1 && s[1] == 1 && s[0] == n;
}

/* Run short_block_ over all rows of a packed (outer, n, 1) view. */
/* Rows [lo, hi) of a packed (outer, n, 1) view, in blocks of R rows. */
/* Whether the transposes of a short block of rows of n elements run as
 * whole-vector loads, stores and shuffles: in tiles (x86-64: n a multiple
 * of 4 float32 or 2 float64 elements), or as GCC compiles the loops for
 * float32 n = 2, 3, 4, 8, 16 (other lengths compile to gathers and
 * scatters). The JVP then takes the transposed block: A/B (1 thread,
 * avx512) against the flat block, (1M, 8) 0.68x the time, (2M, 4) 0.53x,
 * (500k, 16) 0.76x, (1M, 3) 0.57x, where float32 n = 12 and float64 took
 * 1.15-1.55x before the tiles; with them (avx2, in L2) float32 n = 12-64
 * 0.55-0.7x, float64 n = 2-32 0.65-0.82x. So does log_softmax of float32
 * rows longer than 16 (flat before, as rows of 17-64 still are where the
 * tiles do not apply): n = 24-64 0.48-0.8x. */
static int FN(short_shuffles_)(ptrdiff_t n) {
#if LSM_HAVE_TILES
    if (n % TILE_SMALL_K == 0) {
        return 1;
    }
#endif
    return sizeof(T) == 4 && (n == 2 || n == 3 || n == 4 || n == 8 || n == 16);
}

/* Whether short rows of n elements take the flat block (short_block_flat_)
 * for op 1 or 2, rather than the transposed one: float32 rows of 17-64
 * elements that no tile divides. The JVP of the other rows that no tile
 * divides (transposed by gathers and scatters) took the flat block before
 * the blocks prefetched their successors; against it, A/B (1 thread, Zen
 * 4, cold, 8M elements, avx512 and avx2) float32 rows of 5-13 0.6-0.82x
 * the time, float64 rows of 3-47 0.71-0.91x (float32 rows of 17-63 were
 * 1.1-1.3x in L2, and stay flat). */
static int FN(short_flat_)(int op, ptrdiff_t n) {
    return !FN(short_shuffles_)(n) && (op == 1 || op == 2) && sizeof(T) == 4 &&
           n > 16;
}

/* How many elements of the next block (of at most R rows, `left` rows
 * remain) a short block prefetches while it computes: the whole block, a
 * part in each of its exp loops (short_sums_all_, short_block_flat_), so
 * that the next block streams in from memory meanwhile -- without the hints
 * a block is read in a burst and then computed with the memory idle. A/B
 * (1 thread, Zen 4, cold, 8M elements), every op: float32 rows of 4-64
 * 0.56-0.94x the time at avx512 and avx2 (logsumexp of rows of 32 0.62x,
 * softmax and log_softmax of rows of 8 0.78-0.88x), float64 rows of 2-64
 * 0.57-0.95x; with the data in L2 0.6-0.94x. Rows under 16 bytes (float32
 * rows of 2 and 3: 1.0-1.05x) take none. */
static ptrdiff_t FN(short_ahead_)(ptrdiff_t n, ptrdiff_t left, ptrdiff_t R) {
    if (n * (ptrdiff_t)sizeof(T) < 16) {
        return 0;
    }
    return (left < R ? left : R) * n;
}

static void FN(short_rows_range_)(int op, ptrdiff_t lo, ptrdiff_t hi,
                                  ptrdiff_t n, const T *x, const T *v, T *y,
                                  T *dy, T *out, ptrdiff_t os) {
    T bx[SHORT_MAX], bv[SHORT_MAX];
    /* in place: blocks of x (v) are copied before y (dy) overwrites them */
    const int x_aliased = y && (x == y || x == dy);
    const int v_aliased = v && (v == y || v == dy);
    const ptrdiff_t R = FN(short_per_block_)(op, n), outer = hi;
    for (ptrdiff_t r0 = lo; r0 < outer; r0 += R) {
        ptrdiff_t rb = outer - r0 < R ? outer - r0 : R;
        ptrdiff_t e0 = r0 * n;
        const ptrdiff_t e1 = e0 + rb * n;
        const ptrdiff_t ahead = FN(short_ahead_)(n, outer - r0 - rb, R);
        const T *xb = FN(load_)(x + e0, 1, rb * n, bx, x_aliased);
        const T *vb = v ? FN(load_)(v + e0, 1, rb * n, bv, v_aliased) : NULL;
        if (FN(short_flat_)(op, n)) {
            FN(short_block_flat_)
            (rb, n, xb, vb, y + e0, dy ? dy + e0 : NULL, x + e1,
             v ? v + e1 : NULL, ahead);
        } else {
            FN(short_block_)
            (op, rb, n, xb, vb, y ? y + e0 : NULL, dy ? dy + e0 : NULL,
             out ? out + r0 * os : NULL, os, x + e1, v ? v + e1 : NULL, ahead);
        }
    }
}

/* short_rows_range_ for softmax (op 0), log_softmax (1) and the JVP (2, v
 * and dy given) with streaming stores: a block's outputs are made in L1 (by,
 * bdy), then streamed to y and dy. Works in place (y or dy the memory of x
 * or v): a block is read whole before its outputs are written. */
static void FN(short_rows_stream_)(int op, ptrdiff_t lo, ptrdiff_t hi,
                                   ptrdiff_t n, const T *x, const T *v, T *y,
                                   T *dy) {
    T by[SHORT_MAX], bdy[SHORT_MAX];
    const ptrdiff_t R = FN(short_per_block_)(op, n);
    for (ptrdiff_t r0 = lo; r0 < hi; r0 += R) {
        const ptrdiff_t rb = hi - r0 < R ? hi - r0 : R, e0 = r0 * n;
        const ptrdiff_t e1 = e0 + rb * n;
        FN(short_block_)
        (op, rb, n, x + e0, v ? v + e0 : NULL, by, v ? bdy : NULL, NULL, 0,
         x + e1, v ? v + e1 : NULL, FN(short_ahead_)(n, hi - r0 - rb, R));
        FN(stream_copy_)(y + e0, by, rb * n);
        if (v) {
            FN(stream_copy_)(dy + e0, bdy, rb * n);
        }
    }
    lsm_nt_fence_();
}

/* All rows of a packed (outer, n, 1) view, shared among threads in whole
 * blocks (so each row meets the same code whatever the thread count). */
static void FN(short_rows_run_)(int op, ptrdiff_t outer, ptrdiff_t n,
                                const T *x, const T *v, T *y, T *dy, T *out,
                                ptrdiff_t os) {
    /* streaming: softmax, log_softmax and the JVP through short_block_ (the
     * flat block writes its outputs as it computes them; streamed from a
     * buffer it measured 1.15-1.2x slower, float32 rows of 40, A/B, 1
     * thread, avx2, before short_block_ was inlined always). The JVP's two
     * outputs, streamed since the blocks prefetch their successors: A/B (1
     * thread, Zen 4, cold, 8M elements) float32 rows of 4-64 0.73-0.97x the
     * time, float64 0.8-0.89x, avx512 and avx2 alike (it was 1.03x at rows
     * of 8 without the prefetches, Zen 3). */
#if HAVE_ROW8
    if (op < 3 && FN(row8_n_)(n)) {
        const int nt = FN(stream_)(outer * n);
        LSM_SHARED(outer, FN(short_per_block_)(op, n), outer * n * (v ? 2 : 1),
                   FN(row8_run_)(op, hi_ - lo_, n, x + lo_ * n,
                                 v ? v + lo_ * n : NULL, y + lo_ * n,
                                 dy ? dy + lo_ * n : NULL, nt));
        return;
    }
#endif
    if (op < 3 && !FN(short_flat_)(op, n) && FN(stream_)(outer * n)) {
        LSM_SHARED(outer, FN(short_per_block_)(op, n), outer * n,
                   FN(short_rows_stream_)(op, lo_, hi_, n, x, v, y, dy));
        return;
    }
    LSM_SHARED(outer, FN(short_per_block_)(op, n), outer * n * (v ? 2 : 1),
               FN(short_rows_range_)(op, lo_, hi_, n, x, v, y, dy, out, os));
}

/* ------------------------------------------------------------------ API */

#define CHECK_ARGS(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            return LSM_EINVAL;                                                 \
        }                                                                      \
    } while (0)

/* The column blocks of an inner-contiguous view: LSM_COLS(T) columns of
 * each row, the first block shortened to end on a 64-byte boundary of the
 * data, so that the other blocks' row segments start on a cache line (when
 * the outer stride keeps that boundary in the same column; rows are at a
 * multiple of 64 bytes in most arrays large enough to matter). Measured (1
 * thread, avx512, float32 axis 0 of (2048, 4096) at 16 bytes past a line,
 * as NumPy's large arrays are): logsumexp 0.6x the time of blocks from
 * column 0, softmax 0.65-0.75x, log_softmax 0.76x, JVP 0.78x. */
typedef struct {
    ptrdiff_t inner; /* columns per outer index */
    ptrdiff_t W;     /* block width */
    ptrdiff_t shift; /* block j >= 1 starts at shift + j * W (shift <= 0) */
    ptrdiff_t nb;    /* blocks per outer index */
} FN(colblocks_);

static FN(colblocks_) FN(col_layout_)(const T *p, ptrdiff_t outer, ptrdiff_t s0,
                                      ptrdiff_t inner) {
    const uintptr_t a = (uintptr_t)p;
    const ptrdiff_t line = (ptrdiff_t)(64 / sizeof(T));
    FN(colblocks_) L = {inner, LSM_COLS(T), 0, 1};
    if (a % sizeof(T) == 0 && a % 64 != 0 &&
        (outer == 1 || (s0 * (ptrdiff_t)sizeof(T)) % 64 == 0)) {
        L.shift = (ptrdiff_t)((64 - a % 64) / sizeof(T)) - line;
    }
    if (inner - L.shift > L.W) {
        L.nb = (inner - L.shift + L.W - 1) / L.W;
    }
    return L;
}

/* Column block i (of outer * L->nb): its outer index *o, first column *k0;
 * returns its width (at most LSM_COLS(T)). */
static ptrdiff_t FN(col_block_)(const FN(colblocks_) * L, ptrdiff_t i,
                                ptrdiff_t *o, ptrdiff_t *k0) {
    const ptrdiff_t j = i % L->nb;
    const ptrdiff_t end = L->shift + (j + 1) * L->W;
    *o = i / L->nb;
    *k0 = j == 0 ? 0 : L->shift + j * L->W;
    return (end < L->inner ? end : L->inner) - *k0;
}

/* logsumexp of the column blocks [lo, hi) (see col_block_) of an
 * inner-contiguous view. */
static void FN(lse_cols_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                const FN(colblocks_) * L, const T *x,
                                const ptrdiff_t xs[3], T *out,
                                const ptrdiff_t os[2]) {
    T m[LSM_COLS(T)];
    double c[LSM_COLS(T)], rest[LSM_COLS(T)], tv[LSM_COLS(T)];
    T lm[LSM_COLS(T)], rd[LSM_COLS(T)];
    unsigned char special[LSM_COLS(T)];
    for (ptrdiff_t i = lo; i < hi; i++) {
        ptrdiff_t o, k0;
        const ptrdiff_t w = FN(col_block_)(L, i, &o, &k0);
        const T *base = x + o * xs[0] + k0;
        FN(cols_stats_)(base, xs[1], NULL, 0, n, w, m, c, rest, tv);
        FN(cols_finish_)(w, m, c, rest, lm, rd, special);
        T *ob = out + o * os[0] + k0 * os[1];
        for (ptrdiff_t k = 0; k < w; k++) {
            double r =
                special[k]
                    ? log(fabs(FN(special_sum_)(base + k, xs[1], NULL, 0, n)))
                    : (double)lm[k] + (double)m[k];
            ob[k * os[1]] = (T)r;
        }
    }
}

/* Rows per group of the elementwise row path (at most LSM_GROUP): as many
 * as keep a group's rows of `streams` inputs within LSM_GROUP_BYTES, so
 * that the rows still to be written when the group's logs are known are in
 * L1. (logsumexp writes no rows: its groups are LSM_GROUP rows.) */
static ptrdiff_t FN(group_rows_)(ptrdiff_t n, ptrdiff_t streams) {
    const ptrdiff_t g =
        LSM_GROUP_BYTES / (n * streams * (ptrdiff_t)sizeof(T) + 1);
    return g < 1 ? 1 : (g > LSM_GROUP ? LSM_GROUP : g);
}

/* logsumexp of the rows [lo, hi) (row r: o = r / inner, k = r % inner). */
static void FN(lse_rows_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t outer,
                                ptrdiff_t n, ptrdiff_t inner, const T *x,
                                const ptrdiff_t xs[3], T *out,
                                const ptrdiff_t os[2]) {
    T bx[LSM_CHUNK];
    const ptrdiff_t G = LSM_GROUP;
    const int pair = FN(mid_rows_)(n, inner, xs);
    FN(carry_) cy = {NULL, NULL, 0, 0};
    for (ptrdiff_t g0 = lo; g0 < hi; g0 += G) {
        const ptrdiff_t cnt = hi - g0 < G ? hi - g0 : G;
        double c[LSM_GROUP], rest[LSM_GROUP], m[LSM_GROUP], v[LSM_GROUP];
        int special[LSM_GROUP];
        for (ptrdiff_t i = 0; i < cnt; i++) {
            const ptrdiff_t o = (g0 + i) / inner, k = (g0 + i) % inner;
            STATS st;
            if (pair) { /* rows two by two, then one by one */
                const T *xr = x + o * xs[0];
                FN(rows_ahead_)(x, xs[0], o, outer, n, 2);
                STATS s1;
                const int done =
                    i + 1 < cnt && !FN(pair_stats_)(xr, xr + xs[0], n, &st, &s1)
                        ? 2
                        : !FN(pair_stats_)(xr, NULL, n, &st, &s1);
                for (int j = 0; j < done; j++, i++) {
                    const STATS *sj = j ? &s1 : &st;
                    c[i] = sj->c;
                    rest[i] = sj->rest;
                    m[i] = (double)sj->m;
                    special[i] = 0;
                }
                if (done) {
                    i--;
                    continue;
                }
            }
            /* the next row of the range, to carry its first chunk's max */
            const ptrdiff_t r1 = g0 + i + 1;
            cy.next = xs[1] == 1 ? FN(carry_row_)(x, xs, inner, r1, hi) : NULL;
            cy.next2 =
                xs[1] == 1 ? FN(carry_row_)(x, xs, inner, r1 + 1, hi) : NULL;
            special[i] = FN(row_stats_any_)(
                x + o * xs[0] + k * xs[2], xs[1], NULL, 0, n, &st, bx, NULL,
                FN(next_row_)(x, xs, outer, n, inner, o, k, 1), NULL, 0, NULL,
                LSE_CHUNK, pair ? NULL : &cy);
            c[i] = special[i] ? 1.0 : st.c; /* a harmless log for the loop */
            rest[i] = special[i] ? 0.0 : st.rest;
            m[i] = (double)st.m;
        }
#pragma omp simd
        for (ptrdiff_t i = 0; i < cnt; i++) {
            v[i] = FN(log_sum_)(c[i], rest[i]) + m[i];
        }
        for (ptrdiff_t i = 0; i < cnt; i++) {
            const ptrdiff_t o = (g0 + i) / inner, k = (g0 + i) % inner;
            if (special[i]) {
                v[i] = log(fabs(FN(special_sum_)(x + o * xs[0] + k * xs[2],
                                                 xs[1], NULL, 0, n)));
            }
            out[o * os[0] + k * os[1]] = (T)v[i];
        }
    }
}

int API(lsm_logsumexp_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                        const T *x, const ptrdiff_t xs[3], T *out,
                        const ptrdiff_t os[2]) {
    CHECK_ARGS(outer >= 0 && n >= 0 && inner >= 0 && xs && os);
    CHECK_ARGS((outer == 0 || inner == 0) || (x && out));
    const ptrdiff_t rows = outer * inner, work = rows * n;
    if (n > 0 && FN(short_rows_)(n, inner, xs)) {
        FN(short_rows_run_)(3, outer, n, x, NULL, NULL, NULL, out, os[0]);
        return LSM_OK;
    }
    if (xs[1] != 1 && xs[2] == 1 && inner > 1) {
        const FN(colblocks_) L = FN(col_layout_)(x, outer, xs[0], inner);
        LSM_SHARED(outer * L.nb, 1, work,
                   FN(lse_cols_range_)(lo_, hi_, n, &L, x, xs, out, os));
        return LSM_OK;
    }
    if (n >= LSM_SPLIT_MIN && rows < lsm_get_num_threads()) {
        /* fewer long rows than threads: each row's blocks shared */
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r / inner, k = r % inner;
            const T *row = x + o * xs[0] + k * xs[2];
            STATS st;
            double v;
            if (FN(row_stats_split_)(row, xs[1], NULL, 0, n, &st, LSE_CHUNK)) {
                v = log(fabs(FN(special_sum_)(row, xs[1], NULL, 0, n)));
            } else {
                v = FN(log_sum_)(st.c, st.rest) + (double)st.m;
            }
            out[o * os[0] + k * os[1]] = (T)v;
        }
        return LSM_OK;
    }
    LSM_SHARED(rows, 1, work,
               FN(lse_rows_range_)(lo_, hi_, outer, n, inner, x, xs, out, os));
    return LSM_OK;
}

/* weighted logsumexp of the rows [lo, hi) (o = r / inner, k = r % inner) */
static void FN(lse_weighted_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                    ptrdiff_t inner, const T *x,
                                    const ptrdiff_t xs[3], const T *b,
                                    const ptrdiff_t bs[3], T *out,
                                    const ptrdiff_t os[2], T *sign,
                                    const ptrdiff_t ss[2]) {
    T bx[LSM_CHUNK], bw[LSM_CHUNK];
    for (ptrdiff_t i = lo; i < hi; i++) {
        const ptrdiff_t o = i / inner, k = i % inner;
        const T *row = x + o * xs[0] + k * xs[2];
        const T *wrow = b + o * bs[0] + k * bs[2];
        STATS st;
        double r, sg;
        if (FN(row_stats_)(row, xs[1], wrow, bs[1], NULL, 0, n, &st, bx, bw,
                           NULL, NULL, 0, NULL, LSM_CHUNK, NULL)) {
            double s = FN(special_sum_)(row, xs[1], wrow, bs[1], n);
            r = log(fabs(s));
            sg = s > 0 ? 1.0 : (s < 0 ? -1.0 : (s == 0 ? 0.0 : s));
        } else {
            r = FN(stats_log_)(&st, &sg) + (double)st.m;
        }
        if (sign) {
            sign[o * ss[0] + k * ss[1]] = (T)sg;
        } else if (sg < 0) {
            r = NAN;
        }
        out[o * os[0] + k * os[1]] = (T)r;
    }
}

int API(lsm_logsumexp_weighted_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                                 const T *x, const ptrdiff_t xs[3], const T *b,
                                 const ptrdiff_t bs[3], T *out,
                                 const ptrdiff_t os[2], T *sign,
                                 const ptrdiff_t ss[2]) {
    CHECK_ARGS(outer >= 0 && n >= 0 && inner >= 0 && xs && bs && os);
    CHECK_ARGS((outer == 0 || inner == 0) || (x && b && out));
    CHECK_ARGS(sign == NULL || ss != NULL);
    LSM_SHARED(outer * inner, 1, 2 * outer * inner * n,
               FN(lse_weighted_range_)(lo_, hi_, n, inner, x, xs, b, bs, out,
                                       os, sign, ss));
    return LSM_OK;
}

#if HAVE_VEXP
/* One step of softmax_vec_ for one row: y[i + l] = t = exp(x[i + l] - m)
 * by lsm_vexpneg_f64_ for the lanes l of k, t added to a and, below m, to
 * e (other lanes: terms 0, not stored). */
static LSM_ALWAYS_INLINE void FN(softmax_vec_step_)(const T *restrict x,
                                                    T *restrict y, ptrdiff_t i,
                                                    __mmask8 k, __m512d vm,
                                                    __m512d *a, __m512d *e) {
    const __m512d xv =
        _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), k, x + i);
    const __m512d d = _mm512_sub_pd(xv, vm);
    const __m512d t = lsm_vexpneg_f64_(d);
    _mm512_mask_storeu_pd(y + i, k, t);
    *a = _mm512_add_pd(*a, t);
    *e = _mm512_mask_add_pd(
        *e, _mm512_cmp_pd_mask(d, _mm512_setzero_pd(), _CMP_NEQ_UQ), *e, t);
}

/* The terms and sums of softmax_short_ (x1 NULL) or of softmax_pair_'s
 * two rows side by side (each row's steps and adds the same as alone), 8
 * lanes at a time with the last lanes masked, as lanes_stats_ adds them
 * to s0 and s1. A/B (1 thread, Zen 4, cold, avx512, two runs): softmax of
 * float64 rows of 80-150 0.82-0.89x the time. */
static LSM_ALWAYS_INLINE void FN(softmax_vec_)(const T *restrict x0,
                                               const T *restrict x1,
                                               T *restrict y0, T *restrict y1,
                                               ptrdiff_t n, T m0, T m1,
                                               STATS *s0, STATS *s1) {
    const __m512d vm0 = _mm512_set1_pd(m0), vm1 = _mm512_set1_pd(m1);
    __m512d a0 = _mm512_setzero_pd(), e0 = a0, a1 = a0, e1 = a0;
    const __mmask8 all8 = 0xff;
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        FN(softmax_vec_step_)(x0, y0, i, all8, vm0, &a0, &e0);
        if (x1) {
            FN(softmax_vec_step_)(x1, y1, i, all8, vm1, &a1, &e1);
        }
    }
    if (i < n) {
        const __mmask8 k = lsm_lanes8_(n - i);
        FN(softmax_vec_step_)(x0, y0, i, k, vm0, &a0, &e0);
        if (x1) {
            FN(softmax_vec_step_)(x1, y1, i, k, vm1, &a1, &e1);
        }
    }
    FN(vec_stats_)(a0, e0, s0);
    if (x1) {
        FN(vec_stats_)(a1, e1, s1);
    }
}
#endif

/* softmax of a regular contiguous row of n elements, n * sizeof(T) <
 * LSM_MID_BYTES (y may be x): y = exp(x - m), its sums lane by lane in a
 * fixed tree (as sumexp_short_: an "omp simd reduction" ends in an
 * in-order chain of LN scalar adds whose latency so short a row does not
 * hide), then y times 1 / sum. Returns 1, having written nothing, when the
 * row is special (max +-inf or no finite entry): row_softmax_ then. */
static int FN(softmax_short_)(const T *x, ptrdiff_t n, T *y, int nt) {
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    const T m = FN(chunk_max_)(x, n, -T_INF);
    if (!(m > -T_INF && m < T_INF)) {
        return 1;
    }
    /* streaming: the terms go to sb (in L1), then y gets sb * f */
    T sb[LSM_MID_BYTES / sizeof(T)];
    T *const yt = nt ? sb : y;
    STATS st = {m, 0, 0, 0};
#if HAVE_VEXP
    FN(softmax_vec_)(x, NULL, yt, NULL, n, m, 0, &st, NULL);
#else
    T a[LN], e[LN];
    for (int l = 0; l < LN; l++) {
        a[l] = e[l] = 0;
    }
#define LSM_SOFTMAX_TERM(I, L)                                                 \
    do {                                                                       \
        const T d = x[I] - m, t = EXPNEG(d);                                   \
        yt[I] = t;                                                             \
        a[L] += t;                                                             \
        e[L] += d != 0 ? t : (T)0;                                             \
    } while (0)
    LSM_LANES(0, n, LSM_SOFTMAX_TERM);
#undef LSM_SOFTMAX_TERM
    FN(lanes_stats_)(a, e, &st);
#endif
    /* then t times 1 / d rounded once, as row_softmax_ */
    const double d = st.c + st.rest;
    const T f = (T)(1.0 / d);
    LSM_OUT_LOOP(nt, y, n, yt[i] * f);
    return 0;
}

/* softmax_short_ of two rows x0 and x1 (y0 may be x0, y1 x1), their
 * terms side by side (each row's lanes, adds and order softmax_short_'s:
 * the same values as one row at a time), so that one row's chain of max,
 * exps and sums overlaps the other's. Returns 1, having written nothing,
 * when a row's max is +-inf or no entry is finite: the caller then takes
 * the rows one by one. */
static int FN(softmax_pair_)(const T *x0, const T *x1, ptrdiff_t n, T *y0,
                             T *y1, int nt) {
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    const T m0 = FN(chunk_max_)(x0, n, -T_INF);
    const T m1 = FN(chunk_max_)(x1, n, -T_INF);
    if (!(m0 > -T_INF && m0 < T_INF && m1 > -T_INF && m1 < T_INF)) {
        return 1;
    }
    T sb0[LSM_MID_BYTES / sizeof(T)], sb1[LSM_MID_BYTES / sizeof(T)];
    T *const yt0 = nt ? sb0 : y0, *const yt1 = nt ? sb1 : y1;
    STATS st0 = {m0, 0, 0, 0}, st1 = {m1, 0, 0, 0};
#if HAVE_VEXP
    FN(softmax_vec_)(x0, x1, yt0, yt1, n, m0, m1, &st0, &st1);
#else
    T a0[LN], e0[LN], a1[LN], e1[LN];
    for (int l = 0; l < LN; l++) {
        a0[l] = e0[l] = a1[l] = e1[l] = 0;
    }
#define LSM_SOFTMAX_PAIR_TERM(r, I, L)                                         \
    do {                                                                       \
        const T d = x##r[I] - m##r, t = EXPNEG(d);                             \
        yt##r[I] = t;                                                          \
        a##r[L] += t;                                                          \
        e##r[L] += d != 0 ? t : (T)0;                                          \
    } while (0)
#define LSM_SOFTMAX_PAIR_TERMS(I, L)                                           \
    do {                                                                       \
        LSM_SOFTMAX_PAIR_TERM(0, I, L);                                        \
        LSM_SOFTMAX_PAIR_TERM(1, I, L);                                        \
    } while (0)
    LSM_LANES(0, n, LSM_SOFTMAX_PAIR_TERMS);
#undef LSM_SOFTMAX_PAIR_TERMS
#undef LSM_SOFTMAX_PAIR_TERM
    FN(lanes_stats_)(a0, e0, &st0);
    FN(lanes_stats_)(a1, e1, &st1);
#endif
    const T f0 = (T)(1.0 / (st0.c + st0.rest));
    const T f1 = (T)(1.0 / (st1.c + st1.rest));
    LSM_OUT_LOOP(nt, y0, n, yt0[i] * f0);
    LSM_OUT_LOOP(nt, y1, n, yt1[i] * f1);
    return 0;
}

/* log_softmax of a contiguous row of n elements, n * sizeof(T) <
 * LSM_MID_BYTES (y may be x), as softmax_short_ does softmax: the max, the
 * sums lane by lane (in the blocks of chunk_sumexp_, as row_stats_ gets
 * them: the same values as rowwise_range_'s other paths), the log, then
 * y = (x - m) - log, streamed when nt. A row with nan gets nan throughout
 * (its sums are nan); a row whose max is +-inf scipy's IEEE answers. The
 * block loop and the output loop are written out here rather than calling
 * chunk_sumexp_ and chunk_log_softmax_ (or row_stats_), which GCC keeps out
 * of line: through them the float32 rows of 65-300 took 1.07-1.17x the
 * time at avx512 (1.15-1.39x through row_stats_; A/B, 1 thread, cold). */
static void FN(log_softmax_short_)(const T *x, ptrdiff_t n, T *y, int nt) {
    const T m = FN(chunk_max_)(x, n, -T_INF);
    if (!(m > -T_INF && m < T_INF)) {
        FN(special_log_softmax_)(x, 1, n, m, y, 1);
        return;
    }
    STATS st = {m, 0, 0, 0};
    for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_SUB) { /* as chunk_sumexp_ */
        const ptrdiff_t j1 = n - j0 < LSM_SUB ? n : j0 + LSM_SUB;
        FN(sumexp_block_)(x, j0, j1, m, &st, NULL, 0, 0, NULL, NULL);
    }
    const T l = (T)FN(log_sum_)(st.c, st.rest);
    LSM_OUT_LOOP(nt, y, n, (x[i] - m) - l);
}

/* log_softmax_short_ of two rows x0 and x1 (y0 may be x0, y1 x1), their
 * sums side by side (pair_block_stats_, in the same blocks: the same values
 * as one row at a time), so that one row's chain of max, exps, sums and log
 * overlaps the other's. */
static void FN(log_softmax_pair_)(const T *x0, const T *x1, ptrdiff_t n, T *y0,
                                  T *y1, int nt) {
    STATS s0, s1;
    if (FN(pair_block_stats_)(x0, x1, NULL, NULL, n, &s0, &s1, 0)) {
        FN(log_softmax_short_)(x0, n, y0, nt);
        FN(log_softmax_short_)(x1, n, y1, nt);
        return;
    }
    const T m0 = s0.m, m1 = s1.m;
    const T l0 = (T)FN(log_sum_)(s0.c, s0.rest);
    const T l1 = (T)FN(log_sum_)(s1.c, s1.rest);
    LSM_OUT_LOOP(nt, y0, n, (x0[i] - m0) - l0);
    LSM_OUT_LOOP(nt, y1, n, (x1[i] - m1) - l1);
}

/* The JVP of a contiguous row of n elements, n * sizeof(T) <
 * LSM_MID_BYTES, as log_softmax_short_, its two outputs streamed (y and dy
 * apart from x and v). */
static void FN(jvp_short_)(const T *x, const T *v, ptrdiff_t n, T *y, T *dy) {
    const T m = FN(chunk_max_)(x, n, -T_INF);
    if (!(m > -T_INF && m < T_INF)) {
        FN(special_log_softmax_)(x, 1, n, m, y, 1);
        FN(fill_)(dy, 1, n, (T)NAN);
        return;
    }
    STATS st = {m, 0, 0, 0};
    FN(chunk_sumexp_v_)(x, v, n, m, &st, NULL, NULL, 0, NULL);
    const T l = (T)FN(log_sum_)(st.c, st.rest);
    const T q = (T)(st.tv / (st.c + st.rest));
    FN(chunk_jvp_)(x, v, n, m, l, q, y, dy, 1);
}

/* jvp_short_ of two rows (x0, v0) and (x1, v1) (outputs apart from the
 * inputs), their sums side by side (pair_block_stats_ in chunk_sumexp_v_'s
 * blocks: the same values as one row at a time), as log_softmax_pair_. */
static void FN(jvp_pair_)(const T *x0, const T *x1, const T *v0, const T *v1,
                          ptrdiff_t n, T *y0, T *y1, T *dy0, T *dy1) {
    STATS s0, s1;
    if (FN(pair_block_stats_)(x0, x1, v0, v1, n, &s0, &s1, 1)) {
        FN(jvp_short_)(x0, v0, n, y0, dy0);
        FN(jvp_short_)(x1, v1, n, y1, dy1);
        return;
    }
    const T m0 = s0.m, m1 = s1.m;
    const T l0 = (T)FN(log_sum_)(s0.c, s0.rest);
    const T l1 = (T)FN(log_sum_)(s1.c, s1.rest);
    const T q0 = (T)(s0.tv / (s0.c + s0.rest));
    const T q1 = (T)(s1.tv / (s1.c + s1.rest));
    FN(chunk_jvp_)(x0, v0, n, m0, l0, q0, y0, dy0, 1);
    FN(chunk_jvp_)(x1, v1, n, m1, l1, q1, y1, dy1, 1);
}

#if HAVE_VEXP
/* row_softmax_'s first pass over [j0, j1) with lsm_vexpneg_f64_: y[i] =
 * t = exp(x[i] - m), the count of entries at m and the sum of the other
 * terms added to st. With chunk_softmax_'s loop (the output pass of rows
 * of LSM_LONG_ROW and more), A/B (1 thread, Zen 4, cold, avx512, two
 * runs): softmax of float64 rows of 256 to 8M 0.88-0.97x the time. */
static LSM_ALWAYS_INLINE void
FN(softmax_terms_vec_)(const T *restrict x, T *restrict y, ptrdiff_t j0,
                       ptrdiff_t j1, T m, STATS *st, const T *pf, ptrdiff_t pfn,
                       int l2) {
    const __m512d vm = _mm512_set1_pd(m);
    __m512d cc = _mm512_setzero_pd(), rr = cc;
    for (ptrdiff_t i = j0; i < j1; i += 8) {
        FN(vec_hint_)(pf, pfn, i, l2);
        const __mmask8 k = lsm_lanes8_(j1 - i);
        const __m512d xv = _mm512_maskz_loadu_pd(k, x + i);
        const __m512d t = lsm_vexpneg_f64_(_mm512_sub_pd(xv, vm));
        _mm512_mask_storeu_pd(y + i, k, t);
        const __mmask8 at = _mm512_cmp_pd_mask(xv, vm, _CMP_EQ_OQ) & k;
        cc = _mm512_mask_add_pd(cc, at, cc, _mm512_set1_pd(1.0));
        rr = _mm512_mask_add_pd(rr, k & (__mmask8)~at, rr, t);
    }
    st->c += _mm512_reduce_add_pd(cc);
    st->rest += _mm512_reduce_add_pd(rr);
}
#endif

/* softmax of one row in two passes, one exp per element. Pass 1 walks the
 * row in segments (a few chunks at most, in cache between their two loops):
 * the segment's max raises the running max m, then t = exp(x - m) is
 * written to y while summed (the online state of row_stats_). Pass 2
 * scales each segment by 1 / sum, times exp(m_seg - m) for the segments
 * written before the row's max was reached. nx (may be NULL): the next row,
 * contiguous, prefetched as in row_stats_. */
static void FN(row_softmax_)(const T *x, ptrdiff_t sx, ptrdiff_t n, T *y,
                             ptrdiff_t sy, T *restrict bx, T *restrict by,
                             const T *nx, int nt, T *scr) {
    T segm[LSM_SEGS]; /* the m each segment was shifted by */
    const ptrdiff_t chunks = (n + LSM_CHUNK - 1) / LSM_CHUNK;
    const ptrdiff_t L = LSM_CHUNK * ((chunks + LSM_SEGS - 1) / LSM_SEGS);
    STATS st = {-T_INF, 0, 0, 0};
    int nan_seen = 0;
    for (ptrdiff_t s0 = 0, g = 0; s0 < n; s0 += L, g++) {
        const ptrdiff_t s1 = n - s0 < L ? n : s0 + L;
        T sm = st.m;
        for (ptrdiff_t i0 = s0; i0 < s1; i0 += LSM_CHUNK) {
            ptrdiff_t len = s1 - i0 < LSM_CHUNK ? s1 - i0 : LSM_CHUNK;
            sm = FN(chunk_max_)(FN(gather_)(x + i0 * sx, sx, len, bx), len, sm);
        }
        FN(stats_raise_)(&st, sm);
        const T m = st.m;
        segm[g] = m;
        if (m == T_INF) {
            break; /* the row is nan: filled below */
        }
        for (ptrdiff_t i0 = s0; i0 < s1; i0 += LSM_CHUNK) {
            ptrdiff_t len = s1 - i0 < LSM_CHUNK ? s1 - i0 : LSM_CHUNK;
            const T *xc = FN(load_)(x + i0 * sx, sx, len, bx, x == y);
            if (m == -T_INF) { /* -inf and nan only so far: t = 0 */
                nan_seen |= FN(chunk_has_nan_)(xc, NULL, len);
                continue;
            }
            T *yc = scr ? scr + i0 : FN(dest_)(y + i0 * sy, sy, by);
            ptrdiff_t pn;
            const T *px = FN(prefetch_after_)(x, sx, n, i0 + len, nx, &pn, 1);
            /* rows of 16 KB to 16 MB: hints into L2 only, where hints into
             * L1 evicted the exps stored for pass 2. A/B (1 thread, Zen 4,
             * cold, rows of 2048-65536): float32 0.8-0.98x the time at
             * avx512 (0.8-0.83x from 8192 on), 0.89-0.98x at avx2; float64
             * 0.94-1.0x and 0.84-0.89x; float32 rows of 1M 0.84x. Shorter
             * rows gained nothing; float64 rows of 2M (16 MB) took
             * 1.05-1.06x and keep L1 (0.96x against L2). float32 rows a
             * multiple of 4 KB apart (nx - x, whose lines fall in the same
             * L1 sets as this row's) take L2 from 4 KB on: A/B (1 thread,
             * Intel Xeon family 6 model 207, cold, 16 bytes past a line,
             * avx512) (4096, 1024) 0.89x the time (hot 0.93x, 2 threads
             * 0.92x; with y 1-2 KB off x's sets as well 0.88-0.90x), (2048,
             * 2048) 0.93x, (1365, 3072) 0.95x; rows of 4800-10000 bytes
             * at other strides 0.99-1.03x, and keep L1. */
            const ptrdiff_t gap =
                nx ? (nx - x) * (ptrdiff_t)sizeof(T) : (ptrdiff_t)0;
            const int l2 =
                (n * (ptrdiff_t)sizeof(T) >= 16384 ||
                 (sizeof(T) == 4 && n * (ptrdiff_t)sizeof(T) >= 4096 &&
                  gap != 0 && gap % 4096 == 0)) &&
                n * (ptrdiff_t)sizeof(T) < ((ptrdiff_t)1 << 24);
            /* the max's terms (exactly 1 each) are counted apart from the
             * others, so that terms below ulp(1) still reach the sum */
            for (ptrdiff_t j0 = 0; j0 < len; j0 += LSM_SUB) {
                const ptrdiff_t j1 = len - j0 < LSM_SUB ? len : j0 + LSM_SUB;
#if HAVE_VEXP
                FN(softmax_terms_vec_)(xc, yc, j0, j1, m, &st, px, pn, l2);
                continue;
#endif
                FN(prefetch_part_)(px, pn, j0, j1, l2);
                T cc = 0, rr = 0;
#pragma omp simd reduction(+ : cc, rr)
                for (ptrdiff_t i = j0; i < j1; i++) {
                    T t = EXPNEG(xc[i] - m);
                    int at_max = xc[i] == m;
                    yc[i] = t;
                    rr += at_max ? (T)0 : t;
                    cc += at_max ? (T)1 : (T)0;
                }
                st.c += (double)cc;
                st.rest += (double)rr;
            }
            if (!scr) {
                FN(scatter_)(yc, len, y + i0 * sy, sy);
            }
        }
    }
    const T m = st.m;
    if (!(m > -T_INF && m < T_INF) || nan_seen) {
        FN(fill_)(y, sy, n, (T)NAN);
        return;
    }
    /* t times 1 / d rounded once to T (the error bound of t / (T)d, without
     * a division per element); a segment shifted by m_seg < m: t times
     * exp(m_seg - m) / d */
    const double d = st.c + st.rest;
    for (ptrdiff_t s0 = 0, g = 0; s0 < n; s0 += L, g++) {
        const ptrdiff_t s1 = n - s0 < L ? n : s0 + L;
        if (segm[g] == -T_INF) { /* not written in pass 1: exp(-inf) */
            FN(fill_)(y + s0 * sy, sy, s1 - s0, (T)0);
            continue;
        }
        const T f = segm[g] == m ? (T)(1.0 / d)
                                 : (T)(exp((double)segm[g] - (double)m) / d);
        for (ptrdiff_t i0 = s0; i0 < s1; i0 += LSM_CHUNK) {
            ptrdiff_t len = s1 - i0 < LSM_CHUNK ? s1 - i0 : LSM_CHUNK;
            if (scr) {
                const T *sc = scr + i0;
                T *yc = y + i0;
                LSM_OUT_LOOP(nt, yc, len, sc[i] * f);
                continue;
            }
            T *yc =
                sy == 1 ? y + i0 : (T *)FN(gather_)(y + i0 * sy, sy, len, by);
#pragma omp simd
            for (ptrdiff_t i = 0; i < len; i++) {
                yc[i] = yc[i] * f;
            }
            FN(scatter_)(yc, len, y + i0 * sy, sy);
        }
    }
}

/* The output of a special row (max +-inf, or no finite entry) with the
 * IEEE answers of scipy.special. */
static void FN(row_special_)(int op, const T *xr, ptrdiff_t sx, ptrdiff_t n,
                             T m, T *yr, ptrdiff_t sy, T *dyr, ptrdiff_t sdy,
                             T *restrict bx, T *restrict by) {
    if (op == 0) {
        FN(row_softmax_)(xr, sx, n, yr, sy, bx, by, NULL, 0, NULL);
        return;
    }
    FN(special_log_softmax_)(xr, sx, n, m, yr, sy);
    if (dyr) {
        FN(fill_)(dyr, sdy, n, (T)NAN);
    }
}

/* A regular row's outputs to write: its max, log-sum and, for the JVP, q. */
static FN(pending_)
    FN(row_result_)(const T *xr, const T *vr, T *yr, T *dyr, const STATS *st) {
    FN(pending_)
    r = {xr,
         vr,
         yr,
         dyr,
         st->m,
         (T)FN(log_sum_)(st->c, st->rest),
         (T)(st->tv / (st->c + st->rest)),
         0};
    return r;
}

/* Elements [lo, hi) (lo a multiple of LSM_CHUNK) of row r's output, at
 * strides sx, sv, sy, sdy: softmax (op 0, rd = 1 / sum), log_softmax (1) or
 * the JVP (2); in place allowed (inputs copied chunk by chunk first). */
static void FN(row_out_range_)(int op, ptrdiff_t lo, ptrdiff_t hi,
                               const FN(pending_) * r, ptrdiff_t sx,
                               ptrdiff_t sv, ptrdiff_t sy, ptrdiff_t sdy, T rd,
                               int nt) {
    T bx[LSM_CHUNK], bv[LSM_CHUNK], by[LSM_CHUNK], bdy[LSM_CHUNK];
    const T *xr = r->x, *vr = r->v;
    T *yr = r->y, *dyr = r->dy;
    for (ptrdiff_t i0 = lo; i0 < hi; i0 += LSM_CHUNK) {
        ptrdiff_t len = hi - i0 < LSM_CHUNK ? hi - i0 : LSM_CHUNK;
        const T *xc =
            FN(load_)(xr + i0 * sx, sx, len, bx, xr == yr || xr == dyr);
        T *yc = FN(dest_)(yr + i0 * sy, sy, by);
        if (op == 0) {
            ptrdiff_t pn = 0; /* hints: see LSM_FUSE_AHEAD */
            const T *px = sx == 1
                              ? FN(prefetch_after_)(xr, sx, hi, i0 + len, NULL,
                                                    &pn, LSM_FUSE_AHEAD)
                              : NULL;
            FN(chunk_softmax_)(xc, len, r->m, rd, yc, nt && sy == 1, px, pn);
        } else if (op == 1) {
            FN(chunk_log_softmax_)(xc, len, r->m, r->l, yc, nt && sy == 1);
        } else {
            const T *vc =
                FN(load_)(vr + i0 * sv, sv, len, bv, vr == yr || vr == dyr);
            T *dyc = FN(dest_)(dyr + i0 * sdy, sdy, bdy);
            FN(chunk_jvp_)
            (xc, vc, len, r->m, r->l, r->q, yc, dyc, nt && sy == 1 && sdy == 1);
            FN(scatter_)(dyc, len, dyr + i0 * sdy, sdy);
        }
        FN(scatter_)(yc, len, yr + i0 * sy, sy);
    }
}

/* Whether softmax rows of n elements take the two-exp pass of
 * rowwise_range_ (statistics, then exp(x - m) / sum written once; x read
 * again) rather than row_softmax_ (terms stored, then scaled): rows of
 * LSM_LONG_ROW(T) and more, and float32 rows of more than 64 KB up to
 * LSM_SCRATCH whose output streams (nt: row_softmax_ would keep their terms
 * in a scratch buffer), whose x comes again from L2. A/B (1 thread, Zen 4,
 * cold, against row_softmax_), float32 rows of 32000 to 65536: 0.92-0.94x
 * the time at avx512 and avx2, 50257 0.78-0.81x; 16384 0.98-1.03x; 100000
 * (over LSM_SCRATCH, plain stores) 1.11-1.15x; float64 rows of 32000
 * 1.02x. */
static int FN(two_exp_)(ptrdiff_t n, int nt) {
    const ptrdiff_t b = n * (ptrdiff_t)sizeof(T);
    return n >= LSM_LONG_ROW(T) ||
           (sizeof(T) == 4 && nt && b > 64 * 1024 && b <= LSM_SCRATCH);
}

/* The elementwise kernels over the rows [lo, hi) (row r: o = r / inner,
 * k = r % inner; contiguous or strided). op: 0 softmax, 1 log_softmax,
 * 2 jvp. log_softmax of contiguous rows (x and
 * y of element stride 1) is pipelined: the output of each row is written,
 * chunk by chunk, by the statistics pass of the next row (the pending row of
 * row_stats_), so that the exp (bound by the FMA units) and the stores
 * (bound by memory) overlap instead of taking turns. Measured (1 thread,
 * Zen 5, A/B in one process), time against one row after the other:
 * float32 0.67-0.97 for rows of 96 to 200000 (0.78 at 1024, 0.67 from 16384
 * on), float64 0.78-0.9. The float64 JVP likewise: 0.92-0.98; the float32
 * JVP (four streams, two of them written) was 1.0-1.18 slower pipelined, so
 * it is not. */
static void FN(rowwise_range_)(int op, ptrdiff_t lo, ptrdiff_t hi,
                               ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                               const T *x, const ptrdiff_t xs[3], const T *v,
                               const ptrdiff_t vs[3], T *y,
                               const ptrdiff_t ys[3], T *dy,
                               const ptrdiff_t dys[3]) {
    T bx[LSM_CHUNK], bv[LSM_CHUNK], by[LSM_CHUNK];
    const int can_pipe =
        xs[1] == 1 && ys[1] == 1 &&
        (op == 1 || (op == 2 && sizeof(T) == 8 && vs[1] == 1 && dys[1] == 1));
    /* streaming (see LSM_PIPE_NT and LSM_PIPE_LS_f32); float64 rows of
     * LSM_PIPE_NT bytes or more stay pipelined with plain stores where the
     * exp is the portable one, which hides the stores better: A/B (1
     * thread, avx2) log_softmax (8, 2M) 1.06-1.08x the time streamed,
     * pipelined or not */
    const ptrdiff_t row_bytes = n * (ptrdiff_t)sizeof(T);
    const int long_rows =
        row_bytes >= LSM_PIPE_NT &&
        !(op == 1 && row_bytes <= LSM_CAT(LSM_PIPE_LS_, LSM_SFX));
    const int keep_pipe = sizeof(T) == 8 && !HAVE_VEXP;
    const int nt = FN(stream_)(outer * n * inner) &&
                   !(can_pipe && long_rows && keep_pipe && hi - lo > 1);
    const int pipe = can_pipe && !(nt && long_rows);
    /* the chunks of log_softmax rows of up to 16 KB prefetch their
     * successors (see row_stats_), and so do longer float64 rows: A/B (1
     * thread, Intel Xeon family 6 model 207, cold, 11 rounds, under other
     * load) against none, rows of 4096-524288 0.80-0.92x the time at
     * avx512, 0.91-0.95x at avx2, 0.83-0.94x on 2 threads, (64, 16000) hot
     * 0.79x; rows of 2M (split into blocks) 1.0x. float32 rows (the Zen 4
     * measurements of row_stats_) keep none. */
    const int pf =
        op == 1 && (sizeof(T) == 8 || n * (ptrdiff_t)sizeof(T) <= 16384);
    /* log_softmax of streamed mid-length rows: a row (log_softmax_short_)
     * or a pair of rows (log_softmax_pair_) at a time, not pipelined in
     * groups. A/B (1 thread, Zen 4, cold, 8M elements), one row at a time
     * against the groups: float32 rows of 65-300 0.67-1.03x the time at
     * avx512, 0.76-0.91x at avx2; float64 0.78-1.03x (with plain stores, in
     * L2, the groups did as well or better: 0.87-1.14x); pairs against one
     * row at a time: float32 0.62-1.05x, float64 0.72-1.04x. */
    if (op == 1 && nt && FN(mid_rows_)(n, inner, xs) &&
        FN(mid_rows_)(n, inner, ys)) {
        const int ends = FN(out_partial_)(y, ys[0], n);
        ptrdiff_t r = lo;
        for (; r + 1 < hi; r += 2) {
            FN(rows_ahead_)(x, xs[0], r, outer, n, 2);
            if (ends) {
                FN(out_ahead_)(y, ys[0], r, hi, n, 2);
            }
            FN(log_softmax_pair_)
            (x + r * xs[0], x + (r + 1) * xs[0], n, y + r * ys[0],
             y + (r + 1) * ys[0], 1);
        }
        if (r < hi) {
            FN(log_softmax_short_)(x + r * xs[0], n, y + r * ys[0], 1);
        }
        lsm_nt_fence_();
        return;
    }
    /* the JVP likewise (jvp_short_): A/B as above, float32 rows of 65-300
     * 0.7-0.87x the time at avx512 and avx2. The float64 JVP was pipelined
     * there until its rows prefetched the rows ahead (rows_ahead_): against
     * the pipelined rows (A/B, 1 thread, Intel Xeon family 6 model 207, cold,
     * 8M elements), rows of 72, 80, 128, 129, 150 0.68-0.77x the time at
     * avx512, 0.84-0.93x at avx2; rows of 73, 97 and 100 0.8-1.04x; rows of
     * 65 1.04x (avx2 1.07x): float64 rows under 72 stay pipelined */
    if (op == 2 && (sizeof(T) == 4 || n >= 72) && nt &&
        FN(mid_rows_)(n, inner, xs) && FN(mid_rows_)(n, inner, ys) &&
        FN(mid_rows_)(n, inner, vs) && FN(mid_rows_)(n, inner, dys) && x != y &&
        x != dy && v != y && v != dy) {
        /* in pairs where a row is one block (jvp_pair_): A/B (1 thread,
         * Zen 4, cold, 8M elements) float32 rows of 65-200 0.72-0.99x the
         * time at avx512, rows of 65-128 0.81-0.97x at avx2; longer rows
         * at avx2 (two blocks or more) 0.99-1.24x */
        const int paired = n * (ptrdiff_t)sizeof(T) <= LSM_SUB;
        const int ends =
            FN(out_partial_)(y, ys[0], n) || FN(out_partial_)(dy, dys[0], n);
        ptrdiff_t r = lo;
        for (; paired && r + 1 < hi; r += 2) {
            FN(rows_ahead_)(x, xs[0], r, outer, n, 2);
            FN(rows_ahead_)(v, vs[0], r, outer, n, 2);
            if (ends) {
                FN(out_ahead_)(y, ys[0], r, hi, n, 2);
                FN(out_ahead_)(dy, dys[0], r, hi, n, 2);
            }
            FN(jvp_pair_)
            (x + r * xs[0], x + (r + 1) * xs[0], v + r * vs[0],
             v + (r + 1) * vs[0], n, y + r * ys[0], y + (r + 1) * ys[0],
             dy + r * dys[0], dy + (r + 1) * dys[0]);
        }
        for (; r < hi; r++) {
            FN(rows_ahead_)(x, xs[0], r, outer, n, 1);
            FN(rows_ahead_)(v, vs[0], r, outer, n, 1);
            if (ends) {
                FN(out_ahead_)(y, ys[0], r, hi, n, 1);
                FN(out_ahead_)(dy, dys[0], r, hi, n, 1);
            }
            FN(jvp_short_)
            (x + r * xs[0], v + r * vs[0], n, y + r * ys[0], dy + r * dys[0]);
        }
        lsm_nt_fence_();
        return;
    }
    if (op == 0 && !FN(two_exp_)(n, nt && ys[1] == 1)) {
        const int mid =
            FN(mid_rows_)(n, inner, xs) && FN(mid_rows_)(n, inner, ys);
        const int ends = mid && nt && FN(out_partial_)(y, ys[0], n);
        /* streaming: the terms go to scr (in L2), then y gets them scaled,
         * so that y is written once, never read. Rows of more than
         * LSM_SCRATCH bytes keep plain stores: streaming the second pass
         * over a y that the first left in the cache took 1.1-1.4x the time
         * (A/B, 1 thread, avx2, float32 rows of 128 to 2M: 1.09-1.44x). */
        T *scr = nt && ys[1] == 1 && n * (ptrdiff_t)sizeof(T) <= LSM_SCRATCH
                     ? (T *)malloc((size_t)n * sizeof(T))
                     : NULL;
        for (ptrdiff_t r = lo; r < hi; r++) {
            const ptrdiff_t o = r / inner, k = r % inner;
            if (mid) {
                FN(rows_ahead_)(x, xs[0], o, outer, n, 2);
                if (ends) {
                    FN(out_ahead_)(y, ys[0], o, hi, n, 2);
                }
            }
            if (mid && r + 1 < hi &&
                !FN(softmax_pair_)(x + o * xs[0], x + (o + 1) * xs[0], n,
                                   y + o * ys[0], y + (o + 1) * ys[0], nt)) {
                r++;
                continue;
            }
            if (mid &&
                !FN(softmax_short_)(x + o * xs[0], n, y + o * ys[0], nt)) {
                continue;
            }
            FN(row_softmax_)
            (x + o * xs[0] + k * xs[2], xs[1], n, y + o * ys[0] + k * ys[2],
             ys[1], bx, by, FN(next_row_)(x, xs, outer, n, inner, o, k, 1), nt,
             scr);
        }
        if (nt) {
            lsm_nt_fence_();
        }
        free(scr);
        return;
    }
    /* pend: the previous group's rows, written by this group's statistics
     * passes when pipelined (row i of a group writes row i of the last);
     * x NULL where there is nothing to write */
    FN(pending_) pend[LSM_GROUP], cur[LSM_GROUP];
    ptrdiff_t npend = 0;
    /* the pipelined JVP (float64) writes four streams: rows a group back
     * fall out of L1 (measured 1.1x slower at rows of 128), so one row */
    const ptrdiff_t G = op == 2 && pipe ? 1 : FN(group_rows_)(n, v ? 2 : 1);
    /* unpipelined float32 log_softmax rows of one chunk (since streamed
     * rows of 4 KB are pipelined, see LSM_PIPE_LS_f32, those whose output
     * is strided): a row's exp loop also takes the max of the next row's first
     * chunk where it is fused (row_stats_), as logsumexp's rows do. A/B (1
     * thread, Zen 4, cold, three runs): (4096, 1024) 0.94-0.96x the time at
     * avx512 (no fused loop at avx2: 1.0x). float64 rows of 512-1024 gave
     * 1.0-1.016x and do without it, as do the JVP and rows of several
     * chunks (the carry given to every unpipelined row: log_softmax of
     * (2048, 2048) 1.06-1.09x, the JVP of (4096, 1024) 1.10-1.12x). */
    FN(carry_) cy = {NULL, NULL, 0, 0};
    const int carry =
        !pipe && op == 1 && sizeof(T) == 4 && xs[1] == 1 && n <= LSM_CHUNK;
    for (ptrdiff_t g0 = lo; g0 < hi; g0 += G) {
        const ptrdiff_t cnt = hi - g0 < G ? hi - g0 : G;
        double c[LSM_GROUP], rest[LSM_GROUP], tv[LSM_GROUP], l[LSM_GROUP];
        double q[LSM_GROUP];
        for (ptrdiff_t i = 0; i < cnt; i++) {
            const ptrdiff_t o = (g0 + i) / inner, k = (g0 + i) % inner;
            const T *xr = x + o * xs[0] + k * xs[2];
            const T *vr = v ? v + o * vs[0] + k * vs[2] : NULL;
            T *yr = y + o * ys[0] + k * ys[2];
            T *dyr = dy ? dy + o * dys[0] + k * dys[2] : NULL;
            const FN(pending_) *w = i < npend && pend[i].x ? &pend[i] : NULL;
            STATS st;
            const ptrdiff_t r1 = g0 + i + 1;
            cy.next = carry ? FN(carry_row_)(x, xs, inner, r1, hi) : NULL;
            const int special = FN(row_stats_any_)(
                xr, xs[1], vr, vr ? vs[1] : 0, n, &st, bx, bv,
                FN(next_row_)(x, xs, outer, n, inner, o, k, v ? 2 : 1),
                v ? FN(next_row_)(v, vs, outer, n, inner, o, k, 2) : NULL, pf,
                w, LSM_CHUNK, carry ? &cy : NULL);
            cur[i] = (FN(pending_)){
                special ? NULL : xr, vr, yr, dyr, st.m, 0, 0, nt};
            if (special) {
                FN(row_special_)
                (op, xr, xs[1], n, st.m, yr, ys[1], dyr, dyr ? dys[1] : 0, bx,
                 by);
            }
            c[i] = special ? 1.0 : st.c; /* a harmless log for the loop */
            rest[i] = special ? 0.0 : st.rest;
            tv[i] = special ? 0.0 : st.tv;
        }
        for (ptrdiff_t i = cnt; i < npend; i++) { /* a shorter last group */
            if (pend[i].x) {
                FN(pending_out_)(&pend[i], n);
            }
        }
#pragma omp simd
        for (ptrdiff_t i = 0; i < cnt; i++) {
            l[i] = FN(log_sum_)(c[i], rest[i]);
            q[i] = tv[i] / (c[i] + rest[i]);
        }
        for (ptrdiff_t i = 0; i < cnt; i++) {
            cur[i].l = (T)l[i];
            cur[i].q = (T)q[i];
            pend[i] = cur[i];
            if (!pipe && cur[i].x) {
                FN(row_out_range_)
                (op, 0, n, &cur[i], xs[1], vs ? vs[1] : 0, ys[1],
                 dys ? dys[1] : 0, (T)(1.0 / (c[i] + rest[i])), nt);
            }
        }
        npend = pipe ? cnt : 0;
    }
    for (ptrdiff_t i = 0; i < npend; i++) {
        if (pend[i].x) {
            FN(pending_out_)(&pend[i], n);
        }
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

/* Rows (any strides), shared among threads, each row on one thread (the
 * pipelining of rowwise_range_ does not change any value): the same results
 * whatever the thread count. */
static int FN(rowwise_)(int op, ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                        const T *x, const ptrdiff_t xs[3], const T *v,
                        const ptrdiff_t vs[3], T *y, const ptrdiff_t ys[3],
                        T *dy, const ptrdiff_t dys[3]) {
    if (FN(short_rows_)(n, inner, xs) && FN(short_rows_)(n, inner, ys) &&
        (op != 2 ||
         (FN(short_rows_)(n, inner, vs) && FN(short_rows_)(n, inner, dys)))) {
        FN(short_rows_run_)(op, outer, n, x, v, y, dy, NULL, 0);
        return LSM_OK;
    }
#if HAVE_ROW8
    /* packed rows longer than LSM_SHORT: row8_rows_ too */
    if (FN(row8_n_)(n) && inner == 1 && xs[1] == 1 && xs[0] == n &&
        ys[1] == 1 && ys[0] == n &&
        (op != 2 || (vs[1] == 1 && vs[0] == n && dys[1] == 1 && dys[0] == n))) {
        FN(short_rows_run_)(op, outer, n, x, v, y, dy, NULL, 0);
        return LSM_OK;
    }
#endif
    const ptrdiff_t rows = outer * inner, streams = op == 2 ? 2 : 1;
    const int nt = FN(stream_)(rows * n);
    if (n >= LSM_SPLIT_MIN && (op != 0 || n >= LSM_LONG_ROW(T)) &&
        rows < lsm_get_num_threads()) {
        /* fewer long rows than threads: each row's statistics blocks, then
         * its output chunks, shared (the same values as rowwise_range_) */
        T bx[LSM_CHUNK], by[LSM_CHUNK];
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r / inner, k = r % inner;
            const T *xr = x + o * xs[0] + k * xs[2];
            const T *vr = v ? v + o * vs[0] + k * vs[2] : NULL;
            T *yr = y + o * ys[0] + k * ys[2];
            T *dyr = dy ? dy + o * dys[0] + k * dys[2] : NULL;
            STATS st;
            if (FN(row_stats_split_)(xr, xs[1], vr, vr ? vs[1] : 0, n, &st,
                                     LSM_CHUNK)) {
                FN(row_special_)
                (op, xr, xs[1], n, st.m, yr, ys[1], dyr, dyr ? dys[1] : 0, bx,
                 by);
                continue;
            }
            const FN(pending_) row = FN(row_result_)(xr, vr, yr, dyr, &st);
            const T rd = (T)(1.0 / (st.c + st.rest));
            LSM_SHARED(n, LSM_CHUNK, n * streams, {
                FN(row_out_range_)
                (op, lo_, hi_, &row, xs[1], vr ? vs[1] : 0, ys[1],
                 dyr ? dys[1] : 0, rd, nt);
                if (nt) {
                    lsm_nt_fence_();
                }
            });
        }
        return LSM_OK;
    }
    LSM_SHARED(rows, 1, rows * n * streams,
               FN(rowwise_range_)(op, lo_, hi_, outer, n, inner, x, xs, v, vs,
                                  y, ys, dy, dys));
    return LSM_OK;
}

/* The end of col_params_ (below): from the statistics m, c, rest, tv of the
 * block at xb (cols_stats_): lm, rd, q, and m, lm, rd, q of the columns that
 * take the special values. */
static LSM_ALWAYS_INLINE void
FN(col_params_end_)(int op, ptrdiff_t n, ptrdiff_t w, const T *xb, ptrdiff_t sx,
                    const double *restrict c, const double *restrict rest,
                    const double *restrict tv, T *restrict m, T *restrict lm,
                    T *restrict rd, T *restrict q) {
    unsigned char special[LSM_COLS(T)];
    FN(cols_finish_)(w, m, c, rest, lm, rd, special);
    for (ptrdiff_t k = 0; k < w; k++) {
        if (!special[k]) {
            q[k] = (T)(tv[k] / (c[k] + rest[k]));
            continue;
        }
        int nan_seen = 0;
        T mk = -T_INF;
        for (ptrdiff_t j = 0; j < n; j++) {
            T xj = xb[j * sx + k];
            nan_seen |= xj != xj;
            mk = xj > mk ? xj : mk;
        }
        m[k] = (mk == T_INF && !nan_seen) ? T_INF : (T)NAN;
        lm[k] = 0;
        rd[k] = 1;
        q[k] = (T)NAN;
        if (op == 0) {
            m[k] = (T)NAN;
        }
    }
}

/* The parameters of the output pass of a column block (w columns at xb,
 * rows sx apart; v at vb, rows sv apart, or NULL): per column m, lm = lse -
 * m, rd = 1 / sum and, for the JVP, q; a column whose max is +-inf (or nan
 * only) gets values that make the output pass give scipy's answers -- m =
 * +inf (no nan in the column, max +inf): y = nan where x = +inf, -inf
 * elsewhere; m = nan otherwise: y = nan everywhere; softmax and dy are nan
 * everywhere. */
static LSM_ALWAYS_INLINE void FN(col_params_)(int op, ptrdiff_t n, ptrdiff_t w,
                                              const T *xb, ptrdiff_t sx,
                                              const T *vb, ptrdiff_t sv,
                                              T *restrict m, T *restrict lm,
                                              T *restrict rd, T *restrict q) {
    double c[LSM_COLS(T)], rest[LSM_COLS(T)], tv[LSM_COLS(T)];
    FN(cols_stats_)(xb, sx, vb, sv, n, w, m, c, rest, tv);
    FN(col_params_end_)(op, n, w, xb, sx, c, rest, tv, m, lm, rd, q);
}

/* Whether `streams` arrays of a column block (LSM_COLS(T) columns down an
 * axis of n) fit in `bytes` (LSM_COL_BLOCK_CACHE, or LSM_COL_SOFTMAX_CACHE
 * for float64 softmax): the block's passes after the first then read it from
 * the cache (colwise_, colwise_range_). */
static int FN(col_block_fits_)(ptrdiff_t n, ptrdiff_t streams,
                               ptrdiff_t bytes) {
    return streams * LSM_COLS(T) * (ptrdiff_t)sizeof(T) * n <= bytes;
}

/* The shortest axis whose column blocks (colwise_range_) take the
 * statistics of the next block chunk by chunk between the output rows of
 * this one; shorter axes run one block's passes after the other. */
#ifndef LSM_COL_PIPE_MIN
#define LSM_COL_PIPE_MIN 1024
#endif

/* A column block of colwise_range_: w columns of x, v, y, dy from k0 of
 * outer index o (rows xs[1], ... apart). */
typedef struct {
    ptrdiff_t w;
    const T *x, *v;
    T *y, *dy;
} FN(colblk_);

static FN(colblk_)
    FN(colblk_at_)(const FN(colblocks_) * L, ptrdiff_t i, const T *x,
                   const ptrdiff_t xs[3], const T *v, const ptrdiff_t vs[3],
                   T *y, const ptrdiff_t ys[3], T *dy, const ptrdiff_t dys[3]) {
    ptrdiff_t o, k0;
    FN(colblk_) B;
    B.w = FN(col_block_)(L, i, &o, &k0);
    B.x = x + o * xs[0] + k0;
    B.v = v ? v + o * vs[0] + k0 : NULL;
    B.y = y + o * ys[0] + k0;
    B.dy = dy ? dy + o * dys[0] + k0 : NULL;
    return B;
}

/* The output rows [j0, j1) (of n) of column block B (op as colwise_range_)
 * from its parameters m, lm, rd, q (col_params_). */
static LSM_ALWAYS_INLINE void
FN(col_out_rows_)(int op, const FN(colblk_) * B, ptrdiff_t j0, ptrdiff_t j1,
                  ptrdiff_t n, const ptrdiff_t xs[3], const ptrdiff_t vs[3],
                  const ptrdiff_t ys[3], const ptrdiff_t dys[3],
                  const T *restrict m, const T *restrict lm,
                  const T *restrict rd, const T *restrict q, int nt) {
    T bx[LSM_COLS(T)], bv[LSM_COLS(T)];
    const ptrdiff_t w = B->w;
    const T *xb = B->x, *vb = B->v;
    T *yb = B->y, *dyb = B->dy;
    /* in place (y or dy the same memory as x or v): each row of the
     * inputs is copied before the outputs overwrite it */
    const int x_aliased = xb == yb || xb == dyb;
    const int v_aliased = vb && (vb == yb || vb == dyb);
    for (ptrdiff_t j = j0; j < j1; j++) {
        if (j + LSM_AHEAD < n) {
            const ptrdiff_t ja = j + LSM_AHEAD;
            FN(prefetch_)(xb + ja * xs[1], w, 0);
            /* streamed outputs are not prefetched for writing (the
             * lines would come in only to be replaced): A/B (1 thread,
             * Zen 4, cold, axis 0 of (2048, 4096) and (2000, 4000))
             * float32 softmax 0.85-0.91x the time at avx512, 0.95-0.97x
             * at avx2; the VJP (vjp_cols_range_) 0.8-0.96x, float32
             * and float64; log_softmax and the JVP (cols_out_rows_
             * there) unchanged */
            if (!nt) {
                FN(prefetch_)(yb + ja * ys[1], w, 1);
            }
            if (op == 2) {
                FN(prefetch_)(vb + ja * vs[1], w, 0);
                if (!nt) {
                    FN(prefetch_)(dyb + ja * dys[1], w, 1);
                }
            }
        }
        const T *restrict xr = FN(load_)(xb + j * xs[1], 1, w, bx, x_aliased);
        T *restrict yr = yb + j * ys[1];
        if (op == 0) {
#if HAVE_VEXP
            FN(softmax_vec_out_)(xr, w, m, rd, 1, yr, nt, NULL, 0);
#else
            LSM_OUT_LOOP(nt, yr, w, EXPNEG_MUL(xr[i] - m[i], rd[i]));
#endif
        } else if (op == 1) {
            LSM_OUT_LOOP(nt, yr, w, (xr[i] - m[i]) - lm[i]);
        } else if (nt) {
            const T *restrict vr =
                FN(load_)(vb + j * vs[1], 1, w, bv, v_aliased);
            T *restrict dyr = dyb + j * dys[1];
            LSM_OUT_LOOP(1, yr, w, (xr[i] - m[i]) - lm[i]);
            LSM_OUT_LOOP(1, dyr, w, vr[i] - q[i]);
        } else {
            const T *restrict vr =
                FN(load_)(vb + j * vs[1], 1, w, bv, v_aliased);
            T *restrict dyr = dyb + j * dys[1];
#pragma omp simd
            for (ptrdiff_t k = 0; k < w; k++) {
                yr[k] = (xr[k] - m[k]) - lm[k];
                dyr[k] = vr[k] - q[k];
            }
        }
    }
}

/* Inner-contiguous driver of the elementwise kernels (x, v, y, dy all with
 * stride 1 along inner): the column blocks [lo, hi), each block's
 * statistics (col_params_), then its output rows. Over axes of
 * LSM_COL_PIPE_MIN and more, the statistics of the next block go chunk by
 * chunk (cols_stats_chunk_)
 * between the output rows of this one: the statistics pass, bound by its
 * exp, reads its block from memory while the output pass, bound by its
 * loads and stores, reads this block again (from L3: a block's rows a
 * power-of-2 stride apart share few L2 sets) and streams its output, where
 * one after the other each waited on its own bound. Each block's
 * statistics and output are the same either way (the same bits). A/B (1
 * thread, Intel Xeon family 6 model 207, avx512, cold, 16 bytes past a
 * line), axis 0 of (1024, 2048), (2048, 4096), (4096, 2048): softmax
 * 0.85-0.91x the time, log_softmax 0.87-0.89x, the JVP 0.88-0.99x (float32
 * and float64 alike); (8192, 1024) float64 0.86-0.99x; axes of 300 and
 * less took 1.0-1.1x (float64 (300, 1000) 1.06-1.1x), hence
 * LSM_COL_PIPE_MIN; (512, 8192) 0.89-1.02x. */
static void FN(colwise_range_)(int op, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                               const FN(colblocks_) * L, const T *x,
                               const ptrdiff_t xs[3], const T *v,
                               const ptrdiff_t vs[3], T *y,
                               const ptrdiff_t ys[3], T *dy,
                               const ptrdiff_t dys[3], int nt) {
    T m[2][LSM_COLS(T)], lm[2][LSM_COLS(T)], rd[2][LSM_COLS(T)];
    T q[2][LSM_COLS(T)];
    double c[LSM_COLS(T)], rest[LSM_COLS(T)], tv[LSM_COLS(T)];
    if (op == 0 && sizeof(T) == 8 && !HAVE_VEXP &&
        FN(col_block_fits_)(n, 2, LSM_COL_SOFTMAX_CACHE)) {
        /* float64 softmax with one exp per element: y written, then
         * scaled, where the block's x and y fit LSM_COL_SOFTMAX_CACHE.
         * A/B (1 thread, avx2, Zen 3, axis 0 of (2048, 4096)): 0.80x
         * the time of the second exp per element. On a Zen 4 (cold,
         * against the second exp): 1.11-1.27x at avx2 (axis 0 of (2048,
         * 4096), (4096, 2048), (1024, 8192)), 0.95-1.06x at avx512;
         * longer axes, whose y no longer stays in the cache between
         * the passes, take the second exp: (6000, 1400) at avx2 1.05x,
         * avx512 0.89x; (8192, 1024) 0.86x and 0.64-0.71x; (16384, 512)
         * 0.68x and 0.6x; (65536, 128) 0.62x and 0.49x. float32 (an
         * exp half as costly) took 1.11-1.98x with one exp, and keeps
         * the output pass below. On an Intel Xeon family 6 model 207
         * (2 MB L2, cold), against the second exp, at avx512 (64
         * columns, x and y: 1 KB a row) axis 0 of (256, 65536), (512,
         * 8192), (1024, 4096), (1024, 8192) took 1.24-1.49x the time,
         * (2048, 4096) 1.11-1.18x, (4096, 2048) 1.21-1.28x (hot (1024,
         * 1024) and (2048, 1024) 1.26x): not at avx512. At avx2, (512,
         * 8192) and (1024, 8192) 0.85-0.87x, (2048, 4096) 0.96-1.02x,
         * (4096, 2048) 1.04x: blocks up to LSM_COL_SOFTMAX_CACHE. */
        /* (no streaming: its second pass scales y in the cache) */
        for (ptrdiff_t i = lo; i < hi; i++) {
            const FN(colblk_) B =
                FN(colblk_at_)(L, i, x, xs, v, vs, y, ys, dy, dys);
            FN(cols_softmax_)(B.x, xs[1], n, B.w, B.y, ys[1], m[0], c, rest);
        }
        return;
    }
    /* the parameters of block B in [cur], of the next block N in [1 - cur] */
    int cur = 0;
    FN(colblk_) B = FN(colblk_at_)(L, lo, x, xs, v, vs, y, ys, dy, dys);
    for (ptrdiff_t i = lo; i < hi; i++) {
        if (i == lo) { /* (before the loop, GCC warned of c and rest) */
            FN(col_params_)
            (op, n, B.w, B.x, xs[1], B.v, v ? vs[1] : 0, m[cur], lm[cur],
             rd[cur], q[cur]);
        }
        const int more = i + 1 < hi;
        const int pipe = more && n >= LSM_COL_PIPE_MIN;
        const FN(colblk_) N =
            more ? FN(colblk_at_)(L, i + 1, x, xs, v, vs, y, ys, dy, dys) : B;
        if (pipe) {
            FN(cols_stats_start_)(N.w, m[1 - cur], c, rest, tv);
        }
        for (ptrdiff_t k = 0; op == 0 && !HAVE_VEXP && k < B.w; k++) {
            rd[cur][k] = EXPNEG_FACTOR(rd[cur][k]); /* for EXPNEG_MUL */
        }
        for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_COL_ROWS) {
            const ptrdiff_t j1 = n - j0 < LSM_COL_ROWS ? n : j0 + LSM_COL_ROWS;
            if (pipe) {
                FN(cols_stats_chunk_)
                (N.x, xs[1], N.v, v ? vs[1] : 0, n, N.w, j0, m[1 - cur], c,
                 rest, tv);
            }
            FN(col_out_rows_)
            (op, &B, j0, j1, n, xs, vs, ys, dys, m[cur], lm[cur], rd[cur],
             q[cur], nt);
        }
        if (pipe) {
            FN(col_params_end_)
            (op, n, N.w, N.x, xs[1], c, rest, tv, m[1 - cur], lm[1 - cur],
             rd[1 - cur], q[1 - cur]);
            cur = 1 - cur;
        } else if (more) {
            FN(col_params_)
            (op, n, N.w, N.x, xs[1], N.v, v ? vs[1] : 0, m[cur], lm[cur],
             rd[cur], q[cur]);
        }
        B = N;
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

/* The output-pass parameters of the column blocks [lo, hi) into P: m, lm,
 * rd and q of column k of outer index o at P[a * N + o * inner + k], a = 0,
 * 1, 2, 3 (N = outer * inner). */
static void FN(cols_params_range_)(int op, ptrdiff_t lo, ptrdiff_t hi,
                                   ptrdiff_t n, const FN(colblocks_) * L,
                                   const T *x, const ptrdiff_t xs[3],
                                   const T *v, const ptrdiff_t vs[3], T *P,
                                   ptrdiff_t N) {
    for (ptrdiff_t i = lo; i < hi; i++) {
        ptrdiff_t o, k0;
        const ptrdiff_t w = FN(col_block_)(L, i, &o, &k0);
        T *p = P + o * L->inner + k0;
        FN(col_params_)
        (op, n, w, x + o * xs[0] + k0, xs[1], v ? v + o * vs[0] + k0 : NULL,
         v ? vs[1] : 0, p, p + N, p + 2 * N, p + 3 * N);
    }
}

/* The output of the rows [lo, hi) of the (outer * n) rows of inner elements
 * (row r: o = r / n, j = r % n) from the parameters P (cols_params_range_),
 * a whole row at a time: log_softmax (op 1) or the JVP (2). y may be x and
 * dy v (each element is read before it is written); not y v, nor dy x. */
static void FN(cols_out_rows_)(int op, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                               ptrdiff_t inner, const T *x,
                               const ptrdiff_t xs[3], const T *v,
                               const ptrdiff_t vs[3], T *y,
                               const ptrdiff_t ys[3], T *dy,
                               const ptrdiff_t dys[3], const T *P, ptrdiff_t N,
                               int nt) {
    for (ptrdiff_t r = lo; r < hi; r++) {
        const ptrdiff_t o = r / n, j = r % n;
        const T *xr = x + o * xs[0] + j * xs[1];
        T *yr = y + o * ys[0] + j * ys[1];
        const T *m = P + o * inner, *lm = m + N;
        LSM_OUT_LOOP(nt, yr, inner, (xr[i] - m[i]) - lm[i]);
        if (op == 2) {
            const T *vr = v + o * vs[0] + j * vs[1], *q = m + 3 * N;
            T *dyr = dy + o * dys[0] + j * dys[1];
            LSM_OUT_LOOP(nt, dyr, inner, vr[i] - q[i]);
        }
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

/* Column blocks (an inner-contiguous view), shared among threads. For
 * log_softmax and the JVP, where a block's inputs (LSM_COLS(T) columns down
 * the whole axis) exceed LSM_COL_BLOCK_CACHE, the parameters of all columns
 * fit in LSM_COL_PARAMS bytes and rows are at least a block wide, the
 * blocks' statistics come first, then the output row by row over the whole
 * width: the rows then stream in and out of memory, where a block's output
 * pass would re-read its 1 KB row segments, at a large stride, from memory
 * or a far cache. Smaller blocks keep their own output pass, which reads
 * them again from L3. A/B (1 thread, Zen 4, cold, blocks with their own
 * output pass against the rows), log_softmax: axis 0 of (2048, 4096) (2 MB
 * blocks in float32) 0.81-0.93x the time, (2000, 4000) 0.82-0.85x, float64
 * 0.82-0.89x, (8192, 1024) float64 (4 MB) 0.93-0.95x, float32 (8 MB)
 * 1.04-1.08x; the JVP (x and v): (2048, 4096) float32 (4 MB) 0.81-0.88x,
 * float64 0.83x, (8192, 1024) float32 (16 MB) 1.25-1.33x, float64 (8 MB)
 * 0.93-0.94x; avx512 and avx2 alike. Shorter axes: log_softmax (512, 4096)
 * 0.84-0.87x, float64 (16, 16384) to (3000, 1000) 0.82-0.93x, the JVP
 * 0.87-1.0x; float32 log_softmax of narrow rows ((3000, 1000), (4000, 800):
 * three or four blocks across) 1.02-1.08x, the one loss. (On a Zen 3, the
 * rows were chosen for every size: 0.70-0.86x the time of the blocks for
 * the float32 JVP of (2048, 4096).) softmax (an exp in its output pass)
 * keeps its blocks. col_params_ is inlined always: out of line, the float32
 * softmax blocks took 1.27x the time. */
static int FN(colwise_)(int op, ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                        const T *x, const ptrdiff_t xs[3], const T *v,
                        const ptrdiff_t vs[3], T *y, const ptrdiff_t ys[3],
                        T *dy, const ptrdiff_t dys[3]) {
    const FN(colblocks_) L = FN(col_layout_)(x, outer, xs[0], inner);
    const int nt = FN(stream_)(outer * n * inner);
    const ptrdiff_t N = outer * inner;
    T *P =
        op != 0 && (v == NULL || (y != v && dy != x)) &&
                !FN(col_block_fits_)(n, op == 2 ? 2 : 1, LSM_COL_BLOCK_CACHE) &&
                inner * (ptrdiff_t)sizeof(T) >= LSM_COL_BYTES &&
                N <= LSM_COL_PARAMS / (4 * (ptrdiff_t)sizeof(T))
            ? (T *)malloc(4 * (size_t)N * sizeof(T))
            : NULL;
    if (P) {
        LSM_SHARED(
            outer * L.nb, 1, N * n * (op == 2 ? 2 : 1),
            FN(cols_params_range_)(op, lo_, hi_, n, &L, x, xs, v, vs, P, N));
        LSM_SHARED(outer * n, 1, N * n * (op == 2 ? 2 : 1),
                   FN(cols_out_rows_)(op, lo_, hi_, n, inner, x, xs, v, vs, y,
                                      ys, dy, dys, P, N, nt));
        free(P);
        return LSM_OK;
    }
    LSM_SHARED(outer * L.nb, 1, outer * inner * n * (op == 2 ? 2 : 1),
               FN(colwise_range_)(op, lo_, hi_, n, &L, x, xs, v, vs, y, ys, dy,
                                  dys, nt));
    return LSM_OK;
}

static int FN(elementwise_)(int op, ptrdiff_t outer, ptrdiff_t n,
                            ptrdiff_t inner, const T *x, const ptrdiff_t xs[3],
                            const T *v, const ptrdiff_t vs[3], T *y,
                            const ptrdiff_t ys[3], T *dy,
                            const ptrdiff_t dys[3]) {
    CHECK_ARGS(outer >= 0 && n >= 0 && inner >= 0 && xs && ys);
    CHECK_ARGS(op != 2 || (vs && dys));
    if (outer == 0 || n == 0 || inner == 0) {
        return LSM_OK;
    }
    CHECK_ARGS(x && y && (op != 2 || (v && dy)));
    int cols = xs[1] != 1 && inner > 1 && xs[2] == 1 && ys[2] == 1 &&
               (op != 2 || (vs[2] == 1 && dys[2] == 1));
    return (cols ? FN(colwise_) : FN(rowwise_))(op, outer, n, inner, x, xs, v,
                                                vs, y, ys, dy, dys);
}

int API(lsm_softmax_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner, const T *x,
                      const ptrdiff_t xs[3], T *y, const ptrdiff_t ys[3]) {
    return FN(elementwise_)(0, outer, n, inner, x, xs, NULL, NULL, y, ys, NULL,
                            NULL);
}

int API(lsm_log_softmax_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                          const T *x, const ptrdiff_t xs[3], T *y,
                          const ptrdiff_t ys[3]) {
    return FN(elementwise_)(1, outer, n, inner, x, xs, NULL, NULL, y, ys, NULL,
                            NULL);
}

int API(lsm_log_softmax_jvp_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                              const T *x, const ptrdiff_t xs[3], const T *v,
                              const ptrdiff_t vs[3], T *y,
                              const ptrdiff_t ys[3], T *dy,
                              const ptrdiff_t dys[3]) {
    return FN(elementwise_)(2, outer, n, inner, x, xs, v, vs, y, ys, dy, dys);
}

/* VJP of the column blocks [lo, hi) of an inner-contiguous view. */
static void FN(vjp_cols_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                const FN(colblocks_) * L, const T *y,
                                const ptrdiff_t ys[3], const T *g,
                                const ptrdiff_t gs[3], T *dx,
                                const ptrdiff_t dxs[3], int nt) {
    T by[LSM_CHUNK], bg[LSM_CHUNK];
    double s[LSM_COLS(T)];
    T ss[LSM_COLS(T)], sT[LSM_COLS(T)];
    for (ptrdiff_t i = lo; i < hi; i++) {
        ptrdiff_t o, k0;
        const ptrdiff_t w = FN(col_block_)(L, i, &o, &k0);
        const T *yb = y + o * ys[0] + k0;
        const T *gb = g + o * gs[0] + k0;
        T *db = dx + o * dxs[0] + k0;
        for (ptrdiff_t k = 0; k < w; k++) {
            s[k] = 0;
        }
        /* partial sums in T of at most LSM_COL_ROWS terms per column, added
         * in double (a sum of a whole chunk in T lost ~1e-5 of it) */
        for (ptrdiff_t j0 = 0; j0 < n; j0 += LSM_COL_ROWS) {
            ptrdiff_t j1 = n - j0 < LSM_COL_ROWS ? n : j0 + LSM_COL_ROWS;
            for (ptrdiff_t k = 0; k < w; k++) {
                ss[k] = 0;
            }
            for (ptrdiff_t j = j0; j < j1; j++) {
                const T *restrict gr = gb + j * gs[1];
                if (j + LSM_COL_ROWS < n) {
                    FN(prefetch_)(gr + LSM_COL_ROWS * gs[1], w, 0);
                }
#pragma omp simd
                for (ptrdiff_t k = 0; k < w; k++) {
                    ss[k] += gr[k];
                }
            }
            for (ptrdiff_t k = 0; k < w; k++) {
                s[k] += (double)ss[k];
            }
        }
        for (ptrdiff_t k = 0; k < w; k++) {
            sT[k] = (T)s[k];
        }
        for (ptrdiff_t j = 0; j < n; j++) {
            if (j + LSM_AHEAD < n) {
                const ptrdiff_t ja = j + LSM_AHEAD;
                FN(prefetch_)(yb + ja * ys[1], w, 0);
                FN(prefetch_)(gb + ja * gs[1], w, 0);
                if (!nt) {
                    FN(prefetch_)(db + ja * dxs[1], w, 1);
                }
            }
            const T *restrict yr =
                FN(load_)(yb + j * ys[1], 1, w, by, yb == db);
            const T *restrict gr =
                FN(load_)(gb + j * gs[1], 1, w, bg, gb == db);
            T *restrict dr = db + j * dxs[1];
            LSM_OUT_LOOP(nt, dr, w, gr[i] - EXP(yr[i]) * sT[i]);
        }
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

/* VJP of R short rows packed back to back (as short_block_): the block
 * transposed into L1, then every step runs across rows (one SIMD lane per
 * row): each row's sum of g, in double and in order, then dx = g -
 * exp(y) * sum, transposed back. For rows of up to 32 bytes: A/B (1
 * thread, avx512) against the row loop, float32 rows of 2-7 0.19-0.27x the
 * time, of 8 0.61-0.86x; float64 rows of 2-4 0.38-0.92x; longer rows lost
 * (float32 16: 1.4x, float64 8: 1.7x) -- they take vjp_rows_n_ now. */
/* The VJP of R rows of n elements (n <= 16) as they lie, no transposes: each
 * row's sum of g in double, in order, then dx = g - exp(y) * sum over the row.
 * n is a compile-time constant for n = 2..16 (LSM_SHORT_CASES), so that a row
 * is a vector or a few lanes of one. dx may be the memory of y or g (no
 * restrict there): every element is read before it is written. */
static LSM_ALWAYS_INLINE void FN(vjp_rows_n_)(ptrdiff_t R, ptrdiff_t n,
                                              const T *y, const T *g, T *dx) {
    for (ptrdiff_t r = 0; r < R; r++) {
        const T *yr = y + r * n, *gr = g + r * n;
        T *dr = dx + r * n;
        double sd = 0;
        for (ptrdiff_t j = 0; j < n; j++) {
            sd += (double)gr[j];
        }
        const T st = (T)sd;
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) {
            dr[j] = gr[j] - EXP(yr[j]) * st;
        }
    }
}

/* (y, g and dx may be one memory: no restrict) */
static void FN(vjp_short_block_)(ptrdiff_t R, ptrdiff_t n, const T *y,
                                 const T *g, T *dx) {
    if (((n & (n - 1)) == 0 && n * (ptrdiff_t)sizeof(T) >= 16) ||
        n * (ptrdiff_t)sizeof(T) > 32) {
        /* rows of 16-128 bytes a power of two long fill SIMD vectors as
         * they lie. A/B (1 thread, avx2, Zen 3, 1M rows): float32 rows of 8
         * 0.45x the time, of 4 0.7x; float64 rows of 4 0.47x, of 2 0.8x;
         * rows of up to 32 bytes of 8 bytes or odd lengths were 1.0-2x
         * slower so, and keep the transposes. Longer rows (up to 16
         * elements, see lsm_log_softmax_vjp_) take this loop too. */
        LSM_SHORT_CASES(FN(vjp_rows_n_), y, g, dx)
        return;
    }
    T yt[SHORT_MAX], gt[SHORT_MAX], dt[SHORT_MAX];
    double sd[LSM_CHUNK];
    T st[LSM_CHUNK];
    FN(transpose_)(R, n, y, yt, 0);
    FN(transpose_)(R, n, g, gt, 0);
    for (ptrdiff_t r = 0; r < R; r++) {
        sd[r] = 0;
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        const T *restrict gj = gt + j * R;
#pragma omp simd
        for (ptrdiff_t r = 0; r < R; r++) {
            sd[r] += (double)gj[r];
        }
    }
#pragma omp simd
    for (ptrdiff_t r = 0; r < R; r++) {
        st[r] = (T)sd[r];
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        const T *restrict yj = yt + j * R;
        const T *restrict gj = gt + j * R;
        T *restrict dj = dt + j * R;
#pragma omp simd
        for (ptrdiff_t r = 0; r < R; r++) {
            dj[r] = gj[r] - EXP(yj[r]) * st[r];
        }
    }
    FN(transpose_)(R, n, dt, dx, 1);
}

static void FN(vjp_short_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                 const T *y, const T *g, T *dx) {
    const ptrdiff_t R = FN(short_per_block_)(4, n);
    for (ptrdiff_t r0 = lo; r0 < hi; r0 += R) {
        const ptrdiff_t rb = hi - r0 < R ? hi - r0 : R;
        FN(vjp_short_block_)(rb, n, y + r0 * n, g + r0 * n, dx + r0 * n);
    }
}

/* The sum of g over [i0, i1) of a row (g at stride gs): chunk sums added
 * in double, in order. */
static double FN(vjp_sum_)(const T *g, ptrdiff_t gs, ptrdiff_t i0, ptrdiff_t i1,
                           T *restrict bg) {
    double s = 0;
    for (ptrdiff_t j0 = i0; j0 < i1; j0 += LSM_CHUNK) {
        ptrdiff_t len = i1 - j0 < LSM_CHUNK ? i1 - j0 : LSM_CHUNK;
        s += FN(chunk_sum_)(FN(gather_)(g + j0 * gs, gs, len, bg), len);
    }
    return s;
}

/* The sum of g over a row of n >= LSM_SPLIT_MIN elements, in blocks of
 * split_len_(n) (each block's sum from 0, then the blocks' sums in order),
 * whether one thread sums it or several share its blocks: the same sum
 * whatever the thread count. bg: a chunk's buffer (strided rows), for the
 * calling thread only (shared: each thread has its own). */
static double FN(vjp_row_sum_)(const T *g, ptrdiff_t gs, ptrdiff_t n,
                               int shared, T *restrict bg) {
    const ptrdiff_t B = FN(split_len_)(n), nb = (n + B - 1) / B;
    double sb[LSM_SPLIT_MAX];
    if (shared) {
        LSM_SHARED(nb, 1, n, {
            T bt[LSM_CHUNK];
            for (ptrdiff_t b = lo_; b < hi_; b++) {
                const ptrdiff_t i1 = n - b * B < B ? n : (b + 1) * B;
                sb[b] = FN(vjp_sum_)(g, gs, b * B, i1, bt);
            }
        });
    } else {
        for (ptrdiff_t b = 0; b < nb; b++) {
            const ptrdiff_t i1 = n - b * B < B ? n : (b + 1) * B;
            sb[b] = FN(vjp_sum_)(g, gs, b * B, i1, bg);
        }
    }
    double s = 0;
    for (ptrdiff_t b = 0; b < nb; b++) {
        s += sb[b];
    }
    return s;
}

/* dx = g - exp(y) * s over the elements [lo, hi) (lo a multiple of
 * LSM_CHUNK) of one row; dx may be y or g (inputs copied chunk by chunk
 * first, into by and bg; bd: the output chunk of a strided row; the
 * caller's, one set per thread). */
static LSM_ALWAYS_INLINE void
FN(vjp_out_range_)(ptrdiff_t lo, ptrdiff_t hi, const T *yr, ptrdiff_t sy,
                   const T *gr, ptrdiff_t sg, T *dr, ptrdiff_t sd, T s,
                   T *restrict by, T *restrict bg, T *restrict bd, int nt) {
    for (ptrdiff_t i0 = lo; i0 < hi; i0 += LSM_CHUNK) {
        ptrdiff_t len = hi - i0 < LSM_CHUNK ? hi - i0 : LSM_CHUNK;
        const T *yc = FN(load_)(yr + i0 * sy, sy, len, by, yr == dr);
        const T *gc = FN(load_)(gr + i0 * sg, sg, len, bg, gr == dr);
        T *dc = FN(dest_)(dr + i0 * sd, sd, bd);
        FN(chunk_vjp_)(yc, gc, len, s, dc, nt && sd == 1);
        FN(scatter_)(dc, len, dr + i0 * sd, sd);
    }
}

/* The VJP of the rows [lo, hi) (o = r / inner, k = r % inner) of fewer
 * than LSM_SPLIT_MIN elements; nt (a constant where inlined): dx written
 * with streaming stores (contiguous rows). */
static LSM_ALWAYS_INLINE void
FN(vjp_rows_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n, ptrdiff_t inner,
              const T *y, const ptrdiff_t ys[3], const T *g,
              const ptrdiff_t gs[3], T *dx, const ptrdiff_t dxs[3], int nt) {
    T by[LSM_CHUNK], bg[LSM_CHUNK], bd[LSM_CHUNK];
    const int ends = nt && inner == 1 && FN(out_partial_)(dx, dxs[0], n);
    const int hint = inner == 1 && n * (ptrdiff_t)sizeof(T) <= LSM_VJP_HINT_MAX;
    for (ptrdiff_t i = lo; i < hi; i++) {
        const ptrdiff_t o = i / inner, k = i % inner;
        const T *yr = y + o * ys[0] + k * ys[2];
        const T *gr = g + o * gs[0] + k * gs[2];
        T *dr = dx + o * dxs[0] + k * dxs[2];
        if (ends) {
            FN(out_ahead_)(dx, dxs[0], i, hi, n, 1);
        }
        if (hint) {
            FN(rows_ahead_)(y, ys[0], i, hi, n, 1);
            FN(rows_ahead_)(g, gs[0], i, hi, n, 1);
        }
        double s = 0;
        for (ptrdiff_t i0 = 0; i0 < n; i0 += LSM_CHUNK) {
            ptrdiff_t len = n - i0 < LSM_CHUNK ? n - i0 : LSM_CHUNK;
            s += FN(chunk_sum_)(FN(gather_)(gr + i0 * gs[1], gs[1], len, bg),
                                len);
        }
        for (ptrdiff_t i0 = 0; i0 < n; i0 += LSM_CHUNK) {
            ptrdiff_t len = n - i0 < LSM_CHUNK ? n - i0 : LSM_CHUNK;
            const T *yc = FN(load_)(yr + i0 * ys[1], ys[1], len, by, yr == dr);
            const T *gc = FN(load_)(gr + i0 * gs[1], gs[1], len, bg, gr == dr);
            T *dc = FN(dest_)(dr + i0 * dxs[1], dxs[1], bd);
            FN(chunk_vjp_)(yc, gc, len, (T)s, dc, nt);
            FN(scatter_)(dc, len, dr + i0 * dxs[1], dxs[1]);
        }
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

static void FN(vjp_rows_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                ptrdiff_t inner, const T *y,
                                const ptrdiff_t ys[3], const T *g,
                                const ptrdiff_t gs[3], T *dx,
                                const ptrdiff_t dxs[3]) {
    FN(vjp_rows_)(lo, hi, n, inner, y, ys, g, gs, dx, dxs, 0);
}

/* The VJP of the contiguous rows [lo, hi) of n elements (a few hundred
 * bytes), rows ys[0], gs[0], dxs[0] apart: each row's sum of g lane
 * by lane, added in a fixed tree (lanes_sum_; an "omp simd reduction"
 * ends in an in-order chain of scalar adds that so short a row does not
 * hide), then dx = g - exp(y) * sum. dx may be the memory of y or g (no
 * restrict): a row is read before it is written. */
static void FN(vjp_mid_rows_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                              const T *y, const ptrdiff_t ys[3], const T *g,
                              const ptrdiff_t gs[3], T *dx,
                              const ptrdiff_t dxs[3]) {
    enum { LN = LSM_VEC_BYTES / (int)sizeof(T) };
    for (ptrdiff_t r = lo; r < hi; r++) {
        const T *yr = y + r * ys[0], *gr = g + r * gs[0];
        T *dr = dx + r * dxs[0];
        FN(rows_ahead_)(y, ys[0], r, hi, n, 1); /* (see LSM_VJP_HINT_MAX) */
        FN(rows_ahead_)(g, gs[0], r, hi, n, 1);
        T a[LN];
        for (int l = 0; l < LN; l++) {
            a[l] = 0;
        }
#define LSM_VJP_TERM(I, L) a[L] += gr[I]
        LSM_LANES(0, n, LSM_VJP_TERM);
#undef LSM_VJP_TERM
        const T st = FN(lanes_sum_)(a);
#pragma omp simd
        for (ptrdiff_t j = 0; j < n; j++) {
            dr[j] = gr[j] - EXP(yr[j]) * st;
        }
    }
}

static void FN(vjp_rows_stream_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                 ptrdiff_t inner, const T *y,
                                 const ptrdiff_t ys[3], const T *g,
                                 const ptrdiff_t gs[3], T *dx,
                                 const ptrdiff_t dxs[3]) {
    FN(vjp_rows_)(lo, hi, n, inner, y, ys, g, gs, dx, dxs, 1);
}

/* The VJP of the rows [lo, hi) of LSM_SPLIT_MIN elements or more, each on
 * this thread. (Apart from vjp_rows_range_, whose loop stays as it was:
 * with the long rows' blocks in it, or written with vjp_sum_ and
 * vjp_out_range_, GCC compiled the float64 VJP of 1M rows of 8 1.08-1.2x
 * slower, A/B in one process.) */
static void FN(vjp_long_range_)(ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t n,
                                ptrdiff_t inner, const T *y,
                                const ptrdiff_t ys[3], const T *g,
                                const ptrdiff_t gs[3], T *dx,
                                const ptrdiff_t dxs[3], int nt) {
    T by[LSM_CHUNK], bg[LSM_CHUNK], bd[LSM_CHUNK];
    for (ptrdiff_t i = lo; i < hi; i++) {
        const ptrdiff_t o = i / inner, k = i % inner;
        const T *yr = y + o * ys[0] + k * ys[2];
        const T *gr = g + o * gs[0] + k * gs[2];
        T *dr = dx + o * dxs[0] + k * dxs[2];
        const double s = FN(vjp_row_sum_)(gr, gs[1], n, 0, bg);
        FN(vjp_out_range_)
        (0, n, yr, ys[1], gr, gs[1], dr, dxs[1], (T)s, by, bg, bd, nt);
    }
    if (nt) {
        lsm_nt_fence_();
    }
}

int API(lsm_log_softmax_vjp_)(ptrdiff_t outer, ptrdiff_t n, ptrdiff_t inner,
                              const T *y, const ptrdiff_t ys[3], const T *g,
                              const ptrdiff_t gs[3], T *dx,
                              const ptrdiff_t dxs[3]) {
    CHECK_ARGS(outer >= 0 && n >= 0 && inner >= 0 && ys && gs && dxs);
    if (outer == 0 || n == 0 || inner == 0) {
        return LSM_OK;
    }
    CHECK_ARGS(y && g && dx);
    const ptrdiff_t work = 2 * outer * inner * n;
    const int nt = FN(stream_)(outer * inner * n);
    /* short rows, of up to 16 elements (longer than 32 bytes: by
     * vjp_rows_n_, as they lie: A/B, 1 thread, Zen 4, against
     * vjp_rows_range_, whose per-row passes cost 2-5 ns per element on
     * such rows: float32 rows of 9-16 0.26-0.57x the time, float64 rows of
     * 5-16 0.29-0.83x, avx512 and avx2, cold and in L2; float32 rows of
     * 17-32 were 0.54-1.19x, of 64 1.4-1.7x, float64 rows of 17-32
     * 0.76-1.08x: those stay) */
    if (n <= 16 && FN(short_rows_)(n, inner, ys) &&
        FN(short_rows_)(n, inner, gs) && FN(short_rows_)(n, inner, dxs)) {
        LSM_SHARED(outer, FN(short_per_block_)(4, n), work,
                   FN(vjp_short_range_)(lo_, hi_, n, y, g, dx));
        return LSM_OK;
    }
    if (gs[1] != 1 && inner > 1 && ys[2] == 1 && gs[2] == 1 && dxs[2] == 1) {
        const FN(colblocks_) L = FN(col_layout_)(y, outer, ys[0], inner);
        LSM_SHARED(
            outer * L.nb, 1, work,
            FN(vjp_cols_range_)(lo_, hi_, n, &L, y, ys, g, gs, dx, dxs, nt));
        return LSM_OK;
    }
    const ptrdiff_t rows = outer * inner;
    if (n >= LSM_SPLIT_MIN && rows >= lsm_get_num_threads()) {
        LSM_SHARED(
            rows, 1, work,
            FN(vjp_long_range_)(lo_, hi_, n, inner, y, ys, g, gs, dx, dxs, nt));
        return LSM_OK;
    }
    if (n >= LSM_SPLIT_MIN) {
        /* fewer long rows than threads: each row's sum blocks, then its
         * output chunks, shared (the same values as vjp_long_range_) */
        for (ptrdiff_t r = 0; r < rows; r++) {
            const ptrdiff_t o = r / inner, k = r % inner;
            const T *yr = y + o * ys[0] + k * ys[2];
            const T *gr = g + o * gs[0] + k * gs[2];
            T *dr = dx + o * dxs[0] + k * dxs[2];
            const T s = (T)FN(vjp_row_sum_)(gr, gs[1], n, 1, NULL);
            LSM_SHARED(n, LSM_CHUNK, 2 * n, {
                T by[LSM_CHUNK], bg[LSM_CHUNK], bd[LSM_CHUNK];
                FN(vjp_out_range_)
                (lo_, hi_, yr, ys[1], gr, gs[1], dr, dxs[1], s, by, bg, bd, nt);
                if (nt) {
                    lsm_nt_fence_();
                }
            });
        }
        return LSM_OK;
    }
    if (nt && dxs[1] == 1 && n * (ptrdiff_t)sizeof(T) >= 1024) {
        /* (rows under 1 KB keep plain stores: A/B, 1 thread, avx2, float64
         * (1M, 8) streamed took 1.36x the time) */
        LSM_SHARED(
            rows, 1, work,
            FN(vjp_rows_stream_)(lo_, hi_, n, inner, y, ys, g, gs, dx, dxs));
        return LSM_OK;
    }
    /* rows of up to 512 bytes: vjp_mid_rows_ (A/B, 1 thread, Zen 4, cold
     * and in L2, against vjp_rows_range_: float32 rows of 17-128 0.53-0.94x
     * the time, float64 rows of 24-64 0.8-0.93x, at avx512 and avx2;
     * float64 rows of 17 0.82-1.07x; rows of 800 bytes and more 0.9-1.04x) */
    if (inner == 1 && ys[1] == 1 && gs[1] == 1 && dxs[1] == 1 &&
        n * (ptrdiff_t)sizeof(T) <= 512) {
        LSM_SHARED(rows, 1, work,
                   FN(vjp_mid_rows_)(lo_, hi_, n, y, ys, g, gs, dx, dxs));
        return LSM_OK;
    }
    LSM_SHARED(rows, 1, work,
               FN(vjp_rows_range_)(lo_, hi_, n, inner, y, ys, g, gs, dx, dxs));
    return LSM_OK;
}

static void FN(exp_range_)(ptrdiff_t lo, ptrdiff_t hi, const T *x, ptrdiff_t xs,
                           T *y, ptrdiff_t ys) {
    if (xs == 1 && ys == 1) {
#pragma omp simd
        for (ptrdiff_t i = lo; i < hi; i++) {
            y[i] = EXP(x[i]);
        }
        return;
    }
    for (ptrdiff_t i = lo; i < hi; i++) {
        y[i * ys] = EXP(x[i * xs]);
    }
}

int API(lsm_exp_)(ptrdiff_t n, const T *x, ptrdiff_t xs, T *y, ptrdiff_t ys) {
    CHECK_ARGS(n >= 0 && (n == 0 || (x && y)));
    LSM_SHARED(n, LSM_CHUNK, n, FN(exp_range_)(lo_, hi_, x, xs, y, ys));
    return LSM_OK;
}

#undef CHECK_ARGS
#undef STATS
#undef T_INF
#undef SHORT_MAX
#undef TILE_BIG
#undef TILE_BIG_K
#undef TILE_SMALL
#undef TILE_SMALL_K
#undef ITYPE
#undef V
#undef VF
#undef EXP
#undef NT_LINE
#undef API
#undef FN
#undef T
