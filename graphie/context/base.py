"""What every context provider shares: the call on one post, the batch call, the cache, the
per-post failure record and the errors of endpoints.

A provider is a callable object: ``provider(post)`` gives the post's context string, or
``None`` when it has none; ``provider.batch(posts)`` gives one outcome per post, in order, a
:class:`ContextFailure` in the place of a post that failed. Outcomes are cached in memory under
the provider's settings and what it reads of the post (text, caption, notes, the image's
content hash), so a post seen twice, in one batch or two, is computed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

from parsers.scene import SceneGraph

from ..errors import DatasetFormatError, GraphieError, InvalidInputError
from ..types import Post, PostId

__all__ = [
    "CACHE",
    "ContextCache",
    "ContextFailure",
    "ContextProvider",
    "ContextReplyError",
    "ContextUnavailableError",
    "Outcome",
]


class ContextUnavailableError(GraphieError, ConnectionError):
    """A context endpoint that cannot be reached, refuses the request (an HTTP error status) or
    does not answer in time; the message names its URL. ``status`` is the HTTP status of a
    refusal, ``None`` when no answer came."""

    status: int | None = None


class ContextReplyError(GraphieError, ValueError):
    """A context endpoint's answer that is not an OpenAI-style chat completion (not JSON, no
    ``choices[0].message.content``); the message names its URL."""


@dataclass
class ContextFailure:
    """A post whose context could not be made; batch calls give it in the post's place.

    ``type`` is the error's class name (``ContextUnavailableError``, ``ImageError``, ...);
    ``field`` the post field at fault: ``"image"`` for an image that cannot be read, otherwise
    ``"context"``. The fields are those of :class:`graphie.records.ErrorRecord`.
    """

    id: PostId | None
    type: str
    message: str
    field: str | None = "context"

    @classmethod
    def from_exception(cls, post_id: PostId | None, exc: BaseException) -> "ContextFailure":
        """The record of a post that failed with ``exc``."""
        field = "image" if type(exc).__name__ == "ImageError" else "context"
        return cls(post_id, type(exc).__name__, str(exc), field)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types, shaped like :meth:`graphie.records.ErrorRecord.to_dict`."""
        return {"id": self.id, "error": {"type": self.type, "field": self.field, "message": self.message}}


Outcome = str | None | ContextFailure
"""What a batch call gives for one post: its context, ``None`` (no context), or a :class:`ContextFailure`."""


