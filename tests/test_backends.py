"""Every public function on every array library: the result is an array of
the input's library, equal to the NumPy path's within the accuracy bounds.

Backends: NumPy, read-only NumPy, array-api-strict, PyTorch (CPU), JAX (CPU),
Dask (chunks smaller than the reduced axis: the blocked merge runs) and CuPy
(skipped without a GPU; more in test_cupy.py). A library that is not
installed skips, unless LSM_EXT_REQUIRE_BACKENDS=1 (set by .ci/run, which
installs all but CuPy) makes that a failure.
"""

import os

import numpy as np
import pytest

import lsm_ext as lx

REQUIRE = os.environ.get("LSM_EXT_REQUIRE_BACKENDS") == "1"


def _need(mod):
    try:
        return __import__(mod)
    except ImportError:
        if REQUIRE:
            pytest.fail(f"{mod} is not installed (LSM_EXT_REQUIRE_BACKENDS=1)")
        pytest.skip(f"{mod} is not installed")


def _numpy_ro(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _backend(name):
    """(to the library, back to NumPy, the library's array type)."""
    # a 0-d NumPy result is a NumPy scalar, as in SciPy
    if name == "numpy":
        return np.asarray, np.asarray, (np.ndarray, np.generic)
    if name == "numpy-readonly":
        return _numpy_ro, np.asarray, (np.ndarray, np.generic)
    if name == "array_api_strict":
        xps = _need("array_api_strict")
        return xps.asarray, np.asarray, type(xps.asarray(1.0))
    if name == "torch":
        torch = _need("torch")
        return (
            lambda a: torch.from_numpy(np.array(a)),
            lambda t: t.detach().numpy(),
            torch.Tensor,
        )
    if name == "jax":
        jax = _need("jax")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return jnp.asarray, np.asarray, jax.Array
    if name == "dask":
        _need("dask.array")
        import dask.array as da

        return (
            lambda a: da.from_array(np.asarray(a), chunks=2),
            lambda d: np.asarray(d.compute()),
            da.Array,
        )
    if name == "cupy":
        try:
            import cupy
        except ImportError:
            pytest.skip("CuPy is not installed")
        from lsm_ext import _cupy

        if not _cupy.gpu_available():
            pytest.skip("no CUDA device visible to CuPy")
        return cupy.asarray, cupy.asnumpy, cupy.ndarray
    raise AssertionError(name)


BACKENDS = [
    "numpy",
    "numpy-readonly",
    "array_api_strict",
    "torch",
    "jax",
    "dask",
    "cupy",
]
EPS = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float64): 2.0**-52}


def _ops(x, v, axis):
    y = lx.log_softmax(x, axis=axis)
    return {
        "logsumexp": lambda: lx.logsumexp(x, axis=axis),
        "logsumexp_b": lambda: lx.logsumexp(x, axis=axis, b=v, return_sign=True),
        "logsumexp_keep": lambda: lx.logsumexp(x, axis=axis, keepdims=True),
        "softmax": lambda: lx.softmax(x, axis=axis),
        "log_softmax": lambda: y,
        "jvp": lambda: lx.log_softmax_jvp(x, v, axis=axis),
        "vjp": lambda: lx.log_softmax_vjp(y, v, axis=axis),
    }


