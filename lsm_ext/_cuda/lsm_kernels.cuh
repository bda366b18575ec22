/*
 * lsm_kernels.cuh -- the CUDA kernels of lsm_ext's CuPy backend.
 *
 * Compiled at first use by NVRTC (cupy.RawModule, one template instance per
 * module, cached per device); CI compiles every instance with nvcc for
 * sm_80 and sm_90 (tests/test_cuda_compile.py). No include directive: NVRTC compiles
 * it without host headers.
 *
 * Every kernel sees its arrays as (outer, n, inner) views with element
 * strides, as the C kernels do; a "line" is one (o, k) pair, the n elements
 * reduced over. Storage types: lsm_half (float16), float, double; sums and
 * exps in float for the first two, double for double.
 *
 * op: 0 logsumexp; 1 weighted logsumexp with its sign (b in v, the sign in
 * z); 2 weighted logsumexp, nan for a negative sum; 3 softmax;
 * 4 log_softmax; 5 the JVP of log_softmax (v the tangent, z = dy); 6 its VJP
 * (x = y, v = g). The logsumexp ops write y[o * y0 + k * y2].
 *
 * Semantics are those of the NumPy path (src_c): statistics (m, c, r, t) per
 * line with m the max (over entries of nonzero weight), c the count (summed
 * weight) of entries equal to m, r the sum of w exp(x - m) over the others,
 * t the sum of exp(x - m) v (JVP) or of g (VJP); rows whose max is not
 * finite get scipy.special's IEEE answers.
 *
 * Kernels:
 *  lsm_rows<T, OP, TPR, VPT>  lines of n <= TPR * VPT elements held in
 *      registers, TPR threads per line (several lines per warp when TPR <
 *      32, one line per block when TPR > 32; blocks of max(TPR, 128)
 *      threads): one read, one write.
 *  lsm_lines<T, OP, BX, CY, MODE>  any line length: blocks of BX lines x CY
 *      threads along each line, an online (max, sum) state per thread merged
 *      across the CY threads; BX = 32 for lines along a contiguous inner
 *      axis (threads along it), BX = 1 for long rows. MODE 0 does a line in
 *      one block (statistics, then output: x read twice); a line split into
 *      gridDim.y segments runs MODE 1 (each segment's state into ws) then
 *      MODE 2 (each block merges its line's states, in order, and writes its
 *      segment).
 */

typedef long long lsm_idx;

struct lsm_half {
    unsigned short bits;
};

template <typename T> struct lsm_acc {
    typedef T type;
};
template <> struct lsm_acc<lsm_half> {
    typedef float type;
};

__device__ __forceinline__ float lsm_ld(const float *p) { return *p; }
__device__ __forceinline__ double lsm_ld(const double *p) { return *p; }
__device__ __forceinline__ void lsm_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void lsm_st(double *p, double v) { *p = v; }
#ifdef LSM_CUDA_EMULATION /* tests/cuda_emu: the kernels run on the CPU */
__device__ __forceinline__ float lsm_ld(const lsm_half *p) {
    _Float16 h;
    __builtin_memcpy(&h, &p->bits, 2);
    return (float)h;
}
__device__ __forceinline__ void lsm_st(lsm_half *p, float v) {
    const _Float16 h = (_Float16)v;
    __builtin_memcpy(&p->bits, &h, 2);
}
#else
__device__ __forceinline__ float lsm_ld(const lsm_half *p) {
    const unsigned short h = p->bits;
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ void lsm_st(lsm_half *p, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p->bits = h;
}
#endif

__device__ __forceinline__ float lsm_exp(float x) { return expf(x); }
__device__ __forceinline__ double lsm_exp(double x) { return exp(x); }

template <typename A> __device__ __forceinline__ A lsm_inf();
template <> __device__ __forceinline__ float lsm_inf<float>() {
    return __int_as_float(0x7f800000);
}
template <> __device__ __forceinline__ double lsm_inf<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}
template <typename A> __device__ __forceinline__ A lsm_nan();
template <> __device__ __forceinline__ float lsm_nan<float>() {
    return __int_as_float(0x7fc00000);
}
template <> __device__ __forceinline__ double lsm_nan<double>() {
    return __longlong_as_double(0x7ff8000000000000LL);
}

