"""``graphie components``: every registry, every registered name, and what each needs installed."""

import json
import sys
import types

from graphie.cli import main
from graphie.cli.components import describe, find_registries, format_table, import_all
from graphie.registry import Registry


def test_requirements_are_read_from_the_factory_and_checked():
    registry = Registry("widget")

    @registry.register("plain")
    class Plain:  # no ``requires``: nothing beyond graphie
        pass

    @registry.register("needs_json")
    def needs_json():
        return None

    needs_json.requires = ("json",)

    @registry.register("needs_missing")
    class NeedsMissing:
        requires = ("json", "graphie_no_such_package", "graphie_no_such_parent.child")

    (info,) = describe([("tests.widgets", registry)])
    by_name = {c.name: c for c in info.components}
    assert [c.name for c in info.components] == ["needs_json", "needs_missing", "plain"]
    assert by_name["plain"].requires == () and by_name["plain"].missing == ()
    assert by_name["needs_json"].missing == ()
    assert by_name["needs_missing"].missing == ("graphie_no_such_package", "graphie_no_such_parent.child")
    table = format_table([info]).splitlines()
    assert table[0] == "widget (tests.widgets)"
    assert table[1].split() == ["needs_json", "needs", "json", "(installed)"]
    assert "graphie_no_such_package (missing)" in table[2] and "json (installed)" in table[2]
    assert table[3].split() == ["plain", "no", "extra", "packages"]


def test_registries_are_found_wherever_they_live(monkeypatch):
    fake = types.ModuleType("graphie._fake_components")
    fake.gadgets = Registry("gadget")
    fake.gadgets.register("g1")(object)
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    found = dict(find_registries())
    assert found["graphie._fake_components.gadgets"] is fake.gadgets
    assert "graphie.registry.detectors" in found  # a re-exported registry keeps graphie.registry's name
    assert len({id(r) for r in found.values()}) == len(found)


def test_a_module_that_fails_to_import_is_reported(tmp_path, monkeypatch):
    package = tmp_path / "graphie_fake_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("X = 1\n")
    (package / "broken.py").write_text("import graphie_no_such_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    failed = import_all(packages=("graphie_fake_pkg",), skip=())
    assert [name for name, _ in failed] == ["graphie_fake_pkg.broken"]
    assert "graphie_no_such_package" in failed[0][1]
    for name in ("graphie_fake_pkg", "graphie_fake_pkg.good", "graphie_fake_pkg.broken"):
        sys.modules.pop(name, None)


def test_cli_lists_every_registered_name(capsys):
    status = main(["components", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["import_errors"] == {} and status == 0
    listed = {(r["kind"], c["name"]) for r in out["registries"] for c in r["components"]}
    expected = {(registry.kind, name) for _, registry in find_registries() for name in registry.names()}
    assert listed == expected
    assert {("detector", "default"), ("alignment", "none"), ("alignment", "mega")} <= listed
