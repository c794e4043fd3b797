"""MNRE (multimodal relation extraction on tweets): one Python dict literal per line, one line
per entity pair. Version 2 labels ``None`` pairs ``'None'``, version 1 ``'none'``; both are read
as :data:`MNRE_NONE`.

    {'token': [...], 'h': {'name': ..., 'pos': [8, 10]}, 't': {...}, 'img_id': '...jpg', 'relation': '/per/org/member_of'}
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

from ..errors import DatasetFormatError
from ..types import Entity, Post, Relation, Span
from ._io import iter_lines

__all__ = ["MNRE_ENTITY_TYPE", "MNRE_NONE", "parse_mnre_label", "read_mnre"]

MNRE_NONE = "None"
"""The no-relation label of MNRE lines."""
#: MNRE gives entity spans but no entity types as input
MNRE_ENTITY_TYPE = "ENT"
_LABEL = re.compile(r"^/([a-z]+)/([a-z]+)/([A-Za-z_]+)$")


def parse_mnre_label(label: str) -> tuple[str, str, str] | None:
    """``'/per/org/member_of'`` -> ``('PER', 'ORG', 'member_of')``; ``None`` for a no-relation label;
    ``ValueError`` for anything else."""
    if label == MNRE_NONE:
        return None
    m = _LABEL.match(label)
    if m is None:
        raise ValueError(f"relation label {label!r} is neither {MNRE_NONE!r} nor /headtype/tailtype/relation")
    return m.group(1).upper(), m.group(2).upper(), m.group(3)


def _entity(d: Any, key: str, tokens: list[str], fail) -> Entity:
    if not isinstance(d, dict) or "pos" not in d:
        fail(f"{key!r} must be a dict with 'pos'")
    pos = d["pos"]
    if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and all(type(x) is int for x in pos)):
        fail(f"{key!r} pos must be [start, end] integers, got {pos!r}")
    start, end = pos
    if not 0 <= start < end <= len(tokens):
        fail(f"{key!r} pos {list(pos)} out of range for {len(tokens)} tokens")
    return Entity(Span(start, end, " ".join(tokens[start:end])), MNRE_ENTITY_TYPE)


def read_mnre(path: str | os.PathLike) -> list[Post]:
    """One :class:`Post` per line: ``tokens``, ``image`` (the ``img_id``), ``id`` =
    ``"{file stem}-{line_no}"``, ``entities = [head, tail]`` (type ``"ENT"``) and one
    :class:`Relation` carrying the full MNRE label (``'/per/org/member_of'`` or ``'None'``).
    Blank lines are skipped; a malformed line raises :class:`DatasetFormatError`."""
    path = Path(path)
    stem = path.stem.strip()
    posts: list[Post] = []
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue

        def fail(reason: str, _n: int = line_no):
            raise DatasetFormatError(path, _n, reason)

        try:
            d = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            fail(f"not a Python dict literal ({type(exc).__name__})")
        if not isinstance(d, dict):
            fail(f"expected a dict, got {type(d).__name__}")
        missing = [k for k in ("token", "h", "t", "img_id", "relation") if k not in d]
        if missing:
            fail(f"missing key(s) {', '.join(map(repr, missing))}")
        tokens = d["token"]
        if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)):
            fail("'token' must be a non-empty list of strings")
        label = d["relation"]
        if not isinstance(label, str):
            fail("'relation' must be a string")
        if label.lower() == "none":  # version 1 writes 'none'
            label = MNRE_NONE
        try:
            parse_mnre_label(label)
        except ValueError as exc:
            fail(str(exc))
        if not isinstance(d["img_id"], str) or not d["img_id"]:
            fail("'img_id' must be a non-empty string")
        head = _entity(d["h"], "h", tokens, fail)
        tail = _entity(d["t"], "t", tokens, fail)
        posts.append(
            Post(
                tokens=list(tokens),
                image=d["img_id"],
                id=f"{stem}-{line_no}",
                entities=[head, tail],
                relations=[Relation(head, tail, label)],
            )
        )
    if not posts:
        raise DatasetFormatError(path, None, "no MNRE lines in file")
    return posts