/* op traits */
__device__ __forceinline__ constexpr bool lsm_is_lse(int op) { return op <= 2; }
__device__ __forceinline__ constexpr bool lsm_weighted(int op) {
    return op == 1 || op == 2;
}
/* ops that read v (b, the tangent or g) */
__device__ __forceinline__ constexpr bool lsm_reads_v(int op) {
    return op == 1 || op == 2 || op == 5 || op == 6;
}

/* ------------------------------------------------------------ statistics */

/* t is summed in double whatever A: the VJP's sum of g (and the JVP's sum
 * of exp(x - m) v) can cancel, and the C kernels sum them in double too */
template <typename A> struct lsm_st_ {
    A m, c, r;
    double t;
};

/* Online update with one entry x of weight w (1 unweighted) and v (JVP). */
template <typename A, int OP>
__device__ __forceinline__ void lsm_add(lsm_st_<A> &s, A x, A w, A v) {
    if (OP == 6) { /* VJP: the sum of g only */
        s.t += (double)v;
        return;
    }
    if (lsm_weighted(OP) && w == A(0)) {
        return; /* b == 0: ignored, even where x is inf or nan */
    }
    if (x > s.m) {
        /* a new max: earlier terms scale by exp(m - x) (0 from -inf) */
        const A f = lsm_exp(s.m - x);
        s.r = (s.r + s.c) * f;
        s.t *= (double)f;
        s.c = 0;
        s.m = x;
    }
    const A e = lsm_exp(x - s.m);
    if (x == s.m) {
        s.c += w;
    } else {
        s.r += w * e;
    }
    if (OP == 5) {
        s.t += (double)(e * v);
    }
}

/* a = a merged with b (b's entries after a's; the result does not depend on
 * which has the larger max, so merges in a fixed order are deterministic) */
template <typename A, int OP>
__device__ __forceinline__ void lsm_merge(lsm_st_<A> &a, const lsm_st_<A> &b) {
    if (OP == 6) {
        a.t += b.t;
        return;
    }
    if (b.m > a.m) {
        const A f = lsm_exp(a.m - b.m);
        a.r = (a.r + a.c) * f + b.r;
        a.t = a.t * (double)f + b.t;
        a.c = b.c;
        a.m = b.m;
    } else if (b.m == a.m) {
        a.c += b.c;
        a.r += b.r;
        a.t += b.t;
    } else {
        const A f = lsm_exp(b.m - a.m);
        a.r += (b.r + b.c) * f;
        a.t += b.t * (double)f;
    }
}

/* Flags of the terms w x of a special weighted line (x nan or +inf, w != 0):
 * bit 0 a nan term, bit 1 a +inf term, bit 2 a -inf term. */
template <typename A>
__device__ __forceinline__ int lsm_special_flags(A x, A w) {
    if (w == A(0) || !(x != x || x == lsm_inf<A>())) {
        return 0;
    }
    if (x != x || w != w) {
        return 1;
    }
    return w > A(0) ? 2 : 4;
}

/* Per-line results, from the merged statistics. */
template <typename A> struct lsm_fin_ {
    A m;     /* the max */
    A l;     /* log(c + r) */
    A rd;    /* 1 / (c + r) */
    A q;     /* JVP: t / (c + r); VJP: the sum of g */
    int sp;  /* the max is not finite */
    int inf; /* special, max +inf and no nan: x = +inf gives nan, else -inf */
};

/* log(c + r) for c >= 1, r >= 0, the rounding of the sum carried (TwoSum),
 * so that log(1 + 4e-18) is 4e-18 (as log_sum_ of the C kernels) */
__device__ __forceinline__ double lsm_log_sum(double c, double r) {
    const double d = c + r;
    const double bp = d - c;
    const double err = (c - (d - bp)) + (r - bp);
    return log(d) + err / d;
}

