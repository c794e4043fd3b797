"""EEGA's multi-channel layer: word-pair matrices of POS pairs, dependency distance and
co-occurrence (PMI), each embedded and used as a small graph convolution over the words,
then combined by an MLP into one pair feature per grid cell.

Each channel is a component of the ``pair_channels`` registry (:mod:`graphie.registry`); the
model config's ``pair_channels`` lists the names used, in order:

    @pair_channels.register("my_channel")
    class MyChannel(nn.Module):
        reads = ("pos",)  # the PairInputs fields it needs (see PAIR_FIELDS); left out: all of them
        def __init__(self, pair_dim: int, **sizes): ...
        def forward(self, inputs: PairInputs) -> Tensor: ...  # [B, n, n, pair_dim]

A field that costs work to collate (``pmi``) is filled only when a channel of the model reads it
(:func:`fields_read`); the collator asks the channels, not for a channel by name.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor, nn

from parsers.text import TextGraph

from ..registry import pair_channels

# PMI bucket edges; bucket 0 is "pair or word never seen in training"
PMI_EDGES = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0)
NUM_PMI_BUCKETS = len(PMI_EDGES) + 2


class CooccurrenceStats:
    """Post-level co-occurrence statistics of lower-cased words, fitted on training posts.

    ``PMI(a, b) = log(p(a, b) / (p(a) p(b)))`` with probabilities over posts.
    """

    def __init__(self, doc_count: int = 0, word_counts: dict[str, int] | None = None,
                 pair_counts: dict[str, int] | None = None):
        self.doc_count = doc_count
        self.word_counts = dict(word_counts or {})
        self.pair_counts = dict(pair_counts or {})  # "a\tb" with a < b

    @classmethod
    def fit(cls, posts: Iterable[Sequence[str]], min_word_count: int = 3, min_pair_count: int = 2) -> "CooccurrenceStats":
        """Count words (in at least ``min_word_count`` posts) and word pairs (in at least
        ``min_pair_count`` posts) over training posts given as word lists."""
        docs = [sorted({w.lower() for w in words}) for words in posts]
        words = Counter(w for doc in docs for w in doc)
        keep = {w for w, c in words.items() if c >= min_word_count}
        pairs: Counter = Counter()
        for doc in docs:
            kept = [w for w in doc if w in keep]
            pairs.update(f"{a}\t{b}" for a, b in combinations(kept, 2))
        return cls(
            len(docs),
            {w: words[w] for w in keep},
            {p: c for p, c in pairs.items() if c >= min_pair_count},
        )

    def pmi(self, a: str, b: str) -> float | None:
        """PMI of two words (case-insensitive); ``None`` for the same word or a pair never counted."""
        a, b = a.lower(), b.lower()
        if a == b:
            return None
        key = f"{a}\t{b}" if a < b else f"{b}\t{a}"
        joint = self.pair_counts.get(key)
        if not joint:
            return None
        n = self.doc_count
        return math.log(joint * n / (self.word_counts[a] * self.word_counts[b]))

    def bucket_matrix(self, words: Sequence[str], size: int) -> Tensor:
        """``[size, size]`` PMI bucket ids of a post's word pairs (0 where unseen or padding)."""
        out = torch.zeros(size, size, dtype=torch.long)
        if not self.doc_count:
            return out
        # Only words seen in training can have a PMI: pair up those (a few per post), not all n^2.
        known = [(i, w.lower()) for i, w in enumerate(words[:size]) if w.lower() in self.word_counts]
        rows, cols, buckets = [], [], []
        for k, (i, a) in enumerate(known):
            for j, b in known[k + 1:]:
                value = self.pmi(a, b)
                if value is not None:
                    rows.append(i)
                    cols.append(j)
                    buckets.append(1 + bisect_right(PMI_EDGES, value))
        if rows:
            r, c, v = torch.tensor(rows), torch.tensor(cols), torch.tensor(buckets)
            out[r, c] = v
            out[c, r] = v
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return {"doc_count": self.doc_count, "word_counts": self.word_counts, "pair_counts": self.pair_counts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CooccurrenceStats":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(int(d["doc_count"]), d["word_counts"], d["pair_counts"])


@dataclass
class PairInputs:
    """The one input of the pair layer and of every channel, for a padded batch of ``B`` posts
    of at most ``n`` words: the word states and everything the batch knows of the words, so a
    new channel reads what it needs (``graphs`` holds each post's words, POS tags and
    dependencies) without a change to the layer or the model."""

    states: Tensor  # [B, n, d] word states
    mask: Tensor  # [B, n] bool: real words
    pos: Tensor  # [B, n] long: coarse POS tag ids
    distance: Tensor  # [B, n, n] long: dependency-tree distance, -1 where unreachable
    pmi: Tensor  # [B, n, n] long: PMI bucket ids (0 = unseen pair; all 0 unless a channel reads "pmi"), see CooccurrenceStats.bucket_matrix
    graphs: list[TextGraph] = field(default_factory=list)  # the posts' text graphs, row b = graphs[b]


#: The fields of :class:`PairInputs` a channel may read besides the word states and mask.
PAIR_FIELDS: tuple[str, ...] = ("pos", "distance", "pmi", "graphs")


def fields_read(channels: Sequence[str]) -> set[str]:
    """The :class:`PairInputs` fields the registered channels ``channels`` read: each channel
    class's ``reads``, or every field of :data:`PAIR_FIELDS` for a channel that does not say."""
    return {name for channel in channels for name in getattr(pair_channels.get(channel), "reads", PAIR_FIELDS)}


@pair_channels.register("pos")
class PosPairChannel(nn.Embedding):
    """``E_pos(p_i, p_j)``: one vector per ordered pair of POS tags (a noun followed by a verb...)."""

    reads = ("pos",)

    def __init__(self, pair_dim: int, num_pos: int, **_sizes: int):  # _sizes: the other channels' sizes
        super().__init__(num_pos * num_pos, pair_dim)
        self.num_pos = num_pos

    def forward(self, inputs: PairInputs) -> Tensor:  # -> [B, n, n, pair_dim]
        return super().forward(inputs.pos.unsqueeze(2) * self.num_pos + inputs.pos.unsqueeze(1))


@pair_channels.register("distance")
class DistancePairChannel(nn.Embedding):
    """``E_dist(min(d_ij, D)) + E_off(clip(j - i, ±K))``: tree distance (unreachable = D) plus the
    signed word offset, which gives the pair its direction."""

    reads = ("distance",)

    def __init__(self, pair_dim: int, max_distance: int = 8, max_offset: int = 16, **_sizes: int):
        super().__init__(max_distance + 1, pair_dim)
        self.max_distance, self.max_offset = max_distance, max_offset
        self.offset = nn.Embedding(2 * max_offset + 1, pair_dim)

    def forward(self, inputs: PairInputs) -> Tensor:  # -> [B, n, n, pair_dim]
        distance = inputs.distance
        d = distance.clamp(min=0, max=self.max_distance)
        d = torch.where(distance < 0, torch.full_like(d, self.max_distance), d)  # unreachable: far
        idx = torch.arange(distance.shape[-1], device=distance.device)
        offset = (idx.view(1, -1) - idx.view(-1, 1)).clamp(-self.max_offset, self.max_offset) + self.max_offset
        return super().forward(d) + self.offset(offset).unsqueeze(0)


@pair_channels.register("cooccurrence")
class CooccurrencePairChannel(nn.Embedding):
    """``E_pmi(b_ij)``: the bucket of the two words' post-level PMI in the training data
    (:class:`CooccurrenceStats`; the model saves the statistics beside its weights)."""

    reads = ("pmi",)

    def __init__(self, pair_dim: int, **_sizes: int):
        super().__init__(NUM_PMI_BUCKETS, pair_dim)

    def forward(self, inputs: PairInputs) -> Tensor:  # -> [B, n, n, pair_dim]
        return super().forward(inputs.pmi)


class MultiChannelPairFeatures(nn.Module):
    r"""EEGA's multi-channel layer: word-pair channels as pair features and as graph convolutions
    over the words (Yuan et al., "Joint Multimodal Entity-Relation Extraction Based on
    Edge-enhanced Graph Alignment Network and Word-pair Relation Tagging", AAAI 2023).

    .. math::
        P_{ij} = \mathrm{GELU}\big(W_m [E_1(i, j); \dots; E_C(i, j)]\big)

        a^c_{ij} = \operatorname{softmax}_j\big(w_c^\top P_{ij}\big),\qquad
        h'_i = h_i + W_o \big[\textstyle\sum_j a^c_{ij} W_c h_j\big]_{c=1..C}

    :math:`E_c` is channel :math:`c`'s embedding of the pair (``pair_channels`` registry: ``pos``,
    ``distance``, ``cooccurrence``); :math:`W_o` starts at zero, so the layer starts as the identity
    on the word states. :math:`P` is the pair feature the grid head reads.

    Args:
        dim (int): width of the word states.
        channels (list[str]): registered channel names, in order (may be empty: no pair features).
        num_pos (int): number of POS tag ids.
        pair_dim (int): width of each channel's embedding and of :math:`P` (default 32).
        max_distance (int): tree distances from this on share one bucket (default 8).
        max_offset (int): word offsets are clipped to :math:`\pm` this (default 16).
        dropout (float): after the mixing MLP (default 0.1).

    Shapes:
        - **inputs** (:class:`PairInputs`): **states** :math:`(B, n, d)`, **mask:** :math:`(B, n)`
          (True = real word), **pos:** :math:`(B, n)`, **distance**, **pmi:** :math:`(B, n, n)`
        - **output:** word states :math:`(B, n, d)` (padding unchanged); pair features
          :math:`P` :math:`(B, n, n, p)` (zeros when there is no channel)

    Deviations from the paper:
        - EEGA passes each channel's embedding through its own graph convolution and combines
          the results by an MLP; here the MLP mixes the channel embeddings first and each
          channel's convolution weights are read from the mixed :math:`P` (one scalar per channel
          and cell), so a channel's weights see the other channels' evidence (not measured
          against the paper's order);
        - the distance channel adds a signed word-offset embedding (direction; EEGA's distance
          matrix is symmetric), needed by graphie's directed relation cells.
    """

    def __init__(self, dim: int, channels: Sequence[str], num_pos: int, pair_dim: int = 32,
                 max_distance: int = 8, max_offset: int = 16, dropout: float = 0.1):
        super().__init__()
        self.channels = list(channels)
        self.embeddings = nn.ModuleDict({
            name: pair_channels.create(name, pair_dim=pair_dim, num_pos=num_pos, max_distance=max_distance,
                                       max_offset=max_offset)
            for name in self.channels
        })
        k = max(len(self.channels), 1)
        self.out_dim = pair_dim
        self.mix = nn.Sequential(nn.Linear(k * pair_dim, pair_dim), nn.GELU(), nn.Dropout(dropout))
        self.edge_score = nn.Linear(pair_dim, len(self.channels))  # w_c: one scalar per channel and cell
        self.node_proj = nn.Linear(dim, dim // 4 * len(self.channels)) if self.channels else None  # W_c
        self.node_out = nn.Linear(dim // 4 * len(self.channels), dim) if self.channels else None  # W_o
        if self.node_out is not None:
            nn.init.zeros_(self.node_out.weight)
            nn.init.zeros_(self.node_out.bias)

    def forward(self, inputs: PairInputs) -> tuple[Tensor, Tensor]:
        h, mask = inputs.states, inputs.mask
        B, n, _ = h.shape
        if not self.channels:
            return h, h.new_zeros(B, n, n, self.out_dim)
        pair = self.mix(torch.cat([self.embeddings[name](inputs) for name in self.channels], -1))  # [B,n,n,p]
        scores = self.edge_score(pair)  # [B,n,n,C]
        keep = (mask.unsqueeze(1) & mask.unsqueeze(2)).unsqueeze(-1)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=2) * keep  # a^c_ij, over neighbours j
        C = len(self.channels)
        values = self.node_proj(h).view(B, n, C, -1)  # [B,n,C,d/4]
        conv = torch.einsum("bijc,bjcf->bicf", weights, values).reshape(B, n, -1)
        return h + self.node_out(conv) * mask.unsqueeze(-1), pair

