"""Threads: a kernel call shares its rows / column blocks among threads.

The results must be the same, bit for bit, with 1 and with 2 threads (each
row or column block is computed by one thread, with the same code), and
still agree with SciPy; the thread setting follows set_num_threads, then
OpenMP's own setting (OMP_NUM_THREADS, threadpoolctl).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sc
from numpy.testing import assert_allclose, assert_array_equal

import lsm_ext as lx


def _has_openmp():
    old = lx.get_num_threads()
    lx.set_num_threads(2)
    try:
        return lx.get_num_threads() == 2
    finally:
        lx.set_num_threads(0 if old == lx.get_num_threads() else old)


needs_openmp = pytest.mark.skipif(
    not _has_openmp(), reason="lsm_ext built without OpenMP"
)


@pytest.fixture
def restore_threads():
    yield
    lx.set_num_threads(0)


# (shape, axis): short packed rows, rows of one and of several chunks,
# strided rows, column blocks (axis not last), a 3-d middle axis, all axes,
# one long row
CASES = [
    ((20000, 8), -1),
    ((300, 1000), -1),
    ((40, 3000), -1),
    ((1000, 300), 0),
    ((4, 700, 300), 1),
    ((300, 1000), None),
    ((3000, 40)[::-1], 0),
    ((1, 1_100_000), -1),  # one row long enough that threads share its blocks
]


def _all_ops(x, v, axis):
    lse = lx.logsumexp(x, axis=axis)
    lse_b, sign = lx.logsumexp(x, axis=axis, b=v, return_sign=True)
    y, dy = lx.log_softmax_jvp(x, v, axis=axis)
    return [
        lse,
        lse_b,
        sign,
        lx.softmax(x, axis=axis),
        lx.log_softmax(x, axis=axis),
        y,
        dy,
        lx.log_softmax_vjp(y, v, axis=axis),
    ]


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CASES)
def test_one_and_two_threads_agree_bit_for_bit(shape, axis, dtype, restore_threads):
    rng = np.random.default_rng(5)
    x = (4 * rng.standard_normal(shape)).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    if x.shape[0] > 1:  # special rows among regular ones (not the one row)
        x.flat[x.size // 2] = np.inf
        x.flat[x.size // 3] = np.nan
    lx.set_num_threads(1)
    one = _all_ops(x, v, axis)
    lx.set_num_threads(2)
    two = _all_ops(x, v, axis)
    for a, b in zip(one, two):
        assert_array_equal(a, b)
    # and the 2-thread answers are right (SciPy in float64 as reference)
    x64 = x.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    with np.errstate(all="ignore"):  # SciPy's inf - inf in the +inf rows
        ref_ls = sc.log_softmax(x64, axis=axis)
        ref_lse = sc.logsumexp(x64, axis=axis)
    assert_allclose(two[4], ref_ls, rtol=tol, atol=tol)
    assert_allclose(two[0], ref_lse, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [100, 200, 511, 512, 513, 1024, 1500, 5000])
def test_rows_are_computed_as_alone(n, dtype, restore_threads):
    """Each row's results are those of the row alone, bit for bit: rows in
    pairs, and rows whose first chunk's max the previous row reads along with
    its own last chunk, still give each row its own answer, next to special
    rows (nan, +inf, -inf only, one finite entry among -inf)."""
    rng = np.random.default_rng(11)
    x = (6 * rng.standard_normal((24, n))).astype(dtype)
    v = rng.standard_normal((24, n)).astype(dtype)
    x[3, n // 2] = np.nan
    x[6, 0] = np.inf
    x[9] = -np.inf
    x[12] = -np.inf
    x[12, -1] = 2.0
    x[15, -1] = 60.0  # a max in the last chunk, far above the rest
    x[18, : n // 2] = -np.inf
    for threads in (1, 2):
        lx.set_num_threads(threads)
        with np.errstate(all="ignore"):
            together = [
                lx.logsumexp(x, axis=-1),
                lx.softmax(x, axis=-1),
                lx.log_softmax(x, axis=-1),
                *lx.log_softmax_jvp(x, v, axis=-1),
            ]
            alone = [
                np.array([lx.logsumexp(r) for r in x]),
                np.array([lx.softmax(r) for r in x]),
                np.array([lx.log_softmax(r) for r in x]),
                *map(
                    np.array,
                    zip(*(lx.log_softmax_jvp(r, w) for r, w in zip(x, v))),
                ),
            ]
        for a, b in zip(together, alone):
            assert_array_equal(a, b)
    with np.errstate(all="ignore"):  # SciPy's inf - inf in the +inf row
        ref = sc.logsumexp(x.astype(np.float64), axis=-1)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert_allclose(together[0], ref, rtol=tol, atol=tol)


@needs_openmp
def test_out_in_place_with_two_threads(restore_threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 1000))
    lx.set_num_threads(2)
    ref = lx.log_softmax(x, axis=-1)
    xx = x.copy()
    assert lx.log_softmax(xx, axis=-1, out=xx) is xx
    assert_array_equal(xx, ref)


def test_set_num_threads(restore_threads):
    lx.set_num_threads(1)
    assert lx.get_num_threads() == 1
    with pytest.raises(ValueError):
        lx.set_num_threads(-1)
    lx.set_num_threads(0)
    assert lx.get_num_threads() >= 1


@needs_openmp
def test_threadpoolctl_limits_apply(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    lx.set_num_threads(0)  # follow OpenMP's setting
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert lx.get_num_threads() == 1
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert lx.get_num_threads() == 2
    lx.set_num_threads(1)  # an explicit setting wins
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert lx.get_num_threads() == 1


_FORK_SCRIPT = """
import multiprocessing, sys
import numpy as np
import lsm_ext as lx

def child(x, q):
    q.put(lx.log_softmax(x, axis=-1))

if __name__ == "__main__":
    x = np.random.default_rng(7).standard_normal((300, 1000))
    lx.set_num_threads(2)
    ref = lx.log_softmax(x, axis=-1)  # the parent's pool is up
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(x, q))
    p.start()
    try:
        got = q.get(timeout=60)  # before join: the queue must drain first
    except Exception:
        got = None
    p.join(10)
    if p.exitcode is None:
        p.kill()
    ok = got is not None and p.exitcode == 0 and np.array_equal(got, ref)
    print("same" if ok else "hung or failed")
"""


@needs_openmp
@pytest.mark.skipif(sys.platform != "linux", reason="fork start method: Linux")
def test_forked_child_does_not_hang(tmp_path):
    """GNU OpenMP's pool does not survive fork(): a child that entered a
    parallel region after its parent used the pool would hang. The child
    runs its calls on one thread instead, with the same results. (In a fresh
    interpreter: other libraries that this test session imports, such as
    JAX, refuse fork themselves.)"""
    script = tmp_path / "fork_child.py"
    script.write_text(_FORK_SCRIPT)
    r = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "same", "the forked child hung or failed"