template <typename A, int OP>
__device__ __forceinline__ lsm_fin_<A> lsm_finish(const lsm_st_<A> &s) {
    lsm_fin_<A> f;
    f.m = s.m;
    f.q = (A)s.t;
    f.sp = !(s.m > -lsm_inf<A>() && s.m < lsm_inf<A>());
    f.inf = f.sp && s.m == lsm_inf<A>() && !(s.r != s.r);
    if (OP == 6 || f.sp) {
        f.l = 0;
        f.rd = 1;
        return f;
    }
    const double c = (double)s.c, r = (double)s.r;
    f.l = (A)lsm_log_sum(c, r);
    f.rd = (A)(1.0 / (c + r));
    if (OP == 5) {
        f.q = (A)(s.t / (c + r));
    }
    return f;
}

/* Element outputs of ops 3-6 for x (and v). */
template <typename A, int OP>
__device__ __forceinline__ void lsm_out(const lsm_fin_<A> &f, A x, A v, A &y,
                                        A &dy) {
    if (OP == 6) {
        y = v - lsm_exp(x) * f.q;
        return;
    }
    if (f.sp) {
        y = (OP != 3 && f.inf && x != lsm_inf<A>()) ? -lsm_inf<A>()
                                                     : lsm_nan<A>();
        dy = lsm_nan<A>();
        return;
    }
    if (OP == 3) {
        y = lsm_exp(x - f.m) * f.rd;
    } else {
        y = (x - f.m) - f.l;
        dy = v - f.q;
    }
}

/* logsumexp results of a line: res (and sign for op 1). */
template <typename A, int OP>
__device__ __forceinline__ void lsm_lse(const lsm_st_<A> &s, int flags,
                                        A &res, A &sign) {
    if (OP == 0) {
        const bool sp = !(s.m > -lsm_inf<A>() && s.m < lsm_inf<A>());
        if (sp) {
            res = (s.r != s.r) ? lsm_nan<A>() : s.m;
        } else {
            res = (A)((double)s.m + lsm_log_sum((double)s.c, (double)s.r));
        }
        return;
    }
    double r, sg;
    if (!(s.m > -lsm_inf<A>() && s.m < lsm_inf<A>())) {
        /* the IEEE sum of the terms w x with x nan or +inf */
        double sum = (flags & 1) || ((flags & 6) == 6)
                         ? __longlong_as_double(0x7ff8000000000000LL)
                     : (flags & 2) ? __longlong_as_double(0x7ff0000000000000LL)
                     : (flags & 4) ? -__longlong_as_double(0x7ff0000000000000LL)
                                   : 0.0;
        r = log(fabs(sum));
        sg = sum > 0 ? 1.0 : (sum < 0 ? -1.0 : (sum == 0 ? 0.0 : sum));
    } else {
        const double c = (double)s.c, rest = (double)s.r, t = c + rest;
        sg = t > 0 ? 1.0 : (t < 0 ? -1.0 : (t == 0 ? 0.0 : t));
        if (c != 0 && fabs(rest) <= fabs(c)) {
            r = log1p(rest / c) + log(fabs(c));
        } else {
            r = log(fabs(t));
        }
        r += (double)s.m;
    }
    if (OP == 2 && sg < 0) {
        r = __longlong_as_double(0x7ff8000000000000LL);
    }
    res = (A)r;
    sign = (A)sg;
}

/* A line's logsumexp result at *yo (and its sign at *zo for op 1). */
template <typename T, typename A, int OP>
__device__ __forceinline__ void lsm_put_lse(const lsm_st_<A> &s, int flags,
                                            T *yo, T *zo) {
    A res, sign;
    lsm_lse<A, OP>(s, flags, res, sign);
    lsm_st(yo, res);
    if (OP == 1) {
        lsm_st(zo, sign);
    }
}

/* ------------------------------------------------------- group reductions */

/* Reductions over the TPR threads of a line in lsm_rows: shuffles within a
 * warp (TPR <= 32), then across the warps of the block (TPR > 32, one line
 * per block). Every thread gets the result; the order is fixed. */
