"""lsm_ext: fast, numerically stable logsumexp, softmax, log_softmax and their
derivatives (JVP and VJP of log_softmax), a drop-in for scipy.special."""

from ._core import (
    get_num_threads,
    get_stream_bytes,
    isa,
    set_num_threads,
    set_stream_bytes,
)
from ._outcache import output_cache_info, set_output_cache
from ._dispatch import (
    log_softmax,
    log_softmax_jvp,
    log_softmax_vjp,
    logsumexp,
    softmax,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "isa",
    "set_num_threads",
    "get_num_threads",
    "set_stream_bytes",
    "get_stream_bytes",
    "logsumexp",
    "softmax",
    "log_softmax",
    "log_softmax_jvp",
    "log_softmax_vjp",
    "set_output_cache",
    "output_cache_info",
]
