"""Context for a new post: the auxiliary text (a caption, notes, retrieved knowledge) that a
model trained with context reads beside the post's text.

Three providers, chosen by name from :data:`graphie.registry.contexts`:

- ``given``: the caption and notes that come with the post, formatted as in training
  (:mod:`graphie.context.given`); nothing to install;
- ``retrieval``: BM25 passages of a corpus, by default 10,033 Wikipedia lead paragraphs
  (:mod:`graphie.context.retrieval`); needs ``pip install 'graphie[context]'``;
- ``llm``: notes from an OpenAI-compatible chat endpoint the user configures, with PGIM's
  prompt, and a description of the image when the endpoint takes images
  (:mod:`graphie.context.llm`); needs only a server to talk to.

::

    from graphie.context import contexts_for, create

    provider = create("retrieval", k=2)
    provider("Taylor Swift live at Wembley tonight")     # one post: a string or None
    contexts_for(posts, provider)                        # N posts in, N outcomes out

Every provider is a :class:`~graphie.context.base.ContextProvider`: ``provider(post)`` for one
post (errors raised), ``provider.batch(posts)`` or :func:`contexts_for` for many (one outcome
per post, in order: the context, ``None``, or a :class:`~graphie.context.base.ContextFailure`).
Contexts are cached in memory by provider settings and post content, so each is computed once.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import InvalidInputError
from ..registry import contexts
from ..types import Post
from .base import (
    CACHE,
    ContextCache,
    ContextFailure,
    ContextProvider,
    ContextReplyError,
    ContextUnavailableError,
    Outcome,
)
from .given import GivenContext, format_context, join_context
from .llm import LLMContext
from .retrieval import RetrievalContext

if TYPE_CHECKING:
    from ..records import ErrorRecord

__all__ = [
    "CACHE",
    "ContextCache",
    "ContextFailure",
    "ContextProvider",
    "ContextReplyError",
    "ContextUnavailableError",
    "GivenContext",
    "LLMContext",
    "Outcome",
    "PROVIDERS",
    "ProvidedContext",
    "RetrievalContext",
    "contexts_for",
    "create",
    "format_context",
    "join_context",
]

#: Every provider, registered in :data:`graphie.registry.contexts` under its ``name`` from this one list.
PROVIDERS: tuple[type[ContextProvider], ...] = (GivenContext, RetrievalContext, LLMContext)

for _provider in PROVIDERS:
    contexts.register(_provider.name)(_provider)


def create(name: str, **options: Any) -> ContextProvider:
    """The context provider registered as ``name`` (``given``, ``retrieval``, ``llm``) with ``options``.

        create("given")
        create("retrieval", corpus="passages.jsonl", k=2)
        create("llm", base_url="http://localhost:8000/v1", model="qwen2.5-7b-instruct")

    Raises:
        UnknownComponentError: no provider of that name (the message lists the known ones).
        InvalidInputError: an option the provider does not take (the message lists those it
            takes), a required option missing, or a value out of range.
        MissingDependencyError: a package the provider needs is not installed.
    """
    factory = contexts.get(name)
    params = inspect.signature(factory).parameters
    takes = [p for p in params if p not in ("self",)]
    unknown = [o for o in options if o not in params]
    if unknown:
        raise InvalidInputError(f"the {name} context takes no option {unknown[0]!r}; it takes {', '.join(takes)}")
    missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in options]
    if missing:
        raise InvalidInputError(f"the {name} context needs the option {missing[0]!r}")
    return contexts.create(name, **options)


def contexts_for(posts: Iterable[Post | str], provider: ContextProvider | str) -> list[Outcome]:
    """One outcome per post, in order: its context string, ``None`` (no context), or a
    :class:`~graphie.context.base.ContextFailure` for a post that failed; ``provider`` is a
    provider or the name of one (created with its defaults).

    Raises:
        InvalidInputError: ``provider`` is neither a provider nor a name.
    """
    if isinstance(provider, str):
        provider = create(provider)
    if not isinstance(provider, ContextProvider):
        raise InvalidInputError(f"contexts_for needs a ContextProvider or a provider name, got {type(provider).__name__}")
    return provider.batch(posts)


class ProvidedContext:
    """A provider's text joined to each post's context as training's ``data.context_provider``
    joins it (after the notes a post has: ``"<notes> | <text>"``), one post at a time, for a
    stream of posts (``graphie extract-file --context-provider``, ``graphie extract``).

    ``fill(post)`` is a copy of ``post`` with the text added (``post`` itself when the provider
    has nothing for it), or an :class:`~graphie.records.ErrorRecord` in its place when the
    provider failed on it (an endpoint that did not answer), so that a batch job keeps one record
    per input. It pickles as its recipe (name and options): each process that runs it (a Ray
    worker) builds its own provider on first use.

    Raises:
        UnknownComponentError, InvalidInputError, MissingDependencyError: as :func:`create`, at
            construction (a wrong name or option stops the job before any post).
    """

    def __init__(self, name: str, **options: Any):
        self.name, self.options = name, options
        self._provider: ContextProvider | None = create(name, **options)

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "options": self.options, "_provider": None}

    @property
    def provider(self) -> ContextProvider:
        if self._provider is None:
            self._provider = create(self.name, **self.options)
        return self._provider

    def __call__(self, post: Post) -> "Post | ErrorRecord":
        from ..records import ErrorRecord

        outcome = self.provider.batch([post])[0]
        if isinstance(outcome, ContextFailure):
            return ErrorRecord(post.id, outcome.type, f"context provider {self.name!r}: {outcome.message}", outcome.field)
        if not outcome:
            return post
        return dataclasses.replace(post, context=join_context(post.context, outcome))

    def __repr__(self) -> str:
        return f"ProvidedContext({self.name!r}, {self.options!r})"
