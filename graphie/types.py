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

    def __repr__(self) -> str:
        where = f"{self.span.start_char}:{self.span.end_char}" if self.span.start_char is not None else \
            f"w{self.span.start}:{self.span.end}"
        return f"Entity({self.text!r}, {self.type}, {where}, score={self.score:.2f})"

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

    def __repr__(self) -> str:
        return f"Relation({self.head.text!r} -{self.label}-> {self.tail.text!r}, score={self.score:.2f})"

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


PostId = str | int
"""A post's id: kept with its JSON type (``1`` stays ``1``, ``"1"`` stays ``"1"``) so joins downstream work."""


def _short(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


@dataclass
class Post:
    """A social-media post: text (and/or its tokens), an optional image reference, an
    optional caption of the image and optional auxiliary context (retrieved knowledge,
    LLM notes) that informs a model but never yields entities itself.

    Benchmark readers fill ``entities`` and ``relations`` with the gold annotation.
    ``image`` is a path for posts read from files; in Python it may also be encoded bytes or a
    PIL image.
    """

    text: str = ""
    tokens: list[str] | None = None
    image: Any = None
    caption: str | None = None
    context: str | None = None
    id: PostId | None = None
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.text and self.tokens:
            self.text = " ".join(self.tokens)
        if not isinstance(self.text, str):
            raise InvalidInputError(f"post text must be a str, got {type(self.text).__name__}")

    def __repr__(self) -> str:
        extra = "".join(f", {name}=…" for name in ("image", "caption", "context") if getattr(self, name) is not None)
        return f"Post(id={self.id!r}, text={_short(self.text)}{extra})"

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
        """The post :meth:`to_dict` wrote. Raises :class:`InvalidInputError` when ``d`` is not a
        dict; input records from users are checked field by field by
        :func:`graphie.records.post_from_record` instead."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"a post must be a JSON object, got {type(d).__name__}")
        return cls(
            text=d.get("text", ""),
            tokens=d.get("tokens"),
            image=d.get("image"),
            caption=d.get("caption"),
            context=d.get("context"),
            id=d.get("id"),
            entities=[Entity.from_dict(e) for e in d.get("entities", [])],
            relations=[Relation.from_dict(r) for r in d.get("relations", [])],
        )


@dataclass
class Extraction:
    """What a model found in a post: entities, directed relations, and the graphs behind them.

    ``text_graph`` and ``scene_graph`` are the parsed :class:`parsers.text.TextGraph` and
    :class:`parsers.scene.SceneGraph` (``None`` when not computed, e.g. no image). A post longer than
    the encoder's sub-word budget is read in ``windows`` overlapping windows whose findings are
    merged; ``truncated`` is True when some of the text was nevertheless never read (a single
    word longer than the whole budget). ``warnings`` says when the result deserves less trust
    (text that is not English, which the shipped models were not trained on).
    ``image_relevance`` is how far a model with a relevance gate (fusion ``relevance_gate``,
    :mod:`graphie.fusion`) let the post's image in, in [0, 1]: 0 for a post without image or
    context, the largest over the rows that read the post (windows of a long post, the marker
    head's pairs); ``None`` for a model without a gate.
    """

    text: str
    tokens: list[str]
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    text_graph: Any = None
    scene_graph: Any = None
    id: PostId | None = None
    windows: int = 1
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    image_relevance: float | None = None

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.entities[:4])) + (", …" if len(self.entities) > 4 else "")
        return (f"Extraction(id={self.id!r}, text={_short(self.text)} ({len(self.tokens)} words), "
                f"entities=[{shown}], relations={len(self.relations)}"
                + (f", windows={self.windows}" if self.windows != 1 else "")
                + (", truncated=True" if self.truncated else "")
                + (f", image_relevance={self.image_relevance:.2f}" if self.image_relevance is not None else "")
                + (f", warnings={self.warnings!r}" if self.warnings else "") + ")")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {
            "text": self.text,
            "tokens": self.tokens,
            "entities": [e.to_dict() for e in self.entities],
            "relations": [r.to_dict() for r in self.relations],
            "windows": self.windows,
            "truncated": self.truncated,
        }
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.image_relevance is not None:
            d["image_relevance"] = round(float(self.image_relevance), 6)
        if self.id is not None:
            d["id"] = self.id
        if self.text_graph is not None:
            d["text_graph"] = self.text_graph.to_dict()
        if self.scene_graph is not None:
            # Region features and the pixel feature grid are model input, not findings: 1280 floats
            # an object (a grid of them) would swamp every JSON result, so results leave them out
            # (scene-graph caches keep them).
            scene = self.scene_graph.to_dict()
            scene.pop("pixels", None)
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
            windows=d.get("windows", 1),
            truncated=d.get("truncated", False),
            warnings=list(d.get("warnings", [])),
            image_relevance=d.get("image_relevance"),
        )

    def to_record(self) -> dict[str, Any]:
        """The flat output record of batch jobs (its fields: :data:`graphie.records.RECORD_FIELDS`,
        which tests/test_records.py holds it to): character offsets, types, scores, relations as indices into ``entities``;
        every key always present, so that rows of many posts form one Arrow/Parquet table.
        Scores have 4 decimals: the 6th differs between torch thread counts (1 per Ray worker)."""
        index = {id(e): i for i, e in enumerate(self.entities)}
        return {
            "id": self.id,
            "entities": [
                {"start": e.span.start_char, "end": e.span.end_char, "text": e.text, "type": e.type,
                 "score": round(float(e.score), 4),
                 "evidence": [{"object": int(v["object"]), "label": str(v["label"]), "weight": float(v["weight"])}
                              for v in e.evidence]}
                for e in self.entities
            ],
            "relations": [
                {"head": index[id(r.head)], "tail": index[id(r.tail)], "label": r.label,
                 "score": round(float(r.score), 4)}
                for r in self.relations if id(r.head) in index and id(r.tail) in index
            ],
            "windows": self.windows,
            "truncated": self.truncated,
            "warnings": list(self.warnings),
            "image_relevance": None if self.image_relevance is None else round(float(self.image_relevance), 4),
            "error": None,
        }

    def to_spacy(self, vocab: Any = None) -> Any:
        """A spaCy ``Doc`` of the post's words (token ``i`` is word ``i``) with the dependency parse
        of ``text_graph`` (POS, tags, lemmas, heads, labels), the entities as ``doc.ents``
        (non-overlapping, for displaCy), every entity in ``doc.spans["graphie"]`` with its score
        and evidence in the group's ``attrs``, the relations in ``doc._.relations`` and the scene
        graph in ``doc._.scene_graph`` (see :func:`graphie.spacy_doc.write_extraction`)."""
        from .spacy_doc import extraction_doc

        return extraction_doc(self, vocab)

    def to_networkx(self) -> Any:
        """The entity–relation graph as a ``networkx.MultiDiGraph``: node ``i`` is ``entities[i]``
        (``text``, ``type``, ``score``, word ``start``/``end``, ``start_char``/``end_char``,
        ``evidence``), each relation an edge ``head -> tail`` keyed by its label (``label``,
        ``score``); graph attributes ``text`` and ``id``. Entities in no relation are nodes too."""
        import networkx as nx

        g = nx.MultiDiGraph(text=self.text, id=self.id)
        for i, e in enumerate(self.entities):
            start_char, end_char = self.char_span(e)
            g.add_node(i, text=e.text, type=e.type, score=float(e.score), start=e.span.start, end=e.span.end,
                       start_char=start_char, end_char=end_char, evidence=[dict(v) for v in e.evidence])
        for head, tail, r in self.relation_indices():
            g.add_edge(head, tail, key=r.label, label=r.label, score=float(r.score))
        return g

    def to_html(self, image: Any = None, *, page: bool = False) -> str:
        """An HTML view (see :func:`graphie.html.extraction_html`): the text with the entities
        highlighted as displaCy does, the relations as SVG arcs, and ``image`` (a path, bytes or
        PIL image; inline, base64) with the evidence boxes. ``page=True`` gives a whole document."""
        from .html import extraction_html

        return extraction_html(self, image, page=page)

    def _repr_html_(self) -> str:
        """The notebook view: :meth:`to_html` (no image: an :class:`Extraction` keeps none)."""
        return self.to_html()

    def entity_index(self, entity: Entity) -> int | None:
        """Position of ``entity`` in ``entities``: the same object, else the first entity with
        the same span and type (relations read back by :meth:`from_dict` hold copies); ``None``
        when there is none."""
        for i, e in enumerate(self.entities):
            if e is entity:
                return i
        for i, e in enumerate(self.entities):
            if e.key == entity.key:
                return i
        return None

    def relation_indices(self) -> list[tuple[int, int, "Relation"]]:
        """``(head index, tail index, relation)`` for every relation whose two entities are in
        ``entities`` (see :meth:`entity_index`)."""
        out = []
        for r in self.relations:
            head, tail = self.entity_index(r.head), self.entity_index(r.tail)
            if head is not None and tail is not None:
                out.append((head, tail, r))
        return out

    def char_span(self, entity: Entity) -> tuple[int, int]:
        """Character offsets ``[start, end)`` of ``entity`` in ``text``: its own when it has
        them, else those of its words."""
        if entity.span.start_char is not None and entity.span.end_char is not None:
            return entity.span.start_char, entity.span.end_char
        if not 0 <= entity.span.start < entity.span.end <= len(self.tokens):
            raise InvalidInputError(f"entity {entity.text!r} spans words [{entity.span.start}, {entity.span.end}) "
                                    f"of a post of {len(self.tokens)} words")
        starts = self._starts()
        return starts[entity.span.start], starts[entity.span.end - 1] + len(self.tokens[entity.span.end - 1])

    def _starts(self) -> list[int]:
        if self.text_graph is not None:
            return list(self.text_graph.starts)
        starts, offset = [], 0
        for tok in self.tokens:
            offset = self.text.index(tok, offset)
            starts.append(offset)
            offset += len(tok)
        return starts
