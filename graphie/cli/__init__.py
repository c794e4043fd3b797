"""The ``graphie`` command line. It mirrors the Python API; each module of this package
adds one group of sub-commands through a ``register(subparsers)`` function.

Errors a user can cause (:class:`graphie.errors.GraphieError`, missing files, bad JSON)
go to stderr as one line with exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Any, Sequence

from .. import __version__
from ..errors import GraphieError


def build_parser() -> argparse.ArgumentParser:
    """The ``graphie`` argument parser, with one subcommand group per module of this package."""
    parser = argparse.ArgumentParser(
        prog="graphie", description="Multimodal entity and relation extraction from posts."
    )
    parser.add_argument("--version", action="version", version=f"graphie {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (UTF-8, non-ASCII kept readable)."""
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=None)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for a :class:`GraphieError`, printed as one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (GraphieError, FileNotFoundError, IsADirectoryError, PermissionError, json.JSONDecodeError) as exc:
        print(f"graphie {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graphie {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `graphie ... | head`
        return 0
