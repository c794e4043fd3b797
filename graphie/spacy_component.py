"""graphie as a spaCy pipeline component:

    import spacy

    nlp = spacy.blank("en")                      # or any pipeline: spacy.load("en_core_web_sm")
    nlp.add_pipe("graphie", config={"model": "default"})
    doc = nlp("Barack Obama visited Paris")
    doc.ents                                     # (Barack Obama, Paris)
    doc.spans["graphie"].attrs["scores"]         # one score per entity
    doc._.relations                              # [{"head": 0, "tail": 1, "label": ..., "score": ...}]

The factory ``graphie`` is registered through the ``spacy_factories`` entry point of the graphie
package, so ``nlp.add_pipe("graphie")`` works in any program once graphie is installed, without
importing it. What the component writes is described in :mod:`graphie.spacy_doc`. A post's image
goes in ``doc._.image`` (a path, bytes or PIL image) before the component runs; the scene graph
then comes back in ``doc._.scene_graph``::

    doc = nlp.make_doc("Obama at the White House")
    doc._.image = "photo.jpg"
    doc = nlp.get_pipe("graphie")(doc)

This module is imported whenever spaCy makes a pipeline (that is how entry points work), so it
imports nothing heavy: the model is loaded when the component is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional

from spacy.language import Language

from .spacy_doc import ALIGNMENT_MODES, register_extensions, write_extraction

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from .api import Extractor

#: the component's settings and their defaults (``nlp.add_pipe("graphie", config={...})``)
DEFAULT_CONFIG: dict[str, Any] = {
    "model": "default",
    "device": None,
    "relation_threshold": None,
    "threshold": None,
    "labels": None,
    "detector": "default",
    "batch_size": 16,
    "alignment_mode": "expand",
}


@Language.factory(
    "graphie",
    default_config=DEFAULT_CONFIG,
    assigns=["doc.ents", "doc.spans", "doc._.relations", "doc._.scene_graph"],
)
def make_graphie(
    nlp: Language,
    name: str,
    model: str,
    device: Optional[str],
    relation_threshold: Optional[float],
    threshold: Optional[float],
    labels: Optional[list[str]],
    detector: str,
    batch_size: int,
    alignment_mode: str,
) -> "GraphieComponent":
    """The ``graphie`` factory: the settings of :class:`GraphieComponent`, from the pipeline's config."""
    return GraphieComponent(name, model=model, device=device, relation_threshold=relation_threshold,
                            threshold=threshold, labels=labels, detector=detector, batch_size=batch_size,
                            alignment_mode=alignment_mode)


class GraphieComponent:
    """Entities and relations of each ``Doc`` by a graphie model, written onto the Doc.

    Args:
        name: the component's name in the pipeline.
        model: a shipped model name (``"default"``) or a saved model folder.
        device: torch device (``None``: the first CUDA GPU when torch sees one, else the CPU).
        relation_threshold: least score a relation needs (``None``: the model's own).
        threshold: least score an entity needs (``None``: every entity the model predicts).
        labels: entity types and relation labels to write, e.g. ``["PER", "ORG"]`` (``None``:
            all; see :class:`graphie.Extractor`).
        detector: image parser for Docs that carry an image in ``doc._.image``.
        batch_size: Docs per model call in ``nlp.pipe``.
        alignment_mode: how an entity whose edge falls inside a spaCy token is mapped
            (``expand``, ``contract`` or ``strict``; see :func:`graphie.spacy_doc.write_extraction`).
        extractor: a ready :class:`graphie.Extractor` to use instead of loading ``model``.

    Raises:
        InvalidInputError: an unknown ``alignment_mode`` or a ``batch_size`` below 1.
        ModelLoadError: no such model.
    """

    def __init__(self, name: str = "graphie", *, model: str = "default", device: Optional[str] = None,
                 relation_threshold: Optional[float] = None, threshold: Optional[float] = None,
                 labels: Optional[list[str]] = None, detector: str = "default", batch_size: int = 16,
                 alignment_mode: str = "expand", extractor: "Extractor | None" = None):
        from .api import check_count, check_fraction, check_labels, load
        from .errors import InvalidInputError

        if alignment_mode not in ALIGNMENT_MODES:
            raise InvalidInputError(f"alignment_mode must be one of {', '.join(ALIGNMENT_MODES)}, got {alignment_mode!r}")
        self.name = name
        self.batch_size = check_count("batch_size", batch_size)
        self.alignment_mode = alignment_mode
        self.extractor = extractor if extractor is not None else load(
            model, device=device, relation_threshold=relation_threshold, detector=detector)
        cfg = self.extractor.model.config  # checked now, not at the first Doc
        self.threshold = None if threshold is None else check_fraction("threshold", threshold)
        check_labels(labels, cfg.entity_types, cfg.relation_labels)
        self.label_filter = labels  # not ``labels``: spaCy reads a component's ``labels`` as its label set
        register_extensions()

    def __repr__(self) -> str:
        return f"GraphieComponent(name={self.name!r}, extractor={self.extractor!r})"

    def __call__(self, doc: "Doc") -> "Doc":
        """Annotate one Doc."""
        return next(iter(self.pipe([doc], batch_size=1)))

    def pipe(self, docs: Iterable["Doc"], batch_size: int | None = None) -> Iterator["Doc"]:
        """Annotate a stream of Docs, ``batch_size`` (default: the component's) per model call, in
        order. A Doc of only whitespace gets empty findings. Raises the graphie error of a Doc
        that cannot be read (e.g. :class:`~graphie.errors.ImageError` for a broken ``doc._.image``)."""
        size = self.batch_size if batch_size is None else batch_size
        chunk: list[Doc] = []
        for doc in docs:
            chunk.append(doc)
            if len(chunk) >= size:
                yield from self._annotate(chunk)
                chunk = []
        if chunk:
            yield from self._annotate(chunk)

    def _annotate(self, docs: list["Doc"]) -> list["Doc"]:
        """One model call's worth of Docs, annotated in place."""
        from .records import ErrorRecord
        from .types import Extraction

        readable = [d for d in docs if d.text.strip()]
        records = []
        for d in readable:
            record: dict[str, Any] = {"text": d.text}
            if d.has_extension("image") and d._.image is not None:
                record["image"] = d._.image
            records.append(record)
        outcomes = iter(self.extractor.extract_many(records, batch_size=len(docs), progress=False,
                                                    threshold=self.threshold, labels=self.label_filter) if records else [])
        for doc in docs:
            if not doc.text.strip():
                write_extraction(doc, Extraction(doc.text, []), self.alignment_mode)
                continue
            outcome = next(outcomes)
            if isinstance(outcome, ErrorRecord):
                raise _error(outcome)
            write_extraction(doc, outcome, self.alignment_mode)
        return docs


def _error(record: Any) -> Exception:
    """The typed graphie error an :class:`~graphie.records.ErrorRecord` stands for."""
    from . import errors

    kind = getattr(errors, record.type, None)
    if not (isinstance(kind, type) and issubclass(kind, errors.GraphieError)):
        kind = errors.GraphieError
    return kind(record.message)
