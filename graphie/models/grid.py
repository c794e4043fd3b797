"""Word-pair grid tagging with directed relations.

Two channels over the n×n word pairs:

- **entity** (multi-label, one sigmoid per type): an entity of type t over words s..e-1 sets
  t on every cell (i, j) with s ≤ i ≤ j < e. Nested entities of different types coexist;
  adjacent entities of one type are separated because the cells joining them stay empty.
- **relation** (softmax over ``none`` + labels): a relation head→tail puts its label on the
  cells (i ∈ head, j ∈ tail) — rows are heads, columns tails, so (A→B) and (B→A) are
  different cells and the direction is kept. ``relation_cells="first"`` labels only the
  cell of the two first words.

Decoding reads entities off the diagonal blocks and labels each ordered pair of decoded (or
given) entities by averaging the relation probabilities over the cells between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

EntityTuple = tuple[int, int, str]  # (start, end, type), end exclusive
RelationTuple = tuple[EntityTuple, EntityTuple, str]


def entity_cell_mask(n: int, length: int, max_entity_len: int, device=None) -> Tensor:
    """``[n, n]`` bool: cells (i, j), i ≤ j < length, j - i < max_entity_len, that the entity channel scores."""
    i = torch.arange(n, device=device).view(-1, 1)
    j = torch.arange(n, device=device).view(1, -1)
    return (j >= i) & (j - i < max_entity_len) & (j < length)


def encode_entities(entities: Sequence[EntityTuple], types: Sequence[str], n: int) -> Tensor:
    """Gold entity grid ``[n, n, T]`` (float 0/1)."""
    index = {t: k for k, t in enumerate(types)}
    grid = torch.zeros(n, n, len(types))
    for s, e, t in entities:
        if e > n:
            continue  # cut by truncation
        block = torch.triu(torch.ones(e - s, e - s))
        grid[s:e, s:e, index[t]] = torch.maximum(grid[s:e, s:e, index[t]], block)
    return grid


def relation_block(head: tuple[int, int], tail: tuple[int, int], n: int, mode: str = "block") -> Tensor:
    """``[n, n]`` float weights of the cells that carry a relation head→tail, summing to 1."""
    w = torch.zeros(n, n)
    if mode == "first":
        w[head[0], tail[0]] = 1.0
    else:
        w[head[0]:head[1], tail[0]:tail[1]] = 1.0
    return w / w.sum().clamp(min=1.0)


def encode_relations(relations: Sequence[RelationTuple], labels: Sequence[str], n: int, mode: str = "block") -> Tensor:
    """Gold relation grid ``[n, n]`` (long): 0 = none, k + 1 = ``labels[k]``."""
    index = {label: k + 1 for k, label in enumerate(labels)}
    grid = torch.zeros(n, n, dtype=torch.long)
    for (hs, he, _), (ts, te, _), label in relations:
        if he > n or te > n:
            continue
        if mode == "first":
            grid[hs, ts] = index[label]
        else:
            grid[hs:he, ts:te] = index[label]
    return grid


def decode_entities(probs: Tensor, length: int, types: Sequence[str], max_entity_len: int,
                    threshold: float = 0.5, nested: bool = False) -> list[tuple[int, int, str, float]]:
    """Entities ``(start, end, type, score)`` from entity probabilities ``[n, n, T]``.

    Per type, a span starts at a word whose diagonal cell is positive (or whose cell with the
    next word is, when that word's diagonal cell is positive too) and grows while the next word's
    diagonal cell and the mean of the column joining it to the span are positive; its score
    is the block's mean probability. Overlaps are then resolved by score: flat output keeps
    no overlaps; ``nested=True`` keeps properly nested spans and drops only crossing ones
    and duplicates of one span.
    """
    probs = probs.float().cpu().numpy()  # element access in numpy is far cheaper than in torch
    candidates = []
    for t, name in enumerate(types):
        p = probs[:, :, t]
        diagonal = p.diagonal()
        i = 0
        while i < length:
            # A word starts a span when its own cell is positive, or when the cell linking it to
            # the next word is (a weak first word of a name, as in "Barack Obama ...").
            linked = i + 1 < length and p[i, i + 1] >= threshold and diagonal[i + 1] >= threshold
            if diagonal[i] < threshold and not linked:
                i += 1
                continue
            s, e = i, i + 1
            while e < length and e - s < max_entity_len and diagonal[e] >= threshold and p[s:e, e].mean() >= threshold:
                e += 1
            rows, cols = np.triu_indices(e - s)
            score = float(p[s + rows, s + cols].mean())
            candidates.append((s, e, name, score))
            i = e
    candidates.sort(key=lambda c: -c[3])
    kept: list[tuple[int, int, str, float]] = []
    for c in candidates:
        clash = False
        for k in kept:
            overlap = c[0] < k[1] and k[0] < c[1]
            if not overlap:
                continue
            same = (c[0], c[1]) == (k[0], k[1])
            inside = (k[0] <= c[0] and c[1] <= k[1]) or (c[0] <= k[0] and k[1] <= c[1])
            if not nested or same or not inside:
                clash = True
                break
        if not clash:
            kept.append(c)
    return sorted(kept, key=lambda c: (c[0], c[1], c[2]))


def pair_scores(rel_probs: Tensor, head: tuple[int, int], tail: tuple[int, int], mode: str = "block") -> Tensor:
    """Relation-class distribution ``[R + 1]`` of head→tail: the vote (mean) over their cells."""
    if mode == "first":
        return rel_probs[head[0], tail[0]]
    return rel_probs[head[0]:head[1], tail[0]:tail[1]].reshape(-1, rel_probs.size(-1)).mean(0)


def decode_relations(rel_probs: Tensor, entities: Sequence[tuple[int, int, str, float]], labels: Sequence[str],
                     mode: str = "block", threshold: float = 0.0,
                     both_directions: bool = False) -> list[tuple[int, int, int, float]]:
    """Directed relations ``(head index, tail index, label index into labels, score)`` between entities.

    A direction counts when its vote's best label is not None and scores at least ``threshold``.
    Each unordered pair of entities keeps only its more confident direction (the benchmarks never
    annotate both directions of a pair) unless ``both_directions``.
    """
    rel_probs = rel_probs.float().cpu()
    out = []
    for a, ea in enumerate(entities):
        for b in range(a + 1, len(entities)):
            eb = entities[b]
            if (ea[0], ea[1]) == (eb[0], eb[1]):
                continue
            best = None
            for head, tail in ((a, b), (b, a)):
                dist = pair_scores(rel_probs, entities[head][:2], entities[tail][:2], mode)
                k = int(dist.argmax())
                if k == 0 or dist[k] < threshold:
                    continue
                found = (head, tail, k - 1, float(dist[k]))
                if both_directions:
                    out.append(found)
                elif best is None or found[3] > best[3]:
                    best = found
            if best is not None:
                out.append(best)
    return out


@dataclass
class GridOutput:
    """Logits of the two grid channels (``None`` for a channel the task does not use)."""
    entity_logits: Tensor | None  # [B, n, n, T]
    relation_logits: Tensor | None  # [B, n, n, R + 1]


class GridHead(nn.Module):
    r"""Word-pair grid tagging of entities and directed relations (W2NER, Li et al., AAAI 2022;
    as the joint tagging of EEGA, Yuan et al., AAAI 2023).

    .. math::
        c^{x}_{ij} = \mathrm{GELU}\big(W^x_a h_i + W^x_b h_j + W^x_p P_{ij}\big),\qquad
        x \in \{\text{ent}, \text{rel}\}

        \hat y^{\text{ent}}_{ij} = \sigma\big(U^{\text{ent}} c^{\text{ent}}_{ij}\big) \in [0,1]^T,\qquad
        \hat y^{\text{rel}}_{ij} = \operatorname{softmax}\big(U^{\text{rel}} c^{\text{rel}}_{ij}\big) \in \Delta^{R+1}

    Row :math:`i` is the head word, column :math:`j` the tail word; :math:`W_a \ne W_b`, so
    :math:`(i, j)` and :math:`(j, i)` differ and the relation keeps its direction.

    Args:
        dim (int): width of the word states :math:`h`.
        pair_dim (int): width of the pair features :math:`P` (:class:`~graphie.models.pair_features.MultiChannelPairFeatures`).
        grid_dim (int): width of the cell states :math:`c`.
        num_entity_types (int): :math:`T`; num_relations (int): :math:`R` (the none class is added).
        entities, relations (bool): build that channel (default both).
        dropout (float): on the cell states (default 0.1).

    Shapes:
        - **h:** :math:`(B, n, d)`; **pair:** :math:`(B, n, n, p)`
        - **output:** :class:`GridOutput`: entity logits :math:`(B, n, n, T)`, relation logits
          :math:`(B, n, n, R + 1)` (``None`` for a channel not built); padding is masked by the
          losses and decoders (``cell_mask``), not here.

    Deviations from the paper:
        - W2NER's next-neighbour-word / tail-head-word scheme is replaced by type sets on the
          upper-triangle band ``j - i < max_entity_len`` (multi-label, so nested entities of
          different types coexist) and label votes over head × tail blocks;
        - no dilated convolution over the grid (W2NER's CLN + convolution): cells read only
          their two words and :math:`P`.
    """

    def __init__(self, dim: int, pair_dim: int, grid_dim: int, num_entity_types: int, num_relations: int,
                 entities: bool = True, relations: bool = True, dropout: float = 0.1):
        super().__init__()
        self.entities = entities and num_entity_types > 0
        self.relations = relations and num_relations > 0
        self.dropout = nn.Dropout(dropout)
        if self.entities:
            self.ent_row, self.ent_col = nn.Linear(dim, grid_dim), nn.Linear(dim, grid_dim, bias=False)
            self.ent_pair = nn.Linear(pair_dim, grid_dim, bias=False)
            self.ent_out = nn.Linear(grid_dim, num_entity_types)
            nn.init.constant_(self.ent_out.bias, -3.0)  # prior: almost every cell is empty
        if self.relations:
            self.rel_row, self.rel_col = nn.Linear(dim, grid_dim), nn.Linear(dim, grid_dim, bias=False)
            self.rel_pair = nn.Linear(pair_dim, grid_dim, bias=False)
            self.rel_out = nn.Linear(grid_dim, num_relations + 1)

    def _cells(self, h: Tensor, pair: Tensor, row: nn.Linear, col: nn.Linear, proj: nn.Linear) -> Tensor:
        return self.dropout(F.gelu(row(h).unsqueeze(2) + col(h).unsqueeze(1) + proj(pair)))

    def forward(self, h: Tensor, pair: Tensor) -> GridOutput:
        # h [B,n,d]; pair [B,n,n,p]
        ent = rel = None
        if self.entities:
            ent = self.ent_out(self._cells(h, pair, self.ent_row, self.ent_col, self.ent_pair))
        if self.relations:
            rel = self.rel_out(self._cells(h, pair, self.rel_row, self.rel_col, self.rel_pair))
        return GridOutput(ent, rel)


def entity_loss(logits: Tensor, targets: Tensor, cell_mask: Tensor, pos_weight: float = 1.0) -> Tensor:
    """Mean binary cross-entropy over the scored cells (``cell_mask [B,n,n]``) and types."""
    weight = torch.tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none",
                                              pos_weight=weight.float())
    m = cell_mask.unsqueeze(-1).float()
    return (loss * m).sum() / (m.sum() * logits.size(-1)).clamp(min=1.0)


def relation_loss(logits: Tensor, targets: Tensor, cell_mask: Tensor, class_weight: Tensor | None = None) -> Tensor:
    """Cross-entropy over the relation cells in ``cell_mask [B,n,n]`` (class-weighted, weight-normalised)."""
    flat = logits.float()[cell_mask]
    gold = targets[cell_mask]
    if flat.numel() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(flat, gold, weight=class_weight)
