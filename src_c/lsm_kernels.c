/*
 * lsm_kernels.c -- instantiates lsm_kernels.template.c for float and double.
 *
 * Built once as it is (public names lsm_<op>_<dtype>), or, for run-time ISA
 * dispatch, once per instruction-set level with -DLSM_ISA_SFX=_<level>
 * (names lsm_<op>_<dtype>_<level>) beside lsm_dispatch.c.
 */
#include "lsm.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lsm_exp.h"
#include "lsm_threads.h"

/* Run the statement(s) in __VA_ARGS__ on each of the threads that
 * lsm_threads_for_ grants `items` items (cut into `unit`s) of `work`
 * elements, with lo_ and hi_ set to the thread's share [lo_, hi_) of
 * [0, items). Everything the statements declare is private to the thread.
 * One thread: the statements run here, without entering an OpenMP region
 * (which costs about a microsecond even when it runs on one thread). */
#ifdef _OPENMP
#define LSM_OMP_PARALLEL _Pragma("omp parallel num_threads(nt_)")
#else
#define LSM_OMP_PARALLEL
#endif
#define LSM_SHARED(items, unit, work, ...)                                     \
    do {                                                                       \
        const ptrdiff_t items_ = (items), unit_ = (unit);                      \
        const int nt_ =                                                        \
            lsm_threads_for_((items_ + unit_ - 1) / unit_, (double)(work));    \
        if (nt_ > 1) {                                                         \
            LSM_OMP_PARALLEL {                                                 \
                ptrdiff_t lo_, hi_;                                            \
                lsm_share_(items_, unit_, &lo_, &hi_);                         \
                __VA_ARGS__;                                                   \
            }                                                                  \
        } else {                                                               \
            const ptrdiff_t lo_ = 0, hi_ = items_;                             \
            __VA_ARGS__;                                                       \
        }                                                                      \
    } while (0)

/* Elements per chunk of a row: 2 passes over a chunk run from L1. */
#define LSM_CHUNK 1024
/* Width in bytes of the SIMD vectors the loops compile to (the build sets
 * it per instruction-set level). */
#ifndef LSM_VEC_BYTES
#define LSM_VEC_BYTES 16
#endif
/* Elements per partial sum kept in T, per SIMD lane a sequence of at most 64
 * float32 or 128 float64 adds at every vector width (sums in double across
 * them). The accuracy tests bound the error this leaves. */
#define LSM_SUB (16 * LSM_VEC_BYTES)
/* Most segments of a row that softmax records a shift for (longer rows
 * take segments of several chunks). */
#define LSM_SEGS 1024
/* Columns processed side by side when the reduced axis is strided: a block
 * of LSM_COL_BYTES of each row, and LSM_COL_ROWS rows (64 KB) per chunk of
 * its statistics pass (partial sums in T of at most 64 terms, like
 * LSM_SUB's). Measured (1 thread, Zen 5, A/B against 4 KB blocks of 32 rows
 * read column strip by column strip): float32 logsumexp over axis 0 of
 * (2048, 4096) 0.66x the time, (2000, 4000) 0.83x, (256, 4096) 0.5x;
 * log_softmax 0.84x, 0.88x, 0.44x; float64 (2048, 2048) 0.86x. */
#define LSM_COL_BYTES 1024
/* Columns per block: LSM_COL_BYTES of float32 (256 columns), 64 columns of
 * float64 (half the bytes). A/B of 64 float64 columns against 128 (1
 * thread, Zen 4, cold, 8M elements, axis 0 of (2048, 4096), (8192, 1024)
 * and (256, 32768), avx512 and avx2): logsumexp 0.91-1.01x the time,
 * softmax 0.83-0.98x, log_softmax 0.89-0.99x, the JVP 0.89-1.0x, the VJP
 * 0.75-0.98x; (256, 32768) at avx512 1.02-1.08x, except the VJP. */
#define LSM_COLS(T)                                                            \
    ((ptrdiff_t)(sizeof(T) == 8 ? 64 : LSM_COL_BYTES / sizeof(T)))
#define LSM_COL_ROWS 64
/* Most bytes of the per-column parameters (4 per column) of an output pass
 * along a strided axis done row by row over the whole width (colwise_). */
#ifndef LSM_COL_PARAMS
#define LSM_COL_PARAMS (256 * 1024)
#endif
/* Most bytes of the inputs of a column block (down the whole axis) that
 * log_softmax and the JVP give an output pass of its own, reading the block
 * again from the cache (colwise_). */
#ifndef LSM_COL_BLOCK_CACHE
#define LSM_COL_BLOCK_CACHE ((ptrdiff_t)4 << 20)
#endif
/* Most bytes of x and y of a column block (down the whole axis) whose
 * float64 softmax takes one exp per element (cols_softmax_, colwise_range_)
 * rather than a second exp in its output pass, below the AVX-512 level. */
#ifndef LSM_COL_SOFTMAX_CACHE
#define LSM_COL_SOFTMAX_CACHE ((ptrdiff_t)1 << 20)
#endif
/* Most segments of a column block that softmax records a shift for (see
 * cols_softmax_). */
#define LSM_COL_SEGS 16
/* Inline always, so that a call with a constant length unrolls into
 * registers. */
#if defined(__GNUC__) || defined(__clang__)
#define LSM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define LSM_ALWAYS_INLINE inline
#endif
/* softmax of rows of LSM_LONG_ROW(T) elements or more: a statistics pass,
 * then y = exp(x - m) / d in one more pass (two exps per element, x read
 * twice, y written once), rather than storing exp(x - m_segment) and
 * scaling it in a third pass (one exp, but y then goes to memory and back,
 * or to a far cache). Measured (1 thread, Zen 5, 32 MB L3), float32 rows
 * of 4M: 0.81x the time; 2M (x and y in L3) 1.0x; 1M 1.2x; float64 rows of
 * 4M 0.91x, 2M 1.07x: the threshold was 3M elements. On a Zen 4 (1 MB L2,
 * 32 MB L3; A/B, cold, against that): float32 rows of 2M 0.76-0.8x the time
 * (avx512 and avx2), 1.8M 0.79-1.0x, 1.25M-1.5M 0.99-1.05x, 1M 1.0-1.08x,
 * float64 at avx512 (its exp of lsm_vexp_core_f64_) rows of 2M 0.85x, 1M
 * 0.92-0.93x, 750K-900K 0.94-0.99x, 500K 1.0x: so rows of 6 MB and more
 * (1.5M float32, 768K float64); float64 at avx2 (the portable exp) rows of
 * 2M 1.0x, 1M 1.29x, and it keeps 3M elements. */
#define LSM_LONG_ROW(T)                                                        \
    (sizeof(T) == 4 || LSM_HAVE_VEXP_f64                                       \
         ? ((ptrdiff_t)6 << 20) / (ptrdiff_t)sizeof(T)                         \
         : (ptrdiff_t)3 << 20)
/* Rows of LSM_SPLIT_MIN elements or more compute their statistics in blocks
 * of at least LSM_SPLIT_BLOCK elements (at most LSM_SPLIT_MAX blocks, in
 * whole chunks), each block its own state, merged in order: a fixed split,
 * so that the blocks may run on several threads (when there are fewer rows
 * than threads) with the same result as on one. */
