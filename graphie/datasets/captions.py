"""Image caption files: ``<image file name> :<caption>`` per line (PGIM's BLIP-2 and RiVEG's
mPLUG-Owl captions of the Twitter images, CAMIM's six captioners of the MNRE images)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import DatasetFormatError
from ..types import Post
from ._io import iter_lines

__all__ = ["attach_captions", "read_captions"]

_SEP = " :"
JOIN = " | "  # between the captions of one image from several files


def read_captions(path: str | os.PathLike | Sequence[str | os.PathLike]) -> dict[str, str]:
    """Image file name -> caption. Blank lines are skipped, and so are images with an empty
    caption (the BLIP-2 files have two); a line without ``' :'`` or an image name, or repeating
    an image, raises :class:`DatasetFormatError`.

    Several files (a list: captions of the same images by several captioners) give each image
    its captions joined in the files' order with ``" | "``; an image that one file lacks gets the
    others'.
    """
    joined: dict[str, list[str]] = {}
    for one in [path] if isinstance(path, (str, os.PathLike)) else path:
        for name, caption in _read_one(Path(one)).items():
            joined.setdefault(name, []).append(caption)
    return {name: JOIN.join(parts) for name, parts in joined.items()}


def _read_one(path: Path) -> dict[str, str]:
    captions: dict[str, str] = {}
    seen: set[str] = set()
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        if _SEP not in line:
            raise DatasetFormatError(path, line_no, f"expected '<image> :<caption>', got {line[:60]!r}")
        name, caption = line.split(_SEP, 1)
        name, caption = name.strip(), caption.strip()
        if not name:
            raise DatasetFormatError(path, line_no, "empty image name")
        if name in seen:
            raise DatasetFormatError(path, line_no, f"second caption for image {name!r}")
        seen.add(name)
        if caption:
            captions[name] = caption
    if not seen:
        raise DatasetFormatError(path, None, "no captions in file")
    return captions


def attach_captions(posts: list[Post], captions: dict[str, str], source: str | os.PathLike = "captions") -> list[Post]:
    """Set each post's ``caption`` from ``captions`` (image file name -> caption), joined on
    ``post.image``; posts whose image has no caption keep ``caption=None``. Returns ``posts``.
    ``source`` names the caption file in the error.

    Raises:
        DatasetFormatError: not one post's image is in ``captions`` (a caption file of another
            benchmark).
    """
    hits = 0
    for post in posts:
        caption = captions.get(post.image) if isinstance(post.image, str) else None
        if caption is not None:
            post.caption = caption
            hits += 1
    if posts and not hits and any(isinstance(p.image, str) for p in posts):
        raise DatasetFormatError(source, None, f"none of {len(posts)} posts' images has a caption in the file "
                                             f"(e.g. {next(p.image for p in posts if isinstance(p.image, str))!r})")
    return posts
