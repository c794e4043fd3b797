"""Sphinx configuration for graphie's documentation (built offline, warnings are errors in CI)."""

import re

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
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No network at build time: MathJax is referenced by URL only when a reader opens a page.
html_theme = "furo"
html_title = "graphie"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
nitpicky = False

# --- docstrings -------------------------------------------------------------------------------
# graphie's docstrings show examples as plain indented blocks after a blank line (spaCy style),
# which reStructuredText would read as block quotes. Turn each such block into a literal block,
# and escape |x| (absolute values in formulas), which reST would read as a substitution.
_BULLET = re.compile(r"^(\s*)([-*+]|\d+[.)]|#[.)]|\(\w+\))\s")
_PIPES = re.compile(r"(?<![\\|`])\|([^|`\s][^|`]*?)\|(?![|`_])")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _escape_pipes(line: str) -> str:
    parts = line.split("``")
    for i in range(0, len(parts), 2):  # outside inline literals only
        parts[i] = _PIPES.sub(r"\\|\1\\|", parts[i])
    return "``".join(parts)


def literal_examples(app, what, name, obj, options, lines):
    """Indented block after a blank line, in prose: make it a literal block (insert ``::``)."""
    out: list[str] = []
    literal_indent = None  # inside a literal block opened by a line of this indent
    last_text, para_first, blank_since = None, "", False
    for line in lines:
        if not line.strip():
            blank_since = True
            out.append(line)
            continue
        if literal_indent is not None and _indent(line) > literal_indent:
            out.append(line)
            continue
        literal_indent = None
        if blank_since and last_text is not None and _indent(line) > _indent(last_text):
            if last_text.rstrip().endswith("::"):
                literal_indent = _indent(last_text)
                out.append(line)
                last_text, blank_since = line, False
                continue
            structural = any(
                s.lstrip().startswith(("..", ":")) or _BULLET.match(s) for s in (para_first, last_text)
            )
            if not structural:
                out += [" " * _indent(last_text) + "::", ""]
                literal_indent = _indent(last_text)
                out.append(line)
                last_text, blank_since = line, False
                continue
        if blank_since or last_text is None:
            para_first = line
        out.append(_escape_pipes(line))
        last_text, blank_since = line, False
    lines[:] = out


def raw_module_docstrings(app, what, name, obj, options, lines):
    """Module docstrings are not indented in the source, so their indentation is meaningful as
    written; autodoc's dedent (margin from the second line on) would flatten an example that is
    the only indented text. Use the docstring as written (before napoleon runs)."""
    if what == "module" and isinstance(getattr(obj, "__doc__", None), str):
        lines[:] = [line.rstrip() for line in obj.__doc__.expandtabs().splitlines()] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", raw_module_docstrings, priority=400)
    # after napoleon (priority 500), which turns Google sections into field lists first
    app.connect("autodoc-process-docstring", literal_examples, priority=600)