#define LSM_SPLIT_MIN ((ptrdiff_t)1 << 20)
#define LSM_SPLIT_BLOCK ((ptrdiff_t)1 << 18)
#define LSM_SPLIT_MAX 64
/* Rows per group of the row paths: a group's statistics first, then their
 * logs (and the JVP's q) in one loop that vectorises across the group, so
 * that the latency of a scalar log per row (a chain of ~15 dependent
 * operations and two divisions) stops holding up rows of a few hundred
 * elements. Elementwise ops keep a group within LSM_GROUP_BYTES of input
 * (its rows are written once the logs are known). A/B (avx512, 1 thread),
 * new/old time: logsumexp 0.63-0.94 for rows of 65-2048; log_softmax
 * float32 0.65-0.86 for 65-512, float64 0.74-0.96 for 65-256; JVP float32
 * 0.78-0.99; longer rows (groups of 1-2) unchanged. */
#define LSM_GROUP 16
#define LSM_GROUP_BYTES 8192
/* Rows up to this length go through the packed short-row path, in blocks of
 * at most LSM_SHORT_BLOCK elements and LSM_CHUNK rows (transposed into
 * L1/L2: long enough loops across the rows of a block); float32 rows of
 * more than 16 (the VJP's: more than 4) in blocks of LSM_SHORT_BLOCK32 (16
 * KB), float32 rows of 5-16 in 8 KB (see short_per_block_). The 16 KB
 * blocks, A/B (1 thread, avx2, in L2) against 1024, all ops: float32 rows
 * of 20-64 0.6-0.88x the time, rows of 8-16 0.83-1.04x over two runs ((1M,
 * 8) cold 0.92-1.04x); rows of 2-4 took 1.0-1.1x and float64 rows of 8-32
 * 1.0-1.08x (softmax), so they keep 1024. The stack frames of the short-row
 * path grow to 136 KB (float32; float64 107 KB). Rows of 96-128 through
 * this path (instead of the mid-length one) took 1.1-1.5x. */
#define LSM_SHORT 64
#define LSM_SHORT_BLOCK 1024
#define LSM_SHORT_BLOCK32 4096
/* Mid-length rows: contiguous rows shorter than this many bytes.
 * logsumexp takes them two at a time (pair_stats_). A/B (1 thread, avx512),
 * against one row after the other: float32 rows of 65-300 0.63-0.98x the time
 * (0.64-0.72 for 65-200), float64 rows of 65-150 0.72-0.98x; cold caches alike.
 * Longer rows gained less or lost (float32 rows of 340-383 1.1-1.3x), and
 * log_softmax and the JVP, whose output streams dominate, lost 1.1-1.5x
 * pairwise (rows of 128-383), so they keep one row at a time; but their
 * statistics passes sum blocks this short lane by lane in the same fixed
 * tree (sumexp_short_): float32 rows of 128-319 0.86-0.97x the time,
 * float64 rows of 100-128 0.89-0.91x (rows of 65 1.05x), longer rows
 * unchanged; softmax has its own short row function (softmax_short_):
 * float32 rows of 65-319 0.64-0.87x, float64 rows of 65-159 0.83-0.94x. */
#define LSM_MID_BYTES 1280
/* how far ahead mid-length rows prefetch (rows_ahead_) */
#ifndef LSM_AHEAD_BYTES
#define LSM_AHEAD_BYTES 4096
#endif
#ifndef LSM_AHEAD_MIN
#define LSM_AHEAD_MIN ((ptrdiff_t)4 << 20)
#endif

/* F(R, n, ...), R and n those of the calling scope, with n a compile-time
 * constant for n = 2..16 (loops over a short row then vectorise), else with
 * n as it is. */
#define LSM_CASE_(F, N, ...)                                                   \
    case N:                                                                    \
        F(R, N, __VA_ARGS__);                                                  \
        break;
#define LSM_SHORT_CASES(F, ...)                                                \
    switch (n) {                                                               \
        LSM_CASE_(F, 2, __VA_ARGS__)                                           \
        LSM_CASE_(F, 3, __VA_ARGS__)                                           \
        LSM_CASE_(F, 4, __VA_ARGS__)                                           \
        LSM_CASE_(F, 5, __VA_ARGS__)                                           \
        LSM_CASE_(F, 6, __VA_ARGS__)                                           \
        LSM_CASE_(F, 7, __VA_ARGS__)                                           \
        LSM_CASE_(F, 8, __VA_ARGS__)                                           \
        LSM_CASE_(F, 9, __VA_ARGS__)                                           \
        LSM_CASE_(F, 10, __VA_ARGS__)                                          \
        LSM_CASE_(F, 11, __VA_ARGS__)                                          \
        LSM_CASE_(F, 12, __VA_ARGS__)                                          \
        LSM_CASE_(F, 13, __VA_ARGS__)                                          \
        LSM_CASE_(F, 14, __VA_ARGS__)                                          \
        LSM_CASE_(F, 15, __VA_ARGS__)                                          \
        LSM_CASE_(F, 16, __VA_ARGS__)                                          \
    default:                                                                   \
        F(R, n, __VA_ARGS__);                                                  \
    }

/* Rows ahead that the column passes prefetch: rows at a large stride are
 * each a separate short stream that the hardware prefetchers pick up late. */
#define LSM_AHEAD 4

/* A hint that the cache line at p will be read (w = 0) or written (w = 1)
 * soon; never faults, does nothing where the compiler has no builtin.
 * LSM_PREFETCH_L2: read, into L2 but not L1 (prefetcht1), in the AVX2 and
 * AVX-512 builds, where it was measured; the baseline builds (x86-64, whose
 * exp-bound kernels gained nothing from it: 0.96-1.04x the time, and other
 * architectures) keep LSM_PREFETCH's hint. */
#if defined(__GNUC__) || defined(__clang__)
#define LSM_PREFETCH(p, w) __builtin_prefetch((p), (w), 3)
#if LSM_VEC_BYTES >= 32
#define LSM_PREFETCH_L2(p) __builtin_prefetch((p), 0, 2)
#else
#define LSM_PREFETCH_L2(p) LSM_PREFETCH(p, 0)
#endif
#else
#define LSM_PREFETCH(p, w) ((void)(p))
#define LSM_PREFETCH_L2(p) ((void)(p))
#endif

/* A hint that the cache line at p will be written soon: PREFETCHW, which
 * reads the line for ownership now, in the AVX2 and AVX-512 builds (every
 * x86-64 processor with AVX2 runs it: Intel's since Broadwell, AMD's, and
 * Haswell as a no-op; GCC emits it for __builtin_prefetch only with
 * -mprfchw). Used for the partial lines at the ends of streamed rows (see
 * out_ends_). An asm with the address in a register, not a memory operand:
 * with the memory operand GCC kept the float32 softmax row sums of
 * rowwise_range_ on the stack (1.09x the time, (4096, 1024)). */
#if defined(__x86_64__) && LSM_VEC_BYTES >= 32 &&                              \
    (defined(__GNUC__) || defined(__clang__))
#define LSM_PREFETCHW(p)                                                       \
    __asm__ volatile("prefetchw (%0)" ::"r"((const void *)(p)))
#else
#define LSM_PREFETCHW(p) LSM_PREFETCH(p, 1)
#endif
/* LSM_PREFETCHW of the last line of y[0:n] where it is partial (does not
 * end on a 64-byte boundary): the line a streamed y writes with plain
 * stores at its end (LSM_OUT_LOOP_PF, out_ends_). */
