"""asv suite: lsm_ext's ops on the shapes of the benchmark table, at 1 and 2
threads, time and peak memory, with the bandwidth floors beside them.

    cd benchmarks && asv run --python=same --quick     # against the installed lsm_ext
    cd benchmarks && asv continuous main HEAD            # two commits, built by asv

Times here are per call on warm data (asv repeats a call back to back); the
README's table (python -m lsm_ext.bench) gives side-by-side ratios on cold
data.
"""

import numpy as np

import lsm_ext as lx

SHAPES = {
    "1M x 8": ((1_000_000, 8), -1),
    "65536 x 128": ((65536, 128), -1),
    "4096 x 1024": ((4096, 1024), -1),
    "512 x 32000": ((512, 32000), -1),
    "8 x 2M": ((8, 2_000_000), -1),
    "4M, axis None": ((4_000_000,), None),
    "2048 x 4096, axis 0": ((2048, 4096), 0),
}
OPS = ["logsumexp", "softmax", "log_softmax", "jvp", "vjp", "copy floor"]


class Ops:
    """Time of one out= call (no allocation) of each op."""

    params = (list(SHAPES), ["float32", "float64"], OPS, [1, 2])
    param_names = ["shape", "dtype", "op", "threads"]
    timeout = 300

    def setup(self, shape, dtype, op, threads):
        shp, self.axis = SHAPES[shape]
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal(shp).astype(dtype)
        self.v = rng.standard_normal(shp).astype(dtype)
        self.o1, self.o2 = np.empty_like(self.x), np.empty_like(self.x)
        self.r = np.empty_like(lx.logsumexp(self.x, axis=self.axis))
        lx.set_num_threads(threads)

    def teardown(self, *args):
        lx.set_num_threads(0)

    def time_op(self, shape, dtype, op, threads):
        x, v, axis = self.x, self.v, self.axis
        if op == "logsumexp":
            lx.logsumexp(x, axis=axis, out=self.r)
        elif op == "softmax":
            lx.softmax(x, axis=axis, out=self.o1)
        elif op == "log_softmax":
            lx.log_softmax(x, axis=axis, out=self.o1)
        elif op == "jvp":
            lx.log_softmax_jvp(x, v, axis=axis, out=(self.o1, self.o2))
        elif op == "vjp":
            lx.log_softmax_vjp(x, v, axis=axis, out=self.o1)
        else:
            np.copyto(self.o1, x)


class PeakMemory:
    """Peak memory of a plain call (it allocates its result only)."""

    params = (
        ["4096 x 1024", "4M, axis None"],
        ["float32", "float64"],
        ["logsumexp", "softmax", "log_softmax"],
    )
    param_names = ["shape", "dtype", "op"]

    def setup(self, shape, dtype, op):
        shp, self.axis = SHAPES[shape]
        self.x = np.random.default_rng(0).standard_normal(shp).astype(dtype)

    def peakmem_op(self, shape, dtype, op):
        getattr(lx, op)(self.x, axis=self.axis)
