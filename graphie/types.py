"""The nouns of graphie: a :class:`Post`, its :class:`Span` s, :class:`Entity` s and
:class:`Relation` s, and the :class:`Extraction` a model returns for a post.

Each is a small dataclass with ``to_dict``/``from_dict`` giving plain JSON-serialisable data.
Word indices are 0-based; spans are half-open ``[start, end)`` over the post's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInputError


@dataclass(frozen=True)
class Span:
    """Words ``start..end-1`` of a post, with their text and, when known, character offsets."""

    start: int
    end: int
    text: str = ""
    start_char: int | None = None
    end_char: int | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end):
            raise InvalidInputError(f"span needs 0 <= start < end, got [{self.start}, {self.end})")

    def __len__(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.start_char is not None:
            d["start_char"], d["end_char"] = self.start_char, self.end_char
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Span":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(d["start"], d["end"], d.get("text", ""), d.get("start_char"), d.get("end_char"))


@dataclass
class Entity:
    """A typed mention. ``evidence`` lists the image objects most aligned with it
    (``{"object": index, "label": ..., "weight": ...}``), empty for text-only posts."""

    span: Span
    type: str
    score: float = 1.0
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.span.text

    @property
    def key(self) -> tuple[int, int, str]:
        """What exact-match evaluation compares: word span and type."""
        return (self.span.start, self.span.end, self.type)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d = {"span": self.span.to_dict(), "type": self.type, "score": round(float(self.score), 6)}
        if self.evidence:
            d["evidence"] = self.evidence
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Entity":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(Span.from_dict(d["span"]), d["type"], d.get("score", 1.0), list(d.get("evidence", [])))


@dataclass
class Relation:
    """A directed relation ``head --label--> tail``. ``label`` may be ``"None"`` for a
    gold MNRE pair that holds no relation."""

    head: Entity
    tail: Entity
    label: str
    score: float = 1.0

    @property
    def key(self) -> tuple:
        """What quintuple evaluation compares: both entities (span and type) and the label."""
        return (self.head.key, self.tail.key, self.label)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return {
            "head": self.head.to_dict(),
            "tail": self.tail.to_dict(),
            "label": self.label,
            "score": round(float(self.score), 6),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Relation":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(Entity.from_dict(d["head"]), Entity.from_dict(d["tail"]), d["label"], d.get("score", 1.0))


@dataclass
class Post:
    """A social-media post: text (and/or its tokens), an optional image reference, an
    optional caption of the image and optional auxiliary context (retrieved knowledge,
    LLM notes) that informs a model but never yields entities itself.

    Benchmark readers fill ``entities`` and ``relations`` with the gold annotation.
    """

    text: str = ""
    tokens: list[str] | None = None
    image: str | None = None
    caption: str | None = None
    context: str | None = None
    id: str | None = None
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.text and self.tokens:
            self.text = " ".join(self.tokens)
        if not isinstance(self.text, str):
            raise InvalidInputError(f"post text must be a str, got {type(self.text).__name__}")

    def span(self, start: int, end: int) -> Span:
        """A :class:`Span` over ``tokens[start:end]`` with its text filled in."""
        if self.tokens is None:
            raise InvalidInputError("post has no tokens yet; parse it first")
        if not (0 <= start < end <= len(self.tokens)):
            raise InvalidInputError(f"span [{start}, {end}) outside the post's {len(self.tokens)} tokens")
        return Span(start, end, " ".join(self.tokens[start:end]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {"text": self.text}
        for name in ("tokens", "image", "caption", "context", "id"):
            value = getattr(self, name)
            if value is not None:
                d[name] = value
        if self.entities:
            d["entities"] = [e.to_dict() for e in self.entities]
        if self.relations:
            d["relations"] = [r.to_dict() for r in self.relations]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Post":
        """The post :meth:`to_dict` wrote, or one JSONL input line (``text`` or ``tokens``,
        optional ``id``, ``image``, ``caption``, ``context``). Raises :class:`InvalidInputError`
        when ``d`` is not a dict."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"a post must be a JSON object, got {type(d).__name__}")
        return cls(
            text=d.get("text", ""),
            tokens=d.get("tokens"),
            image=d.get("image"),
            caption=d.get("caption"),
            context=d.get("context"),
            id=None if d.get("id") is None else str(d["id"]),
            entities=[Entity.from_dict(e) for e in d.get("entities", [])],
            relations=[Relation.from_dict(r) for r in d.get("relations", [])],
        )


@dataclass
class Extraction:
    """What a model found in a post: entities, directed relations, and the graphs behind them.

    ``text_graph`` and ``scene_graph`` are the parsed :class:`parsers.TextGraph` and
    :class:`parsers.SceneGraph` (``None`` when not computed, e.g. no image).
    """

    text: str
    tokens: list[str]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    text_graph: Any = None
    scene_graph: Any = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {
            "text": self.text,
            "tokens": self.tokens,
            "entities": [e.to_dict() for e in self.entities],
            "relations": [r.to_dict() for r in self.relations],
        }
        if self.id is not None:
            d["id"] = self.id
        if self.text_graph is not None:
            d["text_graph"] = self.text_graph.to_dict()
        if self.scene_graph is not None:
            # Region feature vectors are model input, not findings: 1280 floats an object would
            # swamp every JSON result, so results leave them out (scene-graph caches keep them).
            scene = self.scene_graph.to_dict()
            for obj in scene["objects"]:
                obj.pop("feature", None)
            d["scene_graph"] = scene
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Extraction":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        text_graph = scene_graph = None
        if d.get("text_graph") is not None:
            from parsers.text import TextGraph

            text_graph = TextGraph.from_dict(d["text_graph"])
        if d.get("scene_graph") is not None:
            from parsers.scene import SceneGraph

            scene_graph = SceneGraph.from_dict(d["scene_graph"])
        return cls(
            text=d["text"],
            tokens=list(d["tokens"]),
            entities=[Entity.from_dict(e) for e in d.get("entities", [])],
            relations=[Relation.from_dict(r) for r in d.get("relations", [])],
            text_graph=text_graph,
            scene_graph=scene_graph,
            id=d.get("id"),
        )
