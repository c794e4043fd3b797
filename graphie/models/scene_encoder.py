"""Scene-graph encoder: object nodes → states in the text encoder's space.

Node input = text embedding of the node's phrase (label, its ImageNet tags, OCR text; see
:func:`phrase`) + box-geometry projection + region-feature
projection (when the detector gave one); then EEGA's attribute transformer over the object graph
with predicate embeddings added to keys and values (its own weights, not the text side's).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from parsers.scene import PREDICATES, SceneGraph, SceneObject, predicate_id

from ..errors import InvalidInputError
from ..image_context import MIN_TAG_PROBABILITY
from .attribute import AttributeTransformer

GEOMETRY_DIM = 8  # x0, y0, x1, y1, width, height, area, has_box


def phrase(obj: SceneObject, max_tags: int = 2) -> str:
    """The words a node is embedded from: its label, its ``max_tags`` most probable tags with
    probability at least :data:`~graphie.image_context.MIN_TAG_PROBABILITY` not already in the
    label, then its OCR text (``"person ballplayer"``, ``"image lakeside"``, ``"text FALCONS"``). The text side aligns to
    these words, so a crop tagged "ballplayer" can meet "player" in the post."""
    tags = sorted(((p, t) for t, p in (obj.tags or {}).items() if p >= MIN_TAG_PROBABILITY and t != obj.label),
                  key=lambda pt: (-pt[0], pt[1]))
    words = [obj.label, *(t for _, t in tags[:max_tags])]
    if obj.text:
        words.append(obj.text)
    return " ".join(words)


def kept_objects(graph: SceneGraph, max_objects: int) -> list[int]:
    """Indices into ``graph.objects`` of the nodes :meth:`SceneBatch.collate` keeps, in its order:
    the whole-image node, then the ``max_objects`` best by score (:meth:`SceneGraph.top`'s order).
    Column ``k`` of an alignment matrix is object ``kept_objects(graph, max_objects)[k]``."""
    if not graph.objects:
        return []
    rest = sorted(range(1, len(graph.objects)), key=lambda i: -float(graph.objects[i].score))
    return [0, *rest[:max_objects]]


@dataclass
class SceneBatch:
    """Padded tensors for a batch of scene graphs (``m`` = the largest graph kept)."""

    phrases: list[list[str]]  # per graph, per object: its phrase (label, tags, OCR text)
    boxes: Tensor  # [B, m, 4] (x0, y0, x1, y1) in [0, 1]; zeros where has_box is False
    has_box: Tensor  # [B, m] bool
    features: Tensor | None  # [B, m, F] region features (zeros where absent) or None
    has_feature: Tensor  # [B, m] bool
    predicates: Tensor  # [B, m, m] long: predicate id of subject→object (0 = no edge; first edge of a pair)
    edge_index: Tensor  # [2, E] every edge, flattened node ids b * m + i (subject, object)
    edge_type: Tensor  # [E] predicate ids into parsers.scene.PREDICATES
    mask: Tensor  # [B, m] bool, real objects

    @classmethod
    def collate(cls, graphs: Sequence[SceneGraph | None], max_objects: int = 10, max_tags: int = 2) -> "SceneBatch":
        """Pad a list of scene graphs (``None`` = a post without image) into one batch.

        Each graph keeps its whole-image node plus its ``max_objects`` highest-scoring objects
        (:meth:`SceneGraph.top`). Boxes are divided by the image size (or, when unknown, by the
        largest coordinate in the graph). Each node's phrase keeps at most ``max_tags`` tags
        (:func:`phrase`).
        """
        kept = []
        for i, g in enumerate(graphs):
            if g is not None and not isinstance(g, SceneGraph):
                raise InvalidInputError(f"scene graph {i} must be a SceneGraph or None, got {type(g).__name__}")
            kept.append(g.top(max_objects) if g is not None else SceneGraph())
        B, m = len(kept), max((len(g) for g in kept), default=0)
        feature_dims = {len(o.feature) for g in kept for o in g.objects if o.feature is not None}
        if len(feature_dims) > 1:
            raise InvalidInputError(f"scene graphs mix region feature sizes {sorted(feature_dims)}")
        boxes = torch.zeros(B, m, 4)
        has_box = torch.zeros(B, m, dtype=torch.bool)
        features = torch.zeros(B, m, feature_dims.pop()) if feature_dims else None
        has_feature = torch.zeros(B, m, dtype=torch.bool)
        predicates = torch.zeros(B, m, m, dtype=torch.long)
        mask = torch.zeros(B, m, dtype=torch.bool)
        phrases, sources, targets, types = [], [], [], []
        for b, g in enumerate(kept):
            k = len(g)
            mask[b, :k] = True
            phrases.append([phrase(o, max_tags) for o in g.objects])
            raw = [o.box if o.box is not None else None for o in g.objects]
            if k and raw[0] is None and g.width and g.height:
                raw[0] = (0.0, 0.0, float(g.width), float(g.height))
            scale_x = float(g.width) if g.width else max((bx[2] for bx in raw if bx), default=1.0)
            scale_y = float(g.height) if g.height else max((bx[3] for bx in raw if bx), default=1.0)
            for i, bx in enumerate(raw):
                if bx is not None:
                    boxes[b, i] = torch.tensor([bx[0] / scale_x, bx[1] / scale_y, bx[2] / scale_x, bx[3] / scale_y])
                    has_box[b, i] = True
                if features is not None and g.objects[i].feature is not None:
                    features[b, i] = torch.tensor(g.objects[i].feature, dtype=torch.float32)
                    has_feature[b, i] = True
            for e in g.edges:
                if not (0 <= e.subject < k and 0 <= e.object < k):
                    raise InvalidInputError(f"scene graph {b} has an edge {e} to a missing object")
                pid = predicate_id(e.predicate)
                if predicates[b, e.subject, e.object] == 0:
                    predicates[b, e.subject, e.object] = pid
                sources.append(b * m + e.subject)
                targets.append(b * m + e.object)
                types.append(pid)
        boxes = boxes.clamp(0.0, 1.0)
        edge_index = torch.tensor([sources, targets], dtype=torch.long).view(2, -1)
        edge_type = torch.tensor(types, dtype=torch.long)
        return cls(phrases, boxes, has_box, features, has_feature, predicates, edge_index, edge_type, mask)

    def to(self, device: torch.device | str) -> "SceneBatch":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, Tensor):
                moved[name] = value.to(device)
        return SceneBatch(**moved)

    @property
    def adjacency(self) -> Tensor:
        """Objects joined by a predicate in either direction, no self loops: a bool tensor ``[B, m, m]``."""
        adj = self.predicates > 0
        adj = adj | adj.transpose(1, 2)
        return adj & ~torch.eye(adj.shape[1], dtype=torch.bool, device=adj.device)


def geometry(boxes: Tensor, has_box: Tensor) -> Tensor:
    """Box geometry features [B, m, 8]: corners, width, height, area, has-box flag."""
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0)
    area = wh[..., :1] * wh[..., 1:]
    flag = has_box.unsqueeze(-1).to(boxes.dtype)
    return torch.cat([torch.cat([boxes, wh, area], -1) * flag, flag], -1)


class SceneEncoder(nn.Module):
    r"""Scene-graph objects to states in the text encoder's space.

    .. math::
        v_i = \mathrm{AttrTransformer}\big(\mathrm{LN}(E_{text}(\mathrm{phrase}_i) + W_g\, \mathrm{geom}_i
              + W_f\, \mathrm{feat}_i)\big)

    over the predicate graph. :math:`E_{text}` is the text encoder itself (the model passes its
    :meth:`~graphie.models.encoder.TransformerEncoder.embed_phrases`), so each distinct phrase of
    a batch costs an encoder pass: with gradient, the most costly part of a model that reads
    objects (benchmarks/RESULTS_fusion.md).

    Args:
        dim (int): width of the text encoder's states and of the object states.
        feature_dim (int): default 1280; size of the detector's region features.
        num_layers (int): default 1; attribute-transformer layers over the object graph.
        heads (int): default 4; attention heads of those layers.
        edge_dim (int): default 100; width of the predicate embeddings.
        dropout (float): default 0.1; dropout of those layers.
        phrase_grad (bool): default True; ``False`` embeds the phrases under ``torch.no_grad()``:
            the encoder's weights still embed them (in the encoder's current mode, dropout
            included in training), but no gradient flows from the object states into the encoder;
            the geometry, feature, norm and graph layers on top still train. A training step no
            longer back-propagates through the phrases' encoder pass.

    Shapes:
        - **batch:** a :class:`SceneBatch` of ``B`` graphs, ``m`` objects at most
        - **output:** objects :math:`(B, m, d)` (zeros at padding), object_mask :math:`(B, m)`,
          object_adj :math:`(B, m, m)`
    """

    def __init__(self, dim: int, feature_dim: int = 1280, num_layers: int = 1, heads: int = 4,
                 edge_dim: int = 100, dropout: float = 0.1, phrase_grad: bool = True):
        super().__init__()
        if not isinstance(phrase_grad, bool):
            raise InvalidInputError(f"phrase_grad must be true or false, got {phrase_grad!r}")
        self.dim, self.feature_dim = dim, feature_dim
        self.phrase_grad = phrase_grad
        self.geometry = nn.Linear(GEOMETRY_DIM, dim)
        self.feature = nn.Linear(feature_dim, dim)
        self.norm = nn.LayerNorm(dim)
        # edge types: predicate forward (subject→object), reversed, and the self loop
        self.num_predicates = len(PREDICATES)
        self.graph = AttributeTransformer(dim, 2 * self.num_predicates + 1, layers=num_layers, edge_dim=edge_dim,
                                          heads=heads, dropout=dropout)

    def forward(self, batch: SceneBatch, embed_text: Callable[[list[str]], Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """-> objects [B, m, d] (zeros at padding), object_mask [B, m], object_adj [B, m, m]."""
        B, m = batch.mask.shape
        device = self.geometry.weight.device
        mask = batch.mask.to(device)
        if m == 0:
            empty = torch.zeros(B, 0, self.dim, device=device)
            return empty, mask, torch.zeros(B, 0, 0, dtype=torch.bool, device=device)
        # embed each distinct phrase once ("image", "person" recur in every graph)
        flat = [p for graph in batch.phrases for p in graph]
        unique = sorted(set(flat))
        with torch.set_grad_enabled(self.phrase_grad and torch.is_grad_enabled()):
            table = embed_text(unique)
        if table.dim() != 2 or table.shape != (len(unique), self.dim):
            raise InvalidInputError(f"embed_text must return [{len(unique)}, {self.dim}], got {tuple(table.shape)}")
        where = {p: i for i, p in enumerate(unique)}
        index = torch.tensor([where[p] for p in flat], dtype=torch.long, device=device)
        x = torch.zeros(B, m, self.dim, device=device, dtype=table.dtype)
        x[mask] = table.to(device)[index]  # boolean indexing walks graphs and objects in order
        x = x + self.geometry(geometry(batch.boxes.to(device, x.dtype), batch.has_box.to(device)))
        if batch.features is not None:
            if batch.features.shape[-1] != self.feature_dim:
                raise InvalidInputError(
                    f"region features are {batch.features.shape[-1]}-d but the scene encoder expects {self.feature_dim}")
            x = x + self.feature(batch.features.to(device, x.dtype)) * batch.has_feature.to(device).unsqueeze(-1).to(x.dtype)
        x = self.norm(x)
        # flat PyG graph over the real objects: both directions of every predicate edge + self loops
        nodes = torch.arange(B * m, device=device).view(B, m)[mask]
        ei, et = batch.edge_index.to(device), batch.edge_type.to(device)
        edge_index = torch.cat([ei, ei.flip(0), nodes.expand(2, -1)], 1)
        edge_type = torch.cat([et, et + self.num_predicates,
                               torch.full_like(nodes, 2 * self.num_predicates)])
        h = self.graph(x.view(B * m, self.dim), edge_index, edge_type).view(B, m, self.dim)
        h = h * mask.unsqueeze(-1).to(h.dtype)
        return h, mask, batch.adjacency.to(device)
