"""JMERE (joint multimodal entity-relation extraction, EEGA, AAAI 2023): built from MNRE.

Construction (:func:`jmere_from_mnre`): the lines of one sentence (same tokens and image) are
merged, ``None`` pairs dropped, each entity typed from the label (``/per/org/member_of`` -> head
``PER``, tail ``ORG``) and the relation named by the label's last component (``member_of``);
so the ``alternate_names`` of people and of organisations become one label: 21 relations.

File format (:func:`read_jmere` / :func:`write_jmere`) is EEGA's ``json.dump`` of a list of
samples (their ``data/data_process.py``)::

    [{"token": [...], "img_id": "x.jpg",
      "label_list": [[{"beg_ent": {"name": "JFK", "pos": [0, 1], "tags": "per"},
                       "sec_ent": {"name": "Harvard", "pos": [5, 6], "tags": "org"},
                       "relation": "member_of"}], ...]}, ...]

graphie adds an ``"id"`` key per sample and writes one sample per line; JSON-lines files (one
sample object per line) are read too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DatasetFormatError, InvalidInputError
from ..types import Entity, Post, Relation, Span
from ._io import check_file
from .mnre import parse_mnre_label

__all__ = ["JMERE_ENTITY_TYPES", "JMERE_RELATIONS", "jmere_from_mnre", "read_jmere", "write_jmere"]

JMERE_ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "MISC")
JMERE_RELATIONS: tuple[str, ...] = (
    "alternate_names", "alumi", "awarded", "charges", "contain", "couple", "held_on", "locate_at",
    "member_of", "nationality", "neighbor", "parent", "part_of", "peer", "place_of_birth",
    "place_of_residence", "present_in", "race", "religion", "siblings", "subsidiary",
)  # fmt: skip


def _typed(tokens: list[str], span: Span, type_: str) -> Entity:
    return Entity(Span(span.start, span.end, span.text or " ".join(tokens[span.start:span.end])), type_)


def _new_sample(first: Post) -> Post:
    return Post(tokens=list(first.tokens or []), image=first.image, id=first.id)


def _add(sample: Post, relation: Relation) -> None:
    """Add a relation and its entities to a sample, skipping duplicates."""
    if relation.key in {r.key for r in sample.relations}:
        return
    keys = {e.key for e in sample.entities}
    for e in (relation.head, relation.tail):
        if e.key not in keys:
            sample.entities.append(e)
            keys.add(e.key)
    sample.relations.append(relation)


def jmere_from_mnre(posts: list[Post], eega_compatible: bool = False) -> list[Post]:
    """JMERE samples from MNRE posts (as :func:`~graphie.datasets.mnre.read_mnre` returns them, one relation each).

    By default every sentence (same tokens and image) gives one sample holding all its
    non-``None`` relations, in order of first appearance. ``eega_compatible=True`` reproduces
    EEGA's script instead: a sample is a run of consecutive non-``None`` lines of one sentence, so
    a ``None`` line between two lines of a sentence starts a new sample (sentences then appear
    twice with different parts of their gold relations; only for comparing with the paper).
    """
    samples: list[Post] = []
    by_sentence: dict[tuple, Post] = {}
    current: Post | None = None
    current_key: tuple | None = None
    for post in posts:
        if len(post.relations) != 1 or not post.tokens:
            raise InvalidInputError(f"MNRE post {post.id!r} must have tokens and exactly one relation")
        rel = post.relations[0]
        try:
            parsed = parse_mnre_label(rel.label)
        except ValueError as exc:
            raise InvalidInputError(f"MNRE post {post.id!r}: {exc}") from None
        key = (tuple(post.tokens), post.image)
        if parsed is None:
            current = None  # EEGA: a None line ends the running sample
            continue
        head_type, tail_type, label = parsed
        relation = Relation(_typed(post.tokens, rel.head.span, head_type), _typed(post.tokens, rel.tail.span, tail_type), label)
        if eega_compatible:
            if current is None or current_key != key:
                current, current_key = _new_sample(post), key
                samples.append(current)
            sample = current
        else:
            sample = by_sentence.get(key)
            if sample is None:
                sample = by_sentence[key] = _new_sample(post)
                samples.append(sample)
        _add(sample, relation)
    return samples


def _entity_to_eega(e: Entity) -> dict[str, Any]:
    return {"name": e.span.text, "pos": [e.span.start, e.span.end], "tags": e.type.lower()}


def write_jmere(posts: list[Post], path: str | os.PathLike) -> None:
    """Write JMERE samples in EEGA's JSON format (one sample per line inside the list)."""
    rows = []
    for post in posts:
        if not post.tokens:
            raise InvalidInputError(f"post {post.id!r} has no tokens; JMERE samples are tokenised")
        row: dict[str, Any] = {"token": post.tokens, "img_id": post.image}
        if post.id is not None:
            row["id"] = post.id
        row["label_list"] = [
            [{"beg_ent": _entity_to_eega(r.head), "sec_ent": _entity_to_eega(r.tail), "relation": r.label}]
            for r in post.relations
        ]
        rows.append(json.dumps(row, ensure_ascii=False))
    Path(path).write_text("[\n" + ",\n".join(rows) + "\n]\n", encoding="utf-8")


