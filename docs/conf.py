"""Sphinx configuration of the lsm_ext documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html``; the examples run
with ``sphinx-build -W -b doctest docs docs/_build/doctest`` (both in CI).
"""

import os
import sys

import lsm_ext

# the speed page's plot, drawn from the benchmark output kept beside the docs
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import speed_plot  # noqa: E402

os.makedirs(os.path.join(_HERE, "_static"), exist_ok=True)
speed_plot.main(
    os.path.join(_HERE, "bench_output.txt"), os.path.join(_HERE, "_static", "speed.svg")
)

project = "lsm_ext"
author = "the lsm_ext developers"
copyright = "2026, the lsm_ext developers"
release = version = lsm_ext.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_typehints = "none"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
doctest_global_setup = "import numpy as np\nimport lsm_ext as lx"
