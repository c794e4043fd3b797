"""The model's data road, from posts to padded tensors: :func:`parse_posts` (posts -> text
graphs), :func:`make_examples` (:class:`Example`: a parsed post with gold labels as word spans)
and :class:`Collator` (a list of examples -> :class:`Batch`, what :class:`~graphie.models.model.GraphieModel` reads).
Training and prediction both walk it; :func:`length_batches` groups examples for training.

The image side plugs in through ``Example.scene_graph`` / ``Batch.scene_graphs``: one
:class:`parsers.scene.SceneGraph` (or ``None``) per post, collated by
:meth:`graphie.models.scene_encoder.SceneBatch.collate` into ``Batch.scene`` whenever the model
reads them (an alignment other than ``"none"``, or a fusion that reads objects: ``ModelConfig.reads_scene``);
their pixel feature grids (``SceneGraph.pixels``) by :func:`collate_pixels` into ``Batch.pixels``
when a fusion reads the source ``pixels`` (``ModelConfig.reads_pixels``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import torch
from torch import Tensor

from parsers.scene import SceneGraph
from parsers.text import TextGraph

from ..errors import InvalidInputError
from ..types import Post
from .attribute import dependency_edges
from .config import ModelConfig
from .encoder import EncodedBatch, TransformerEncoder
from .grid import relation_block
from .marker import mark_pair_positions
from .pair_features import CooccurrenceStats, fields_read
from .scene_encoder import SceneBatch

if TYPE_CHECKING:
    from .heads import Head

EntityTuple = tuple[int, int, str]


@dataclass
class Example:
    """A parsed post with its gold entities ``(start, end, type)`` and relations
    ``(head, tail, label)`` (``label`` may be the none label for given MNRE pairs)."""

    post: Post
    graph: TextGraph
    scene_graph: SceneGraph | None = None
    entities: list[EntityTuple] = field(default_factory=list)
    relations: list[tuple[EntityTuple, EntityTuple, str]] = field(default_factory=list)
    relations_known: bool = True  # False for NER-only data mixed into joint training: no relation loss
    entities_known: bool = True  # False: only the entities in relations are annotated (JMERE): partial entity loss
    pieces: list[list[int]] | None = None  # sub-word ids of each word, when already known (then not tokenised again)

    @property
    def words(self) -> list[str]:
        return list(self.graph.tokens)


def parse_posts(posts: Sequence[Post], parser: Any = None) -> list[TextGraph]:
    """Text graphs of posts; pre-tokenised posts keep their tokens exactly."""
    from parsers.text import TextParser

    parser = parser or TextParser()
    items = [p.tokens if p.tokens else p.text for p in posts]
    for i, item in enumerate(items):
        if not item or (isinstance(item, str) and not item.strip()):
            raise InvalidInputError(f"post {i} ({posts[i].id or 'no id'}) has no text")
    return list(parser.pipe(items))


def make_examples(posts: Sequence[Post], graphs: Sequence[TextGraph],
                  scene_graphs: Sequence[SceneGraph | None] | None = None,
                  merge_pairs: bool = False, relations_known: bool = True,
                  entities_known: bool = True, pieces: Sequence[list[list[int]]] | None = None) -> list[Example]:
    """Examples from posts and their graphs. ``merge_pairs`` joins posts with the same tokens and
    image (MNRE lines of one sentence) into one example holding all their pairs.
    ``relations_known=False`` marks entity-only data (Twitter NER in a joint model);
    ``entities_known=False`` data whose entities are only those in relations (JMERE in a joint
    model whose entities are learnt from fully annotated NER data): the ``bio`` head learns their
    annotated entities and the words next to them, never that the other words are no entity.
    ``pieces[i]``: the sub-word ids of each word of ``graphs[i]``, when the caller has them
    (:meth:`GraphieModel.word_pieces <graphie.models.GraphieModel.word_pieces>`)."""
    for name, given in (("text graphs", graphs), ("scene graphs", scene_graphs), ("piece lists", pieces)):
        if given is not None and len(given) != len(posts):
            raise InvalidInputError(f"{len(posts)} posts but {len(given)} {name}")
    out: list[Example] = []
    index: dict[tuple, Example] = {}
    for i, (post, graph) in enumerate(zip(posts, graphs)):
        entities = [e.key for e in post.entities]
        relations = [(r.head.key, r.tail.key, r.label) for r in post.relations]
        key = (tuple(graph.tokens), post.image)
        if merge_pairs and key in index:
            ex = index[key]
            ex.entities.extend(e for e in entities if e not in ex.entities)
            ex.relations.extend(r for r in relations if r not in ex.relations)
            continue
        ex = Example(post, graph, scene_graphs[i] if scene_graphs is not None else None, entities, relations,
                     relations_known, entities_known, pieces[i] if pieces is not None else None)
        out.append(ex)
        if merge_pairs:
            index[key] = ex
    return out


@dataclass
class Batch:
    """Padded tensors of a batch (B posts, at most n words); see :class:`Collator`."""

    examples: list[Example]
    encoded: EncodedBatch
    word_mask: Tensor  # [B, n] bool
    pos: Tensor | None = None  # [B, n] POS_TAGS ids
    distance: Tensor | None = None  # [B, n, n] tree distance (-1: unreachable)
    pmi: Tensor | None = None  # [B, n, n] PMI bucket ids
    text_adj: Tensor | None = None  # [B, n, n] bool, undirected dependency arcs
    edge_index: Tensor | None = None  # [2, E] over the kept words of the batch, row-major node order
    edge_type: Tensor | None = None  # [E]
    marker_index: Tensor | None = None  # [P, 2] word positions of the opening markers (marker head; rows = pairs)
    entity_targets: Tensor | None = None  # [B, n, n, T]
    entity_mask: Tensor | None = None  # [B, n, n] cells the entity channel scores
    relation_targets: Tensor | None = None  # [B, n, n]
    relation_mask: Tensor | None = None  # [B, n, n]
    pair_index: Tensor | None = None  # [P] batch row of each given pair (mnre)
    pair_weights: Tensor | None = None  # [P, n, n] cells voted over for each given pair
    pair_labels: Tensor | None = None  # [P] 0 = none
    bio_tags: Tensor | None = None  # [B, n] bio head targets
    bio_mask: Tensor | None = None  # [B, n] words whose tags are trained (see partial_mask)
    scene_graphs: list[SceneGraph | None] = field(default_factory=list)
    scene: SceneBatch | None = None  # when the model reads scene graphs (ModelConfig.reads_scene)
    pixels: Tensor | None = None  # [B, cells, C] feature grids, [B, 0, C] if none (ModelConfig.reads_pixels)
    pixel_mask: Tensor | None = None  # [B, cells] bool, True = a cell of a post with a grid
    extra: dict[str, Tensor] = field(default_factory=dict)  # what a head from outside the package adds

    def to(self, device: torch.device | str) -> "Batch":
        for name, value in list(self.__dict__.items()):
            if isinstance(value, Tensor):
                setattr(self, name, value.to(device, non_blocking=True))
        self.extra = {name: value.to(device, non_blocking=True) for name, value in self.extra.items()}
        self.encoded = self.encoded.to(device)
        if self.scene is not None:
            self.scene = self.scene.to(device)
        return self


class Collator:
    """Turns examples into a :class:`Batch` for one model (its tokenizer, head, labels and
    statistics): the words here, what the head needs beyond them in the head
    (:meth:`Head.collate <graphie.models.heads.Head.collate>`)."""

    def __init__(self, config: ModelConfig, encoder: TransformerEncoder, head: Head,
                 cooccurrence: CooccurrenceStats | None = None):
        from parsers.text import DEP_LABEL_IDS, DEP_LABELS, POS_TAG_IDS

        self.config = config
        self.head = head
        self.encoder = encoder
        self.cooccurrence = cooccurrence
        # PMI buckets cost a pass over each post's known word pairs: only for a channel that reads them.
        self.pmi_read = cooccurrence is not None and "pmi" in fields_read(config.pair_channels)
        self.dep_ids, self.num_dep = DEP_LABEL_IDS, len(DEP_LABELS)
        self.pos_ids = POS_TAG_IDS
        self.rel_index = {label: k + 1 for k, label in enumerate(config.relation_labels)}
        self.rel_index[config.none_label] = 0

    def __call__(self, examples: Sequence[Example], with_targets: bool = True) -> Batch:
        """The batch of ``examples`` as the model's head wants it (:meth:`Head.collate
        <graphie.models.heads.Head.collate>`), with its targets when ``with_targets``."""
        return self.head.collate(self, examples, with_targets)

    def words(self, examples: Sequence[Example], reserve: int = 0) -> tuple[Batch, list[int]]:
        """The words of ``examples`` encoded, with the graph tensors and scene batch the model
        config asks for; and the number of words kept (not truncated) in each post. ``reserve``:
        sub-words kept free for the context segment (:meth:`TransformerEncoder.encode
        <graphie.models.encoder.TransformerEncoder.encode>`)."""
        cfg = self.config
        words = [ex.words for ex in examples]
        contexts = [ex.post.context for ex in examples]
        known = [ex.pieces for ex in examples]
        encoded = self.encoder.encode(words, contexts, None if None in known else known, reserve=reserve)
        mask = encoded.word_mask
        kept = mask.sum(1).tolist()
        batch = Batch(examples=list(examples), encoded=encoded, word_mask=mask,
                      scene_graphs=[ex.scene_graph for ex in examples])
        if cfg.gnn_layers or cfg.alignment != "none" or cfg.uses_pairs:
            self._graph_tensors(batch, kept)
        if cfg.reads_scene:
            batch.scene = SceneBatch.collate(batch.scene_graphs, cfg.max_objects, cfg.scene_tags)
        if cfg.reads_pixels:
            batch.pixels, batch.pixel_mask = collate_pixels(batch.scene_graphs, cfg.pixel_shape, examples)
        return batch, kept

    def _graph_tensors(self, batch: Batch, kept: list[int]) -> None:
        """POS, tree distance, PMI (when a channel reads it), adjacency and dependency edges of the kept words."""
        B, n = batch.word_mask.shape
        pos = torch.zeros(B, n, dtype=torch.long)
        distance = torch.full((B, n, n), -1, dtype=torch.long)
        pmi = torch.zeros(B, n, n, dtype=torch.long)
        adj = torch.zeros(B, n, n, dtype=torch.bool)
        edges, types, offset = [], [], 0
        for b, ex in enumerate(batch.examples):
            g, k = ex.graph, kept[b]
            pos[b, :k] = torch.tensor([self.pos_ids.get(p, 0) for p in g.pos[:k]])
            distance[b, :k, :k] = torch.as_tensor(g.distance_matrix()[:k, :k])
            adj[b, :k, :k] = torch.as_tensor(g.adjacency()[:k, :k])
            if self.pmi_read:
                pmi[b] = self.cooccurrence.bucket_matrix(g.tokens[:k], n)
            labels = [self.dep_ids.get(d, self.dep_ids["dep"]) for d in g.deps]
            e, t = dependency_edges(g.heads, labels, self.num_dep, k)
            edges.extend((s + offset, d + offset) for s, d in e)
            types.extend(t)
            offset += k
        batch.pos, batch.distance, batch.pmi, batch.text_adj = pos, distance, pmi, adj
        batch.edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
        batch.edge_type = torch.tensor(types, dtype=torch.long)

    def marked(self, examples: Sequence[Example], with_targets: bool) -> Batch:
        """Marker head: one marked sequence per given pair (rows of the batch are pairs)."""
        sequences, index, owners, labels, positions = [], [], [], [], []
        for b, ex in enumerate(examples):
            for head, tail, label in ex.relations:
                marked, h_at, t_at, where = mark_pair_positions(ex.words, head, tail)
                sequences.append(marked)
                index.append((h_at, t_at))
                owners.append(b)
                positions.append(where)
                if with_targets:
                    labels.append(self.label_id(ex, label))
        if not sequences:
            raise InvalidInputError("the marker head labels given entity pairs: the batch has none")
        contexts = [examples[b].post.context for b in owners]
        encoded = self.encoder.encode(sequences, contexts)
        kept = encoded.word_mask.sum(1)
        # A marker cut off by truncation reads the last kept word instead.
        marker_index = torch.minimum(torch.tensor(index, dtype=torch.long), (kept - 1).unsqueeze(1))
        batch = Batch(examples=list(examples), encoded=encoded, word_mask=encoded.word_mask,
                      marker_index=marker_index, pair_index=torch.tensor(owners, dtype=torch.long),
                      scene_graphs=[ex.scene_graph for ex in examples])
        if with_targets:
            batch.pair_labels = torch.tensor(labels, dtype=torch.long)
        if self.config.reads_scene:
            self._marked_scene(batch, owners, positions)
        if self.config.reads_pixels:
            batch.pixels, batch.pixel_mask = collate_pixels([batch.scene_graphs[b] for b in owners],
                                                            self.config.pixel_shape, [examples[b] for b in owners])
        return batch

    def _marked_scene(self, batch: Batch, owners: list[int], positions: list[list[int]]) -> None:
        """What an alignment reads for marked sequences (rows = pairs): each row's post's scene
        graph, and its dependency arcs carried over to the marked words (markers have none)."""
        cfg = self.config
        P, n = batch.word_mask.shape
        kept = batch.word_mask.sum(1).tolist()
        adj = torch.zeros(P, n, n, dtype=torch.bool)
        arcs = {b: torch.as_tensor(batch.examples[b].graph.adjacency(), dtype=torch.bool) for b in set(owners)}
        for row, (b, where) in enumerate(zip(owners, positions)):
            where = torch.tensor(where, dtype=torch.long)
            inside = where < kept[row]  # words of the post that truncation kept
            new = where[inside]
            adj[row][new[:, None], new[None, :]] = arcs[b][inside][:, inside]
        batch.text_adj = adj
        batch.scene = SceneBatch.collate([batch.scene_graphs[b] for b in owners], cfg.max_objects, cfg.scene_tags)

    def label_id(self, ex: Example, label: str) -> int:
        if label not in self.rel_index:
            raise InvalidInputError(f"post {ex.post.id}: relation label {label!r} unknown to the model")
        return self.rel_index[label]

    def given_pairs(self, batch: Batch, kept: list[int], with_targets: bool) -> None:
        """Given entity pairs (mnre): which cells each pair reads, and its gold label."""
        n = batch.word_mask.size(1)
        index, weights, labels = [], [], []
        for b, ex in enumerate(batch.examples):
            for head, tail, label in ex.relations:
                index.append(b)
                weights.append(relation_block(_clip(head, kept[b]), _clip(tail, kept[b]), n, self.config.relation_cells))
                if with_targets:
                    labels.append(self.label_id(ex, label))
        batch.pair_index = torch.tensor(index, dtype=torch.long)
        batch.pair_weights = torch.stack(weights) if weights else torch.zeros(0, n, n)
        if with_targets:
            batch.pair_labels = torch.tensor(labels, dtype=torch.long)


def collate_pixels(scene_graphs: Sequence[SceneGraph | None], shape: tuple[int, int, int],
                   examples: Sequence[Example] | None = None) -> tuple[Tensor, Tensor]:
    """The feature grids of a batch's rows: ``[B, cells, C]`` float32 (each grid's cells in
    row-major order; zeros for a row without one) and ``[B, cells]`` bool, True for every cell of
    a row whose scene graph has ``pixels``; ``[B, 0, C]`` and ``[B, 0]`` when no row has a grid.

    Raises:
        InvalidInputError: a grid whose shape is not ``shape`` (the model's :attr:`ModelConfig.pixel_shape`).
    """
    rows, cols, channels = shape
    grids = [g.pixels if g is not None else None for g in scene_graphs]
    for i, grid in enumerate(grids):
        if grid is not None and grid.shape != tuple(shape):
            post = examples[i].post.id if examples is not None else None
            raise InvalidInputError(f"post {i} ({post or 'no id'}): its scene graph's pixel grid has shape {grid.shape} "
                                    f"({grid.extractor or 'unnamed'}); the model reads {tuple(shape)}")
    cells = rows * cols if any(g is not None for g in grids) else 0
    features = torch.zeros(len(grids), cells, channels)
    mask = torch.zeros(len(grids), cells, dtype=torch.bool)
    for i, grid in enumerate(grids):
        if grid is not None:
            features[i] = torch.from_numpy(grid.vectors())
            mask[i] = True
    return features, mask


def partial_mask(entities: Sequence[EntityTuple], n: int) -> Tensor:
    """``[n]`` bool: the words of partially annotated entities and the word on each side of them
    (surely not inside that entity): what a post annotating only some entities can teach about
    their spans and types, without teaching that an unannotated name is no entity."""
    mask = torch.zeros(n, dtype=torch.bool)
    for s, e, _ in entities:
        mask[max(0, s - 1):min(n, e + 1)] = True
    return mask


def _clip(span: EntityTuple, kept: int) -> tuple[int, int]:
    """A given entity's words within the kept (untruncated) words; one cut off entirely reads the last kept word."""
    start = min(span[0], kept - 1)
    return start, max(start + 1, min(span[1], kept))


def length_batches(examples: Sequence[Example], batch_size: int, shuffle: bool, seed: int) -> Iterator[list[Example]]:
    """Batches of examples of similar length (less padding); shuffled with ``seed`` if asked."""
    order = list(range(len(examples)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    chunk = batch_size * 50
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(examples[i].graph.tokens))
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    if shuffle:
        rng.shuffle(batches)
    for idx in batches:
        yield [examples[i] for i in idx]
