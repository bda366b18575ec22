"""A typed user of lsm_ext's API, checked by mypy in CI (`mypy
tests/typing/usage.py`): the public functions and their keyword arguments
type-check as a user would call them, and return_sign=True gives a pair."""

import numpy as np
import numpy.typing as npt

import lsm_ext as lx


def log_probs(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    y: npt.NDArray[np.float32] = lx.log_softmax(logits, axis=-1)
    return y


def total(a: npt.NDArray[np.float64]) -> float:
    res, sign = lx.logsumexp(a, axis=(0, 1), b=2.0, keepdims=False, return_sign=True)
    return float(res) * float(sign)


def tangent(x: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> None:
    y, dy = lx.log_softmax_jvp(x, v, axis=1)
    dx = lx.log_softmax_vjp(y, dy, axis=1)
    lx.softmax(x, axis=None, out=dx)
    lx.set_num_threads(2)
    n: int = lx.get_num_threads()
    lx.set_stream_bytes(16 << 20)
    nb: int = lx.get_stream_bytes()
    isa: str = lx.isa()
    print(n, nb, isa)
