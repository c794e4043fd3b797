"""graphie: multimodal entity and relation extraction from social-media posts.

    import graphie
    result = graphie.extract("Obama and Michelle at the White House", "photo.jpg")
"""

import logging

from .errors import (
    DatasetFormatError,
    GraphieError,
    ImageError,
    InvalidInputError,
    MissingDependencyError,
    ModelLoadError,
    OutputError,
    UnknownComponentError,
)
from .api import Extractor, extract, load
from .records import ErrorRecord
from .types import Entity, Extraction, Post, Relation, Span

__version__ = "0.1.0"

# A library logs and the application decides what to show (the command line: --verbose, --quiet).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "extract",
    "load",
    "DatasetFormatError",
    "Entity",
    "ErrorRecord",
    "Extraction",
    "Extractor",
    "GraphieError",
    "ImageError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelLoadError",
    "OutputError",
    "Post",
    "Relation",
    "Span",
    "UnknownComponentError",
]
