"""Type stubs for the output cache (lsm_ext/_outcache.pyx)."""

import numpy as np
import numpy.typing as npt

DEFAULT_LIMIT_MB: int
MIN_BYTES: int

def empty(
    shape: int | tuple[int, ...],
    dtype: npt.DTypeLike,
    like: npt.NDArray[np.generic] | None = None,
) -> npt.NDArray[np.generic]: ...
def set_output_cache(nbytes: int) -> int: ...
def output_cache_info() -> dict[str, int]: ...
