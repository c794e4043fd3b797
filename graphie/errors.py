"""Typed errors (re-exported from :mod:`parsers.errors`, the bottom layer, so that
``graphie.errors.ImageError is parsers.errors.ImageError``)."""

from parsers.errors import (
    DatasetFormatError,
    GraphieError,
    ImageError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownComponentError,
)

__all__ = [
    "DatasetFormatError",
    "GraphieError",
    "ImageError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelLoadError",
    "UnknownComponentError",
]
