"""An :class:`~graphie.types.Extraction` written onto a spaCy ``Doc``, as spaCy's own components
write their findings:

- ``doc.ents``: the entities that do not overlap (the longest wins), for displaCy and every tool
  that reads ``doc.ents``;
- ``doc.spans["graphie"]``: every entity, in the order of ``Extraction.entities``, with the
  group's ``attrs["scores"]`` (one per span, as spaCy's ``spancat`` writes them) and
  ``attrs["evidence"]`` (the image objects aligned with each);
- ``doc._.relations``: one ``{"head": i, "tail": j, "label": ..., "score": ...}`` per relation,
  ``i`` and ``j`` indices into ``doc.spans["graphie"]``;
- ``doc._.scene_graph``: the image's scene graph as plain data (``SceneGraph.to_dict`` without
  region features), or ``None`` when the post had no image.

Everything written is plain data, so a Doc survives ``doc.to_bytes()``, ``DocBin`` and
``nlp.pipe(n_process=...)``. :meth:`~graphie.types.Extraction.to_spacy` makes a Doc of graphie's own words
(token ``i`` is word ``i``, with the parse); the ``graphie`` pipeline component
(:mod:`graphie.spacy_component`) writes onto a Doc another tokenizer made, mapping graphie's
words to its tokens by character offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import InvalidInputError

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from .types import Extraction

#: key of the span group that holds every entity
SPAN_KEY = "graphie"
#: ``Doc`` extensions graphie writes (``image`` is read: the post's image, set before the pipeline runs)
EXTENSIONS = ("relations", "scene_graph", "image")
ALIGNMENT_MODES = ("strict", "contract", "expand")


def register_extensions() -> None:
    """Add ``doc._.relations``, ``doc._.scene_graph`` and ``doc._.image`` (default ``None``) unless
    they exist."""
    from spacy.tokens import Doc

    for name in EXTENSIONS:
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


def write_extraction(doc: "Doc", result: "Extraction", alignment_mode: str = "expand") -> "Doc":
    """Write ``result`` onto ``doc`` (whose text is the text ``result`` was extracted from) and
    return it. Entities map to ``doc``'s tokens by character offsets; where a boundary falls inside
    a token, ``alignment_mode`` decides: ``expand`` (default) widens the span to whole tokens
    (``@Ryanair`` as one token holds the entity ``Ryanair``), ``contract`` narrows it, and
    ``strict`` drops it; an entity that maps to no token is left out, and so are its relations.
    ``doc.ents`` is replaced."""
    if alignment_mode not in ALIGNMENT_MODES:
        raise InvalidInputError(f"alignment_mode must be one of {', '.join(ALIGNMENT_MODES)}, got {alignment_mode!r}")
    if doc.text != result.text:
        raise InvalidInputError("the extraction was made from another text than the Doc's")
    spans = []
    for entity in result.entities:
        start, end = result.char_span(entity)
        span = doc.char_span(start, end, label=entity.type, alignment_mode=alignment_mode)
        spans.append(span if span is not None and len(span) > 0 else None)
    return _write(doc, result, spans)


def extraction_doc(result: "Extraction", vocab: Any = None) -> "Doc":
    """A new ``Doc`` of ``result``'s words (token ``i`` is word ``i``; a space after a word where
    the text has one) with the dependency parse of ``result.text_graph`` when it has one, and the
    findings as :func:`write_extraction` writes them. The Doc's text is the words and their single
    spaces: it differs from ``result.text`` where that holds other whitespace."""
    from spacy.tokens import Doc
    from spacy.tokens import Span as SpacySpan
    from spacy.vocab import Vocab

    ends = [s + len(t) for s, t in zip(result._starts(), result.tokens)]
    spaces = [end < len(result.text) and result.text[end].isspace() for end in ends]
    parse: dict[str, Any] = {}
    graph = result.text_graph
    if graph is not None and list(graph.tokens) == list(result.tokens):
        parse = {"pos": list(graph.pos), "tags": list(graph.tags), "lemmas": list(graph.lemmas),
                 "heads": list(graph.heads), "deps": list(graph.deps)}
    doc = Doc(vocab or Vocab(), words=list(result.tokens), spaces=spaces, **parse)
    n = len(doc)
    spans = [SpacySpan(doc, e.span.start, e.span.end, label=e.type) if e.span.end <= n else None
             for e in result.entities]
    return _write(doc, result, spans)


def _write(doc: "Doc", result: "Extraction", spans: list[Any]) -> "Doc":
    """The findings onto ``doc``, ``spans[i]`` being entity ``i``'s span (``None``: left out)."""
    from spacy.tokens import SpanGroup
    from spacy.util import filter_spans

    register_extensions()
    kept = [i for i, span in enumerate(spans) if span is not None]
    position = {i: k for k, i in enumerate(kept)}
    group = SpanGroup(doc, name=SPAN_KEY, spans=[spans[i] for i in kept])
    group.attrs["scores"] = [round(float(result.entities[i].score), 6) for i in kept]
    group.attrs["evidence"] = [[dict(v) for v in result.entities[i].evidence] for i in kept]
    doc.spans[SPAN_KEY] = group
    doc.ents = filter_spans([spans[i] for i in kept])
    doc._.relations = [
        {"head": position[h], "tail": position[t], "label": r.label, "score": round(float(r.score), 6)}
        for h, t, r in result.relation_indices() if h in position and t in position
    ]
    doc._.scene_graph = _scene_dict(result.scene_graph)
    return doc


def _scene_dict(graph: Any) -> dict[str, Any] | None:
    """The scene graph as plain data, without region features (model input, not findings)."""
    if graph is None:
        return None
    data = graph.to_dict()
    for obj in data.get("objects", []):
        obj.pop("feature", None)
    return data
