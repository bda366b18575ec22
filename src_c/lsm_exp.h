/*
 * lsm_exp.h -- branch-free exp for float and double that compilers vectorise.
 *
 * exp(x) = 2^k * e^r with k = round(x / ln 2) and r = x - k ln 2 (Cody-Waite
 * split of ln 2, so k * LN2_HI is exact). e^r = 1 + r + r^2 P(r) with P a
 * polynomial fitted by us (weighted least squares on Chebyshev nodes of
 * [-ln2/2, ln2/2]). k is rounded with the 1.5 * 2^(p-1) shifter, read back
 * from the float's bits (no float-to-int conversion, so no UB for nan).
 * 2^k is applied as two factors 2^k1 * 2^k2 so that results in the
 * subnormal range and up to overflow come out right.
 *
 * Domain: every float. x is clamped to [LO, HI] first (comparisons keep nan),
 * which makes exp(-inf) = 0, exp(+inf) = inf, exp(nan) = nan. Accuracy:
 * about 1 ulp (tested in tests/c/test_kernels.c against libm in higher
 * precision). Needs no -ffast-math: build with -fno-math-errno
 * -fno-trapping-math so that the selects vectorise.
 */
#ifndef LSM_EXP_H
#define LSM_EXP_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define LSM_HOST_DEVICE __host__ __device__
#else
#define LSM_HOST_DEVICE
#endif

#define LSM_INLINE static inline LSM_HOST_DEVICE

LSM_INLINE float lsm_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

LSM_INLINE uint32_t lsm_bits_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

LSM_INLINE double lsm_f64_from_bits(uint64_t u) {
    double f;
    memcpy(&f, &u, sizeof f);
    return f;
}

