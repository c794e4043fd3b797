"""Shared helpers of the benchmark readers: open a dataset file with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ..errors import DatasetFormatError


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path`, or a :class:`DatasetFormatError` if it is missing, a folder or empty."""
    p = Path(path)
    if not p.exists():
        raise DatasetFormatError(p, None, "no such file")
    if p.is_dir():
        raise DatasetFormatError(p, None, "is a directory, expected a dataset file")
    if p.stat().st_size == 0:
        raise DatasetFormatError(p, None, "file is empty")
    return p


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line_no, line)`` pairs (1-based, line ending removed) of a UTF-8 text file."""
    p = check_file(path)
    try:
        with p.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                yield line_no, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(p, None, f"not UTF-8 text ({exc.reason})") from None
