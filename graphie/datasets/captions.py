"""Image caption files (PGIM's BLIP-2 captions): ``<image file name> :<caption>`` per line."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetFormatError
from ._io import iter_lines

__all__ = ["read_captions"]

_SEP = " :"


def read_captions(path: str | os.PathLike) -> dict[str, str]:
    """Image file name -> caption. Blank lines are skipped, and so are images with an empty
    caption (the BLIP-2 files have two); a line without ``' :'`` or an image name, or repeating
    an image, raises :class:`DatasetFormatError`."""
    path = Path(path)
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
