"""The output cache (lsm_ext/_outcache.h): outputs of 1 MiB or more come
through a NumPy memory handler that keeps the blocks of dropped outputs for
reuse. Reuse must never hand out memory still in use, results must equal
SciPy's with or without the cache, the limit must hold, and the arrays must
behave as any NumPy array (own their data, resize, free from other threads).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.special as sc
from numpy.testing import assert_allclose

import lsm_ext as lx

MIB = 1 << 20


@pytest.fixture
def cache():
    """A cache of 64 MiB, emptied before and after the test."""
    prev = lx.set_output_cache(0)
    lx.set_output_cache(64 * MIB)
    yield
    lx.set_output_cache(0)
    lx.set_output_cache(prev)


def _x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_reuse_of_a_dropped_output(cache):
    x = _x((512, 1024))  # 4 MiB outputs
    info0 = lx.output_cache_info()
    y = lx.softmax(x, axis=-1)
    addr = y.__array_interface__["data"][0]
    del y
    gc.collect()
    assert lx.output_cache_info()["held"] == x.nbytes
    y2 = lx.log_softmax(x, axis=-1)
    info1 = lx.output_cache_info()
    assert y2.__array_interface__["data"][0] == addr
    assert info1["hits"] == info0["hits"] + 1
    assert info1["held"] == 0
    assert y2.flags.owndata and y2.flags.c_contiguous and y2.flags.writeable
    # the reused block holds the new result only
    assert_allclose(y2, sc.log_softmax(x, axis=-1), rtol=1e-13, atol=1e-13)


def test_outputs_in_use_are_never_shared(cache):
    xs = [_x((256, 1024), seed=s) for s in range(4)]  # 2 MiB each
    ys = [lx.softmax(x, axis=-1) for x in xs]
    jy, jdy = lx.log_softmax_jvp(xs[0], xs[1], axis=-1)
    del jy
    ys.append(lx.softmax(xs[3], axis=0))  # the column path, reusing jy's block
    addrs = {y.__array_interface__["data"][0] for y in ys + [jdy]}
    assert len(addrs) == len(ys) + 1
    for x, y in zip(xs, ys):
        assert_allclose(y, sc.softmax(x, axis=-1), rtol=1e-13, atol=1e-300)
    assert_allclose(ys[-1], sc.softmax(xs[3], axis=0), rtol=1e-13, atol=1e-300)
    p = sc.softmax(xs[0], axis=-1)
    ref = xs[1] - np.sum(p * xs[1], axis=-1, keepdims=True)
    assert_allclose(jdy, ref, rtol=1e-12, atol=1e-12)


def test_limit_and_eviction(cache):
    x = _x((1024, 1024))  # 8 MiB
    outs = [lx.softmax(x + i, axis=-1) for i in range(10)]  # 80 MiB in all
    del outs
    gc.collect()
    info = lx.output_cache_info()
    assert info["held"] <= 64 * MIB
    assert info["held"] == 8 * (8 * MIB)  # 8 slots of 8 MiB fit under 64 MiB
    lx.set_output_cache(20 * MIB)  # shrinking frees the oldest blocks
    assert lx.output_cache_info()["held"] == 2 * (8 * MIB)
    big = lx.softmax(_x((2048, 2048)), axis=-1)  # 32 MiB: over the limit
    del big
    gc.collect()
    assert lx.output_cache_info()["held"] == 2 * (8 * MIB)


def test_off_caches_nothing(cache):
    lx.set_output_cache(0)
    x = _x((512, 1024))
    h0 = lx.output_cache_info()["hits"]
    for _ in range(3):
        y = lx.softmax(x, axis=-1)
        assert_allclose(y, sc.softmax(x, axis=-1), rtol=1e-13, atol=1e-300)
        del y
    info = lx.output_cache_info()
    assert info["held"] == 0 and info["hits"] == h0 and info["limit"] == 0


def test_small_outputs_bypass_the_cache(cache):
    x = _x((100, 100))  # 80 KB
    m0 = lx.output_cache_info()["misses"]
    y = lx.softmax(x, axis=-1)
    del y
    gc.collect()
    info = lx.output_cache_info()
    assert info["held"] == 0 and info["misses"] == m0


def _at_offset(shape, dtype, offset, seed=0):
    """Random data in a C-contiguous array whose data start `offset` bytes
    past a 64-byte boundary."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dt.itemsize
    raw = np.empty(nbytes + 128, np.uint8)
    start = (-raw.__array_interface__["data"][0]) % 64 + offset
    a = raw[start : start + nbytes].view(dt).reshape(shape)
    a[...] = _x(shape, seed, dt)
    return a


