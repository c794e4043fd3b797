"""Heads: what the model predicts from its word states, chosen by name from
:data:`graphie.registry.heads` (``config.head``). A head brings everything that depends on it:

- **targets** (:meth:`Head.collate`): what a batch needs beyond the words (the marker head even
  writes its own sequences) and the gold labels it learns from;
- **logits and loss** (:meth:`Head.forward`): a :class:`~graphie.models.decoding.ModelOutput`
  from the word states, with the loss when the batch carries targets;
- **decoding** (:meth:`Head.decode`): one :class:`~graphie.types.Extraction` per post.

:class:`~graphie.models.model.GraphieModel` calls ``heads.create(config.head, config=config,
dim=d)`` once and otherwise knows nothing of which head it has. A new head subclasses
:class:`Head` and registers itself; the built-ins are ``bio``, ``grid`` and ``marker`` here and
``queries`` (entity types asked as questions, :mod:`graphie.models.queries`). A head's options
come from the model config's ``head_options`` (the keys it names in :attr:`Head.options`)::

    @heads.register("my_head")
    class MyHead(Head):
        def __init__(self, config: ModelConfig, dim: int): ...
        def forward(self, h: Tensor, batch: Batch) -> ModelOutput: ...
        def decode(self, batch, out, threshold, relation_threshold) -> list[Extraction]: ...

The head's parts (its child modules) are the model's parts: their weights are named
``<part>.<weight>`` in a saved model (``bio.emissions.weight``, ``grid.rel_out.bias``), as they
were before heads were components, so saved models load unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidInputError
from ..registry import heads
from ..types import Extraction, Post
from .batching import Batch, Collator, Example, partial_mask
from .bio import BIOTagger, spans_to_bio
from .config import ModelConfig
from .decoding import ModelOutput, decode
from .encoder import TransformerEncoder
from .grid import GridHead, encode_entities, encode_relations, entity_cell_mask, entity_loss, relation_loss
from .marker import MarkerHead
from .pair_features import MultiChannelPairFeatures, PairInputs


class Head(nn.Module):
    """A head: its parts, targets, loss and decoding (see the module docstring).

    Args:
        config (ModelConfig): the model's configuration (labels, sizes, task); its
            ``head_options`` may only hold keys the head names in :attr:`options`.
        dim (int): width of the word states.

    Raises:
        InvalidInputError: a ``head_options`` key the head does not take.
    """

    #: The ``head_options`` keys this head takes, with their defaults (none by default).
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: ModelConfig, dim: int):
        super().__init__()
        unknown = sorted(set(config.head_options) - set(self.options))
        if unknown:
            raise InvalidInputError(f"head {config.head!r} takes no head_options {', '.join(map(repr, unknown))}; "
                                    f"it takes: {', '.join(self.options) or 'none'}")
        self.config = config
        weight = torch.ones(len(config.relation_labels) + 1)
        weight[0] = config.none_weight
        self.class_weight = weight  # relation classes' loss weights (a plain tensor: moved to the logits' device)

    def reserved(self, encoder: TransformerEncoder) -> int:
        """Sub-words each row keeps free after the post for a second segment the head writes
        itself (the ``queries`` head's question); the post's budget shrinks by as many
        (:attr:`GraphieModel.post_budget <graphie.models.model.GraphieModel.post_budget>`). None by default."""
        return 0

    def check(self, posts: Sequence[Post]) -> None:
        """Raise :class:`~graphie.errors.InvalidInputError` for posts this head cannot read: by
        default, an ``mnre`` post without the entity pairs to label."""
        if self.config.task == "mnre" and any(not p.relations for p in posts):
            raise InvalidInputError("an mnre model labels given entity pairs: every post needs relations")

    def collate(self, collator: Collator, examples: Sequence[Example], with_targets: bool) -> Batch:
        """The batch of ``examples``: by default the words (:meth:`Collator.words`), then the
        given pairs of an ``mnre`` task and, ``with_targets``, the head's :meth:`targets`."""
        batch, kept = collator.words(examples)
        if self.config.task == "mnre":
            collator.given_pairs(batch, kept, with_targets)
        if with_targets:
            self.targets(batch, kept)
        return batch

    def targets(self, batch: Batch, kept: list[int]) -> None:
        """Write this head's gold labels into ``batch`` (``kept``: real words per post); none by default."""

    def forward(self, h: Tensor, batch: Batch) -> ModelOutput:  # pragma: no cover - abstract
        """Logits from the word states ``h`` ``[B, n, d]`` and the loss when ``batch`` has targets."""
        raise NotImplementedError

    def decode(self, batch: Batch, out: ModelOutput, threshold: float,
               relation_threshold: float) -> list[Extraction]:
        """One extraction per post of ``batch`` (see :func:`~graphie.models.decoding.decode`)."""
        return decode(self.config, batch, out, threshold, relation_threshold)

    def pair_loss(self, pair_logits: Tensor, batch: Batch) -> Tensor | None:
        """Cross-entropy of given pairs' labels (``mnre``), with the none class weighted."""
        if batch.pair_labels is None or not len(batch.pair_labels):
            return None
        return F.cross_entropy(pair_logits.float(), batch.pair_labels,
                               weight=self.class_weight.to(pair_logits.device))

    def relation_targets(self, batch: Batch) -> None:
        """Gold relation cells of a ``jmere`` batch (posts of entity-only data train no relation)."""
        cfg, (B, n) = self.config, batch.word_mask.shape
        batch.relation_targets = torch.stack(
            [encode_relations(ex.relations, cfg.relation_labels, n, cfg.relation_cells) for ex in batch.examples])
        pair_ok = batch.word_mask.unsqueeze(1) & batch.word_mask.unsqueeze(2)
        known = torch.tensor([ex.relations_known for ex in batch.examples]).view(B, 1, 1)
        batch.relation_mask = pair_ok & ~torch.eye(n, dtype=torch.bool).unsqueeze(0) & known


class WordPairGrid:
    """The word-pair part a head may have: multi-channel pair features (``pairs``) and the
    word-pair grid (``grid``), with their losses and the ``mnre`` vote of given pairs."""

    config: ModelConfig
    class_weight: Tensor

    def build_grid(self, dim: int, entities: bool) -> None:
        """Add the ``pairs`` and ``grid`` parts; the grid scores entities when ``entities``."""
        from parsers.text import POS_TAGS

        cfg = self.config
        self.pairs = MultiChannelPairFeatures(dim, cfg.pair_channels, len(POS_TAGS), cfg.pair_dim,
                                              cfg.max_distance, dropout=cfg.dropout)
        self.grid = GridHead(dim, self.pairs.out_dim, cfg.grid_dim, len(cfg.entity_types), len(cfg.relation_labels),
                             entities=entities, relations=cfg.task != "ner", dropout=cfg.dropout)

    def grid_logits(self, h: Tensor, batch: Batch, out: ModelOutput, losses: list[Tensor]) -> None:
        """The grid's entity and relation logits into ``out``, their losses onto ``losses``."""
        cfg = self.config
        h, pair = self.pairs(PairInputs(h, batch.word_mask, batch.pos, batch.distance, batch.pmi,
                                        [ex.graph for ex in batch.examples]))
        grid = self.grid(h, pair)
        out.entity_logits, out.relation_logits = grid.entity_logits, grid.relation_logits
        if grid.entity_logits is not None and batch.entity_targets is not None:
            losses.append(entity_loss(grid.entity_logits, batch.entity_targets, batch.entity_mask,
                                      cfg.entity_pos_weight))
        if cfg.task == "jmere" and batch.relation_targets is not None:
            losses.append(relation_loss(grid.relation_logits, batch.relation_targets, batch.relation_mask,
                                        self.class_weight.to(grid.relation_logits.device)))
        if cfg.task == "mnre":
            # vote: mean of each pair's cell logits
            cells = grid.relation_logits[batch.pair_index].float()  # [P, n, n, R+1]
            out.pair_logits = torch.einsum("pij,pijr->pr", batch.pair_weights.float(), cells)


@heads.register("grid")
class GridTagging(Head, WordPairGrid):
    """``grid``: word-pair tagging of entities (``ner``, ``jmere``) and directed relations
    (``jmere``), or the relation vote of given pairs (``mnre``); see :class:`~graphie.models.grid.GridHead`."""

    def __init__(self, config: ModelConfig, dim: int):
        super().__init__(config, dim)
        self.build_grid(dim, entities=config.task != "mnre")

    def targets(self, batch: Batch, kept: list[int]) -> None:
        cfg = self.config
        n = batch.word_mask.size(1)
        if cfg.task in ("ner", "jmere"):
            batch.entity_targets = torch.stack([encode_entities(ex.entities, cfg.entity_types, n)
                                                for ex in batch.examples])
            batch.entity_mask = torch.stack([entity_cell_mask(n, k, cfg.max_entity_len) if ex.entities_known
                                             else torch.zeros(n, n, dtype=torch.bool)
                                             for ex, k in zip(batch.examples, kept)])
        if cfg.task == "jmere":
            self.relation_targets(batch)

    def forward(self, h: Tensor, batch: Batch) -> ModelOutput:
        out, losses = ModelOutput(loss=None), []
        self.grid_logits(h, batch, out, losses)
        if self.config.task == "mnre" and (loss := self.pair_loss(out.pair_logits, batch)) is not None:
            losses.append(loss)
        out.loss = sum(losses) if losses else None
        return out


@heads.register("bio")
class BIOTagging(Head, WordPairGrid):
    """``bio``: BIO tags of the words (optional CRF, :class:`~graphie.models.bio.BIOTagger`) for
    entities; a ``jmere`` model adds the grid's relation channel (``pairs``, ``grid``)."""

    def __init__(self, config: ModelConfig, dim: int):
        super().__init__(config, dim)
        if config.task == "jmere":  # built first: the order a seed has always initialised the parts in
            self.build_grid(dim, entities=False)
        self.bio = BIOTagger(dim, config.entity_types, config.dropout, crf=config.crf)

    def targets(self, batch: Batch, kept: list[int]) -> None:
        cfg = self.config
        n = batch.word_mask.size(1)
        batch.bio_tags = torch.tensor([spans_to_bio(ex.entities, cfg.entity_types, n) for ex in batch.examples])
        batch.bio_mask = batch.word_mask & torch.stack(
            [torch.ones(n, dtype=torch.bool) if ex.entities_known else partial_mask(ex.entities, n)
             for ex in batch.examples])
        if cfg.task == "jmere":
            self.relation_targets(batch)

    def forward(self, h: Tensor, batch: Batch) -> ModelOutput:
        out, losses = ModelOutput(loss=None, emissions=self.bio(h)), []
        if batch.bio_tags is not None and batch.bio_mask.any():
            losses.append(self.bio.loss(out.emissions, batch.bio_tags, batch.bio_mask))
        if self.config.task == "jmere":
            self.grid_logits(h, batch, out, losses)
        out.loss = sum(losses) if losses else None
        return out

    def decode(self, batch: Batch, out: ModelOutput, threshold: float,
               relation_threshold: float) -> list[Extraction]:
        spans = self.bio.decode(out.emissions, batch.word_mask)
        return decode(self.config, batch, out, threshold, relation_threshold, spans)


@heads.register("marker")
class MarkerPairs(Head):
    """``marker``: typed entity markers around each given pair, one marked sequence per pair
    (``mnre``; :class:`~graphie.models.marker.MarkerHead`)."""

    def __init__(self, config: ModelConfig, dim: int):
        super().__init__(config, dim)
        self.marker = MarkerHead(dim, len(config.relation_labels), config.dropout)

    def collate(self, collator: Collator, examples: Sequence[Example], with_targets: bool) -> Batch:
        return collator.marked(examples, with_targets)

    def forward(self, h: Tensor, batch: Batch) -> ModelOutput:
        out = ModelOutput(loss=None, pair_logits=self.marker(h, batch.marker_index))
        out.loss = self.pair_loss(out.pair_logits, batch)
        return out
