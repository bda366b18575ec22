"""Sphinx configuration of the lsm_ext documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html``; the examples run
with ``sphinx-build -W -b doctest docs docs/_build/doctest`` (both in CI).
"""

import lsm_ext

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
doctest_global_setup = "import numpy as np\nimport lsm_ext as lx"