def _entity_from_eega(d: Any, tokens: list[str], what: str, fail) -> Entity:
    if not isinstance(d, dict) or "pos" not in d or "tags" not in d:
        fail(f"{what} must be an object with 'pos' and 'tags'")
    pos = d["pos"]
    if not (isinstance(pos, list) and len(pos) == 2 and all(type(x) is int for x in pos)):
        fail(f"{what} pos must be [start, end] integers, got {pos!r}")
    if not 0 <= pos[0] < pos[1] <= len(tokens):
        fail(f"{what} pos {pos} out of range for {len(tokens)} tokens")
    type_ = str(d["tags"]).upper()
    if type_ not in JMERE_ENTITY_TYPES:
        fail(f"{what} type {d['tags']!r} is not one of {', '.join(JMERE_ENTITY_TYPES)}")
    return Entity(Span(pos[0], pos[1], " ".join(tokens[pos[0]:pos[1]])), type_)


def _sample_to_post(row: Any, default_id: str, fail) -> Post:
    if not isinstance(row, dict):
        fail(f"a sample must be an object, got {type(row).__name__}")
    missing = [k for k in ("token", "label_list") if k not in row]
    if missing:
        fail(f"missing key(s) {', '.join(map(repr, missing))}")
    tokens = row["token"]
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens)):
        fail("'token' must be a non-empty list of strings")
    if not isinstance(row["label_list"], list):
        fail("'label_list' must be a list")
    post = Post(tokens=list(tokens), image=row.get("img_id"), id=str(row.get("id", default_id)))
    for item in row["label_list"]:
        # EEGA wraps each label in a one-element list
        if isinstance(item, list) and len(item) == 1:
            item = item[0]
        if not isinstance(item, dict) or not {"beg_ent", "sec_ent", "relation"} <= item.keys():
            fail("each label needs 'beg_ent', 'sec_ent' and 'relation'")
        label = item["relation"]
        if not isinstance(label, str) or not label:
            fail("'relation' must be a non-empty string")
        head = _entity_from_eega(item["beg_ent"], tokens, "beg_ent", fail)
        tail = _entity_from_eega(item["sec_ent"], tokens, "sec_ent", fail)
        _add(post, Relation(head, tail, label))
    return post


def read_jmere(path: str | os.PathLike) -> list[Post]:
    """JMERE samples from EEGA's JSON list (or JSON lines): one :class:`Post` per sample with typed
    ``entities`` (upper-case) and ``relations``; ``id`` from the file or ``"{stem}-{index}"``."""
    path = check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(path, None, f"not UTF-8 text ({exc.reason})") from None
    posts: list[Post] = []
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(path, exc.lineno, f"invalid JSON ({exc.msg})") from None
        for i, row in enumerate(rows):
            def fail(reason: str, _i: int = i):
                raise DatasetFormatError(path, None, f"sample {_i}: {reason}")

            posts.append(_sample_to_post(row, f"{path.stem}-{i}", fail))
    else:
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue

            def fail(reason: str, _n: int = line_no):
                raise DatasetFormatError(path, _n, reason)

            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                fail(f"invalid JSON ({exc.msg})")
            posts.append(_sample_to_post(row, f"{path.stem}-{len(posts)}", fail))
    if not posts:
        raise DatasetFormatError(path, None, "no JMERE samples in file")
    return posts