template <int TPR, typename A> __device__ __forceinline__ A lsm_gmax(A v) {
    const int W = TPR < 32 ? TPR : 32;
#pragma unroll
    for (int off = W / 2; off > 0; off /= 2) {
        v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off, W));
    }
    if constexpr (TPR > 32) {
        __shared__ A red[32];
        __syncthreads();
        if (threadIdx.x % 32 == 0) {
            red[threadIdx.x / 32] = v;
        }
        __syncthreads();
        v = (threadIdx.x % 32) < TPR / 32 ? red[threadIdx.x % 32] : -lsm_inf<A>();
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
            v = fmax(v, __shfl_xor_sync(0xffffffffu, v, off));
        }
    }
    return v;
}

template <int TPR, typename A> __device__ __forceinline__ A lsm_gsum(A v) {
    const int W = TPR < 32 ? TPR : 32;
#pragma unroll
    for (int off = W / 2; off > 0; off /= 2) {
        v += __shfl_xor_sync(0xffffffffu, v, off, W);
    }
    if constexpr (TPR > 32) {
        __shared__ A red[32];
        __syncthreads();
        if (threadIdx.x % 32 == 0) {
            red[threadIdx.x / 32] = v;
        }
        __syncthreads();
        v = (threadIdx.x % 32) < TPR / 32 ? red[threadIdx.x % 32] : A(0);
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
            v += __shfl_xor_sync(0xffffffffu, v, off);
        }
    }
    return v;
}

template <int TPR> __device__ __forceinline__ int lsm_gor(int v) {
    const int W = TPR < 32 ? TPR : 32;
#pragma unroll
    for (int off = W / 2; off > 0; off /= 2) {
        v |= __shfl_xor_sync(0xffffffffu, v, off, W);
    }
    if constexpr (TPR > 32) {
        __shared__ int red[32];
        __syncthreads();
        if (threadIdx.x % 32 == 0) {
            red[threadIdx.x / 32] = v;
        }
        __syncthreads();
        v = (threadIdx.x % 32) < TPR / 32 ? red[threadIdx.x % 32] : 0;
#pragma unroll
        for (int off = 16; off > 0; off /= 2) {
            v |= __shfl_xor_sync(0xffffffffu, v, off);
        }
    }
    return v;
}

#define LSM_ARGS                                                               \
    lsm_idx lines, lsm_idx n, lsm_idx inner, const T *x, lsm_idx x0,          \
        lsm_idx x1, lsm_idx x2, const T *v, lsm_idx v0, lsm_idx v1,            \
        lsm_idx v2, T *y, lsm_idx y0, lsm_idx y1, lsm_idx y2, T *z,            \
        lsm_idx z0, lsm_idx z1, lsm_idx z2

/* ---------------------------------------------------- lines in registers */

/* Outputs may alias inputs exactly (an in-place call): every element is
 * read before any is written, by the same thread. */
template <typename T, int OP, int TPR, int VPT>
__global__ void __launch_bounds__(TPR > 128 ? TPR : 128) lsm_rows(LSM_ARGS) {
    typedef typename lsm_acc<T>::type A;
    const int lane = (int)(threadIdx.x % TPR);
    const lsm_idx line =
        (lsm_idx)blockIdx.x * (blockDim.x / TPR) + threadIdx.x / TPR;
    const bool live = line < lines; /* every thread joins the reductions */
    const lsm_idx o = live ? line / inner : 0, k = live ? line % inner : 0;
    const T *xr = x + o * x0 + k * x2;
    const T *vr = v + o * v0 + k * v2;
    A xv[VPT], vv[VPT];
    bool in[VPT];
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        const lsm_idx j = lane + (lsm_idx)i * TPR;
        in[i] = live && j < n;
        xv[i] = in[i] ? lsm_ld(xr + j * x1) : -lsm_inf<A>();
        vv[i] = (lsm_reads_v(OP) && in[i]) ? lsm_ld(vr + j * v1) : A(0);
    }
    lsm_st_<A> s;
    s.m = -lsm_inf<A>();
    s.c = s.r = s.t = 0;
    int flags = 0;
    if (OP == 6) {
        double g = 0;
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            g += (double)vv[i];
        }
        s.t = lsm_gsum<TPR>(g);
    } else {
        /* the max first (over entries of nonzero weight), then one exp per
         * element */
        A m = -lsm_inf<A>();
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            const bool act = in[i] && !(lsm_weighted(OP) && vv[i] == A(0));
            m = (act && xv[i] > m) ? xv[i] : m;
        }
        m = lsm_gmax<TPR>(m);
        A c = 0, r = 0;
        double t = 0;