#define LSM_PREFETCHW_END(y, n)                                                \
    do {                                                                       \
        if ((n) > 0 && (uintptr_t)((y) + (n)) % 64) {                          \
            LSM_PREFETCHW((y) + (n) - 1);                                      \
        }                                                                      \
    } while (0)

/* Streaming (non-temporal) stores of one 64-byte line t to the 64-byte
 * aligned p: the line goes to memory without being read first (no
 * read-for-ownership) and without displacing the cache. lsm_nt_fence_
 * orders them before anything the thread does next (a kernel calls it
 * before it returns, each thread before it leaves a parallel region).
 * Without SSE2, plain stores. */
#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#define LSM_HAVE_NT 1
static inline void lsm_nt_line_f32_(float *p, const float *t) {
#if defined(__AVX512F__) && LSM_VEC_BYTES >= 64
    _mm512_stream_ps(p, _mm512_loadu_ps(t));
#elif defined(__AVX__)
    _mm256_stream_ps(p, _mm256_loadu_ps(t));
    _mm256_stream_ps(p + 8, _mm256_loadu_ps(t + 8));
#else
    for (int k = 0; k < 16; k += 4) {
        _mm_stream_ps(p + k, _mm_loadu_ps(t + k));
    }
#endif
}
static inline void lsm_nt_line_f64_(double *p, const double *t) {
#if defined(__AVX512F__) && LSM_VEC_BYTES >= 64
    _mm512_stream_pd(p, _mm512_loadu_pd(t));
#elif defined(__AVX__)
    _mm256_stream_pd(p, _mm256_loadu_pd(t));
    _mm256_stream_pd(p + 4, _mm256_loadu_pd(t + 4));
#else
    for (int k = 0; k < 8; k += 2) {
        _mm_stream_pd(p + k, _mm_loadu_pd(t + k));
    }
#endif
}
static inline void lsm_nt_fence_(void) { _mm_sfence(); }
#if defined(__AVX512F__) && LSM_VEC_BYTES >= 64
/* exp(d) of float64, d = x - m <= 0 (or nan), 8 at a time: with
 * k = round(16 d / ln 2), e^d = 2^floor(k / 16) * 2^((k mod 16) / 16) *
 * e^r, |r| <= ln 2 / 32. The 16 values 2^(j / 16) sit in two registers and
 * are picked by one permute (vpermt2pd), so that e^r needs a degree-6
 * polynomial where lsm_expsum_f64's range (|r| <= ln 2 / 2) needs degree
 * 11, and the scale 2^floor(k / 16) goes into the table value's exponent
 * by an integer add: 10 multiplies and fmas per vector instead of 15 on the
 * units that bound this loop. Error: the table's rounding (0.5 ulp), the
 * polynomial's (0.26 ulp) and the final rounding's; 1.25 ulp measured
 * against expl on 32M points of [-708, 0] (lsm_expsum_f64: 1.36). d < -708
 * gives 0 (lsm_vexpsum_f64_). */
#define LSM_HAVE_VEXP_f64 1
/* 2^(floor(k / 16) + bias - 1023) * 2^((k mod 16) / 16) * e^r, rounded
 * once: the value of lsm_vexpsum_f64_ (bias 1023) and lsm_vexpneg_f64_
 * (which shifts the exponent by bias - 1023 = 1000 to reach subnormal
 * results). The scale is added to the table value's exponent before the
 * rounding; as a multiply after it (exact, the results being normal there)
 * it gave the same bits on 32M random and special inputs. */
static inline __m512d lsm_vexp_core_f64_(__m512d d, double bias) {
    const __m512d t0 = _mm512_setr_pd(
        0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0,
        0x1.2387a6e756238p+0, 0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0,
        0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0);
    const __m512d t1 = _mm512_setr_pd(
        0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0,
        0x1.9c49182a3f090p+0, 0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0,
        0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0);
    /* the shifter carries 16 * (bias - 1023) in its low bits: kf's bits
     * are those of k + 16 * (bias - 1023), whose low 4 bits are k mod 16
     * and the bits above floor(k / 16) + bias - 1023, what the scale adds
     * to the exponent of the table's value (modulo 2^12, so a negative sum
     * wraps as it should) */
    const __m512d shifter = _mm512_set1_pd(0x1.8p52 + 16.0 * (bias - 1023.0));
    __m512d kf =
        _mm512_fmadd_pd(d, _mm512_set1_pd(0x1.71547652b82fep+4), shifter);
    const __m512i kb = _mm512_castpd_si512(kf);
    /* 2^(j / 16) times the scale, by an integer add to its exponent (one
     * multiply fewer on the units this loop is bound by) */
    const __m512d tab = _mm512_castsi512_pd(_mm512_add_epi64(
        _mm512_castpd_si512(_mm512_permutex2var_pd(t0, kb, t1)),
        _mm512_slli_epi64(_mm512_srli_epi64(kb, 4), 52)));
    kf = _mm512_sub_pd(kf, shifter);
    /* ln 2 / 16 in two parts, the first of 32 bits (k fits in 15) */
    __m512d r = _mm512_fnmadd_pd(kf, _mm512_set1_pd(0x1.62e42feep-5), d);
    r = _mm512_fnmadd_pd(kf, _mm512_set1_pd(0x1.a39ef35793c76p-37), r);
    /* e^r - 1 = r + r^2 q(r) */
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d q = _mm512_set1_pd(0x1.6c17bb5ebddb4p-10);
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.11120b03cd855p-7));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.555555551946fp-5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.55555554dd388p-3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.0p-1));
    const __m512d p = _mm512_fmadd_pd(r2, q, r);
    return _mm512_fmadd_pd(tab, p, tab);
}
/* The mask of the first min(left, 8) lanes (left >= 0). */
static inline __mmask8 lsm_lanes8_(ptrdiff_t left) {
    return left >= 8 ? (__mmask8)0xff : (__mmask8)((1u << left) - 1u);
}
/* exp(d) for the sum terms: d < -708 gives 0, as in lsm_expsum_f64 (and
 * -inf: 0, nan: nan) */
static inline __m512d lsm_vexpsum_f64_(__m512d d) {
    const __mmask8 live =
        _mm512_cmp_pd_mask(d, _mm512_set1_pd(-708.0), _CMP_NLT_UQ);
    return _mm512_maskz_mov_pd(live, lsm_vexp_core_f64_(d, 1023.0));
}
/* exp(d) for outputs, d <= 0, as lsm_expneg_f64: subnormal results from a
 * scale 2^1000 too large, then times 2^-1000; d clamped to -746, whose exp
 * rounds to 0 (vmaxpd returns its second operand when one is nan: nan).
 * 1.25 ulp measured against expl on [-746, 0] (lsm_expneg_f64: 1.38),
 * 1 ulp of 2^-1074 on subnormal results (as lsm_expneg_f64). */
static inline __m512d lsm_vexpneg_f64_(__m512d d) {
    d = _mm512_max_pd(_mm512_set1_pd(-746.0), d);
    return _mm512_mul_pd(lsm_vexp_core_f64_(d, 2023.0),
                         _mm512_set1_pd(0x1p-1000));
}
#endif
#if defined(__AVX512F__) && LSM_VEC_BYTES >= 64
/* lsm_expsum_f32 of 16 lanes, with its operations (fmaf's one-step
 * reduction, the degree-5 polynomial, 0 below -87): the same bits as GCC's
 * vectorisation of it on 16M random inputs of [-90, 0]. The float32 sums
 * of blocks of LSM_MID_BYTES and more (the template's sumexp_vec16_) are
 * written with it. */
