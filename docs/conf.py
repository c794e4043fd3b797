"""Sphinx configuration for graphie's documentation (built offline, warnings are errors in CI)."""

import ast
import importlib
import inspect
import re
import sys
import types
import typing

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
# A method without a docstring shows none, not torch.nn.Module.forward's or MessagePassing.message's.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# No network at build time: MathJax is referenced by URL only when a reader opens a page.
html_theme = "furo"
html_title = "graphie"
html_static_path = ["_static"]
exclude_patterns = ["_build", "_generated"]  # _generated: tables included by pages (tools/refresh_doc_outputs.py)
# Every cross-reference must resolve (CI builds with -W). The build is offline, so there is no
# intersphinx; ``resolve_by_import`` below settles what a name-based lookup cannot: a name that a
# module imports (``Post`` in graphie.batch, ``graphie.errors.ImageError`` re-exported from
# parsers.errors) goes to where the object is documented, and a reference to an object of the
# standard library or a third-party package (torch.Tensor, os.PathLike, pydantic's Field limits)
# is shown as plain text. A graphie or parsers object that is not documented still warns.
nitpicky = True
# Third-party types written through an import alias in a docstring or a string annotation, which
# no import can resolve here.
nitpick_ignore = [("py:class", "nx.DiGraph"), ("py:class", "nx.MultiDiGraph")]

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


def _lookup(dotted: str):
    """The object named ``dotted`` (a module, or attributes reached from the longest importable
    module prefix), or ``None``."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:  # noqa: BLE001  (not a module: try a shorter prefix)
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _imported_as(module: str | None, name: str) -> str | None:
    """Where ``module`` imports ``name`` from, read from its source: also the imports that run
    only under ``TYPE_CHECKING`` or inside a function (quoted annotations, lazy imports)."""
    head, _, rest = name.partition(".")
    mod = sys.modules.get(module or "")
    try:
        tree = ast.parse(inspect.getsource(mod)) if mod else None
    except (OSError, TypeError):
        return None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == head:
                    package = module if mod.__name__ == getattr(mod, "__package__", None) else module.rpartition(".")[0]
                    base = node.module or ""
                    if node.level:
                        parent = package.split(".")
                        parent = parent[: len(parent) - node.level + 1]
                        base = ".".join(parent + ([node.module] if node.module else []))
                    return ".".join(filter(None, [base, alias.name, rest]))
    return None


_OWN = ("graphie", "parsers")
_METADATA = re.compile(r"^(ge|gt|le|lt|min_length|max_length|multiple_of)=")  # Annotated[int, Field(ge=1)]


def resolve_by_import(app, env, node, contnode):
    """``missing-reference``: resolve a Python reference through the object it names (see above)."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.").strip("'\"")  # a quoted annotation names a class too
    if _METADATA.match(target):
        return contnode
    module, cls = node.get("py:module"), node.get("py:class")
    domain = env.get_domain("py")
    imported = _imported_as(module, target)
    for prefix in (f"{module}.{cls}" if module and cls else None, module, None, "imported"):
        if prefix == "imported":
            name = imported
            if not name:
                continue
        else:
            name = f"{prefix}.{target}" if prefix else target
        obj = _lookup(name)
        if obj is None:
            continue
        home = getattr(obj, "__module__", None) if not isinstance(obj, types.ModuleType) else obj.__name__
        if isinstance(obj, typing.TypeVar) or (home and home.split(".")[0] not in _OWN):
            return contnode  # a TypeVar, or the standard library / a third-party package
        if isinstance(obj, types.ModuleType):
            real = obj.__name__
        elif hasattr(obj, "__qualname__") and home:
            real = f"{home}.{obj.__qualname__}"
        else:  # data: the documented object with this short name that is the very same object
            short = target.rsplit(".", 1)[-1]
            real = next((n for n, *_ in domain.get_objects() if n.rsplit(".", 1)[-1] == short and _lookup(n) is obj), None)
        if real:
            found = domain.resolve_any_xref(env, node["refdoc"], app.builder, real, node, contnode)
            exact = [r for role, r in found if role != "py:module" or isinstance(obj, types.ModuleType)]
            if exact:
                return exact[0]
        return None
    if target.split(".")[0] not in _OWN and _lookup(target.split(".")[0]) is not None:
        return contnode  # e.g. ``collections.abc.Sequence``: a standard-library or third-party module
    return None


def prose_not_type(app, what, name, obj, options, lines):
    """Napoleon reads the first line of an attribute, property or data docstring as ``type:
    description``, so a sentence with a colon ("Whether the grid runs: ...", "A post's id: ...")
    becomes a ``:type:`` and a broken reference. Words with spaces (and no brackets or ``|``,
    which a real type has) are prose: put them back in front of the description."""
    if what not in ("attribute", "data", "property"):
        return
    for i, line in enumerate(lines):
        if line.startswith(":type: "):
            kind = line[len(":type: "):]
            if " " in kind.strip() and not re.search(r"[\[\]|(){}]", kind):
                first = next((j for j, x in enumerate(lines) if x.strip()), None)
                del lines[i]
                if i > 0 and not lines[i - 1].strip():
                    del lines[i - 1]
                if first is not None and first < len(lines):
                    lines[first] = f"{kind}: {lines[first].lstrip()}"
            break


def setup(app):
    app.connect("missing-reference", resolve_by_import)
    app.connect("autodoc-process-docstring", prose_not_type, priority=550)  # after napoleon (500)
    app.connect("autodoc-process-docstring", raw_module_docstrings, priority=400)
    # after napoleon (priority 500), which turns Google sections into field lists first
    app.connect("autodoc-process-docstring", literal_examples, priority=600)
