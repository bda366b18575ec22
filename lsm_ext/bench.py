"""The main job: a short self-check, then a benchmark table.

    lsm-ext-bench  (or python -m lsm_ext.bench)   # full table (a few minutes)
    lsm-ext-bench --quick                          # small shapes, few repeats (CI)

Every op is timed in rounds: each round calls lsm_ext (plain and out=), the
floor, SciPy and NumPy once each, side by side; times are medians over the
rounds and every ratio is the median of the per-round ratios (machines are
shared and noisy; ratios of calls made together are what to read):

Before each timed call (ours, the floor's, SciPy's, NumPy's alike) a buffer
of twice the last-level cache is read, so every call starts with its arrays
in memory, as data produced elsewhere would be (``--cache warm`` skips that:
arrays of a few MB then stay in a large L3 from one call to the next, and the
floors become L3 copies rather than memory copies).

* ``lsm_ext ms`` -- a plain call, which allocates its result (as SciPy's);
  outputs of 1 MiB or more come through lsm_ext's output cache, so from the
  second round on they reuse the memory of the previous round's result
  instead of fresh pages (``LSM_EXT_OUTPUT_CACHE_MB=0`` turns that off);
* ``out= ms`` -- the same call writing into preallocated arrays (``out=``);
* ``floor`` -- the ``out=`` time / the bandwidth floor on the same bytes,
  into the same kind of preallocated array: ``np.sum`` (read only) for
  logsumexp, ``np.copyto`` (read + write) for softmax and log_softmax, two
  copies for the JVP and VJP (2 reads, 2 or 1 writes);
* ``xSciPy`` -- SciPy time / lsm_ext time (scipy.special; for the JVP the
  composition log_softmax + softmax, for the VJP a NumPy formula);
* ``xNumPy`` -- a NumPy max-shift implementation's time / lsm_ext time.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit

import numpy as np

import lsm_ext as lx

FULL_SHAPES = [
    ((1_000_000, 8), -1),
    ((4096, 1024), -1),
    ((512, 32000), -1),
    ((8, 2_000_000), -1),
    ((4_000_000,), None),
    ((2048, 4096), 0),
]
QUICK_SHAPES = [((100_000, 8), -1), ((512, 1024), -1), ((16, 32000), -1), ((256, 512), 0)]


def _last_level_cache_bytes():
    """Size of the largest CPU cache (Linux sysfs), 32 MiB if unknown."""
    best = 0
    for idx in range(8):
        path = f"/sys/devices/system/cpu/cpu0/cache/index{idx}/size"
        try:
            with open(path) as f:
                txt = f.read().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(txt[-1:], 1)
        best = max(best, int(txt.rstrip("KMG") or 0) * mult)
    return best or (32 << 20)


class _Evict:
    """Reads a buffer of twice the last-level cache before a timed call, so
    that every call (ours and the floor's alike) starts with its arrays in
    memory, not left in cache by the call before it (cache='cold'); does
    nothing for cache='warm'. Reading, not writing, leaves clean lines: no
    write-back lands in the next call's time."""

    def __init__(self, cache):
        n = 2 * _last_level_cache_bytes() // 8 if cache == "cold" else 0
        self.buf = np.ones(n) if n else None

    def __call__(self):
        if self.buf is not None:
            self.buf.sum()


def _interleaved_times(fns, repeat, evict=None):
    """Times of each function in `fns` over `repeat` rounds, every round
    calling each function once (in an order rotated from round to round), so
    that the ratios of one round compare calls made side by side: on a
    shared, noisy machine the medians of per-round ratios are far steadier
    than ratios of medians taken one function after another. `evict` (if
    given) runs before each timed call, outside its time."""
    live = [f for f in fns if f is not None]
    for f in live:
        f()  # warm up (allocations, first-call dispatch)
    times = [[] for _ in fns]
    for r in range(repeat):
        order = [i for i, f in enumerate(fns) if f is not None]
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            if evict is not None:
                evict()
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [np.array(t) if t else None for t in times]


# ------------------------------------------------------------ references


def _np_logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis=axis)


def _np_log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    t = x - m
    return t - np.log(np.sum(np.exp(t), axis=axis, keepdims=True))


def _np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _np_jvp(x, v, axis):
    return _np_log_softmax(x, axis), v - np.sum(_np_softmax(x, axis) * v, axis=axis,
                                                keepdims=True)


def _np_vjp(y, g, axis):
    return g - np.exp(y) * np.sum(g, axis=axis, keepdims=True)


def self_check():
    """Compare every op with a float64 NumPy formula; raise on a mismatch."""
    rng = np.random.default_rng(1)
    for dt, tol in ((np.float32, 2e-5), (np.float64, 1e-12)):
        for shape, axis in (((7, 33), -1), ((33, 7), 0), ((5, 6, 7), (0, 2))):
            x = (rng.standard_normal(shape) * 4).astype(dt)
            v = rng.standard_normal(shape).astype(dt)
            x64, v64 = x.astype(np.float64), v.astype(np.float64)
            pairs = [
                (lx.logsumexp(x, axis=axis), _np_logsumexp(x64, axis)),
                (lx.softmax(x, axis=axis), _np_softmax(x64, axis)),
                (lx.log_softmax(x, axis=axis), _np_log_softmax(x64, axis)),
                *zip(lx.log_softmax_jvp(x, v, axis=axis), _np_jvp(x64, v64, axis)),
                (lx.log_softmax_vjp(x, v, axis=axis), _np_vjp(x64, v64, axis)),
            ]
            for got, want in pairs:
                if got.dtype != dt:
                    raise AssertionError(f"dtype {got.dtype} != {np.dtype(dt)}")
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert float(lx.logsumexp([0.0, -40.0])) == 4.248354255291589e-18
    return "ok"