#define LSM_HAVE_VSUM_f32 1
static inline __m512 lsm_vexpsum_f32_(__m512 x) {
    const __m512 shifter = _mm512_set1_ps(0x1.8p23f + 127.0f);
    __m512 kf = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), shifter);
    const __m512 scale =
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(kf), 23));
    kf = _mm512_sub_ps(kf, shifter);
    const __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0x1.62e430p-1f), x);
    const __m512 r2 = _mm512_mul_ps(r, r);
    const __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(0x1.5557aep-3f), r,
                                      _mm512_set1_ps(0x1.fffdfcp-2f));
    const __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(0x1.106284p-7f), r,
                                      _mm512_set1_ps(0x1.5729f0p-5f));
    const __m512 p = _mm512_fmadd_ps(r2, _mm512_fmadd_ps(r2, hi, lo),
                                     _mm512_add_ps(_mm512_set1_ps(1.0f), r));
    /* x < -87 gives 0; nan stays nan */
    const __mmask16 live =
        _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ);
    return _mm512_maskz_mov_ps(live, _mm512_mul_ps(p, scale));
}
#endif
#if defined(__AVX512F__) && LSM_VEC_BYTES >= 64
/* Packed rows in 512-bit vectors (the template's row8_rows_: softmax,
 * log_softmax, the JVP): rows of 4 to 128 float32 or 64 float64 elements (a
 * power of 2), LSM_ROW8_G vectors at a time (each step over the G vectors
 * side by side, so that the core has G independent chains in flight rather
 * than one long one). A row within a vector: its max and sums by log2(row
 * length) swaps within its lanes (adjacent lanes, pairs, halves), the
 * result in all lanes of the row; a longer row: a tree across its vectors
 * first. The vector operations under one name per type (lsm_v_NAME_f32,
 * lsm_v_NAME_f64) for the template. */
#define LSM_HAVE_ROW8_f32 1
#define LSM_HAVE_ROW8_f64 1
#define LSM_ROW8_G 8
typedef __m512 lsm_v_f32;
typedef __m512d lsm_v_f64;
typedef __mmask16 lsm_m_f32;
typedef __mmask8 lsm_m_f64;
/* the first min(left, lanes) lanes (left > 0) */
static inline unsigned lsm_v_lanes_f32(ptrdiff_t left) {
    return left >= 16 ? 0xffffu : (1u << left) - 1u;
}
static inline unsigned lsm_v_lanes_f64(ptrdiff_t left) {
    return lsm_lanes8_(left);
}
#define LSM_V_OPS(S, V, M, PS)                                                 \
    static inline V lsm_v_loadu_##S(const void *p) {                           \
        return _mm512_loadu_##PS(p);                                           \
    }                                                                          \
    static inline V lsm_v_maskz_loadu_##S(unsigned k, const void *p) {         \
        return _mm512_maskz_loadu_##PS((M)k, p);                               \
    }                                                                          \
    static inline V lsm_v_mask_loadu_##S(V a, unsigned k, const void *p) {     \
        return _mm512_mask_loadu_##PS(a, (M)k, p);                             \
    }                                                                          \
    static inline V lsm_v_zero_##S(void) { return _mm512_setzero_##PS(); }     \
    static inline V lsm_v_sub_##S(V a, V b) { return _mm512_sub_##PS(a, b); }  \
    static inline V lsm_v_div_##S(V a, V b) { return _mm512_div_##PS(a, b); }  \
    /* lanes that are nan or +-inf */                                          \
    static inline M lsm_v_bad_##S(V a) {                                       \
        return _mm512_fpclass_##PS##_mask(a, 0x99);                            \
    }                                                                          \
    static inline void lsm_v_storeu_##S(void *p, V a) {                        \
        _mm512_storeu_##PS(p, a);                                              \
    }                                                                          \
    static inline void lsm_v_mask_storeu_##S(void *p, unsigned k, V a) {       \
        _mm512_mask_storeu_##PS(p, (M)k, a);                                   \
    }                                                                          \
    static inline void lsm_v_stream_##S(void *p, V a) {                        \
        _mm512_stream_##PS(p, a);                                              \
    }                                                                          \
    static inline V lsm_v_mul_##S(V a, V b) { return _mm512_mul_##PS(a, b); }  \
    static inline V lsm_v_add_##S(V a, V b) { return _mm512_add_##PS(a, b); }  \
    /* a + b in the lanes k, a elsewhere */                                    \
    static inline V lsm_v_mask_add_##S(V a, unsigned k, V b) {                 \
        return _mm512_mask_add_##PS(a, (M)k, a, b);                            \
    }                                                                          \
    static inline V lsm_v_fmadd_##S(V a, V b, V c) {                           \
        return _mm512_fmadd_##PS(a, b, c);                                     \
    }                                                                          \
    static inline V lsm_v_set1_##S(double a) { return _mm512_set1_##PS(a); }   \
    static inline M lsm_v_eq_##S(V a, V b) {                                   \
        return _mm512_cmp_##PS##_mask(a, b, _CMP_EQ_OQ);                       \
    }                                                                          \
    /* lanes where a != b or either is nan */                                  \
    static inline M lsm_v_ne_##S(V a, V b) {                                   \
        return _mm512_cmp_##PS##_mask(a, b, _CMP_NEQ_UQ);                      \
    }                                                                          \
    static inline V lsm_v_max_##S(V a, V b) { return _mm512_max_##PS(a, b); }  \
    static inline V lsm_v_maskz_mov_##S(unsigned k, V a) {                     \
        return _mm512_maskz_mov_##PS((M)k, a);                                 \
    }                                                                          \
    static inline V lsm_v_mask_mov_##S(V a, unsigned k, V b) {                 \
        return _mm512_mask_mov_##PS(a, (M)k, b);                               \
    }
LSM_V_OPS(f32, __m512, __mmask16, ps)
LSM_V_OPS(f64, __m512d, __mmask8, pd)
/* the sum terms' exp (lsm_vexpsum_f32_, lsm_vexpsum_f64_) */
static inline __m512 lsm_v_expsum_f32(__m512 d) { return lsm_vexpsum_f32_(d); }
static inline __m512d lsm_v_expsum_f64(__m512d d) {
    return lsm_vexpsum_f64_(d);
}
/* the lanes h, h + 1, ... of a then b (h < lanes; idx from lsm_v_idx_*) */
static inline __m512i lsm_v_idx_f32(int h) {
    return _mm512_add_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(h));
}
static inline __m512i lsm_v_idx_f64(int h) {
    return _mm512_add_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                            _mm512_set1_epi64(h));
}
static inline __m512 lsm_v_shift_f32(__m512 a, __m512i idx, __m512 b) {
    return _mm512_permutex2var_ps(a, idx, b);
}
static inline __m512d lsm_v_shift_f64(__m512d a, __m512i idx, __m512d b) {
    return _mm512_permutex2var_pd(a, idx, b);
}
/* the lanes (j & -w) + i of a, j = 0, 1, ...: each row of w lanes (w a
 * power of 2) filled with lane i of the row's first lane group (lsm_v_from_*;
 * i < w) */
