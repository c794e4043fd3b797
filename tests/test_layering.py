"""Layers only point down: ``parsers`` (text and image → graphs) imports no part of graphie,
and graphie re-exports the errors and registry that live in ``parsers``."""

import subprocess
import sys

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