# ------------------------------------------------------------- benchmark


def _cases(x, v, axis, sp):
    """(op, lsm_ext fn, lsm_ext out= fn, floor fn, scipy fn or None, numpy fn)
    for one array."""
    o1, o2 = np.empty_like(x), np.empty_like(x)
    r1 = np.empty_like(lx.logsumexp(x, axis=axis))

    def copy1():
        np.copyto(o1, x)

    def copy2():
        np.copyto(o1, x)
        np.copyto(o2, v)

    def read1():
        np.sum(x)

    def sp_or_none(make):
        return make() if sp is not None else None

    return [
        ("logsumexp", lambda: lx.logsumexp(x, axis=axis),
         lambda: lx.logsumexp(x, axis=axis, out=r1), read1,
         sp_or_none(lambda: lambda: sp.logsumexp(x, axis=axis)),
         lambda: _np_logsumexp(x, axis)),
        ("softmax", lambda: lx.softmax(x, axis=axis),
         lambda: lx.softmax(x, axis=axis, out=o1), copy1,
         sp_or_none(lambda: lambda: sp.softmax(x, axis=axis)),
         lambda: _np_softmax(x, axis)),
        ("log_softmax", lambda: lx.log_softmax(x, axis=axis),
         lambda: lx.log_softmax(x, axis=axis, out=o1), copy1,
         sp_or_none(lambda: lambda: sp.log_softmax(x, axis=axis)),
         lambda: _np_log_softmax(x, axis)),
        ("jvp", lambda: lx.log_softmax_jvp(x, v, axis=axis),
         lambda: lx.log_softmax_jvp(x, v, axis=axis, out=(o1, o2)), copy2,
         sp_or_none(lambda: lambda: (sp.log_softmax(x, axis=axis),
                                     v - np.sum(sp.softmax(x, axis=axis) * v,
                                                axis=axis, keepdims=True))),
         lambda: _np_jvp(x, v, axis)),
        ("vjp", lambda: lx.log_softmax_vjp(x, v, axis=axis),
         lambda: lx.log_softmax_vjp(x, v, axis=axis, out=o1), copy2, None,
         lambda: _np_vjp(x, v, axis)),
    ]


def benchmark(shapes, repeat, out=sys.stdout, cache="cold"):
    try:
        import scipy.special as sp
    except ImportError:  # the table still runs, without the SciPy column
        sp = None
    rng = np.random.default_rng(0)
    evict = _Evict(cache)
    header = (f"{'op':<12}{'dtype':<9}{'shape':<18}{'axis':<6}{'lsm_ext ms':>11}"
              f"{'out= ms':>9}{'floor':>8}{'xSciPy':>8}{'xNumPy':>8}")
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = []
    for shape, axis in shapes:
        for dt in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dt)
            v = rng.standard_normal(shape).astype(dt)
            for op, ours, ours_out, floor, scipy_fn, numpy_fn in _cases(x, v, axis,
                                                                        sp):
                T, TO, F, S, N = _interleaved_times(
                    [ours, ours_out, floor, scipy_fn, numpy_fn], repeat, evict)
                t, to = float(np.median(T)), float(np.median(TO))
                fl = float(np.median(TO / F))  # per-round ratios, then median
                xs = float(np.median(S / T)) if S is not None else None
                xn = float(np.median(N / T))
                rows.append((op, np.dtype(dt).name, shape, axis, t, fl, xs, xn))
                print(f"{op:<12}{np.dtype(dt).name:<9}{str(shape):<18}{str(axis):<6}"
                      f"{t * 1e3:>11.3f}{to * 1e3:>9.3f}{fl:>8.2f}"
                      f"{(xs if xs else float('nan')):>8.1f}{xn:>8.1f}",
                      file=out, flush=True)
    return rows


def small_call_latency(out=sys.stdout):
    """Microseconds per call on a 10-element float64 array."""
    try:
        import scipy.special as sp
    except ImportError:
        sp = None
    x = np.random.default_rng(2).standard_normal(10)
    calls = [
        ("logsumexp", lambda: lx.logsumexp(x), sp and (lambda: sp.logsumexp(x))),
        ("softmax", lambda: lx.softmax(x), sp and (lambda: sp.softmax(x))),
        ("log_softmax", lambda: lx.log_softmax(x), sp and (lambda: sp.log_softmax(x))),
        ("jvp", lambda: lx.log_softmax_jvp(x, x), None),
        ("vjp", lambda: lx.log_softmax_vjp(x, x), None),
    ]
    print(f"\n{'10-element call':<16}{'lsm_ext us':>11}{'SciPy us':>10}", file=out)
    res = {}
    for name, ours, theirs in calls:
        t = min(timeit.repeat(ours, number=2000, repeat=7)) / 2000
        s = min(timeit.repeat(theirs, number=200, repeat=5)) / 200 if theirs else None
        res[name] = (t, s)
        s_txt = f"{s * 1e6:>10.1f}" if s else f"{'-':>10}"
        print(f"{name:<16}{t * 1e6:>11.2f}{s_txt}", file=out)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lsm_ext.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per timing")
    ap.add_argument("--cache", choices=("cold", "warm"), default="cold",
                    help="cold (default): every timed call starts with its "
                         "arrays out of cache; warm: as the call before left them")
    args = ap.parse_args(argv)
    print(f"lsm_ext {lx.__version__}  numpy {np.__version__}  isa {lx.isa()}  "
          f"(1 thread, cache {args.cache})")
    print("self-check:", self_check())
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    repeat = args.repeat or (3 if args.quick else 7)
    print()
    benchmark(shapes, repeat, cache=args.cache)
    small_call_latency()


if __name__ == "__main__":
    main()
