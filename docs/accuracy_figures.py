"""Measured errors of lsm_ext and SciPy against a 50-digit mpmath reference.

    python docs/accuracy_figures.py

Prints, per op and dtype, the largest error over random rows (normal entries
scaled by 1, 10 and 100, rows of 1000, float64 inputs rounded to the dtype
first), in units of eps * max(1, |x_i|, |lse|) -- the bound the tests use
(tests/test_accuracy.py) -- for lsm_ext and for scipy.special in the same
dtype. docs/accuracy.rst quotes its output.
"""

import mpmath
import numpy as np
import scipy.special as sc

import lsm_ext as lx

mpmath.mp.dps = 50


def ref_lse(row):
    return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row))


def main():
    rng = np.random.default_rng(2026)
    print(f"{'op':12}{'dtype':9}{'lsm_ext':>10}{'SciPy':>10}   (units of eps * scale)")
    for dt in (np.float32, np.float64):
        eps = np.finfo(dt).eps
        worst = {k: [0.0, 0.0] for k in ("logsumexp", "softmax", "log_softmax")}
        for scale in (1.0, 10.0, 100.0):
            x = (rng.standard_normal((20, 1000)) * scale).astype(dt)
            for row in x:
                lse = ref_lse(row)
                s = max(1.0, float(abs(lse)))
                ours = (lx.logsumexp(row), lx.softmax(row), lx.log_softmax(row))
                theirs = (sc.logsumexp(row), sc.softmax(row), sc.log_softmax(row))
                for k, o, t in zip(worst, ours, theirs):
                    if k == "logsumexp":
                        err = [
                            abs(float(mpmath.mpf(float(v)) - lse)) / (eps * s)
                            for v in (o, t)
                        ]
                    else:
                        refs = [mpmath.mpf(float(v)) - lse for v in row]
                        if k == "softmax":
                            refs = [mpmath.exp(r) for r in refs]
                        sc_i = [max(1.0, abs(float(v)), float(abs(lse))) for v in row]
                        err = [
                            max(
                                abs(float(mpmath.mpf(float(a)) - r)) / (eps * q)
                                for a, r, q in zip(arr, refs, sc_i)
                            )
                            for arr in (o, t)
                        ]
                    worst[k] = [max(worst[k][0], err[0]), max(worst[k][1], err[1])]
        for k, (a, b) in worst.items():
            print(f"{k:12}{np.dtype(dt).name:9}{a:10.2f}{b:10.2f}")


if __name__ == "__main__":
    main()
