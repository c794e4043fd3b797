"""The model's way out: :class:`ModelOutput` (what :meth:`~graphie.models.model.GraphieModel.forward` returns),
:func:`decode` (logits of one :class:`~graphie.models.batching.Batch` -> one
:class:`~graphie.types.Extraction` per post) and :func:`attach_evidence` (each entity's
supporting image objects, read off the alignment matrix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from parsers.scene import SceneGraph
from parsers.text import TextGraph

from ..types import Entity, Extraction, Relation, Span
from .batching import Batch
from .config import ModelConfig
from .grid import decode_entities, decode_relations
from .scene_encoder import kept_objects

SpanTuple = tuple[int, int, str, float]


@dataclass
class ModelOutput:
    """What :meth:`~graphie.models.model.GraphieModel.forward` returns: the loss (with targets) and the logits of the configured head."""
    loss: Tensor | None
    entity_logits: Tensor | None = None  # [B, n, n, T]
    relation_logits: Tensor | None = None  # [B, n, n, R + 1]
    pair_logits: Tensor | None = None  # [P, R + 1] (mnre: grid vote or marker head)
    emissions: Tensor | None = None  # [B, n, 2T + 1] (bio head)
    alignment: Tensor | None = None  # [B, n, m] token-object weights
    graph_loss: Tensor | None = None
    fusion_loss: Tensor | None = None  # the fusion's auxiliary loss (weighted by its options), part of ``loss``
    fusion: dict[str, Tensor] | None = None  # the fusion's per-post diagnostics [B], e.g. {"gate": ...}
    image_relevance: Tensor | None = None  # [B] the diagnostic the fusion names as its relevance (Fusion.relevance)
    extra: dict[str, Tensor] = field(default_factory=dict)  # what a head's own logits are (e.g. queries: start, end, match)


def post_maxima(values: Tensor | None, batch: Batch) -> list[float | None]:
    """Each post's largest value of ``values`` (one per batch row) over the rows that read it:
    the row itself, or the marker head's pair rows of the post (``batch.pair_index``); ``None``
    for every post without ``values``, and for a post that no row reads."""
    B = len(batch.examples)
    if values is None:
        return [None] * B
    values = values.detach().float()
    rows = batch.pair_index if batch.marker_index is not None else torch.arange(B)
    best = values.new_full((B,), float("-inf")).scatter_reduce(0, rows.to(values.device), values, "amax")
    return [None if v == float("-inf") else v for v in best.tolist()]


def _entity(graph: TextGraph, s: int, e: int, t: str, score: float = 1.0) -> Entity:
    """An entity over words ``s:e`` of ``graph``, with its text and character offsets."""
    start_char, end_char = graph.char_span(s, e)
    return Entity(Span(s, e, graph.text[start_char:end_char], start_char, end_char), t, score)


def decode(config: ModelConfig, batch: Batch, out: ModelOutput, threshold: float, relation_threshold: float,
           bio_spans: Sequence[list[SpanTuple]] | None = None) -> list[Extraction]:
    """One :class:`~graphie.types.Extraction` per post of ``batch``.

    Entities come from ``bio_spans`` (the bio head's decoded spans, one list per post) or else
    from the entity cells of the grid whose probability reaches ``threshold``; relations from the
    relation cells (scores below ``relation_threshold`` dropped), or, for task ``mnre``, one label
    per given pair from ``out.pair_logits``. Entities get their image evidence when the model
    aligned an image (:func:`attach_evidence`), and the post its ``image_relevance`` when the
    model's fusion has a relevance gate (:func:`post_maxima` of ``out.image_relevance``).
    """
    cfg = config
    kept = batch.word_mask.sum(1).tolist()
    ent_probs = torch.sigmoid(out.entity_logits.float()) if out.entity_logits is not None else None
    rel_probs = torch.softmax(out.relation_logits.float(), -1) if out.relation_logits is not None else None
    pair_probs = torch.softmax(out.pair_logits.float(), -1).cpu() if out.pair_logits is not None else None
    relevance = post_maxima(out.image_relevance, batch)
    results, p = [], 0
    for b, ex in enumerate(batch.examples):
        post, graph = ex.post, ex.graph
        entities, relations = [], []
        if cfg.task == "mnre":
            for head, tail, _ in ex.relations:
                dist = pair_probs[p]
                p += 1
                k = int(dist.argmax())
                label = cfg.none_label if k == 0 else cfg.relation_labels[k - 1]
                h_ent = next((x for x in post.entities if x.key == head), None) or _entity(graph, *head)
                t_ent = next((x for x in post.entities if x.key == tail), None) or _entity(graph, *tail)
                relations.append(Relation(h_ent, t_ent, label, float(dist[k])))
            entities = list(post.entities)
        else:
            if bio_spans is not None:
                found = bio_spans[b]
            else:
                found = decode_entities(ent_probs[b], kept[b], cfg.entity_types, cfg.max_entity_len,
                                        threshold, nested=cfg.nested_entities)
            entities = [_entity(graph, s, e, t, score) for s, e, t, score in found]
            if rel_probs is not None:
                for a, c, k, score in decode_relations(rel_probs[b], found, cfg.relation_labels, cfg.relation_cells,
                                                        relation_threshold):
                    relations.append(Relation(entities[a], entities[c], cfg.relation_labels[k], score))
        # Marked sequences (the marker head: rows are pairs, words shifted by the markers) give
        # no per-post word alignment to read evidence from; given pairs keep the post's entities.
        if out.alignment is not None and entities and batch.marker_index is None:
            attach_evidence(entities, out.alignment[b], ex.scene_graph)
        results.append(Extraction(text=graph.text, tokens=list(graph.tokens), entities=entities,
                                  relations=relations, text_graph=graph, scene_graph=ex.scene_graph, id=post.id,
                                  image_relevance=relevance[b]))
    return results


def attach_evidence(entities: list[Entity], alignment: Tensor, scene_graph: SceneGraph | None, top: int = 3,
                    threshold: float = 0.3) -> None:
    """Each entity's supporting image objects: those whose alignment weight (mean over the
    entity's words) reaches ``threshold``, strongest first, at most ``top``. ``object`` indexes
    ``scene_graph.objects`` (alignment columns follow the collated order, which sorts objects by
    score). An entity that no object supports gets no evidence: an empty list."""
    if scene_graph is None or alignment.numel() == 0:
        return
    order = kept_objects(scene_graph, alignment.size(1) - 1)  # column k is scene_graph.objects[order[k]]
    for ent in entities:
        weights = alignment[ent.span.start:ent.span.end, :len(order)].float().mean(0).cpu()
        for k in weights.argsort(descending=True)[:top].tolist():
            if weights[k] >= threshold:
                ent.evidence.append({"object": order[k], "label": scene_graph.objects[order[k]].label,
                                     "weight": round(float(weights[k]), 4)})
