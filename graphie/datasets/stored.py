"""Captions and notes stored in files, looked up post by post: what ``graphie extract-file
--captions/--notes`` gives a model that learnt to read them, joined as training joins them."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

from ..types import Post
from .captions import read_captions
from .pgim import notes_by_tokens

__all__ = ["StoredContext"]


class StoredContext:
    """A post's caption and PGIM note looked up in files, for a stream of posts (where
    :func:`~graphie.datasets.attach_captions` and :func:`~graphie.datasets.attach_notes` fill a
    list of benchmark posts).

    - the **caption** of the post's image, by the image's file name (``<image> :<caption>``
      files, as for training: ``data.captions``);
    - the **note** of the post, by its tokens (the whitespace-separated words of its text when it
      has no tokens), from PGIM files (``data.notes``).

    A post keeps a caption or context it already has; ``post`` itself is never changed (a copy
    carries what was found). ``found`` counts the captions and notes found so far.

    Args:
        captions: a captions file, several (joined per image, as
            :func:`~graphie.datasets.read_captions` joins them), or ``None``.
        notes: PGIM files (none: no notes).

    Raises:
        DatasetFormatError: a file is missing or malformed (naming it and the line).
    """

    def __init__(self, captions: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                 notes: Sequence[str | os.PathLike] = ()):
        self.captions = read_captions(captions) if captions is not None else {}
        self.notes = notes_by_tokens(list(notes)) if notes else {}
        self.found = {"caption": 0, "notes": 0}

    def __call__(self, post: Post) -> Post:
        changes = {}
        if post.caption is None and isinstance(post.image, (str, os.PathLike)):
            caption = self.captions.get(Path(post.image).name)
            if caption:
                changes["caption"] = caption
        if post.context is None and self.notes:
            note = self.notes.get(tuple(post.tokens) if post.tokens else tuple(post.text.split()))
            if note:
                changes["context"] = note
        self.found["caption"] += "caption" in changes
        self.found["notes"] += "context" in changes
        return dataclasses.replace(post, **changes) if changes else post

    def __repr__(self) -> str:
        return f"StoredContext({len(self.captions)} captions, {len(self.notes)} notes)"
