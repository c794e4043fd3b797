"""PGIM's Twitter-2015 with LLM-generated auxiliary knowledge: the Twitter CoNLL format without
the IMGID line; after the tweet's tokens a token ``<EOS>`` labelled ``X``, then the auxiliary
text, every token labelled ``X``. The auxiliary text becomes the post's ``context``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetFormatError
from ..types import Post
from .twitter import check_tag, entities_from_tags, iter_blocks, split_token_line

__all__ = ["PGIM_EOS", "attach_notes", "notes_by_tokens", "read_pgim"]

PGIM_EOS = "<EOS>"


def read_pgim(path: str | os.PathLike, other_as_misc: bool = True) -> list[Post]:
    """One :class:`Post` per block: ``tokens`` (and gold ``entities``) from the lines before
    ``<EOS>``, ``context`` = the auxiliary tokens after it joined by spaces (``None`` if the block
    has no ``<EOS>``), ``id`` = ``"{file stem}-{line_no of the first token}"``."""
    path = Path(path)
    posts: list[Post] = []
    for block in iter_blocks(path):
        tokens, tags, aux = [], [], None
        for line_no, line in block:
            token, tag = split_token_line(path, line_no, line)
            if aux is not None:
                aux.append(token)
            elif token == PGIM_EOS:
                aux = []
            else:
                check_tag(path, line_no, tag)
                tokens.append(token)
                tags.append(tag)
        if not tokens:
            raise DatasetFormatError(path, block[0][0], f"no tweet tokens before {PGIM_EOS}")
        posts.append(
            Post(
                tokens=tokens,
                id=f"{path.stem}-{block[0][0]}",
                context=" ".join(aux) if aux else None,
                entities=entities_from_tags(tokens, tags, other_as_misc),
            )
        )
    if not posts:
        raise DatasetFormatError(path, None, "no posts in file")
    return posts


def notes_by_tokens(paths: str | os.PathLike | list[str | os.PathLike]) -> dict[tuple[str, ...], str]:
    """PGIM's note of each tweet in the file(s) ``paths``, keyed by the tweet's tokens."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return {tuple(p.tokens or ()): p.context for path in paths for p in read_pgim(path) if p.context}


def attach_notes(posts: list[Post], paths: str | os.PathLike | list[str | os.PathLike]) -> list[Post]:
    """Set each post's ``context`` to PGIM's note of the same tweet (same tokens) in the PGIM
    file(s) ``paths`` (e.g. PGIM's train and valid files, for posts of either split), so that
    Twitter posts (which keep their image ids) carry the notes too; posts without a note keep
    ``context=None``. Returns ``posts``.

    Raises:
        DatasetFormatError: a file is malformed or none of ``posts`` has a note in them.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    notes = notes_by_tokens(paths)
    hits = 0
    for post in posts:
        note = notes.get(tuple(post.tokens or ()))
        if note:
            post.context = note
            hits += 1
    if posts and not hits:
        raise DatasetFormatError(", ".join(map(str, paths)), None, f"none of {len(posts)} posts has a note here (notes join on the tweet's tokens)")
    return posts
