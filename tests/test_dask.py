"""Dask arrays: lazy blocked computations over the NumPy kernels, equal to
the NumPy path, also with the reduced axis cut into many chunks and on a
dask.distributed LocalCluster of worker processes."""

import os

import numpy as np
import pytest

import lsm_ext as lx

try:
    import dask.array as da
except ImportError:
    if os.environ.get("LSM_EXT_REQUIRE_BACKENDS") == "1":
        raise
    pytest.skip("dask is not installed", allow_module_level=True)


def _data(seed, shape=(30, 200)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 5
    v = rng.standard_normal(shape)
    inf, nan = np.inf, np.nan
    x[1, 5], x[2, :], x[3, 7], x[4, 0], x[6, :] = nan, -inf, inf, -inf, -1e300
    x[5, :2], v[5, :2] = inf, [1.0, -1.0]  # +inf terms of both signs: nan
    v[7, :] = 0
    v[8, ::3] = 0
    x[8, ::3] = nan  # ignored where b == 0
    return x, v


def _check(got, want):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        assert isinstance(g, da.Array)  # lazy
        h = g.compute()
        assert h.shape == np.shape(w) and h.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(h, w, rtol=1e-13, atol=1e-13, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(h), np.isnan(w))


@pytest.mark.parametrize("chunks", [(7, 13), (30, 200), (4, 64), (30, 7)])
@pytest.mark.parametrize("axis", [1, 0, None, (0, 1), -1])
def test_matches_numpy(chunks, axis):
    x, v = _data(sum(chunks))
    xd, vd = da.from_array(x, chunks=chunks), da.from_array(v, chunks=chunks)
    _check(lx.logsumexp(xd, axis=axis), lx.logsumexp(x, axis=axis))
    _check(
        lx.logsumexp(xd, axis=axis, b=vd, return_sign=True),
        lx.logsumexp(x, axis=axis, b=v, return_sign=True),
    )
    _check(lx.logsumexp(xd, axis=axis, b=vd), lx.logsumexp(x, axis=axis, b=v))
    _check(
        lx.logsumexp(xd, axis=axis, keepdims=True, b=3.0),
        lx.logsumexp(x, axis=axis, keepdims=True, b=3.0),
    )
    _check(lx.softmax(xd, axis=axis), lx.softmax(x, axis=axis))
    _check(lx.log_softmax(xd, axis=axis), lx.log_softmax(x, axis=axis))
    _check(lx.log_softmax_jvp(xd, vd, axis=axis), lx.log_softmax_jvp(x, v, axis=axis))
    y = lx.log_softmax(x, axis=axis)
    _check(
        lx.log_softmax_vjp(da.from_array(y, chunks=chunks), vd, axis=axis),
        lx.log_softmax_vjp(y, v, axis=axis),
    )


def test_max_entry_accuracy_across_chunks():
    # the blocks holding the max enter the merge exactly: log_softmax's max
    # entry keeps -4.25e-18 (SciPy gives 0) even next to a large max
    x = np.full(1000, -np.inf)
    x[0], x[999] = 100.0, 60.0
    y = lx.log_softmax(da.from_array(x, chunks=100)).compute()
    assert y[0] == pytest.approx(-4.248354255291589e-18, rel=1e-12)
    assert y[0] == lx.log_softmax(x)[0]


def test_float32_and_errors():
    x, v = _data(3)
    x[6, :] = -1e30  # within float32's range
    x32 = x.astype(np.float32)
    r = lx.log_softmax(da.from_array(x32, chunks=(10, 50)), axis=1)
    assert r.dtype == np.float32
    np.testing.assert_allclose(
        r.compute(), lx.log_softmax(x32, axis=1), rtol=2e-6, atol=2e-5, equal_nan=True
    )
    with pytest.raises(np.exceptions.AxisError):
        lx.softmax(da.ones((2, 3)), axis=2)
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(da.ones(3), np.ones(3))
    with pytest.raises(ValueError):
        lx.log_softmax_jvp(da.ones(3), da.ones(4))


def test_local_cluster_of_processes():
    distributed = pytest.importorskip("distributed")
    # made by dask (not sent in the graph): 8 chunks along the reduced axis
    xd = da.random.default_rng(11).standard_normal((64, 20000), chunks=(16, 2500))
    x = xd.compute()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cl:
        with distributed.Client(cl) as client:
            lse, ls = client.compute(
                [lx.logsumexp(xd, axis=1), lx.log_softmax(xd, axis=1)], sync=True
            )
    np.testing.assert_allclose(lse, lx.logsumexp(x, axis=1), rtol=1e-14)
    np.testing.assert_allclose(ls, lx.log_softmax(x, axis=1), rtol=0, atol=1e-13)