static inline __m512i lsm_v_spread_f32(int w, int i) {
    return _mm512_add_epi32(
        _mm512_and_si512(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                           12, 13, 14, 15),
                         _mm512_set1_epi32(-w)),
        _mm512_set1_epi32(i));
}
static inline __m512i lsm_v_spread_f64(int w, int i) {
    return _mm512_add_epi64(
        _mm512_and_si512(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                         _mm512_set1_epi64(-w)),
        _mm512_set1_epi64(i));
}
static inline __m512 lsm_v_from_f32(__m512i idx, __m512 a) {
    return _mm512_permutexvar_ps(idx, a);
}
static inline __m512d lsm_v_from_f64(__m512i idx, __m512d a) {
    return _mm512_permutexvar_pd(idx, a);
}
/* The swaps of a row's K lanes in each of the first N vectors of a (K = 4,
 * 8 or 16; OP: max or add): adjacent lanes, pairs, then 128-bit and 256-bit
 * halves as K needs. */
#define LSM_ROW8_STEP(a, N, EXPR)                                              \
    for (int g = 0; g < (N); g++) {                                            \
        a[g] = EXPR;                                                           \
    }
#define LSM_ROW8_SWAPS_f32(OP, a, K, N)                                        \
    do {                                                                       \
        LSM_ROW8_STEP(a, N, OP##_ps(a[g], _mm512_permute_ps(a[g], 0xB1)))      \
        LSM_ROW8_STEP(a, N, OP##_ps(a[g], _mm512_permute_ps(a[g], 0x4E)))      \
        if ((K) >= 8) {                                                        \
            LSM_ROW8_STEP(                                                     \
                a, N, OP##_ps(a[g], _mm512_shuffle_f32x4(a[g], a[g], 0xB1)))   \
        }                                                                      \
        if ((K) >= 16) {                                                       \
            LSM_ROW8_STEP(                                                     \
                a, N, OP##_ps(a[g], _mm512_shuffle_f32x4(a[g], a[g], 0x4E)))   \
        }                                                                      \
    } while (0)
#define LSM_ROW8_SWAPS_f64(OP, a, K, N)                                        \
    do {                                                                       \
        LSM_ROW8_STEP(a, N, OP##_pd(a[g], _mm512_permute_pd(a[g], 0x55)))      \
        LSM_ROW8_STEP(a, N, OP##_pd(a[g], _mm512_permutex_pd(a[g], 0x4E)))     \
        if ((K) >= 8) {                                                        \
            LSM_ROW8_STEP(                                                     \
                a, N, OP##_pd(a[g], _mm512_shuffle_f64x2(a[g], a[g], 0x4E)))   \
        }                                                                      \
    } while (0)
/* lsm_row8_NAME_S(a, K): the row reductions (max or sum) of LSM_ROW8_G
 * vectors a, each row's result in all its lanes. Rows of K <= LANES: the
 * swaps. Rows of K > LANES elements, K / LANES vectors each (a power of 2
 * dividing LSM_ROW8_G): each row's vectors combined into its first by a
 * tree, that vector's lanes by the swaps, the result copied to all the
 * row's vectors. (A nan may be lost in the tree, whose max returns the
 * second operand where one is nan; the row's terms are then nan, and so
 * are its outputs, as scipy.special's.) */
#define LSM_ROW8_REDUCE(NAME, S, V, OP, PS, LANES)                             \
    static LSM_ALWAYS_INLINE void lsm_row8_##NAME##_##S(V *a, int K) {         \
        if (K <= (LANES)) {                                                    \
            LSM_ROW8_SWAPS_##S(OP, a, K, LSM_ROW8_G);                          \
            return;                                                            \
        }                                                                      \
        const int nv = K / (LANES);                                            \
        for (int g0 = 0; g0 < LSM_ROW8_G; g0 += nv) {                          \
            for (int s = 1; s < nv; s *= 2) {                                  \
                for (int j = g0; j < g0 + nv; j += 2 * s) {                    \
                    a[j] = OP##_##PS(a[j], a[j + s]);                          \
                }                                                              \
            }                                                                  \
            V *const first = a + g0;                                           \
            LSM_ROW8_SWAPS_##S(OP, first, LANES, 1);                           \
            for (int j = g0 + 1; j < g0 + nv; j++) {                           \
                a[j] = a[g0];                                                  \
            }                                                                  \
        }                                                                      \
    }
LSM_ROW8_REDUCE(max, f32, __m512, _mm512_max, ps, 16)
LSM_ROW8_REDUCE(sum, f32, __m512, _mm512_add, ps, 16)
LSM_ROW8_REDUCE(max, f64, __m512d, _mm512_max, pd, 8)
LSM_ROW8_REDUCE(sum, f64, __m512d, _mm512_add, pd, 8)
#undef LSM_ROW8_REDUCE
/* u = e^d 2^64 for d = x - m <= 0 (d clamped to -104, where exp rounds to
 * 0 once divided by the sum of u), as lsm_expneg_mul_f32 without its last
 * multiply: Cody-Waite reduction and the degree-6 polynomial of
 * lsm_exp_poly_f32. */
static LSM_ALWAYS_INLINE void lsm_row8_exp_f32_(const __m512 *d, __m512 *u,
                                                float bias, float lo) {
    const __m512 sh = _mm512_set1_ps(0x1.8p23f + bias);
    __m512 r[LSM_ROW8_G], kf[LSM_ROW8_G], sc[LSM_ROW8_G], p[LSM_ROW8_G];
    for (int g = 0; g < LSM_ROW8_G; g++) {
        r[g] = _mm512_max_ps(_mm512_set1_ps(lo), d[g]);
        kf[g] = _mm512_fmadd_ps(r[g], _mm512_set1_ps(0x1.715476p+0f), sh);
        sc[g] = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_castps_si512(kf[g]), 23));
        kf[g] = _mm512_sub_ps(kf[g], sh);
        r[g] = _mm512_fnmadd_ps(kf[g], _mm512_set1_ps(0x1.63p-1f), r[g]);
        r[g] = _mm512_fmadd_ps(kf[g], _mm512_set1_ps(0x1.bd0106p-13f), r[g]);
        p[g] = _mm512_set1_ps(0x1.6d9968p-10f);
    }
    static const float c[6] = {0x1.123dd6p-7f, 0x1.55547cp-5f, 0x1.55548ap-3f,
                               0x1.0p-1f,      1.0f,           1.0f};
    for (int j = 0; j < 6; j++) {
        for (int g = 0; g < LSM_ROW8_G; g++) {
            p[g] = _mm512_fmadd_ps(p[g], r[g], _mm512_set1_ps(c[j]));
        }
    }
    for (int g = 0; g < LSM_ROW8_G; g++) {
        u[g] = _mm512_mul_ps(p[g], sc[g]);
    }
}
static LSM_ALWAYS_INLINE void lsm_row8_exp64_f32(const __m512 *d, __m512 *u) {
    lsm_row8_exp_f32_(d, u, 191.0f, -104.0f);
}
/* u = e^d for the sums of log_softmax (d = x - m <= 0): 0 where d < -87,
 * as lsm_expsum_f32 (whose 2^k is normal down to there) */
static LSM_ALWAYS_INLINE void lsm_row8_expsum_f32(const __m512 *d, __m512 *u) {
    lsm_row8_exp_f32_(d, u, 127.0f, -87.0f);
    for (int g = 0; g < LSM_ROW8_G; g++) {
        u[g] = _mm512_maskz_mov_ps(
            _mm512_cmp_ps_mask(d[g], _mm512_set1_ps(-87.0f), _CMP_NLT_UQ),
            u[g]);
    }
}
/* u = e^d 2^64 for d = x - m <= 0 by lsm_vexp_core_f64_ (bias 1023 + 64:
 * normal down to d = -746, where exp rounds to 0 once divided by the sum) */
static LSM_ALWAYS_INLINE void lsm_row8_exp64_f64(const __m512d *d, __m512d *u) {
    for (int g = 0; g < LSM_ROW8_G; g++) {
        u[g] = lsm_vexp_core_f64_(_mm512_max_pd(_mm512_set1_pd(-746.0), d[g]),
                                  1087.0);
    }
}
/* u = e^d for the sums of log_softmax: lsm_vexpsum_f64_ (0 below -708) */
static LSM_ALWAYS_INLINE void lsm_row8_expsum_f64(const __m512d *d,
                                                  __m512d *u) {
    for (int g = 0; g < LSM_ROW8_G; g++) {
        u[g] = lsm_vexpsum_f64_(d[g]);
    }
}
/* log(c + rest) for 8 regular rows (c >= 1 the count of entries at the
 * max, 0 <= rest finite the sum of the other terms), as the template's
 * log_sum_: lsm_log_f64_n's steps (getmant and getexp give its f and e
 * exactly), and the sum's rounding error (TwoSum) added as err / (c +
 * rest). */
static LSM_ALWAYS_INLINE __m512d lsm_vlog_sum_f64_(__m512d c, __m512d rest) {
    const __m512d one = _mm512_set1_pd(1.0);
    const __m512d d = _mm512_add_pd(c, rest);
    const __m512d bp = _mm512_sub_pd(d, c);
    const __m512d err = _mm512_add_pd(_mm512_sub_pd(c, _mm512_sub_pd(d, bp)),
                                      _mm512_sub_pd(rest, bp));
    __m512d f = _mm512_getmant_pd(d, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __m512d e = _mm512_getexp_pd(d);
    const __mmask8 big =
        _mm512_cmp_pd_mask(f, _mm512_set1_pd(0x1.6a09e667f3bcdp+0), _CMP_GT_OQ);
    f = _mm512_mask_mul_pd(f, big, f, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, big, e, one);
    const __m512d z =
        _mm512_div_pd(_mm512_sub_pd(f, one), _mm512_add_pd(f, one));
    const __m512d w = _mm512_mul_pd(z, z);
    static const double inv[] = {1.0 / 23, 1.0 / 21, 1.0 / 19, 1.0 / 17,
                                 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9,
                                 1.0 / 7,  1.0 / 5,  1.0 / 3};
    __m512d q = _mm512_set1_pd(inv[0]);
    for (int j = 1; j < 11; j++) {
        q = _mm512_fmadd_pd(q, w, _mm512_set1_pd(inv[j]));
    }
    const __m512d z2 = _mm512_add_pd(z, z);
    const __m512d lf = _mm512_fmadd_pd(z2, _mm512_mul_pd(w, q), z2);
    const __m512d y = _mm512_fmadd_pd(
        e, _mm512_set1_pd(0x1.62e42fefa3800p-1),
        _mm512_fmadd_pd(e, _mm512_set1_pd(0x1.ef35793c7673p-45), lf));
    return _mm512_add_pd(y, _mm512_div_pd(err, d));
}
/* log(c + rest) for 16 regular float32 rows, as lsm_log_sum_f32 (getmant
 * and getexp give its f and e exactly) */
static LSM_ALWAYS_INLINE __m512 lsm_vlog_sum_f32_(__m512 c, __m512 rest) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 d = _mm512_add_ps(c, rest);
    const __m512 bp = _mm512_sub_ps(d, c);
    const __m512 err = _mm512_add_ps(_mm512_sub_ps(c, _mm512_sub_ps(d, bp)),
                                     _mm512_sub_ps(rest, bp));
    __m512 f = _mm512_getmant_ps(d, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __m512 e = _mm512_getexp_ps(d);
    const __mmask16 big =
        _mm512_cmp_ps_mask(f, _mm512_set1_ps(0x1.6a09e6p+0f), _CMP_GT_OQ);
    f = _mm512_mask_mul_ps(f, big, f, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, one);
    const __m512 z =
        _mm512_div_ps(_mm512_sub_ps(f, one), _mm512_add_ps(f, one));
    const __m512 w = _mm512_mul_ps(z, z);
    __m512 q = _mm512_set1_ps(1.0f / 9);
    q = _mm512_fmadd_ps(q, w, _mm512_set1_ps(1.0f / 7));
    q = _mm512_fmadd_ps(q, w, _mm512_set1_ps(1.0f / 5));
    q = _mm512_fmadd_ps(q, w, _mm512_set1_ps(1.0f / 3));
    const __m512 z2 = _mm512_add_ps(z, z);
    const __m512 lf = _mm512_fmadd_ps(z2, _mm512_mul_ps(w, q), z2);
    const __m512 lo =
        _mm512_add_ps(_mm512_fmadd_ps(e, _mm512_set1_ps(0x1.7f7d1cp-20f), lf),
                      _mm512_div_ps(err, d));
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0x1.62e4p-1f), lo);
}
/* the lower (k = 0) or upper 8 lanes of a, to float64 */
static LSM_ALWAYS_INLINE __m512d lsm_half_pd_(__m512 a, int k) {
    return _mm512_cvtps_pd(k ? _mm512_extractf32x8_ps(a, 1)
                             : _mm512_castps512_ps256(a));
}
/* For 16 rows (half: 8), one to a lane: l = log(c + rest) in float
 * (lsm_vlog_sum_f32_; in float64 it took log_softmax of rows of 8 1.27x the
 * time) and, when jvp, q = tv / (c + rest), computed in float64 and rounded
 * (lsm_row8_log_f64: 8 rows, in float64) */
static LSM_ALWAYS_INLINE void lsm_row8_log_f32(__m512 c, __m512 rest, __m512 tv,
                                               int jvp, int half, __m512 *l,
                                               __m512 *q) {
    *l = lsm_vlog_sum_f32_(c, rest);
    if (jvp) {
        __m256 qh[2];
        for (int k = 0; k < 2; k++) {
            if (k && half) { /* the upper lanes are not read */
                qh[1] = qh[0];
                break;
            }
            const __m512d ck = lsm_half_pd_(c, k), rk = lsm_half_pd_(rest, k);
            qh[k] = _mm512_cvtpd_ps(
                _mm512_div_pd(lsm_half_pd_(tv, k), _mm512_add_pd(ck, rk)));
        }
        *q = _mm512_insertf32x8(_mm512_castps256_ps512(qh[0]), qh[1], 1);
    }
}
static LSM_ALWAYS_INLINE void lsm_row8_log_f64(__m512d c, __m512d rest,
                                               __m512d tv, int jvp, int half,
                                               __m512d *l, __m512d *q) {
    (void)half;
    *l = lsm_vlog_sum_f64_(c, rest);
    if (jvp) {
        *q = _mm512_div_pd(tv, _mm512_add_pd(c, rest));
    }
}
#endif
/* Transposes of square tiles: K rows of K elements at a (row i at a + i *
 * as) into K columns at b (element j of row i at b[j * bs + i]). The short
 * row path's block transposes are built from them (transpose_): GCC's code
 * for the same loops runs 3-6x slower (lane-crossing permutes and blends, 44
 * cycles for an 8 x 8 float32 tile where these take 24 shuffles). */
#define LSM_HAVE_TILES 1
static inline void lsm_tile4_f32_(const float *a, ptrdiff_t as, float *b,
                                  ptrdiff_t bs) {
    __m128 r0 = _mm_loadu_ps(a), r1 = _mm_loadu_ps(a + as);
    __m128 r2 = _mm_loadu_ps(a + 2 * as), r3 = _mm_loadu_ps(a + 3 * as);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(b, r0);
    _mm_storeu_ps(b + bs, r1);
    _mm_storeu_ps(b + 2 * bs, r2);
    _mm_storeu_ps(b + 3 * bs, r3);
}
static inline void lsm_tile2_f64_(const double *a, ptrdiff_t as, double *b,
                                  ptrdiff_t bs) {
    const __m128d r0 = _mm_loadu_pd(a), r1 = _mm_loadu_pd(a + as);
    _mm_storeu_pd(b, _mm_unpacklo_pd(r0, r1));
    _mm_storeu_pd(b + bs, _mm_unpackhi_pd(r0, r1));
}
#if defined(__AVX__)
static inline void lsm_tile8_f32_(const float *a, ptrdiff_t as, float *b,
                                  ptrdiff_t bs) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = _mm256_loadu_ps(a + i * as);
    }
    for (int i = 0; i < 8; i += 2) { /* pairs of rows, interleaved */
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) { /* quads: columns of 4 rows per lane */
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) { /* the two 128-bit halves joined */
        _mm256_storeu_ps(b + j * bs,
                         _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
        _mm256_storeu_ps(b + (j + 4) * bs,
                         _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
    }
}
static inline void lsm_tile4_f64_(const double *a, ptrdiff_t as, double *b,
                                  ptrdiff_t bs) {
    const __m256d r0 = _mm256_loadu_pd(a), r1 = _mm256_loadu_pd(a + as);
    const __m256d r2 = _mm256_loadu_pd(a + 2 * as);
    const __m256d r3 = _mm256_loadu_pd(a + 3 * as);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1),
                  t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3),
                  t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(b, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(b + bs, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(b + 2 * bs, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(b + 3 * bs, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#define LSM_TILE_BIG_f32 lsm_tile8_f32_
#define LSM_TILE_BIG_K_f32 8
#define LSM_TILE_BIG_f64 lsm_tile4_f64_
#define LSM_TILE_BIG_K_f64 4
#else
#define LSM_TILE_BIG_f32 lsm_tile4_f32_
#define LSM_TILE_BIG_K_f32 4
#define LSM_TILE_BIG_f64 lsm_tile2_f64_
#define LSM_TILE_BIG_K_f64 2
#endif
#define LSM_TILE_SMALL_f32 lsm_tile4_f32_
#define LSM_TILE_SMALL_K_f32 4
#define LSM_TILE_SMALL_f64 lsm_tile2_f64_
#define LSM_TILE_SMALL_K_f64 2
#else
#define LSM_HAVE_NT 0
static inline void lsm_nt_line_f32_(float *p, const float *t) {
    memcpy(p, t, 64);
}
static inline void lsm_nt_line_f64_(double *p, const double *t) {
    memcpy(p, t, 64);
}
static inline void lsm_nt_fence_(void) {}
#define LSM_HAVE_TILES 0
#endif

/* Streamed rows of this many bytes or more are not pipelined (see
 * rowwise_range_): the statistics pass of a row, then its output streamed
 * from L1/L2. A/B against plain stores, pipelined (1 thread, avx2, float32
 * log_softmax), time of streamed rows unpipelined / pipelined (the next
 * row's sums, then the pending row's streamed stores, block by block):
 * rows of 4 KB 0.85 / 0.88, 128 KB 0.79 / 0.89-0.94, 1 MB 0.75-0.78 /
 * 0.81-0.85; rows of 512 bytes 1.04-1.14 / 0.91-0.93. */
#ifndef LSM_PIPE_NT
#define LSM_PIPE_NT 4096
#endif
/* Streamed log_softmax rows of LSM_PIPE_NT bytes and up to LSM_PIPE_LS_f32
 * or LSM_PIPE_LS_f64 bytes are pipelined all the same (the next row's
 * statistics pass streams the last row's output chunk by chunk), so that
 * the stores drain while the exps run instead of in a burst after them. A/B
 * (1 thread, Intel Xeon family 6 model 207, cold, 16 bytes past a line)
 * against unpipelined streamed rows: float32 at avx512, rows of 4, 8 and
 * 16 KB 0.85, 0.87, 0.875x the time (2 threads 0.84x, hot 0.83x); rows of
 * 32 KB and more, whose unpipelined pass fuses the next chunk's max and
 * hints (LSM_FUSE_MIN32), 1.05-1.13x. float32 at avx2 (no such pass): rows
 * of 4 KB 0.83-0.85x, 8 KB 1.05x, 16 KB 0.98-1.01x, longer 0.87-0.92x;
 * only rows of one chunk are taken. float64 at avx512 against the rows
 * pipelined with plain stores (under 64 KB, which took 0.75-0.93x the time
 * of the unpipelined streamed ones from 8 KB on) or unpipelined streamed
 * (from 64 KB): rows of 4, 8, 16, 32, 64 and 256 KB 0.72, 0.77, 0.78,
 * 0.82, 0.89, 0.96x; 512 KB to 4 MB 0.96-1.02x, 8 and 16 MB 1.14-1.21x.
 * float64 without lsm_vexp_core_f64_ (avx2, baseline) keeps plain stores
 * pipelined: streamed, rows of 8 KB to 256 KB took 1.02-1.07x. The JVP
 * (four streams, two written) pipelined and streamed took twice the time
 * (float64, rows of 4 KB to 256 KB), and is streamed unpipelined. */
/* (LSM_HAVE_VSUM_f32 and LSM_HAVE_VEXP_f64 are only defined here at
 * AVX-512, and so read as 0 below it) */
#ifndef LSM_PIPE_LS_f32
#if LSM_HAVE_VSUM_f32
#define LSM_PIPE_LS_f32 (LSM_FUSE_MIN32 - 1)
#else
#define LSM_PIPE_LS_f32 (LSM_CHUNK * 4)
#endif
#endif
#ifndef LSM_PIPE_LS_f64
#if LSM_HAVE_VEXP_f64
#define LSM_PIPE_LS_f64 (256 * 1024)
#else
#define LSM_PIPE_LS_f64 0
#endif
#endif
/* The fused statistics pass (chunk_sumexp_max_, float64 with
 * lsm_vexp_core_f64_) of rows of LSM_FUSE_MIN bytes or more hints, one line
 * per step, the chunk LSM_FUSE_AHEAD chunks on (x and v), and the output
 * pass of softmax's long rows likewise: the fused max reads the next chunk,
 * but only as fast as the exps let it, and the hardware prefetchers did not
 * keep the row coming. A/B (1 thread, Intel Xeon family 6 model 207, cold,
 * avx512) against no hints: logsumexp of rows of 4096, 8192, 32000, 2M, 4M
 * 0.85, 0.74-0.76, 0.66, 0.62, 0.62-0.64x the time (hot, rows of 16384 to
 * 4M: 0.72-1.01x; rows of 2048 0.94x cold, 1.02x hot, hence 32 KB);
 * softmax of (4M,) 0.73x; 3 chunks on did as well, 5 worse. */
#define LSM_FUSE_AHEAD 2
#define LSM_FUSE_MIN 32768
/* The same for float32 at AVX-512, whose fused pass (chunk_sumexp_maxp_)
 * then sums through sumexp_vec16_: rows of LSM_FUSE_MIN32 bytes or more
 * hint the chunk LSM_FUSE_AHEAD32 on, one line a step. A/B (1 thread,
 * Intel Xeon family 6 model 207, avx512), cold: logsumexp of rows of 4M,
 * 2M, 32000, 9000, 8000, 6000 0.62-0.74x the time; rows of 4096 (16 KB)
 * 0.87x cold but 1.05x hot, hence 20 KB; hot, rows of 6000 to 4M
 * 0.96-1.0x. 3 chunks on did no better (1.0-1.1x). The portable loops
 * (GCC's) with hints, before sumexp_vec16_, gained 0.85-0.95x cold and
 * took 1.15-1.3x hot. The output pass of softmax's long rows (any type
 * and level, chunk_softmax_) hints LSM_FUSE_AHEAD chunks on as well:
 * float32 (4M,) 0.85x cold and 0.97x hot at avx512, 0.83x and 0.94x at
 * avx2; (8, 2M) 0.85-0.88x; float64 (4M,) at avx2 0.85-0.89x; rows of 32000
 * and 65536 0.97-0.99x. log_softmax's output pass (a subtraction) gained
 * nothing from hints (0.98-1.01x): it has none. */
/* Whether float32 JVP rows of every length take the fused statistics pass
 * (else rows of up to 64 KB, see row_stats_): at AVX-512, where the pass
 * sums through sumexp_vec16_ and hints the chunk ahead in x and v. A/B (1
 * thread, Intel Xeon family 6 model 207, avx512, against the max pass) for
 * rows over 64 KB: cold (4M,) 0.86x the time, (8, 2M) 0.86 (2 threads
 * 0.85), (512, 32000) 0.81, (64, 65536) 0.84; hot (4, 100000) 0.94,
 * (2, 500000) 0.96, (4M,) 0.85. */
#ifndef LSM_JVP_FUSE_ALL
#define LSM_JVP_FUSE_ALL LSM_HAVE_VSUM_f32
#endif
#ifndef LSM_FUSE_MIN32
#define LSM_FUSE_MIN32 20480
#endif
#ifndef LSM_FUSE_AHEAD32
#define LSM_FUSE_AHEAD32 2
#endif
/* The VJP's rows of at most LSM_VJP_HINT_MAX bytes hint the rows of y and
 * g LSM_AHEAD_BYTES on (rows_ahead_), as the other ops' mid-length rows
 * do: each row's two passes (the sum of g, then the output) otherwise
 * waited on memory for its y and g. A/B (1 thread, Intel Xeon family 6
 * model 207, cold, avx512) against none: float32 (100000, 80), (65536, 128)
 * 0.85-0.87x the time, (16384, 384) 0.77x, (16384, 512) 0.78-0.86x,
 * (16384, 768) 0.93x; float64 (100000, 80) 0.82x, (65536, 128) 0.72-0.83x,
 * (16384, 384) 0.97x; rows of 4 KB 1.0-1.11x (float64 (4096, 1024) 1.11x):
 * none. */
#ifndef LSM_VJP_HINT_MAX
#define LSM_VJP_HINT_MAX 3072
#endif
/* Most bytes of a row whose softmax terms wait in a buffer for their
 * streamed second pass. */
#define LSM_SCRATCH (256 * 1024)

/* y[i] = EXPR (an expression of i) for i in [0, n): with streaming stores
 * when nt, a 64-byte line at a time through a line buffer the compiler keeps
 * in registers, plain stores for the unaligned head and the tail. */
#define LSM_OUT_LOOP(nt, y, n, EXPR) LSM_OUT_LOOP_PF(nt, y, n, EXPR, 0, 0)
/* LSM_OUT_LOOP that also hints, one 64-byte line of y a step, the line at
 * pf + i0 (i0 the step's first index) while i0 < pfn (pf a pointer to T, or
 * 0: none; only where lines are streamed). Streamed, y's last line, when
 * partial, is hinted for writing first (LSM_PREFETCHW, see out_ends_). */
#define LSM_OUT_LOOP_PF(nt, y, n, EXPR, pf, pfn)                               \
    do {                                                                       \
        ptrdiff_t i0_ = 0;                                                     \
        if (nt && (uintptr_t)(y) % sizeof(T) == 0) {                           \
            enum { L_ = 64 / (int)sizeof(T) };                                 \
            LSM_PREFETCHW_END(y, n);                                           \
            ptrdiff_t h_ = (ptrdiff_t)((64 - (uintptr_t)(y) % 64) % 64) /      \
                           (ptrdiff_t)sizeof(T);                               \
            h_ = h_ < (n) ? h_ : (n);                                          \
            _Pragma("omp simd") for (ptrdiff_t i = 0; i < h_; i++) {           \
                (y)[i] = (EXPR);                                               \
            }                                                                  \
            for (i0_ = h_; i0_ + L_ <= (n); i0_ += L_) {                       \
                if ((pf) && i0_ < (pfn)) {                                     \
                    LSM_PREFETCH((const T *)(pf) + i0_, 0);                    \
                }                                                              \
                T t_[L_];                                                      \
                _Pragma("omp simd") for (ptrdiff_t k_ = 0; k_ < L_; k_++) {    \
                    const ptrdiff_t i = i0_ + k_;                              \
                    t_[k_] = (EXPR);                                           \
                }                                                              \
                NT_LINE((y) + i0_, t_);                                        \
            }                                                                  \
        }                                                                      \
        _Pragma("omp simd") for (ptrdiff_t i = i0_; i < (n); i++) {            \
            (y)[i] = (EXPR);                                                   \
        }                                                                      \
    } while (0)

#ifndef LSM_HAVE_ROW8_f32
#define LSM_HAVE_ROW8_f32 0
#endif
#ifndef LSM_HAVE_ROW8_f64
#define LSM_HAVE_ROW8_f64 0
#endif
#ifndef LSM_HAVE_VEXP_f64
#define LSM_HAVE_VEXP_f64 0
#endif
#define LSM_HAVE_VEXP_f32 0
#ifndef LSM_HAVE_VSUM_f32
#define LSM_HAVE_VSUM_f32 0
#endif
#define LSM_HAVE_VSUM_f64 0

#define LSM_CAT_(a, b) a##b
#define LSM_CAT(a, b) LSM_CAT_(a, b)

#ifndef LSM_ISA_SFX
#define LSM_ISA_SFX
const char *lsm_isa(void) { return "generic"; }
#endif

#define LSM_T float
#define LSM_TBITS 32
#define LSM_SFX f32
#include "lsm_kernels.template.c"
#undef LSM_T
#undef LSM_TBITS
#undef LSM_SFX

#define LSM_T double
#define LSM_TBITS 64
#define LSM_SFX f64
#include "lsm_kernels.template.c"
#undef LSM_T
#undef LSM_TBITS
#undef LSM_SFX