class ContextCache:
    """Contexts by key, in memory, the least recently used dropped past ``max_entries``;
    safe to share between threads. Failures are never stored (a retry may succeed).

    Args:
        max_entries (int): most contexts kept (default 100,000: a few tens of MB of text).
    """

    def __init__(self, max_entries: int = 100_000):
        if max_entries < 1:
            raise InvalidInputError(f"ContextCache needs max_entries >= 1, got {max_entries}")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, str | None]:
        """``(True, context)`` when ``key`` is stored, else ``(False, None)``; counts hits and misses."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return True, self._items[key]
            self.misses += 1
            return False, None

    def put(self, key: str, context: str | None) -> None:
        """Store ``context`` (``None`` too: "this post has no context" is an answer) under ``key``."""
        with self._lock:
            self._items[key] = context
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every context and reset the counts."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ContextCache(max_entries={self.max_entries})"


#: The cache every provider uses unless given its own.
CACHE = ContextCache()


def as_post(post: Post | str) -> Post:
    """``post`` itself, or a :class:`~graphie.types.Post` of the text ``post``.

    Raises:
        InvalidInputError: neither a post nor a string.
    """
    if isinstance(post, Post):
        return post
    if isinstance(post, str):
        return Post(text=post)
    raise InvalidInputError(f"a context provider needs a Post or a str, got {type(post).__name__}")


def image_key(image: Any) -> str | None:
    """A content hash of a post's image (a path, bytes, a PIL image or a scene graph), ``None`` for no image.

    Raises:
        ImageError: the image file cannot be read.
    """
    if image is None:
        return None
    if isinstance(image, SceneGraph):
        return "graph:" + hashlib.sha256(json.dumps(image.to_dict(), sort_keys=True).encode()).hexdigest()
    from parsers.image.cache import content_hash

    return content_hash(image)


def iter_jsonl(path: str | os.PathLike, what: str) -> Iterable[tuple[int, Any]]:
    """``(line number, parsed value)`` of each non-blank line of the JSONL file ``path``.

    Raises:
        InvalidInputError: ``path`` is not a file (``what`` names it in the message).
        DatasetFormatError: a line that is not JSON (the message names file and line).
    """
    from pathlib import Path

    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidInputError(f"{what} {str(path)!r} is not a file")
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetFormatError(path, line_no, f"not JSON: {exc.msg}") from None


def file_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (part of the settings of a provider that reads the file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ContextProvider:
    """Base class of the context providers: a post in, its context string (or ``None``) out.

    A subclass sets ``name`` (its registry name), ``reads`` (the post fields its context depends
    on: ``"text"``, ``"caption"``, ``"context"``, ``"image"``), ``settings`` (a JSON-ready dict of
    everything else its answer depends on) and implements :meth:`compute`. ``requires`` lists the
    packages it needs beyond graphie's own install (import names, shown by ``graphie components``).

    Args:
        cache (ContextCache | None): where contexts are kept (default: the shared :data:`CACHE`;
            ``None``: no cache).
        workers (int): posts computed at once by :meth:`batch` (threads; > 1 for a remote endpoint).
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(self, cache: ContextCache | None = CACHE, workers: int = 1):
        if workers < 1:
            raise InvalidInputError(f"{self.name} context needs workers >= 1, got {workers}")
        self.cache = cache
        self.workers = workers
        self.settings: dict[str, Any] = {}

    def compute(self, post: Post) -> str | None:
        """The context of ``post``, uncached (subclasses implement it)."""
        raise NotImplementedError

    def key(self, post: Post) -> str:
        """The cache key of ``post``: this provider's name and settings and the fields it reads.

        Raises:
            ImageError: the provider reads the image and its file cannot be read.
        """
        fields: dict[str, Any] = {}
        for name in self.reads:
            fields[name] = image_key(post.image) if name == "image" else getattr(post, name)
        blob = json.dumps([self.name, self.settings, fields], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def __call__(self, post: Post | str) -> str | None:
        """The context of ``post`` (a :class:`~graphie.types.Post` or its text), ``None`` when there is none.

        Raises:
            GraphieError: the context cannot be made (the subclass says which errors).
        """
        post = as_post(post)
        if self.cache is None:
            return self.compute(post)
        key = self.key(post)
        found, context = self.cache.get(key)
        if found:
            return context
        context = self.compute(post)
        self.cache.put(key, context)
        return context

    def batch(self, posts: Iterable[Post | str]) -> list[Outcome]:
        """One outcome per post, in order: its context, ``None``, or a :class:`ContextFailure`
        for a post that failed (a bad post never stops the others). Posts with the same key are
        computed once; up to ``workers`` at a time."""
        posts = list(posts)
        outcomes: list[Outcome] = [None] * len(posts)
        todo: dict[str, list[int]] = {}  # key -> positions of the posts that share it
        first: dict[str, Post] = {}
        for i, item in enumerate(posts):
            try:
                post = as_post(item)
                key = self.key(post) if self.cache is not None else str(i)
            except GraphieError as exc:
                outcomes[i] = ContextFailure.from_exception(getattr(item, "id", None), exc)
                continue
            if self.cache is not None:
                found, context = self.cache.get(key)
                if found:
                    outcomes[i] = context
                    continue
            todo.setdefault(key, []).append(i)
            first.setdefault(key, post)

        def run(key: str) -> Outcome:
            try:
                context = self.compute(first[key])
            except GraphieError as exc:
                return ContextFailure.from_exception(first[key].id, exc)
            if self.cache is not None:
                self.cache.put(key, context)
            return context

        if self.workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
                results = dict(zip(todo, pool.map(run, todo)))
        else:
            results = {key: run(key) for key in todo}
        for key, positions in todo.items():
            for i in positions:
                outcome = results[key]
                if isinstance(outcome, ContextFailure) and posts[i] is not first[key]:
                    outcome = ContextFailure(getattr(posts[i], "id", None), outcome.type, outcome.message, outcome.field)
                outcomes[i] = outcome
        return outcomes

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items() if not k.endswith("_sha256"))
        return f"{type(self).__name__}({shown})"