def _compare(got, want, back, kind, dtype, scale):
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, kind), type(g)
        h, w = back(g), np.asarray(w)
        assert h.shape == w.shape and h.dtype == w.dtype
        np.testing.assert_array_equal(np.isnan(h), np.isnan(w))
        fin = np.isfinite(w)
        np.testing.assert_array_equal(h[~fin], w[~fin])
        tol = 16 * EPS[np.dtype(dtype)] * max(1.0, scale)
        assert np.all(np.abs(h[fin] - w[fin]) <= tol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis",
    [((6, 9), -1), ((6, 9), 0), ((3, 4, 5), (0, 2)), ((7,), None), ((2, 1000), 1)],
)
def test_every_op_matches_numpy(backend, dtype, shape, axis):
    to, back, kind = _backend(backend)
    rng = np.random.default_rng(len(shape) + shape[0])
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    v = rng.standard_normal(shape).astype(dtype)
    want = {k: f() for k, f in _ops(x, v, axis).items()}
    got = _ops(to(x), to(v), axis)
    for name, f in got.items():
        _compare(f(), want[name], back, kind, dtype, float(np.max(np.abs(x))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_special_values_and_accuracy(backend):
    to, back, kind = _backend(backend)
    inf, nan = np.inf, np.nan
    x = np.array(
        [
            [0.0, -inf, inf],
            [nan, 0.0, 1.0],
            [-inf, -inf, -inf],
            [0.0, -40.0, -1000.0],
            [inf, inf, 1.0],
        ]
    )
    v = np.ones_like(x)
    for name, f in _ops(to(x), to(v), 1).items():
        _compare(f(), _ops(x, v, 1)[name](), back, kind, np.float64, 1.0)
    # the max entry keeps its accuracy (SciPy and PyTorch return 0 there)
    y = back(lx.log_softmax(to(np.array([0.0, -40.0]))))
    assert y[0] == pytest.approx(-4.248354255291589e-18, rel=1e-12)


@pytest.mark.parametrize(
    "backend", ["array_api_strict", "torch", "jax", "dask", "cupy"]
)
def test_dtypes_and_errors(backend):
    to, back, kind = _backend(backend)
    xi = to(np.arange(6, dtype=np.int64).reshape(2, 3))
    assert back(lx.logsumexp(xi, axis=1)).dtype == np.float64
    assert back(lx.softmax(xi, axis=1)).dtype == np.float64
    with pytest.raises(np.exceptions.AxisError):
        lx.softmax(to(np.ones((2, 3))), axis=2)
    with pytest.raises(ValueError):
        lx.log_softmax_jvp(to(np.ones(3)), to(np.ones(4)))
    with pytest.raises(TypeError):
        lx.log_softmax_jvp(to(np.ones(3)), np.ones(3))  # two libraries
    with pytest.raises(TypeError):
        lx.softmax(to(np.ones(3)), out=np.empty(3))


def test_torch_autograd_through_generic_path():
    torch = _need("torch")
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.standard_normal((4, 7)), requires_grad=True)
    g = torch.tensor(rng.standard_normal((4, 7)))
    y = lx.log_softmax(x, axis=1)
    assert y.requires_grad
    (y * g).sum().backward()
    want = g - torch.exp(y.detach()) * g.sum(1, keepdim=True)  # analytic VJP
    torch.testing.assert_close(x.grad, want, rtol=1e-12, atol=1e-12)
    # central differences of logsumexp
    x2 = torch.tensor(rng.standard_normal(5), requires_grad=True)
    lx.logsumexp(x2).backward()
    h = 1e-6
    for i in range(5):
        e = torch.zeros(5, dtype=torch.float64)
        e[i] = h
        fd = (lx.logsumexp(x2.detach() + e) - lx.logsumexp(x2.detach() - e)) / (2 * h)
        assert abs(float(fd) - float(x2.grad[i])) < 1e-8


def test_jax_jit_and_grad():
    jax = _need("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x = jnp.asarray(np.random.default_rng(6).standard_normal((3, 8)))
    f = jax.jit(lambda a: lx.log_softmax(a, axis=1))
    np.testing.assert_allclose(
        np.asarray(f(x)), lx.log_softmax(np.asarray(x), axis=1), rtol=0, atol=1e-14
    )
    gr = jax.grad(lambda a: lx.logsumexp(a, axis=1).sum())(x)
    np.testing.assert_allclose(
        np.asarray(gr), lx.softmax(np.asarray(x), axis=1), rtol=0, atol=1e-14
    )
    _, dy = jax.jvp(lambda a: lx.softmax(a, axis=1), (x,), (jnp.ones_like(x),))
    np.testing.assert_allclose(
        np.asarray(dy), 0, atol=1e-14
    )  # softmax(x + t) = softmax(x)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_zero_copy_route_runs_the_c_kernels(backend):
    # a CPU tensor without grad / a concrete JAX array: the C kernels' bits
    to, back, kind = _backend(backend)
    x = np.random.default_rng(7).standard_normal((64, 300)).astype(np.float32)
    for f in (lx.softmax, lx.log_softmax, lx.logsumexp):
        r = f(to(x), axis=1)
        assert isinstance(r, kind)
        np.testing.assert_array_equal(back(r), f(x, axis=1))


def test_weights_of_logsumexp_join_the_dispatch():
    """b picks the route with a: a NumPy b beside a torch a is two libraries
    (TypeError), and a b that requires grad takes the generic path, with its
    gradient (d/db log sum b e^a = e^a / sum b e^a)."""
    torch = _need("torch")
    a = torch.tensor(np.random.default_rng(8).standard_normal((3, 4)))
    with pytest.raises(TypeError):
        lx.logsumexp(a, axis=1, b=np.ones((3, 4)))
    b = torch.full((3, 4), 0.5, dtype=torch.float64, requires_grad=True)
    r = lx.logsumexp(a, axis=1, b=b)
    assert r.requires_grad
    r.sum().backward()
    e = torch.exp(a)
    want = e / (0.5 * e).sum(1, keepdim=True)
    torch.testing.assert_close(b.grad, want, rtol=1e-12, atol=1e-12)
