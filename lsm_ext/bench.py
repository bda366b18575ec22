"""The main job: a short self-check, then a benchmark table.

    lsm-ext-bench  (or python -m lsm_ext.bench)   # full table, 1 and 2 threads (~6 min)
    lsm-ext-bench --quick                          # small shapes, few repeats (CI)

Every op is timed in rounds: each round calls lsm_ext (plain and out=), the
floor, SciPy and NumPy once each, side by side; times are medians over the
rounds and every ratio is the median of the per-round ratios (machines are
shared and noisy; ratios of calls made together are what to read; a note
before the table says when the load average shows other work on the cores):

Before each timed call (ours, the floor's, SciPy's, NumPy's alike) a buffer
of twice the last-level cache is read, so every call starts with its arrays
in memory, as data produced elsewhere would be (``--cache warm`` skips that:
arrays of a few MB then stay in a large L3 from one call to the next, and the
floors become L3 copies rather than memory copies).

* ``thr`` -- the thread count of lsm_ext (``set_num_threads``) and PyTorch
  (``torch.set_num_threads``) in this row; SciPy and NumPy run on one;
* ``ms`` -- a plain lsm_ext call, which allocates its result (as SciPy's);
  outputs of 1 MiB or more come through lsm_ext's output cache, so from the
  second round on they reuse the memory of the previous round's result
  instead of fresh pages (``LSM_EXT_OUTPUT_CACHE_MB=0`` turns that off);
* ``out= ms`` -- the same call writing into preallocated arrays (``out=``);
* ``floor`` -- the ``out=`` time / the bandwidth floor on the same bytes,
  into the same kind of preallocated array: ``np.sum`` (read only) for
  logsumexp, ``np.copyto`` (read + write) for softmax and log_softmax, two
  copies for the JVP and VJP (2 reads, 2 or 1 writes);
* ``exp`` -- logsumexp only: the ``out=`` time / ``np.exp(x, out=o)`` (NumPy's
  SIMD exp over the same data: logsumexp on one core is bound by exp
  throughput rather than memory);
* ``xSciPy``, ``xNumPy``, ``xTorch`` -- the peer's time / lsm_ext's time:
  scipy.special (for the JVP the composition log_softmax + softmax, no VJP),
  a NumPy max-shift implementation, PyTorch on CPU when installed
  (``torch.logsumexp``, ``softmax``, ``log_softmax``, ``torch.func.jvp`` of
  ``log_softmax``, and log_softmax's own backward kernel for the VJP);
* ``xJAX`` -- with ``--jax``: JAX on CPU (``jax.nn.logsumexp``, ``softmax``,
  ``log_softmax``, ``jax.jvp`` of ``log_softmax``, the VJP formula; jitted,
  compiled before timing, float64 enabled) on one thread at every ``thr``
  (XLA's thread pool is sized once, at import, and its idle threads would
  compete with the other calls);
* ``xBest`` -- the fastest of those peers, round by round / lsm_ext's time;
* ``MB``, ``SciPy MB`` -- peak memory that ``tracemalloc`` sees during one
  plain call (the result included; NumPy reports its allocations to it);
* ``floor q1-q3``, ``SciPy q1-q3`` -- the quartiles of the per-round ratios
  whose medians are ``floor`` and ``xSciPy``: how far this run's rounds
  spread (on a shared machine a ratio near a target can fall on either side
  of it from one run to the next; more rounds with ``--repeat``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import timeit

import numpy as np

import lsm_ext as lx

FULL_SHAPES = [
    ((1_000_000, 8), -1),
    ((65536, 128), -1),
    ((4096, 1024), -1),
    ((512, 32000), -1),
    ((8, 2_000_000), -1),
    ((4_000_000,), None),
    ((2048, 4096), 0),
]
QUICK_SHAPES = [
    ((100_000, 8), -1),
    ((512, 1024), -1),
    ((16, 32000), -1),
    ((256, 512), 0),
]


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
        order = order[r % len(order) :] + order[: r % len(order)]
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
    return _np_log_softmax(x, axis), v - np.sum(
        _np_softmax(x, axis) * v, axis=axis, keepdims=True
    )


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


def _torch_cases(x, v, axis):
    """The PyTorch peers (CPU, its own fused kernels where it has them), as a
    dict op -> function, or {} without PyTorch."""
    try:
        import torch
    except ImportError:
        return {}
    flat = axis is None
    tx, tv = torch.from_numpy(x), torch.from_numpy(v)  # zero copy
    if flat:
        tx, tv = tx.reshape(-1), tv.reshape(-1)
    dim = 0 if flat else axis
    ty = torch.log_softmax(tx, dim)

    def jvp():
        return torch.func.jvp(lambda a: torch.log_softmax(a, dim), (tx,), (tv,))

    return {
        "logsumexp": lambda: torch.logsumexp(tx, dim),
        "softmax": lambda: torch.softmax(tx, dim),
        "log_softmax": lambda: torch.log_softmax(tx, dim),
        "jvp": jvp,
        # the backward of torch.log_softmax: its fused VJP kernel
        "vjp": lambda: torch.ops.aten._log_softmax_backward_data(tv, ty, dim, tx.dtype),
    }


def _jax_cases(x, v, axis):
    """The JAX peers (CPU, float64 enabled, jitted and compiled before
    timing), as a dict op -> function; {} unless --jax imported JAX (see
    main: single-threaded, since XLA's pool cannot be resized at run time and
    its idle threads would compete with every other call for the cores)."""
    if "jax" not in sys.modules:
        return {}
    import jax
    import jax.numpy as jnp

    xj, vj = jnp.asarray(x), jnp.asarray(v)
    lse = jax.jit(lambda a: jax.nn.logsumexp(a, axis=axis))
    sm = jax.jit(lambda a: jax.nn.softmax(a, axis=axis))
    ls = jax.jit(lambda a: jax.nn.log_softmax(a, axis=axis))
    jvp = jax.jit(
        lambda a, t: jax.jvp(lambda b: jax.nn.log_softmax(b, axis=axis), (a,), (t,))
    )
    # the VJP of log_softmax from its output y, as lsm_ext takes it
    vjp = jax.jit(lambda y, g: g - jnp.exp(y) * jnp.sum(g, axis=axis, keepdims=True))
    yj = ls(xj)

    def run(f, *args):
        return lambda: jax.block_until_ready(f(*args))

    return {
        "logsumexp": run(lse, xj),
        "softmax": run(sm, xj),
        "log_softmax": run(ls, xj),
        "jvp": run(jvp, xj, vj),
        "vjp": run(vjp, yj, vj),
    }


def _cases(x, v, axis, sp):
    """One dict per op: name, ours (plain call), ours_out (out=), floor, exp
    (np.exp into a preallocated array, logsumexp only), scipy, numpy, torch
    (each None where absent)."""
    o1, o2 = np.empty_like(x), np.empty_like(x)
    r1 = np.empty_like(lx.logsumexp(x, axis=axis))
    peers = _torch_cases(x, v, axis)
    jpeers = _jax_cases(x, v, axis)

    def copy1():
        np.copyto(o1, x)

    def copy2():
        np.copyto(o1, x)
        np.copyto(o2, v)

    def read1():
        np.sum(x)

    def exp1():
        np.exp(x, out=o1)

    def sp_or_none(make):
        return make() if sp is not None else None

    rows = [
        (
            "logsumexp",
            lambda: lx.logsumexp(x, axis=axis),
            lambda: lx.logsumexp(x, axis=axis, out=r1),
            read1,
            sp_or_none(lambda: lambda: sp.logsumexp(x, axis=axis)),
            lambda: _np_logsumexp(x, axis),
        ),
        (
            "softmax",
            lambda: lx.softmax(x, axis=axis),
            lambda: lx.softmax(x, axis=axis, out=o1),
            copy1,
            sp_or_none(lambda: lambda: sp.softmax(x, axis=axis)),
            lambda: _np_softmax(x, axis),
        ),
        (
            "log_softmax",
            lambda: lx.log_softmax(x, axis=axis),
            lambda: lx.log_softmax(x, axis=axis, out=o1),
            copy1,
            sp_or_none(lambda: lambda: sp.log_softmax(x, axis=axis)),
            lambda: _np_log_softmax(x, axis),
        ),
        (
            "jvp",
            lambda: lx.log_softmax_jvp(x, v, axis=axis),
            lambda: lx.log_softmax_jvp(x, v, axis=axis, out=(o1, o2)),
            copy2,
            sp_or_none(
                lambda: (
                    lambda: (
                        sp.log_softmax(x, axis=axis),
                        v
                        - np.sum(
                            sp.softmax(x, axis=axis) * v, axis=axis, keepdims=True
                        ),
                    )
                )
            ),
            lambda: _np_jvp(x, v, axis),
        ),
        (
            "vjp",
            lambda: lx.log_softmax_vjp(x, v, axis=axis),
            lambda: lx.log_softmax_vjp(x, v, axis=axis, out=o1),
            copy2,
            None,
            lambda: _np_vjp(x, v, axis),
        ),
    ]
    return [
        dict(
            name=op,
            ours=ours,
            ours_out=out,
            floor=floor,
            exp=exp1 if op == "logsumexp" else None,
            scipy=scipy,
            numpy=numpy,
            torch=peers.get(op),
            jax=jpeers.get(op),
        )
        for op, ours, out, floor, scipy, numpy in rows
    ]


def _peak_mb(fn):
    """Peak memory (MB) that tracemalloc sees during one call of fn (NumPy's
    allocations, the result's included), or None for fn None."""
    if fn is None:
        return None
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


_TORCH_THREADS = None  # PyTorch's own thread count, before _set_threads


def _set_threads(n):
    """Thread count n for lsm_ext and PyTorch; 0 restores both defaults."""
    global _TORCH_THREADS
    lx.set_num_threads(n)
    try:
        import torch
    except ImportError:
        return
    if _TORCH_THREADS is None:
        _TORCH_THREADS = torch.get_num_threads()
    torch.set_num_threads(n if n > 0 else _TORCH_THREADS)


def benchmark(shapes, repeat, out=sys.stdout, cache="cold", threads=(1,)):
    try:
        import scipy.special as sp
    except ImportError:  # the table still runs, without the SciPy column
        sp = None
    rng = np.random.default_rng(0)
    evict = _Evict(cache)
    header = (
        f"{'op':<12}{'dtype':<8}{'shape':<17}{'axis':<5}{'thr':>3}"
        f"{'ms':>9}{'out= ms':>9}{'floor':>7}{'exp':>6}{'xSciPy':>7}"
        f"{'xNumPy':>7}{'xTorch':>7}{'xJAX':>6}{'xBest':>6}{'MB':>7}"
        f"{'SciPy MB':>9}{'floor q1-q3':>12}{'SciPy q1-q3':>12}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = []

    def ratio(num, den):
        return float(np.median(num / den)) if num is not None else None

    def quartiles(num, den):
        if num is None:
            return None
        q1, q3 = np.quantile(num / den, [0.25, 0.75])
        return float(q1), float(q3)

    def fmt(val, width, spec):
        return f"{val:>{width}{spec}}" if val is not None else f"{'-':>{width}}"

    def fmt_q(q, width, spec):
        text = f"{q[0]:{spec}}-{q[1]:{spec}}" if q is not None else "-"
        return f"{text:>{width}}"

    for shape, axis in shapes:
        for dt in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dt)
            v = rng.standard_normal(shape).astype(dt)
            for c in _cases(x, v, axis, sp):
                mem = _peak_mb(c["ours"])
                mem_sp = _peak_mb(c["scipy"])
                for nt in threads:
                    _set_threads(nt)
                    T, TO, F, E, S, N, P, J = _interleaved_times(
                        [
                            c["ours"],
                            c["ours_out"],
                            c["floor"],
                            c["exp"],
                            c["scipy"],
                            c["numpy"],
                            c["torch"],
                            c["jax"],
                        ],
                        repeat,
                        evict,
                    )
                    t, to = float(np.median(T)), float(np.median(TO))
                    peers = [p for p in (S, N, P, J) if p is not None]
                    best = np.min(np.vstack(peers), axis=0)
                    r = dict(
                        op=c["name"],
                        dtype=np.dtype(dt).name,
                        shape=shape,
                        axis=axis,
                        threads=nt,
                        ms=t * 1e3,
                        out_ms=to * 1e3,
                        floor=ratio(TO, F),
                        exp=ratio(TO, E) if E is not None else None,
                        scipy=ratio(S, T),
                        numpy=ratio(N, T),
                        torch=ratio(P, T),
                        jax=ratio(J, T),
                        best=ratio(best, T),
                        mb=mem,
                        scipy_mb=mem_sp,
                        floor_q=quartiles(TO, F),
                        scipy_q=quartiles(S, T),
                    )
                    rows.append(r)
                    print(
                        f"{r['op']:<12}{r['dtype']:<8}{str(shape):<17}"
                        f"{str(axis):<5}{nt:>3}{r['ms']:>9.3f}{r['out_ms']:>9.3f}"
                        f"{fmt(r['floor'], 7, '.2f')}{fmt(r['exp'], 6, '.2f')}"
                        f"{fmt(r['scipy'], 7, '.1f')}{fmt(r['numpy'], 7, '.1f')}"
                        f"{fmt(r['torch'], 7, '.1f')}{fmt(r['jax'], 6, '.1f')}"
                        f"{fmt(r['best'], 6, '.1f')}"
                        f"{fmt(mem, 7, '.1f')}{fmt(mem_sp, 9, '.1f')}"
                        f"{fmt_q(r['floor_q'], 12, '.2f')}"
                        f"{fmt_q(r['scipy_q'], 12, '.1f')}",
                        file=out,
                        flush=True,
                    )
    _set_threads(0)
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


def _busy_note(threads):
    """A warning, before the table, when other work shares the cores: the load
    average over the last minute is more than one core above what the most
    threads timed would leave idle. Else ''. Shared machines make such runs
    slow and noisy; the ratios, measured side by side, suffer less."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return ""
    cores = os.cpu_count() or 1
    if load <= cores - max(threads) + 1:
        return ""
    return (
        f"note: load average {load:.1f} on {cores} cores: other work is running, "
        f"so the times (and the {max(threads)}-thread rows most) may be slow"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m lsm_ext.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--repeat", type=int, default=None, help="repeats per timing")
    ap.add_argument(
        "--cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold (default): every timed call starts with its "
        "arrays out of cache; warm: as the call before left them",
    )
    ap.add_argument(
        "--threads",
        default=None,
        help="comma-separated thread counts to run at (default: 1 "
        "with --quick, else 1,2)",
    )
    ap.add_argument(
        "--shapes",
        default=None,
        help="only the shapes whose text contains this, e.g. 4096",
    )
    ap.add_argument(
        "--jax", action="store_true", help="add JAX (CPU, jitted, one thread) as a peer"
    )
    args = ap.parse_args(argv)
    if args.jax:  # before JAX starts its thread pool: one thread, float64 on
        import os

        os.environ.setdefault(
            "XLA_FLAGS",
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        )
        import jax

        jax.config.update("jax_enable_x64", True)
    threads = tuple(
        int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")
    )
    print(
        f"lsm_ext {lx.__version__}  numpy {np.__version__}  isa {lx.isa()}  "
        f"threads {','.join(map(str, threads))}  cache {args.cache}"
    )
    print("self-check:", self_check())
    shapes = QUICK_SHAPES if args.quick else FULL_SHAPES
    if args.shapes:
        shapes = [sa for sa in shapes if args.shapes in str(sa[0])]
    repeat = args.repeat or (3 if args.quick else 7)
    busy = _busy_note(threads)
    if busy:
        print(busy)
    print()
    benchmark(shapes, repeat, cache=args.cache, threads=threads)
    small_call_latency()


if __name__ == "__main__":
    main()