#pragma unroll
        for (int i = 0; i < VPT; i++) {
            const A w = lsm_weighted(OP) ? vv[i] : A(1);
            if (in[i] && !(lsm_weighted(OP) && w == A(0))) {
                const A e = lsm_exp(xv[i] - m);
                if (xv[i] == m) {
                    c += w;
                } else {
                    r += w * e;
                }
                if (OP == 5) {
                    t += (double)(e * vv[i]);
                }
            }
        }
        s.m = m;
        s.c = lsm_gsum<TPR>(c);
        s.r = lsm_gsum<TPR>(r);
        if (OP == 5) {
            s.t = lsm_gsum<TPR>(t);
        }
        if (lsm_weighted(OP)) {
            /* taken by every thread: the lines of a warp may differ */
            int fl = 0;
#pragma unroll
            for (int i = 0; i < VPT; i++) {
                fl |= in[i] ? lsm_special_flags(xv[i], vv[i]) : 0;
            }
            flags = lsm_gor<TPR>(fl);
        }
    }
    if (!live) {
        return;
    }
    if (lsm_is_lse(OP)) {
        if (lane == 0) {
            lsm_put_lse<T, A, OP>(s, flags, y + o * y0 + k * y2,
                                  z + o * z0 + k * z2);
        }
        return;
    }
    const lsm_fin_<A> f = lsm_finish<A, OP>(s);
    T *yr = y + o * y0 + k * y2;
    T *zr = z + o * z0 + k * z2;
#pragma unroll
    for (int i = 0; i < VPT; i++) {
        if (in[i]) {
            const lsm_idx j = lane + (lsm_idx)i * TPR;
            A a, b;
            lsm_out<A, OP>(f, xv[i], vv[i], a, b);
            lsm_st(yr + j * y1, a);
            if (OP == 5) {
                lsm_st(zr + j * z1, b);
            }
        }
    }
}

/* ------------------------------------------------------- lines, online */

/* The CY states of each of the BX lines of a block (thread (tx, ty) at
 * sm[ty * BX + tx]) merged into sm[tx], in a fixed tree order. */
template <typename A, int OP, int BX, int CY>
__device__ __forceinline__ void lsm_merge_cy(lsm_st_<A> *sm, lsm_st_<A> s) {
    const int tx = threadIdx.x, ty = threadIdx.y;
    sm[ty * BX + tx] = s;
    __syncthreads();
#pragma unroll
    for (int h = CY / 2; h > 0; h /= 2) {
        if (ty < h) {
            lsm_st_<A> a = sm[ty * BX + tx];
            lsm_merge<A, OP>(a, sm[(ty + h) * BX + tx]);
            sm[ty * BX + tx] = a;
        }
        __syncthreads();
    }
}

template <int BX, int CY>
__device__ __forceinline__ int lsm_or_cy(int *sf, int f) {
    const int tx = threadIdx.x, ty = threadIdx.y;
    sf[ty * BX + tx] = f;
    __syncthreads();
#pragma unroll
    for (int h = CY / 2; h > 0; h /= 2) {
        if (ty < h) {
            sf[ty * BX + tx] |= sf[(ty + h) * BX + tx];
        }
        __syncthreads();
    }
    return sf[tx];
}

