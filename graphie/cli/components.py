"""``graphie components``: every registered component, by registry, and what each needs installed.

A component declares the packages it needs beyond graphie's own install with an optional
``requires`` attribute on its factory (import names); a factory without one needs nothing more:

    @detectors.register("torchvision")
    class TorchvisionDetector:
        requires = ("torchvision",)

The command imports every module of ``parsers`` and ``graphie`` (so each registration has run),
finds every :class:`~graphie.registry.Registry` at module level, and checks each requirement
with :func:`importlib.util.find_spec` (nothing is imported or downloaded).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass, field

from . import print_json

PACKAGES = ("parsers", "graphie")
SKIP = ("graphie.cli",)  # the command line registers no components


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``components``."""
    p = subparsers.add_parser(
        "components",
        help="list every registered component and what it needs installed",
        description="List the registries (detectors, encoders, alignments, ...), the names registered "
        "in each, and for each name the packages it needs beyond graphie's install (installed or missing).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run_components)


@dataclass
class Component:
    """One registered name, the import names its factory ``requires``, and which are missing."""

    name: str
    requires: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass
class RegistryInfo:
    """One registry: its kind, where it lives (``module.attribute``) and its components."""

    kind: str
    where: str
    components: list[Component] = field(default_factory=list)


def installed(module: str) -> bool:
    """Whether ``module`` (an import name, dotted or not) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


def import_all(packages: tuple[str, ...] = PACKAGES, skip: tuple[str, ...] = SKIP) -> list[tuple[str, str]]:
    """Import every module of ``packages`` except those under ``skip``; the modules that failed,
    as ``(module, error)`` pairs (their registrations are then missing from the listing)."""
    failed: list[tuple[str, str]] = []
    for package in packages:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            name = info.name
            if name.rsplit(".", 1)[-1] == "__main__" or any(name == s or name.startswith(f"{s}.") for s in skip):
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001  (reported to the user, never hidden)
                failed.append((name, f"{type(exc).__name__}: {exc}"))
    return failed


def find_registries(packages: tuple[str, ...] = PACKAGES) -> list[tuple[str, object]]:
    """Every :class:`~graphie.registry.Registry` held at module level by an imported module of
    ``packages``, once each, as ``("module.attribute", registry)``; ``graphie.registry``'s name
    is preferred for a registry it re-exports."""
    from ..registry import Registry

    found: dict[int, tuple[str, object]] = {}
    modules = sorted(
        (name for name in list(sys.modules) if name.split(".")[0] in packages),
        key=lambda name: (name != "graphie.registry", name),
    )
    for module_name in modules:
        for attr, value in sorted(vars(sys.modules[module_name]).items()):
            if isinstance(value, Registry) and id(value) not in found:
                found[id(value)] = (f"{module_name}.{attr}", value)
    return list(found.values())


def describe(registries: list[tuple[str, object]]) -> list[RegistryInfo]:
    """The listing of ``registries``: each component with its declared ``requires`` and which of
    them are not installed, registries sorted by kind, names sorted."""
    out = []
    for where, registry in sorted(registries, key=lambda r: (r[1].kind, r[0])):
        info = RegistryInfo(kind=registry.kind, where=where)
        for name in registry.names():
            requires = tuple(getattr(registry.get(name), "requires", ()) or ())
            info.components.append(Component(name, requires, tuple(r for r in requires if not installed(r))))
        out.append(info)
    return out


def format_table(infos: list[RegistryInfo]) -> str:
    """The human-readable listing: one block per registry, one line per component."""
    lines = []
    width = max((len(c.name) for i in infos for c in i.components), default=0)
    for info in infos:
        lines.append(f"{info.kind} ({info.where})")
        if not info.components:
            lines.append("  (none registered)")
        for c in info.components:
            if not c.requires:
                needs = "no extra packages"
            else:
                needs = "needs " + ", ".join(f"{r} ({'missing' if r in c.missing else 'installed'})" for r in c.requires)
            lines.append(f"  {c.name:<{width}}  {needs}")
    return "\n".join(lines)


def run_components(args: argparse.Namespace) -> int:
    """``graphie components``: print the listing (exit status 1 when a module failed to import)."""
    failed = import_all()
    infos = describe(find_registries())
    if args.json:
        print_json({
            "registries": [
                {"kind": i.kind, "where": i.where, "components": [
                    {"name": c.name, "requires": list(c.requires), "missing": list(c.missing)} for c in i.components
                ]}
                for i in infos
            ],
            "import_errors": {name: error for name, error in failed},
        })
    else:
        print(format_table(infos))
    for name, error in failed:
        print(f"graphie components: error: could not import {name} ({error}); its components are not listed",
              file=sys.stderr)
    return 1 if failed else 0
