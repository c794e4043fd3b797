"""Sphinx configuration for graphie's documentation (built offline, warnings are errors in CI)."""

import graphie

project = "graphie"
author = "the graphie developers"
copyright = "2026, the graphie developers"
release = graphie.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No network at build time: MathJax is referenced by URL only when a reader opens a page.
html_theme = "furo"
html_title = "graphie"
exclude_patterns = ["_build"]
nitpicky = False
