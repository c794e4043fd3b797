"""Twitter-2015/2017 MNER (the UMT release): CoNLL blocks, each ``IMGID:<id>`` then one
``token<TAB>BIO-label`` line per token, blocks separated by blank lines.

Entities are chunked from the BIO tags exactly as seqeval's CoNLL mode does
(:func:`graphie.metrics.bio_to_spans`). Twitter-2015 says ``OTHER`` where Twitter-2017 says
``MISC``; ``other_as_misc`` maps the first to the second, as most systems do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import DatasetFormatError, InvalidInputError
from ..metrics import _split_tag, bio_to_spans
from ..types import Entity, Post, Span
from ._io import iter_lines

__all__ = ["read_twitter"]

_IMGID = "IMGID:"


def split_token_line(path: Path, line_no: int, line: str) -> tuple[str, str]:
    """``(token, label)`` of a ``token<TAB>label`` line (the label after the last tab)."""
    if "\t" not in line:
        raise DatasetFormatError(path, line_no, f"expected 'token<TAB>label', got {line[:60]!r}")
    token, label = line.rsplit("\t", 1)
    if not token or not label:
        raise DatasetFormatError(path, line_no, "empty token or label")
    return token, label


def check_tag(path: Path, line_no: int, tag: str) -> None:
    """A :class:`DatasetFormatError` unless ``tag`` is ``O`` or ``B-/I-/E-/S-TYPE``."""
    try:
        _split_tag(tag)
    except InvalidInputError:
        raise DatasetFormatError(path, line_no, f"unknown BIO tag {tag!r}") from None
    if tag != "O" and len(tag) < 3:
        raise DatasetFormatError(path, line_no, f"BIO tag {tag!r} has no entity type")


def iter_blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of ``(line_no, line)``."""
    block: list[tuple[int, str]] = []
    for line_no, line in iter_lines(path):
        if line.strip():
            block.append((line_no, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def entities_from_tags(tokens: list[str], tags: list[str], other_as_misc: bool) -> list[Entity]:
    """Gold entities of a tagged sentence (``OTHER`` -> ``MISC`` if asked)."""
    if other_as_misc:
        tags = [t[:2] + "MISC" if t[2:] == "OTHER" else t for t in tags]
    return [Entity(Span(s, e, " ".join(tokens[s:e])), type_) for s, e, type_ in bio_to_spans(tags)]


def read_twitter(
    path: str | os.PathLike, other_as_misc: bool = True, captions: dict[str, str] | None = None
) -> list[Post]:
    """One :class:`Post` per tweet: ``id`` = the IMGID, ``image`` = IMGID + ``".jpg"``, gold
    ``entities`` from the BIO tags (PER/LOC/ORG/MISC, or OTHER if ``other_as_misc=False``) and,
    when ``captions`` (image file name -> caption, see :func:`~graphie.datasets.captions.read_captions`) is given, the
    image's caption (``None`` if the file has none for that image)."""
    path = Path(path)
    posts: list[Post] = []
    for block in iter_blocks(path):
        first_no, first = block[0]
        if not first.startswith(_IMGID):
            raise DatasetFormatError(path, first_no, f"a tweet must start with an {_IMGID} line, got {first[:60]!r}")
        img_id = first[len(_IMGID):].strip()
        if not img_id:
            raise DatasetFormatError(path, first_no, "empty IMGID")
        if len(block) == 1:
            raise DatasetFormatError(path, first_no, f"IMGID {img_id} has no token lines")
        tokens, tags = [], []
        for line_no, line in block[1:]:
            if line.startswith(_IMGID):
                raise DatasetFormatError(path, line_no, "IMGID line inside a tweet (missing blank line?)")
            token, tag = split_token_line(path, line_no, line)
            check_tag(path, line_no, tag)
            tokens.append(token)
            tags.append(tag)
        image = img_id + ".jpg"
        posts.append(
            Post(
                tokens=tokens,
                image=image,
                id=img_id,
                caption=None if captions is None else captions.get(image),
                entities=entities_from_tags(tokens, tags, other_as_misc),
            )
        )
    if not posts:
        raise DatasetFormatError(path, None, "no tweets in file")
    return posts
