"""The examples in README.md run as doctests (the outputs shown are the
outputs produced)."""

import doctest
import os
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples():
    try:
        import torch  # noqa: F401  (one example shows a torch tensor)
    except ImportError:
        if os.environ.get("LSM_EXT_REQUIRE_BACKENDS") == "1":
            raise
        pytest.skip("torch is not installed")
    res = doctest.testfile(
        str(README),
        module_relative=False,
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS,
    )
    assert res.attempted >= 10
    assert res.failed == 0
