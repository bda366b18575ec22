/* Calls lsm_logsumexp_f64 and lsm_log_softmax_f32 through the public header
 * and checks them against long-double references computed here. Exit 0 when
 * every result is within a few ulp of the reference, 1 otherwise. */
#include <lsm.h>

#include <math.h>
#include <stdio.h>

enum { ROWS = 3, N = 5 };

static long double lse_ref(const double *x, int n) {
    long double m = x[0], s = 0;
    for (int i = 1; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    for (int i = 0; i < n; i++) {
        s += expl((long double)x[i] - m);
    }
    return m + logl(s);
}

int main(void) {
    const double x[ROWS * N] = {0.0,     1.0,    2.0,     3.0,    4.0, /* */
                                -1000.0, -999.0, -1001.0, -998.5, -1000.25,
                                0.0,     -40.0,  -40.0,   -40.0,  -40.0};
    double lse[ROWS];
    const ptrdiff_t xs[3] = {N, 1, 1}, os[2] = {1, 1};
    int bad = 0;
    if (lsm_logsumexp_f64(ROWS, N, 1, x, xs, lse, os) != LSM_OK) {
        return 1;
    }
    for (int r = 0; r < ROWS; r++) {
        const long double ref = lse_ref(x + r * N, N);
        const double err = (double)fabsl((long double)lse[r] - ref);
        const double tol =
            4 * 2.220446049250313e-16 * fmax(1.0, fabs((double)ref));
        printf("logsumexp row %d: %.17g (ref %.17Lg)\n", r, lse[r], ref);
        bad |= !(err <= tol);
    }
    /* row 2: log(1 + 4 e^-40) = 1.7e-17 (analytically log1p(4 e^-40)), kept
     * to full relative accuracy, which a plain sum (and the long double
     * reference above) cannot give */
    const double small = log1p(4.0 * exp(-40.0));
    bad |= !(fabs(lse[2] - small) <= 4 * 2.220446049250313e-16 * small);

    float xf[ROWS * N], yf[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) {
        xf[i] = (float)x[i];
    }
    if (lsm_log_softmax_f32(ROWS, N, 1, xf, xs, yf, xs) != LSM_OK) {
        return 1;
    }
    for (int r = 0; r < ROWS; r++) {
        double xd[N];
        for (int i = 0; i < N; i++) {
            xd[i] = (double)xf[r * N + i];
        }
        const long double l = lse_ref(xd, N);
        for (int i = 0; i < N; i++) {
            const long double ref = (long double)xd[i] - l;
            const double err = (double)fabsl((long double)yf[r * N + i] - ref);
            const double tol = 4 * 1.1920929e-7 *
                               fmax(1.0, fmax(fabs(xd[i]), fabs((double)l)));
            bad |= !(err <= tol);
        }
    }
    printf("log_softmax f32 row 0: %g %g %g %g %g\n", yf[0], yf[1], yf[2],
           yf[3], yf[4]);
    printf(bad ? "FAIL\n" : "ok\n");
    return bad;
}
