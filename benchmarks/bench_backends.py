"""Our functions on other array libraries, against those libraries' own.

    python benchmarks/bench_backends.py [--repeat 9] [--dask-gb 2]

Part 1, (4096, 1024) float32 over the last axis, one thread everywhere
(lsm_ext, PyTorch, JAX's XLA pool limited by flags): log_softmax and
logsumexp as

* ``numpy``: lsm_ext on a NumPy array (the C kernels);
* ``torch``: lsm_ext on a CPU tensor without grad (zero-copy to the C
  kernels) vs ``torch.log_softmax`` / ``torch.logsumexp``, and vs lsm_ext on
  a tensor that requires grad (the generic array-API path);
* ``jax``: lsm_ext on a concrete CPU array (zero-copy) vs ``jax.nn`` jitted,
  and lsm_ext inside ``jax.jit`` (the generic path, traced);
* ``array_api_strict``: the generic path.

Part 2: a dask array of about --dask-gb GB (float64, rows of 2**17 cut into
4 chunks along the reduced axis) on a LocalCluster of 2 worker processes, 1
thread each: logsumexp and log_softmax (the result persisted on the
workers), against the NumPy path on the same data in this process
(log_softmax into a preallocated out=: fresh pages for 2 GB would dominate).
Medians of --repeat runs; ratios of times measured in the same run.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import numpy as np  # noqa: E402

import lsm_ext as lx  # noqa: E402


def _t(f, repeat):
    f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def part1(repeat):
    lx.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal((4096, 1024)).astype(np.float32)
    rows = []
    for op in ("log_softmax", "logsumexp"):
        f = getattr(lx, op)
        base = _t(lambda: f(x, axis=-1), repeat)
        rows.append((op, "numpy", "lsm_ext (C kernels)", base, None))
        try:
            import torch

            torch.set_num_threads(1)
            tx = torch.from_numpy(x)
            own = getattr(torch, op)
            t_ours = _t(lambda: f(tx, axis=-1), repeat)
            t_own = _t(lambda: own(tx, -1), repeat)
            rows.append((op, "torch", "lsm_ext, zero-copy", t_ours, t_own))
            tg = tx.clone().requires_grad_()
            t_gen = _t(lambda: f(tg, axis=-1), repeat)
            t_own_g = _t(lambda: own(tg, -1), repeat)
            rows.append(
                (op, "torch", "lsm_ext, requires_grad (generic)", t_gen, t_own_g)
            )
        except ImportError:
            pass
        try:
            import jax
            import jax.numpy as jnp

            jx = jnp.asarray(x)
            own = jax.jit(
                {
                    "log_softmax": lambda a: jax.nn.log_softmax(a, axis=-1),
                    "logsumexp": lambda a: jax.nn.logsumexp(a, axis=-1),
                }[op]
            )
            jit_ours = jax.jit(lambda a: f(a, axis=-1))
            t_ours = _t(lambda: f(jx, axis=-1), repeat)
            t_own = _t(lambda: own(jx).block_until_ready(), repeat)
            t_jit = _t(lambda: jit_ours(jx).block_until_ready(), repeat)
            rows.append((op, "jax", "lsm_ext, zero-copy", t_ours, t_own))
            rows.append((op, "jax", "lsm_ext inside jax.jit (generic)", t_jit, t_own))
        except ImportError:
            pass
        try:
            import array_api_strict as xps

            sx = xps.asarray(x)
            rows.append(
                (
                    op,
                    "array_api_strict",
                    "lsm_ext (generic)",
                    _t(lambda: f(sx, axis=-1), repeat),
                    None,
                )
            )
        except ImportError:
            pass
    print("(4096, 1024) float32, axis -1, 1 thread; own = the library's function")
    print(
        f"{'op':12}{'library':18}{'call':34}{'ms':>8}{'own ms':>8}{'xOwn':>6}{'/numpy':>8}"
    )
    for op, lib, call, t, own in rows:
        base = next(r[3] for r in rows if r[0] == op and r[1] == "numpy")
        print(
            f"{op:12}{lib:18}{call:34}{t:8.2f}"
            f"{(own if own else float('nan')):8.2f}"
            f"{(own / t if own else float('nan')):6.2f}{t / base:8.2f}"
        )


def part2(repeat, gb):
    import dask.array as da
    import distributed

    n = 1 << 17
    rows = max(2, int(gb * 2**30 / 8 / n))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cl,
        distributed.Client(cl) as client,
    ):
        xd = (
            da.random.default_rng(0)
            .standard_normal((rows, n), chunks=(max(1, rows // 8), n // 4))
            .persist()
        )
        distributed.wait(xd)
        print(
            f"\ndask: ({rows}, {n}) float64 = {xd.nbytes / 2**30:.2f} GiB, "
            f"chunks {xd.chunksize}, LocalCluster 2 processes x 1 thread"
        )
        x = xd.compute()
        lx.set_num_threads(1)

        def d_lse():
            lx.logsumexp(xd, axis=1).compute()

        def d_ls():
            # persisted on the workers, then released (a later persist of the
            # same graph would otherwise find it done)
            t0 = time.perf_counter()
            r = lx.log_softmax(xd, axis=1).persist()
            distributed.wait(r)
            t = time.perf_counter() - t0
            client.cancel(r)
            del r
            time.sleep(1.0)
            return t

        out = np.empty_like(x)
        k = max(3, repeat // 3)
        for op, fd, fn in (
            ("logsumexp", d_lse, lambda: lx.logsumexp(x, axis=1)),
            ("log_softmax", d_ls, lambda: lx.log_softmax(x, axis=1, out=out)),
        ):
            if op == "log_softmax":
                fd()
                td = statistics.median(fd() for _ in range(k)) * 1e3
            else:
                td = _t(fd, k)
            tn = _t(fn, k)
            print(
                f"{op:12} dask {td:9.1f} ms   numpy (1 process, 1 thread) "
                f"{tn:9.1f} ms   numpy/dask {tn / td:5.2f}"
            )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--dask-gb", type=float, default=2.0)
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args()
    part1(a.repeat)
    if not a.no_dask:
        part2(a.repeat, a.dask_gb)


if __name__ == "__main__":
    main()
