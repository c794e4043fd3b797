"""``graphie parse-text``: the dependency graph of a text as JSON."""

from __future__ import annotations

import argparse
import sys

from . import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``parse-text``."""
    p = subparsers.add_parser(
        "parse-text",
        help="parse a text into its dependency graph (JSON on stdout)",
        description='Print {"tokens": [...], "pos": [...], "arcs": [{"head": i, "dep": j, "label": ...}]} '
        "for TEXT; arcs index into tokens, the root has no arc.",
    )
    p.add_argument("text", metavar="TEXT", help='the text; "-" reads it from stdin')
    p.add_argument(
        "--tokens",
        action="store_true",
        help="TEXT is pre-tokenised: whitespace-separated words, kept exactly as given",
    )
    p.add_argument("--model", default=None, help="spaCy pipeline (default: the packaged en_core_web_sm 3.8)")
    p.set_defaults(func=run_parse_text)


def run_parse_text(args: argparse.Namespace) -> int:
    """``graphie parse-text``: print the dependency graph of a text."""
    from parsers.nlp import DEFAULT_SPACY_MODEL
    from parsers.text import parse_text

    from ..records import lone_surrogate
    from ..errors import InvalidInputError

    if args.text == "-":
        stream = getattr(sys.stdin, "buffer", None)  # bytes, so that the encoding is ours to check
        try:
            text = stream.read().decode("utf-8-sig") if stream is not None else sys.stdin.read()
        except UnicodeDecodeError as exc:  # utf-8-sig: a byte-order mark from a Windows editor is dropped
            raise InvalidInputError(f"stdin is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = args.text
    if problem := lone_surrogate(text):  # bytes that are not UTF-8 in an argument arrive as these
        raise InvalidInputError(f"TEXT holds {problem} (bytes that are not UTF-8 in the argument?)")
    graph = parse_text(text.split() if args.tokens else text, model=args.model or DEFAULT_SPACY_MODEL)
    print_json(
        {
            "tokens": graph.tokens,
            "pos": graph.pos,
            "arcs": [{"head": h, "dep": d, "label": label} for h, d, label in graph.arcs],
        }
    )
    return 0
