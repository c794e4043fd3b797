"""Layers only point down: ``parsers`` (text and image → graphs) imports no part of graphie,
and graphie re-exports the errors and registry that live in ``parsers``; inside graphie,
``models`` and ``alignment`` never import ``training``, ``alignment`` never imports ``models``,
and no modules import each other in a circle: each floor uses only the floors below it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

GRAPHIE = Path(__file__).resolve().parent.parent / "graphie"

PARSER_MODULES = [
    "parsers",
    "parsers.errors",
    "parsers.registry",
    "parsers.scene",
    "parsers.text",
    "parsers.nlp",
    "parsers.image",
    "parsers.image.detectors",
    "parsers.image.tags",
    "parsers.image.weights",
    "parsers.image.detectors.caption",
    "parsers.image.detectors.coco",
    "parsers.image.detectors.default",
    "parsers.image.detectors.detectron2",
    "parsers.image.detectors.onnx",
    "parsers.image.detectors.precomputed",
    "parsers.image.detectors.torchvision",
]


def test_importing_parsers_imports_no_graphie():
    """A fresh interpreter imports every parsers module; none of them may pull in graphie."""
    code = (
        "import importlib, sys\n"
        f"for name in {PARSER_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted(m for m in sys.modules if m == 'graphie' or m.startswith('graphie.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing parsers imported graphie modules: {done.stdout.strip()}"


def test_graphie_reexports_the_same_classes():
    import graphie.errors
    import graphie.registry
    import parsers.errors
    import parsers.image  # noqa: F401  (registers the detectors)
    import parsers.registry

    for name in parsers.errors.__dict__:
        if isinstance(getattr(parsers.errors, name), type) and name.endswith("Error"):
            assert getattr(graphie.errors, name) is getattr(parsers.errors, name), name
    assert graphie.registry.Registry is parsers.registry.Registry
    assert graphie.registry.detectors is parsers.registry.detectors
    assert graphie.registry.taggers is parsers.registry.taggers
    assert "default" in graphie.registry.detectors


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of graphie: dotted name -> (file, is a package)."""
    found = {}
    for path in GRAPHIE.rglob("*.py"):
        parts = list(path.relative_to(GRAPHIE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _module_level(body: list[ast.stmt]):
    """The import statements that run when the module is imported: at top level, or inside a
    top-level ``if``/``try``/``with`` (``if TYPE_CHECKING:`` blocks excluded), not in functions."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _module_level(node.body)
                yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level(block)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def import_graph(module_level_only: bool) -> dict[str, set[str]]:
    """graphie's modules -> the graphie modules each imports, read from the source (nothing is
    imported). ``from package import name`` counts as importing ``package.name`` when that is a
    module, else ``package``; with ``module_level_only`` imports inside functions do not count."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = (_module_level(tree.body) if module_level_only
                 else (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))))
        targets = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("lower, upper", [("graphie.models", "graphie.training"),
                                          ("graphie.alignment", "graphie.training"),
                                          ("graphie.alignment", "graphie.models"),
                                          ("graphie.fusion", "graphie.training"),
                                          ("graphie.fusion", "graphie.models")])
def test_a_floor_never_imports_one_above(lower, upper):
    """Anywhere in the file, a function's lazy import included: a lazy import is still a reach upward."""
    reaches = {m: sorted(t for t in targets if t == upper or t.startswith(upper + "."))
               for m, targets in import_graph(module_level_only=False).items()
               if m == lower or m.startswith(lower + ".")}
    assert not {m: t for m, t in reaches.items() if t}, f"{lower} imports {upper}"


def test_no_import_circle_in_graphie():
    """Module-level imports only: those are what an import runs (a function's import runs later)."""
    assert circles(import_graph(module_level_only=True)) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_models_imports_no_training():
    code = "import graphie.models, sys; print(' '.join(m for m in sys.modules if m.startswith('graphie.training')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing graphie.models imported {done.stdout.strip()}"


def test_the_front_door_has_no_circle_even_through_lazy_imports():
    """One post (api), a stream (batch), a cluster (distributed) share the record contract (records)."""
    graph = import_graph(module_level_only=False)
    door = {"graphie.api", "graphie.batch", "graphie.distributed", "graphie.records"}
    assert circles({m: graph[m] & door for m in door}) == []
    assert not graph["graphie.records"] & door
