"""The ``graphie`` command line. It mirrors the Python API; each module of this package
adds one group of sub-commands through a ``register(subparsers)`` function.

Errors a user can cause (:class:`graphie.errors.GraphieError`, missing files, a full disk) go to
stderr as one line with exit status 2; never a traceback (``--verbose`` adds it). SIGTERM ends a
command as Ctrl-C does: what was written is kept, and a rerun of ``extract-file`` resumes.

Every sub-command takes ``--verbose`` (graphie's INFO messages, Hugging Face's loading bars,
tracebacks) and ``--quiet`` (errors only, no progress bars). The library itself only logs to
the ``graphie`` logger (with a :class:`logging.NullHandler`); the command line is where those
messages are shown.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Iterator, Sequence

from .. import __version__
from ..errors import GraphieError

#: Loggers whose messages the command line shows on stderr (the library only logs to them).
LOGGERS = ("graphie", "parsers")


def build_parser() -> argparse.ArgumentParser:
    """The ``graphie`` argument parser, with one subcommand group per module of this package;
    every sub-command also gets ``--verbose`` and ``--quiet``."""
    parser = argparse.ArgumentParser(
        prog="graphie", description="Multimodal entity and relation extraction from posts."
    )
    parser.add_argument("--version", action="version", version=f"graphie {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    for leaf in _leaves(parser):
        flags = leaf._option_string_actions
        if "--verbose" not in flags:
            leaf.add_argument("--verbose", "-v", action="store_true",
                              help="show graphie's progress messages and, on an error, its traceback")
        if "--quiet" not in flags:
            leaf.add_argument("--quiet", "-q", action="store_true", help="errors only: no messages, no progress bars")
    return parser


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers that run a command (those without sub-commands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
            yield from _leaves(child)


def json_object(value: str) -> dict:
    """An argparse type: a JSON object (a bad one is argparse's one-line usage error)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {value!r}")
    return parsed


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (UTF-8, non-ASCII kept readable)."""
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=None)
    sys.stdout.write("\n")
    sys.stdout.flush()


class _OwnStream(logging.Filter):
    """Drop records that a logger below ours already prints itself (the trainer's own handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger: Any = logging.getLogger(record.name)
        while logger is not None and logger.name not in LOGGERS:
            if any(type(h) is logging.StreamHandler for h in logger.handlers):
                return False
            logger = logger.parent if logger.propagate else None
        return True


def _setup_logging(verbose: bool, quiet: bool) -> Callable[[], None]:
    """Show graphie's log messages on stderr at the level the flags ask for (the encoder shows
    Hugging Face's "Loading weights" bar only when graphie logs at INFO); returns the function
    that undoes it (``main`` may run inside another program, a test for one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("graphie: %(levelname)s: %(message)s"))
    handler.addFilter(_OwnStream())
    level = logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(level)
    # The trainer prints its log to the console unless a console handler is there already: with
    # --quiet that handler is this one, errors only (its log file still gets everything).
    train_console = logging.StreamHandler(sys.stderr)
    train_console.setLevel(logging.ERROR)
    if quiet:
        logging.getLogger("graphie.train").addHandler(train_console)

    def undo() -> None:
        for name, old in levels.items():
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(old)
        logging.getLogger("graphie.train").removeHandler(train_console)

    return undo


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread (a BaseException, so that no ``except Exception`` of a
    batch turns it into an error record)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status: 2 for a :class:`GraphieError` or an :class:`OSError`
    (printed as one line), 130 after Ctrl-C, 143 after SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    if quiet and hasattr(args, "no_progress"):
        args.no_progress = True
    undo = _setup_logging(verbose, quiet)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `graphie ... | head`
        return 0
    except (GraphieError, OSError, json.JSONDecodeError) as exc:
        if verbose:
            traceback.print_exc()
        print(f"graphie {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graphie {args.command}: interrupted{_resume_note(args)}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"graphie {args.command}: terminated (SIGTERM){_resume_note(args)}", file=sys.stderr)
        return 143
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        undo()


def _resume_note(args: argparse.Namespace) -> str:
    return "; what was written is kept: rerun the same command to resume" if args.command == "extract-file" else ""