def _offset(a):
    return a.__array_interface__["data"][0] % 64


@pytest.mark.parametrize("limit", [64 * MIB, 0])
@pytest.mark.parametrize("offset", [0, 16, 40])
def test_large_outputs_start_where_the_kernels_write_fastest(cache, limit, offset):
    """Outputs start at the input's offset from a cache line where the kernels
    run fastest so (column blocks, which are cut to the input's lines; the
    VJP; the float32 log_softmax and JVP), else on a line (softmax, the
    float64 log_softmax and JVP); see _core.output_at_input. That offset is
    also their offset into a page."""
    lx.set_output_cache(limit)
    x = _at_offset((512, 1024), np.float32, offset)  # 2 MiB outputs
    x64 = _at_offset((256, 1024), np.float64, offset)
    assert _offset(x) == offset and _offset(x64) == offset
    for _ in range(3):  # fresh blocks, then reused ones (other offsets too)
        on_line = [
            lx.softmax(x, axis=-1),
            lx.softmax(x64, axis=-1),
            lx.log_softmax(x64, axis=-1),
            *lx.log_softmax_jvp(x64, x64, axis=-1),
        ]
        at_input = [
            lx.log_softmax(x, axis=-1),
            *lx.log_softmax_jvp(x, x, axis=-1),
            lx.log_softmax_vjp(x, x, axis=-1),
            lx.log_softmax_vjp(x64, x64, axis=-1),
            lx.log_softmax(x, axis=0),
            *lx.log_softmax_jvp(x, x, axis=0),
        ]
        assert [_offset(y) for y in on_line] == [0] * len(on_line)
        assert [_offset(y) for y in at_input] == [offset] * len(at_input)
        # and no further into their page (a little further than the input
        # would put the stores where its next loads are: see _outcache.h)
        pages = [y.__array_interface__["data"][0] % 4096 for y in on_line + at_input]
        assert pages == [0] * len(on_line) + [offset] * len(at_input)
        assert_allclose(on_line[0], sc.softmax(x, axis=-1), rtol=1e-5, atol=1e-30)
        assert_allclose(at_input[0], sc.log_softmax(x, axis=-1), rtol=1e-5, atol=1e-5)
        assert_allclose(at_input[-3], sc.log_softmax(x, axis=0), rtol=1e-5, atol=1e-5)
        del on_line, at_input
    small = _x((8, 1000))  # below 1 MiB: NumPy's own allocation
    assert_allclose(lx.softmax(small, axis=-1), sc.softmax(small, axis=-1), rtol=1e-13)


def test_resize_and_free_from_other_threads(cache):
    x = _x((512, 1024), dtype=np.float32)  # 2 MiB
    y = lx.softmax(x, axis=-1)  # on a line (_core.output_at_input)
    ref = sc.softmax(x, axis=-1)
    y.resize((1024, 1024), refcheck=False)  # the handler's realloc
    assert_allclose(y[:512], ref, rtol=1e-6, atol=1e-6)
    assert y.__array_interface__["data"][0] % 64 == 0
    y.resize((100, 1024), refcheck=False)  # shrunk below 1 MiB, same handler
    assert_allclose(y, ref[:100], rtol=1e-6, atol=1e-6)
    del y

    errors = []

    def work(seed):
        try:
            for i in range(20):
                xi = _x((300, 1000), seed=seed * 100 + i)
                yi = lx.softmax(xi, axis=-1)
                assert_allclose(yi, sc.softmax(xi, axis=-1), rtol=1e-13, atol=1e-300)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert lx.output_cache_info()["held"] <= 64 * MIB


def _import_with_env(value, cwd):
    """A fresh interpreter's cache limit (run outside the source tree, so that
    it imports the installed package)."""
    env = dict(os.environ, LSM_EXT_OUTPUT_CACHE_MB=value)
    code = "import lsm_ext as lx; print(lx.output_cache_info()['limit'])"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )


def test_environment_variable(tmp_path):
    r = _import_with_env("0", tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stderr
    r = _import_with_env("1.5", tmp_path)
    assert r.returncode == 0 and int(r.stdout) == int(1.5 * MIB), r.stderr
    r = _import_with_env("lots", tmp_path)
    assert r.returncode != 0 and "LSM_EXT_OUTPUT_CACHE_MB" in r.stderr
    with pytest.raises(ValueError, match="nbytes"):
        lx.set_output_cache(-1)
