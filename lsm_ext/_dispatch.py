"""Public API: the functions users call, documented here.

CuPy arrays go to the CuPy backend (``_cupy``: CUDA kernels, CuPy imported
only then); everything else to the NumPy backend (``_numpy``), which converts
array-likes with ``np.asarray`` exactly as scipy.special does. The generic
array-API path plugs in here too.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

from . import _core, _numpy
from ._cupy import is_cupy_array as _is_cupy

# Arrays of any supported library (NumPy, CuPy, array-API namespaces, Dask)
# and array-likes; results are arrays of the caller's library.
ArrayLike = Any
Axis = int | tuple[int, ...] | list[int] | None

_SCALARS = (bool, int, float, complex, list, tuple, np.generic, np.ndarray)


def _backend(*arrays):
    """_numpy for NumPy arrays, array-likes and scalars (as scipy.special);
    _cupy when any argument is a CuPy array (mixing it with another library's
    array is then a TypeError); _dask for dask arrays (blocked computations
    over the NumPy kernels); None for the arrays of other libraries (handled
    by _foreign)."""
    other = False
    for a in arrays:
        if a is None or isinstance(a, _SCALARS):
            continue
        if _is_cupy(a):
            from . import _cupy

            return _cupy
        other = True
    if not other:
        return _numpy
    lib = [
        type(a).__module__.split(".")[0]
        for a in arrays
        if a is not None and not isinstance(a, _SCALARS)
    ]
    if all(m == "dask" for m in lib):
        if any(isinstance(a, np.ndarray) for a in arrays):
            raise TypeError(
                "cannot mix a numpy.ndarray with a dask array; "
                "wrap it with dask.array.from_array first"
            )
        from . import _dask

        return _dask
    return None


def _zero_copy(arrays):
    """For arrays (all of one library) that our kernels can read in place, a
    triple (to the backend's array, back to the library, the backend):
    CPU PyTorch tensors that do not require grad and concrete JAX arrays on
    the CPU (not tracers) go to the C kernels through a NumPy view; such
    tensors on a CUDA GPU go to the CUDA kernels through DLPack where CuPy is
    installed. None otherwise (the generic path runs)."""
    first = arrays[0]
    mod = type(first).__module__.split(".")[0]
    floats = ("float16", "float32", "float64")
    if mod == "torch":
        import torch

        if not all(
            isinstance(a, torch.Tensor)
            and not a.requires_grad
            and str(a.dtype)[6:] in floats
            and not a.is_conj()
            and not a.is_neg()
            for a in arrays
        ):
            return None
        kinds = {a.device.type for a in arrays}
        if kinds == {"cpu"}:
            return (
                lambda t: t.numpy(),
                lambda r: torch.from_numpy(np.asarray(r)),
                _numpy,
            )
        if kinds == {"cuda"} and len({a.device for a in arrays}) == 1:
            return _via_cupy(torch.from_dlpack)
        return None
    if mod in ("jax", "jaxlib"):
        import jax

        if not all(
            isinstance(a, jax.Array)
            and not isinstance(a, jax.core.Tracer)
            and str(a.dtype) in floats
            for a in arrays
        ):
            return None
        platforms = {d.platform for a in arrays for d in a.devices()}
        if platforms == {"cpu"}:
            import jax.numpy as jnp

            return (np.asarray, jnp.asarray, _numpy)
        if platforms == {"gpu"}:
            return _via_cupy(jax.dlpack.from_dlpack)
    return None


def _via_cupy(back):
    """The CUDA route: a CuPy view of the GPU array (DLPack), our CUDA
    kernels, and the result handed back through DLPack; None without CuPy."""
    try:
        import cupy
    except ImportError:
        return None
    from . import _cupy

    return (cupy.from_dlpack, back, _cupy)


def _foreign(name, arrays, options):
    """Run `name` on the arrays of a library other than NumPy and CuPy: the C
    kernels through a zero-copy view where possible, else the generic
    array-API implementation in the arrays' own namespace. arrays: every
    array argument by name (``b`` of logsumexp included, None when absent)."""
    if options.get("out") is not None:
        raise TypeError(f"{name}: out= is supported for NumPy and CuPy arrays")
    options = {k: v for k, v in options.items() if k != "out"}
    from array_api_compat import array_namespace

    libs = [a for a in arrays.values() if a is not None and not isinstance(a, _SCALARS)]
    xp = array_namespace(*libs)  # TypeError for arrays of several libraries
    for a in arrays.values():
        if isinstance(a, np.ndarray):
            raise TypeError(
                f"{name}: cannot mix a numpy.ndarray with "
                f"{type(libs[0]).__module__}.{type(libs[0]).__name__}; "
                "move the arrays to one library first"
            )
    route = _zero_copy(libs)
    if route is not None:
        to, back, backend = route
        conv = {
            k: to(a) if any(a is lib for lib in libs) else a for k, a in arrays.items()
        }
        res = getattr(backend, name)(**conv, **options)
        return tuple(back(r) for r in res) if isinstance(res, tuple) else back(res)
    from . import _generic

    # namespaces that wrap NumPy (array-api-strict) would warn where special
    # rows meet inf - inf; the results there are the intended nan/-inf
    with np.errstate(all="ignore"):
        return getattr(_generic, name)(xp, **arrays, **options)


def _route(name, arrays, **options):
    """Call `name` of the backend that the array arguments (by name) pick."""
    be = _backend(*arrays.values())
    if be is None:
        return _foreign(name, arrays, options)
    return getattr(be, name)(**arrays, **options)


__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "log_softmax_jvp",
    "log_softmax_vjp",
]


@overload
def logsumexp(
    a: ArrayLike,
    axis: Axis = ...,
    b: ArrayLike | None = ...,
    keepdims: bool = ...,
    return_sign: Literal[False] = ...,
    *,
    out: Any = ...,
) -> Any: ...
@overload
def logsumexp(
    a: ArrayLike,
    axis: Axis = ...,
    b: ArrayLike | None = ...,
    keepdims: bool = ...,
    *,
    return_sign: Literal[True],
    out: Any = ...,
) -> tuple[Any, Any]: ...
def logsumexp(
    a: ArrayLike,
    axis: Axis = None,
    b: ArrayLike | None = None,
    keepdims: bool = False,
    return_sign: bool = False,
    *,
    out: Any = None,
) -> Any:
    """Compute ``log(sum(b * exp(a)))`` along the given axes, stably.

    A drop-in replacement for :func:`scipy.special.logsumexp`: same
    signature, result dtypes and answers on inf, nan and empty input.

    Parameters
    ----------
    a : array_like
        Input array. Integer and bool input give float64; float16 gives
        float16 (computed in float32); complex input is supported.
    axis : None or int or tuple of ints, optional
        Axis or axes to reduce over; ``None`` (default) reduces over all
        axes, ``()`` over none.
    b : array_like, optional
        Weights for ``exp(a)``, broadcast together with `a` (the result may
        be larger than `a`). May be negative. Entries where ``b == 0`` are
        ignored, even where `a` is inf or nan.
    keepdims : bool, optional
        Keep the reduced axes as axes of length one.
    return_sign : bool, optional
        If True, return ``(res, sign)`` where ``res = log|sum|`` and ``sign``
        is +1, -1, 0 (or nan). If False, a negative sum gives nan.
    out : ndarray or tuple of two ndarrays, optional
        Where to put the result (keyword only; ``(res, sign)`` with
        `return_sign`): arrays of the result's shape to which its dtype casts
        with ``casting="same_kind"``. Returned in place of new arrays.

    Returns
    -------
    res : ndarray or scalar
        The log of the (absolute value of the) sum; a NumPy scalar when the
        result is 0-d.
    sign : ndarray or scalar
        Only when `return_sign` is True.

    Notes
    -----
    One pass over the data with an online (max, sum) state; the entries
    equal to the max are summed apart, so results close to the max keep
    their relative accuracy (``logsumexp([0, -40])`` is ``4.25e-18``).

    Examples
    --------
    >>> import numpy as np
    >>> import lsm_ext as lx
    >>> float(lx.logsumexp([0.0, 0.0]))  # log(2)
    0.6931471805599453
    >>> lx.logsumexp(np.array([[0.0, 1.0], [2.0, 3.0]]), axis=1)
    array([1.31326169, 3.31326169])
    >>> lx.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    """
    if out is None and b is None and not return_sign:
        r = _core.fast(_core.LOGSUMEXP, a, None, axis, keepdims)
        if r is not None:  # the plain case, in one step (small calls)
            return r
    return _route(
        "logsumexp",
        dict(a=a, b=b),
        axis=axis,
        keepdims=keepdims,
        return_sign=return_sign,
        out=out,
    )


def softmax(x: ArrayLike, axis: Axis = None, *, out: Any = None) -> Any:
    """Compute ``exp(x) / sum(exp(x))`` along the given axes, stably.

    A drop-in replacement for :func:`scipy.special.softmax`.

    Parameters
    ----------
    x : array_like
        Input array. Integer input follows ``np.exp``'s result dtype
        (int8 -> float16, int16 -> float32, wider -> float64); bool input
        raises TypeError, as in SciPy.
    axis : None or int or tuple of ints, optional
        Axes to normalise over; ``None`` (default) means all axes.
    out : ndarray, optional
        Where to put the result (keyword only): an array of `x`'s shape to
        which the result dtype casts with ``casting="same_kind"``; it may be
        `x` itself (an in-place call). Returned in place of a new array.

    Returns
    -------
    s : ndarray or scalar
        Same shape as `x`, summing to 1 along `axis`. Rows holding +inf or
        nan, and rows of only -inf, give nan. An empty `x` gives an empty
        result (SciPy raises).

    Examples
    --------
    >>> import lsm_ext as lx
    >>> lx.softmax([0.0, 0.0, 0.0, 0.0])
    array([0.25, 0.25, 0.25, 0.25])
    """
    if out is None:
        r = _core.fast(_core.SOFTMAX, x, None, axis)
        if r is not None:
            return r
    return _route("softmax", dict(x=x), axis=axis, out=out)


def log_softmax(x: ArrayLike, axis: Axis = None, *, out: Any = None) -> Any:
    """Compute ``x - logsumexp(x)`` along the given axes, stably.

    A drop-in replacement for :func:`scipy.special.log_softmax`, more
    accurate at the max entry: ``log_softmax([0, -40])[0]`` is
    ``-4.25e-18``, where SciPy and PyTorch return exactly 0.

    Parameters
    ----------
    x : array_like
        Input array (dtype rules as :func:`softmax`).
    axis : None or int or tuple of ints, optional
        Axes to normalise over; ``None`` (default) means all axes.
    out : ndarray, optional
        Where to put the result (keyword only): an array of `x`'s shape to
        which the result dtype casts with ``casting="same_kind"``; it may be
        `x` itself (an in-place call). Returned in place of a new array.

    Returns
    -------
    y : ndarray or scalar
        Same shape as `x`; ``exp(y)`` sums to 1 along `axis`.

    Examples
    --------
    >>> import lsm_ext as lx
    >>> lx.log_softmax([1000.0, 1.0])
    array([   0., -999.])
    >>> float(lx.log_softmax([0.0, -40.0])[0])
    -4.248354255291589e-18
    """
    if out is None:
        r = _core.fast(_core.LOG_SOFTMAX, x, None, axis)
        if r is not None:
            return r
    return _route("log_softmax", dict(x=x), axis=axis, out=out)


def log_softmax_jvp(
    x: ArrayLike, v: ArrayLike, axis: Axis = None, *, out: Any = None
) -> tuple[Any, Any]:
    """Primal and tangent of log_softmax, in one fused pass.

    Parameters
    ----------
    x : array_like
        Input of log_softmax.
    v : array_like
        Tangent, same shape as `x`.
    axis : None or int or tuple of ints, optional
        Axes log_softmax normalises over.
    out : tuple of two ndarrays, optional
        Where to put ``(y, dy)`` (keyword only), as for :func:`log_softmax`;
        ``out=(x, v)`` overwrites the inputs.

    Returns
    -------
    y : ndarray
        ``log_softmax(x, axis)``.
    dy : ndarray
        ``v - sum(softmax(x) * v, axis, keepdims=True)``.

    Examples
    --------
    >>> import numpy as np
    >>> import lsm_ext as lx
    >>> y, dy = lx.log_softmax_jvp([0.0, 0.0], [1.0, 3.0])
    >>> dy
    array([-1.,  1.])
    """
    if out is None:
        r = _core.fast(_core.JVP, x, v, axis)
        if r is not None:
            return r
    return _route("log_softmax_jvp", dict(x=x, v=v), axis=axis, out=out)


def log_softmax_vjp(
    y: ArrayLike, g: ArrayLike, axis: Axis = None, *, out: Any = None
) -> Any:
    """Vector-Jacobian product of log_softmax, from its output.

    Parameters
    ----------
    y : array_like
        The output of ``log_softmax(x, axis)``, as backpropagation stores it.
    g : array_like
        Cotangent (gradient with respect to `y`), same shape as `y`.
    axis : None or int or tuple of ints, optional
        Axes log_softmax normalised over.
    out : ndarray, optional
        Where to put the result (keyword only), as for :func:`log_softmax`;
        it may be `y` or `g`.

    Returns
    -------
    dx : ndarray
        ``g - exp(y) * sum(g, axis, keepdims=True)``, the gradient with
        respect to ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> import lsm_ext as lx
    >>> lx.log_softmax_vjp(np.log([0.5, 0.5]), [1.0, 0.0])
    array([ 0.5, -0.5])
    """
    if out is None:
        r = _core.fast(_core.VJP, y, g, axis)
        if r is not None:
            return r
    return _route("log_softmax_vjp", dict(y=y, g=g), axis=axis, out=out)
