"""Sphinx configuration of the pypoolparty documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build``.
Nothing here reaches the network: no intersphinx, and the theme ships with
Sphinx.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

_version = {}
with open(os.path.join(os.path.dirname(HERE), "pypoolparty", "version.py"), encoding="utf-8") as f:
    exec(f.read(), _version)

project = "pypoolparty"
author = "the pypoolparty authors"
copyright = "the pypoolparty authors, MIT license"
version = release = _version["__version__"]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

# The docstrings are numpydoc style.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = True

autoclass_content = "class"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = True

root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

html_theme = "alabaster"
html_theme_options = {
    "description": "multiprocessing.Pool on batch schedulers",
    "fixed_sidebar": False,
}
html_static_path = []
