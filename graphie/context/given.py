"""``given``: the caption and notes that come with the post, written as the models read them in training.

    provider = graphie.context.create("given")
    provider(Post("Kawhi Leonard wins it", caption="a basketball player holding a trophy",
                  context="Kawhi Leonard is a basketball player in the NBA."))
    # 'caption: a basketball player holding a trophy | notes: Kawhi Leonard is a basketball player in the NBA.'

The caption is ``post.caption``; the notes (an LLM's or a person's words about the post) are
``post.context``. Training writes a post's context the same way (see
:func:`graphie.training.trainer.add_image_context`): the image's words from
:func:`graphie.image_context.image_context` first, then ``" | notes: "`` and the notes; notes
alone are the bare notes text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from parsers.scene import SceneGraph

from ..errors import InvalidInputError
from ..image_context import CONTEXT_CHARS, image_context
from ..types import Post
from .base import CACHE, ContextCache, ContextProvider

__all__ = ["GivenContext", "format_context", "join_context"]


def join_context(context: str | None, text: str | None) -> str | None:
    """``text`` after a post's ``context`` (``"<context> | <text>"``), as training joins a
    provider's text (``data.context_provider``) after a post's notes; either alone when the
    other is empty."""
    if not text:
        return context
    return f"{context} | {text}" if context else text


def format_context(caption: str | None = None, notes: str | None = None, scene: SceneGraph | None = None,
                   caption_chars: int = CONTEXT_CHARS) -> str | None:
    """A post's context as training writes it, ``None`` when there is nothing to write.

    - caption (and scene graph) only: ``"caption: <caption>"`` (with the scene's
      ``objects``/``text``/``tags`` sections when ``scene`` is given), from
      :func:`graphie.image_context.image_context`;
    - caption and notes: ``"caption: <caption> | notes: <notes>"``;
    - notes only: ``"<notes>"``.

    Whitespace in the notes is collapsed to single spaces. ``caption_chars`` is the image part's
    budget in characters (default :data:`graphie.image_context.CONTEXT_CHARS`, as in training; a
    longer caption is cut at a word); the model's ``max_context_length`` cuts the whole in sub-words.

    Raises:
        InvalidInputError: ``caption`` or ``notes`` not a string, ``scene`` not a scene graph.
    """
    for name, value in (("caption", caption), ("notes", notes)):
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"the {name} of a post must be a string, got {type(value).__name__}")
    words = image_context(scene, caption=caption, max_chars=caption_chars) if caption or scene is not None else ""
    notes = " ".join((notes or "").split())
    if words and notes:
        return f"{words} | notes: {notes}"
    return words or notes or None


class GivenContext(ContextProvider):
    """The post's own caption (``post.caption``) and notes (``post.context``), formatted by
    :func:`format_context`; nothing is computed and nothing needs installing.

    Args:
        caption_chars (int): budget of the caption part, in characters (default
            :data:`graphie.image_context.CONTEXT_CHARS`, as in training).
        cache (ContextCache | None): see :class:`~graphie.context.base.ContextProvider`.
    """

    name: ClassVar[str] = "given"
    reads: ClassVar[tuple[str, ...]] = ("caption", "context")

    def __init__(self, caption_chars: int = CONTEXT_CHARS, cache: ContextCache | None = CACHE):
        super().__init__(cache=cache)
        if not isinstance(caption_chars, int) or caption_chars < 1:
            raise InvalidInputError(f"given context needs caption_chars >= 1, got {caption_chars!r}")
        self.settings: dict[str, Any] = {"caption_chars": caption_chars}

    def compute(self, post: Post) -> str | None:
        """``format_context(post.caption, post.context)``."""
        return format_context(post.caption, post.context, caption_chars=self.settings["caption_chars"])
