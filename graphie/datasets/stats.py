"""Reading any benchmark by format name, and counting what a dataset holds."""

from __future__ import annotations

import inspect
import os
from collections import Counter
from typing import Any, Callable

from ..errors import InvalidInputError
from ..types import Post
from .jmere import jmere_from_mnre, read_jmere
from .mnre import read_mnre
from .pgim import read_pgim
from .twitter import read_twitter

__all__ = ["DATASET_FORMATS", "dataset_stats", "read_dataset"]


def read_jmere_from_mnre(path: str | os.PathLike) -> list[Post]:
    """JMERE sentences built from an MNRE file (:func:`~graphie.datasets.jmere_from_mnre`)."""
    return jmere_from_mnre(read_mnre(path))


#: Every data format, by name, and its reader: the one list that configs (``data.format``),
#: ``graphie data stats`` and :func:`read_dataset` draw on.
DATASET_FORMATS: dict[str, Callable[..., list[Post]]] = {
    "mnre": read_mnre,
    "twitter": read_twitter,
    "pgim": read_pgim,
    "jmere": read_jmere,
    "jmere_from_mnre": read_jmere_from_mnre,
}


def read_dataset(fmt: str, path: str | os.PathLike, **kw: Any) -> list[Post]:
    """Read ``path`` with the reader of ``fmt`` (a name in :data:`DATASET_FORMATS`);
    ``kw`` goes to that reader (e.g. ``other_as_misc=False``)."""
    reader = DATASET_FORMATS.get(fmt)
    if reader is None:
        raise InvalidInputError(f"unknown dataset format {fmt!r}; choose from {', '.join(DATASET_FORMATS)}")
    try:
        inspect.signature(reader).bind(path, **kw)
    except TypeError as exc:
        raise InvalidInputError(f"format {fmt!r}: {exc}") from None
    return reader(path, **kw)


def dataset_stats(posts: list[Post]) -> dict[str, Any]:
    """Counts: ``sentences``, ``tokens``, ``images`` (posts with one), ``captions``, ``contexts``,
    ``entities`` and ``entities_by_type``, ``relations`` and ``relations_by_label`` (sorted by name)."""
    ent_types: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    for post in posts:
        ent_types.update(e.type for e in post.entities)
        labels.update(r.label for r in post.relations)
    return {
        "sentences": len(posts),
        "tokens": sum(len(p.tokens or p.text.split()) for p in posts),
        "images": sum(p.image is not None for p in posts),
        "captions": sum(p.caption is not None for p in posts),
        "contexts": sum(p.context is not None for p in posts),
        "entities": sum(ent_types.values()),
        "entities_by_type": dict(sorted(ent_types.items())),
        "relations": sum(labels.values()),
        "relations_by_label": dict(sorted(labels.items())),
    }
