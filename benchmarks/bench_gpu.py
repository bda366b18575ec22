"""GPU benchmark of the CuPy backend (needs CuPy and a CUDA device).

    python benchmarks/bench_gpu.py [--repeat 20]

For each op and shape: our time, cupyx.scipy.special's (logsumexp, softmax,
log_softmax), PyTorch CUDA's when installed (torch.logsumexp, softmax,
log_softmax, torch.func.jvp of log_softmax, log_softmax's backward), and a
device-to-device copy of the same bytes (the bandwidth floor: read + write
of the input). Times are medians of CUDA-event timings after a warm-up call
(which also compiles our kernels); ratios are of times taken in the same run.
"""

import argparse
import statistics

import numpy as np

SHAPES = [
    ((1_000_000, 8), -1),
    ((65536, 128), -1),
    ((4096, 1024), -1),
    ((4096, 1152), -1),
    ((512, 32000), -1),
    ((8, 2_000_000), -1),
    ((2048, 4096), 0),
]
OPS = ["logsumexp", "softmax", "log_softmax", "jvp", "vjp"]


def _time(cp, f, repeat):
    f()
    cp.cuda.runtime.deviceSynchronize()
    ts = []
    for _ in range(repeat):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        f()
        b.record()
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b) * 1e3)  # us
    return statistics.median(ts)


def main():
    import cupy as cp
    import cupyx.scipy.special as cps

    import lsm_ext as lx

    try:
        import torch
    except ImportError:
        torch = None
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    print(f"device {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
    print(
        f"{'op':12}{'dtype':9}{'shape':18}{'axis':>5}{'us':>10}{'copy us':>10}"
        f"{'%copy':>7}{'xCuPy':>7}{'xTorch':>7}"
    )
    for dt in (np.float32, np.float16, np.float64):
        for shape, axis in SHAPES:
            rng = cp.random.default_rng(0)
            x = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(dt)
            v = rng.standard_normal(shape, dtype=np.float32).astype(dt)
            o = cp.empty_like(x)
            t_copy = _time(cp, lambda: cp.copyto(o, x), args.repeat)
            tx = tv = None
            if torch is not None:
                tx = torch.from_dlpack(x)
                tv = torch.from_dlpack(v)
            y = lx.log_softmax(x, axis=axis)
            for op in OPS:
                ours = {
                    "logsumexp": lambda: lx.logsumexp(x, axis=axis),
                    "softmax": lambda: lx.softmax(x, axis=axis),
                    "log_softmax": lambda: lx.log_softmax(x, axis=axis),
                    "jvp": lambda: lx.log_softmax_jvp(x, v, axis=axis),
                    "vjp": lambda: lx.log_softmax_vjp(y, v, axis=axis),
                }[op]
                peer = {
                    "logsumexp": lambda: cps.logsumexp(x, axis=axis),
                    "softmax": lambda: cps.softmax(x, axis=axis),
                    "log_softmax": lambda: cps.log_softmax(x, axis=axis),
                }.get(op)
                tpeer = None
                if tx is not None:
                    ty = torch.from_dlpack(y)
                    tpeer = {
                        "logsumexp": lambda: torch.logsumexp(tx, dim=axis),
                        "softmax": lambda: torch.softmax(tx, dim=axis),
                        "log_softmax": lambda: torch.log_softmax(tx, dim=axis),
                        "jvp": lambda: torch.func.jvp(
                            lambda a: torch.log_softmax(a, dim=axis), (tx,), (tv,)
                        ),
                        "vjp": lambda: torch._log_softmax_backward_data(
                            tv, ty, axis, ty.dtype
                        ),
                    }[op]
                t = _time(cp, ours, args.repeat)
                tc = _time(cp, peer, args.repeat) if peer else None
                tt = _time(cp, tpeer, args.repeat) if tpeer else None
                floor = t_copy * (2 if op in ("jvp", "vjp") else 1)
                pct = 100 * floor / t if op != "logsumexp" else float("nan")
                print(
                    f"{op:12}{np.dtype(dt).name:9}{str(shape):18}{str(axis):>5}"
                    f"{t:10.1f}{t_copy:10.1f}{pct:7.0f}"
                    f"{(tc / t if tc else float('nan')):7.2f}"
                    f"{(tt / t if tt else float('nan')):7.2f}"
                )


if __name__ == "__main__":
    main()
