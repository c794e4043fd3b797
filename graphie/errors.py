"""Typed errors (re-exported from :mod:`parsers.errors`, the bottom layer, so that
``graphie.errors.ImageError is parsers.errors.ImageError``), and :class:`OutputError`, which only
graphie's batch jobs raise."""

from parsers.errors import (
    DatasetFormatError,
    GraphieError,
    ImageError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownComponentError,
)


class OutputError(GraphieError, OSError):
    """An output file that cannot be written: disk full, read-only, or another run writing it.
    What was written before is kept, and rerunning the same command resumes."""


__all__ = [
    "DatasetFormatError",
    "GraphieError",
    "ImageError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputError",
    "UnknownComponentError",
]
