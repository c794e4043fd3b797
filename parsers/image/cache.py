"""On-disk cache of scene graphs: parse a dataset's images once, reuse the JSON after.

A record's key is the SHA-256 of the image's encoded bytes (or, for an in-memory PIL
image or numpy array, of its mode or dtype, size and pixels) together with the SHA-256 of the parser settings
(detector name and options, ``max_objects``, features); changing any setting misses.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ImageError
from ..scene import SceneGraph
from .loading import ImageSource, describe_source


def content_hash(src: ImageSource) -> str:
    """SHA-256 hex digest of an image's content (file bytes, bytes, or decoded pixels of a PIL
    image or numpy array)."""
    h = hashlib.sha256()
    if isinstance(src, Image.Image):
        h.update(f"{src.mode}:{src.width}x{src.height}:".encode())
        h.update(src.tobytes())
    elif isinstance(src, (bytes, bytearray, memoryview)):
        h.update(bytes(src))
    elif isinstance(src, np.ndarray):
        h.update(f"array:{src.dtype.str}:{src.shape}:".encode())
        h.update(np.ascontiguousarray(src).tobytes())
    else:
        try:
            with open(src, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise ImageError(f"cannot read image file {describe_source(src)}: {exc.strerror or exc}") from exc
    return h.hexdigest()


def settings_hash(settings: dict[str, Any]) -> str:
    """A short stable key of parser settings (order-independent), part of every cache key."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class SceneGraphCache:
    """Scene graphs stored as ``<dir>/<hash[:2]>/<hash>-<settings>.json`` (written atomically)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)

    def path(self, image_hash: str, settings: dict[str, Any]) -> str:
        return os.path.join(self.directory, image_hash[:2], f"{image_hash}-{settings_hash(settings)}.json")

    def get(self, image_hash: str, settings: dict[str, Any]) -> SceneGraph | None:
        """The cached graph, or ``None`` on a miss (an unreadable record counts as a miss)."""
        try:
            with open(self.path(image_hash, settings), encoding="utf-8") as f:
                return SceneGraph.from_dict(json.load(f))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, image_hash: str, settings: dict[str, Any], graph: SceneGraph) -> str:
        """Store ``graph``; returns the record's path."""
        path = self.path(image_hash, settings)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(graph.to_dict(), f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def __len__(self) -> int:
        return sum(len([n for n in files if n.endswith(".json")]) for _, _, files in os.walk(self.directory))