LSM_INLINE uint64_t lsm_bits_from_f64(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* e^r for |r| <= ln2 / 2, as 1 + r (1 + r P(r)) (Horner: one fma per
 * coefficient) */
LSM_INLINE float lsm_exp_poly_f32(float r) {
    float p = 0x1.6d9968p-10f;
    p = p * r + 0x1.123dd6p-7f;
    p = p * r + 0x1.55547cp-5f;
    p = p * r + 0x1.55548ap-3f;
    p = p * r + 0x1.0p-1f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}

/* e^r for |r| <= ln2 / 2, one degree lower, for the terms of a sum
 * (lsm_expsum_f32; 2.5 ulp, relative error 3.3 * 2^-24, where
 * lsm_exp_poly_f32 gives 1 ulp): 1 + r + r^2 Q(r), Q of degree 3 in
 * Estrin's form, a chain of 3 dependent operations per element instead of 6.
 * The statistics passes are bound by how many elements' chains the core
 * keeps in flight (Zen 3: ~100 FP operations; a loop of independent 64-cycle
 * chains runs at full rate, 80-cycle chains at half): an exp-and-sum loop
 * over data in L1 takes 0.87x the time of the degree-6 Horner form, and
 * the JVP's and logsumexp's row passes 0.91-0.96x. */
LSM_INLINE float lsm_exp_poly5_f32(float r) {
    const float r2 = r * r;
    const float lo = 0x1.5557aep-3f * r + 0x1.fffdfcp-2f;
    const float hi = 0x1.106284p-7f * r + 0x1.5729f0p-5f;
    return r2 * (r2 * hi + lo) + (1.0f + r);
}

/* e^r for |r| <= ln2 / 2 (degree 11; exp 1.35 ulp measured, 1.22 in one
 * chain), as 1 + (r + r^2 (E(r^2) + r O(r^2))): the even and odd
 * coefficients in two Horner chains of 4 fmas side by side, half the
 * latency of one chain of 11 with as many operations. A/B (1 thread, Zen 4,
 * cold, 8M elements) against the single chain: logsumexp 0.82-0.88x the
 * time at baseline (no fma), 0.9-0.96x at avx2, 0.98-1.02x at avx512 (where
 * the double-pumped 512-bit units are busy rather than waiting); softmax
 * and log_softmax 0.81-0.89x, 0.93-1.0x and 0.98-1.0x; the JVP 0.87-0.94x,
 * 0.96-1.0x, and 1.0-1.07x (rows of 4 and 8 at avx512). */
LSM_INLINE double lsm_exp_poly_f64(double r) {
    const double r2 = r * r;
    double e = 0x1.28b3c42c9d400p-22, o = 0x1.afb851f89a688p-26;
    e = e * r2 + 0x1.a019929006c80p-16;
    o = o * r2 + 0x1.71ddc112aa00cp-19;
    e = e * r2 + 0x1.6c16c1873e430p-10;
    o = o * r2 + 0x1.a01a01c8a3d4ep-13;
    e = e * r2 + 0x1.555555554f864p-5;
    o = o * r2 + 0x1.111111110ac32p-7;
    e = e * r2 + 0x1.000000000000fp-1;
    o = o * r2 + 0x1.5555555555562p-3;
    return 1.0 + (r2 * (o * r + e) + r);
}

/* r = x - k ln 2 with kf = k as a float (Cody-Waite: k * ln2_hi is exact) */
LSM_INLINE float lsm_exp_reduce_f32(float x, float kf) {
    float r = x - kf * 0x1.63p-1f;    /* ln2_hi: 9 bits */
    return r - kf * -0x1.bd0106p-13f; /* ln 2 - ln2_hi */
}

LSM_INLINE double lsm_exp_reduce_f64(double x, double kf) {
    double r = x - kf * 0x1.62e42feep-1; /* ln2_hi: 32 bits */
    return r - kf * 0x1.a39ef35793c76p-33;
}

/* e^r and the float whose low bits hold k, for exp(x) = 2^k e^r */
LSM_INLINE float lsm_exp_core_f32(float x, uint32_t *kbits) {
    const float shifter = 0x1.8p23f;
    float kf = x * 0x1.715476p+0f + shifter; /* log2(e) */
    *kbits = lsm_bits_from_f32(kf) - lsm_bits_from_f32(shifter);
    kf -= shifter;
    return lsm_exp_poly_f32(lsm_exp_reduce_f32(x, kf));
}

LSM_INLINE double lsm_exp_core_f64(double x, uint64_t *kbits) {
    const double shifter = 0x1.8p52;
    double kf = x * 0x1.71547652b82fep+0 + shifter;
    *kbits = lsm_bits_from_f64(kf) - lsm_bits_from_f64(shifter);
    kf -= shifter;
    return lsm_exp_poly_f64(lsm_exp_reduce_f64(x, kf));
}

LSM_INLINE float lsm_exp_scalar_f32(float x) {
    x = x < -110.0f ? -110.0f : x; /* exp(-110) rounds to 0; keeps nan */
    x = x > 89.0f ? 89.0f : x;     /* exp(89) overflows to inf */
    uint32_t k;
    float er = lsm_exp_core_f32(x, &k);
    /* u = k + 256 is in [97, 384]; 2^k = 2^(u1 - 128) 2^(u2 - 128) */
    uint32_t u = k + 256u;
    uint32_t u1 = u >> 1;
    uint32_t u2 = u - u1;
    return (er * lsm_f32_from_bits((u1 - 1u) << 23)) *
           lsm_f32_from_bits((u2 - 1u) << 23);
}

LSM_INLINE double lsm_exp_scalar_f64(double x) {
    x = x < -750.0 ? -750.0 : x;
    x = x > 710.0 ? 710.0 : x;
    uint64_t k;
    double er = lsm_exp_core_f64(x, &k);
    /* u = k + 2048 is in [966, 3073]; 2^k = 2^(u1 - 1024) 2^(u2 - 1024) */
    uint64_t u = k + 2048u;
    uint64_t u1 = u >> 1;
    uint64_t u2 = u - u1;
    return (er * lsm_f64_from_bits((u1 - 1u) << 52)) *
           lsm_f64_from_bits((u2 - 1u) << 52);
}

/*
 * exp for the terms of a sum whose largest term is 1 (x <= 0 after the max
 * shift): results below the smallest normal number are flushed to 0 (they
 * cannot change such a sum), so one scale factor suffices. nan propagates;
 * exp(-inf) = 0. Same polynomial as lsm_exp_scalar_*; where the target has
 * a fast fma, the float32 range reduction is one fma (a few vector
 * operations fewer per element than lsm_exp_scalar_*).
 */
LSM_INLINE float lsm_expsum_f32(float x) {
    /* the shifter carries the exponent bias in its low bits, so the bits of
     * kf shifted into the exponent field are 2^k itself (k >= -126 here) */
    const float shifter = 0x1.8p23f + 127.0f;
    float kf = x * 0x1.715476p+0f + shifter;
    float scale = lsm_f32_from_bits(lsm_bits_from_f32(kf) << 23);
    kf -= shifter;
#ifdef FP_FAST_FMAF
    /* one fused step: its error |k| * 2e-9 is far below the exp's own
     * condition |x| eps, so terms keep their accuracy relative to it */
    float r = fmaf(-kf, 0x1.62e430p-1f, x);
#else
    float r = lsm_exp_reduce_f32(x, kf);
#endif
    float y = lsm_exp_poly5_f32(r) * scale;
    return x < -87.0f ? 0.0f : y;
}

LSM_INLINE double lsm_expsum_f64(double x) {
    const double shifter = 0x1.8p52 + 1023.0;
    double kf = x * 0x1.71547652b82fep+0 + shifter;
    double scale = lsm_f64_from_bits(lsm_bits_from_f64(kf) << 52);
    kf -= shifter;
    double y = lsm_exp_poly_f64(lsm_exp_reduce_f64(x, kf)) * scale;
    return x < -708.0 ? 0.0 : y;
}

/*
 * exp(x) 2^64 f for x <= 0 (softmax's x - max; valid up to x = 40), correct
 * down into the subnormal range: x is clamped below where exp rounds to 0,
 * then 2^k is applied as 2^(k + 64) (a normal number, built from the
 * shifter's bits) times f. nan propagates, exp(-inf) = 0. The polynomial
 * and reduction of lsm_exp_scalar_*, which takes any x, with a few vector
 * operations fewer. Two uses:
 * - lsm_expneg_*(x) = exp(x), f = 2^-64: two roundings only where the
 *   result is subnormal;
 * - exp(x) * s (softmax's outputs, s = 1 / sum >= 2^-60): f =
 *   lsm_expneg_factor_*(s) = s 2^-64, a normal number computed once (a loop
 *   invariant, or one per column), one multiply fewer per element than
 *   lsm_expneg_*(x) * s; the same bits where e^r 2^k is normal (x above
 *   about -87.3 for float, -708 for double), one rounding instead of two
 *   below.
 */
LSM_INLINE float lsm_expneg_mul_f32(float x, float f) {
    x = x < -104.0f ? -104.0f : x; /* exp(-104) < 2^-150: rounds to 0 */
    /* bias 127 + 64 in the shifter's low bits: kf's bits shifted into the
     * exponent field are 2^(k + 64), for k in [-151, 58] */
    const float shifter = 0x1.8p23f + 191.0f;
    float kf = x * 0x1.715476p+0f + shifter;
    float scale = lsm_f32_from_bits(lsm_bits_from_f32(kf) << 23);
    kf -= shifter;
    /* Cody-Waite reduction: softmax outputs keep ~1 ulp down to exp(-104) */
    return (lsm_exp_poly_f32(lsm_exp_reduce_f32(x, kf)) * scale) * f;
}

LSM_INLINE double lsm_expneg_mul_f64(double x, double f) {
    x = x < -746.0 ? -746.0 : x; /* exp(-746) < 2^-1075: rounds to 0 */
    /* bias 1023 + 64: 2^(k + 64), for k in [-1077, 58] */
    const double shifter = 0x1.8p52 + 1087.0;
    double kf = x * 0x1.71547652b82fep+0 + shifter;
    double scale = lsm_f64_from_bits(lsm_bits_from_f64(kf) << 52);
    kf -= shifter;
    return (lsm_exp_poly_f64(lsm_exp_reduce_f64(x, kf)) * scale) * f;
}

LSM_INLINE float lsm_expneg_f32(float x) {
    return lsm_expneg_mul_f32(x, 0x1p-64f);
}

LSM_INLINE double lsm_expneg_f64(double x) {
    return lsm_expneg_mul_f64(x, 0x1p-64);
}

LSM_INLINE float lsm_expneg_factor_f32(float s) { return s * 0x1p-64f; }

LSM_INLINE double lsm_expneg_factor_f64(double s) { return s * 0x1p-64; }

/*
 * Natural log of a double d >= 1 (the sums of the kernels; also right for
 * any positive normal d), branch-free so that it vectorises: d = 2^e f with
 * f in [sqrt(1/2), sqrt(2)), log f = 2 atanh(z), z = (f - 1)/(f + 1), by
 * its series 2z (1 + w/3 + w^2/5 + ...), w = z^2 < 0.0295 (|z| < 0.172),
 * to w^11/23, or to w^6/13 when f32: a relative truncation error below
 * 0.0295^7 / 15 < 2^-39, ample for results rounded to float32. f32 should
 * be a constant where it is inlined. +inf and nan are returned as they are.
 */
LSM_INLINE double lsm_log_f64_n(double d, int f32) {
    uint64_t bits = lsm_bits_from_f64(d);
    double f =
        lsm_f64_from_bits((bits & 0x000fffffffffffffu) | 0x3ff0000000000000u);
    /* biased exponent as a double, exactly, without int -> float converts */
    double eb = lsm_f64_from_bits(0x4330000000000000u | (bits >> 52)) - 0x1p52;
    int big = f > 0x1.6a09e667f3bcdp+0;
    f = big ? 0.5 * f : f;
    double e = eb - 1023.0 + (big ? 1.0 : 0.0);
    double z = (f - 1.0) / (f + 1.0);
    double w = z * z;
    double q;
    if (f32) {
        q = 1.0 / 13;
    } else {
        q = 1.0 / 23;
        q = q * w + 1.0 / 21;
        q = q * w + 1.0 / 19;
        q = q * w + 1.0 / 17;
        q = q * w + 1.0 / 15;
        q = q * w + 1.0 / 13;
    }
    q = q * w + 1.0 / 11;
    q = q * w + 1.0 / 9;
    q = q * w + 1.0 / 7;
    q = q * w + 1.0 / 5;
    q = q * w + 1.0 / 3;
    double lf = 2.0 * z + 2.0 * z * (w * q);
    double y = e * 0x1.62e42fefa3800p-1 + (e * 0x1.ef35793c7673p-45 + lf);
    return (d != d || d == (double)INFINITY) ? d : y;
}

LSM_INLINE double lsm_log_f64(double d) { return lsm_log_f64_n(d, 0); }

/*
 * log(c + rest) in float, for float32 rows (c >= 1 the count of entries at
 * the max, an integer below 2^24; rest >= 0 the sum of the other terms):
 * d = c + rest = 2^e f, f in [sqrt(1/2), sqrt(2)); e ln2_hi (exact for |e|
 * < 128) + lo, rounded once, with lo = e ln2_lo + log f (lsm_log_f64_n's
 * series in float, to w^4/9: truncation below 0.0295^5 / 11 < 2^-28) plus
 * the rounding error of c + rest (TwoSum) as err / d, so that log(1 +
 * 2^-30) is 2^-30, not 0. |lo| < 0.36 carries the roundings (of z, about an
 * ulp of lo), so the result is about as close as the float64 log rounded
 * to float, at half its vectors. +inf and nan are returned as they are.
 */
LSM_INLINE float lsm_log_sum_f32(float c, float rest) {
    float d = c + rest;
    float bp = d - c;
    float err = (c - (d - bp)) + (rest - bp);
    uint32_t bits = lsm_bits_from_f32(d);
    float f = lsm_f32_from_bits((bits & 0x007fffffu) | 0x3f800000u);
    /* biased exponent as a float, exactly */
    float eb = lsm_f32_from_bits(0x4b000000u | (bits >> 23)) - 0x1p23f;
    int big = f > 0x1.6a09e6p+0f;
    f = big ? 0.5f * f : f;
    float e = eb - 127.0f + (big ? 1.0f : 0.0f);
    float z = (f - 1.0f) / (f + 1.0f);
    float w = z * z;
    float q = 1.0f / 9;
    q = q * w + 1.0f / 7;
    q = q * w + 1.0f / 5;
    q = q * w + 1.0f / 3;
    float lf = 2.0f * z + 2.0f * z * (w * q);
    float lo = (e * 0x1.7f7d1cp-20f + lf) + err / d;
    return (d != d || d == (float)INFINITY) ? d : e * 0x1.62e4p-1f + lo;
}

#endif /* LSM_EXP_H */