/* Block (BX, CY): threadIdx.x picks the line (consecutive lines, i.e.
 * consecutive k, side by side), threadIdx.y the thread along it; gridDim.y
 * segments per line of seg elements each (nseg of them: gridDim.y, or 1 for
 * the logsumexp ops' MODE 2). ws: lines x nseg states of 4 doubles. */
template <typename T, int OP, int BX, int CY, int MODE>
__global__ void __launch_bounds__(BX *CY)
    lsm_lines(LSM_ARGS, lsm_idx seg, lsm_idx nseg,
              double *ws) {
    typedef typename lsm_acc<T>::type A;
    __shared__ lsm_st_<A> sm[BX * CY];
    __shared__ int sf[BX * CY];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const lsm_idx line = (lsm_idx)blockIdx.x * BX + tx;
    const bool live = line < lines;
    const lsm_idx o = live ? line / inner : 0, k = live ? line % inner : 0;
    const T *xr = x + o * x0 + k * x2;
    const T *vr = v + o * v0 + k * v2;
    const lsm_idx j0 = (lsm_idx)blockIdx.y * seg;
    const lsm_idx j1 = live ? (j0 + seg < n ? j0 + seg : n) : j0;
    lsm_st_<A> s;
    if (MODE != 2) {
        s.m = -lsm_inf<A>();
        s.c = s.r = s.t = 0;
        for (lsm_idx j = j0 + ty; j < j1; j += CY) {
            const A vj = lsm_reads_v(OP) ? (A)lsm_ld(vr + j * v1) : A(1);
            lsm_add<A, OP>(s, (A)lsm_ld(xr + j * x1),
                           lsm_weighted(OP) ? vj : A(1), vj);
        }
        lsm_merge_cy<A, OP, BX, CY>(sm, s);
        if (MODE == 1) {
            if (ty == 0 && live) {
                double *w = ws + (line * nseg + blockIdx.y) * 4;
                w[0] = sm[tx].m;
                w[1] = sm[tx].c;
                w[2] = sm[tx].r;
                w[3] = sm[tx].t;
            }
            return;
        }
        s = sm[tx];
    } else {
        /* merge the line's segment states in order (every block of the line
         * alike: the same result for each of its segments) */
        s.m = -lsm_inf<A>();
        s.c = s.r = s.t = 0;
        if (live) {
            for (lsm_idx b = 0; b < nseg; b++) {
                const double *w = ws + (line * nseg + b) * 4;
                lsm_st_<A> p;
                p.m = (A)w[0];
                p.c = (A)w[1];
                p.r = (A)w[2];
                p.t = w[3];
                lsm_merge<A, OP>(s, p);
            }
        }
    }
    if (lsm_is_lse(OP)) {
        int flags = 0;
        if (lsm_weighted(OP)) {
            /* a special weighted line reads its terms again; every thread
             * joins the barriers of the reduction */
            int f = 0;
            const bool sp = !(s.m > -lsm_inf<A>() && s.m < lsm_inf<A>());
            for (lsm_idx j = ty; live && sp && j < n; j += CY) {
                f |= lsm_special_flags((A)lsm_ld(xr + j * x1),
                                       (A)lsm_ld(vr + j * v1));
            }
            flags = lsm_or_cy<BX, CY>(sf, f);
        }
        if (ty == 0 && live && blockIdx.y == 0) {
            lsm_put_lse<T, A, OP>(s, flags, y + o * y0 + k * y2,
                                  z + o * z0 + k * z2);
        }
        return;
    }
    const lsm_fin_<A> f = lsm_finish<A, OP>(s);
    T *yr = y + o * y0 + k * y2;
    T *zr = z + o * z0 + k * z2;
    for (lsm_idx j = j0 + ty; j < j1; j += CY) {
        A a, b;
        const A vj = lsm_reads_v(OP) ? (A)lsm_ld(vr + j * v1) : A(0);
        lsm_out<A, OP>(f, (A)lsm_ld(xr + j * x1), vj, a, b);
        lsm_st(yr + j * y1, a);
        if (OP == 5) {
            lsm_st(zr + j * z1, b);
        }
    }
}
