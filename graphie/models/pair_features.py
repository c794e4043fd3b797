"""EEGA's multi-channel layer: word-pair matrices of POS pairs, dependency distance and
co-occurrence (PMI), each embedded and used as a small graph convolution over the words,
then combined by an MLP into one pair feature per grid cell."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from itertools import combinations
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor, nn

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


class MultiChannelPairFeatures(nn.Module):
    """``P_ij = MLP([E_pos(p_i, p_j); E_dist(d_ij, j-i); E_pmi(b_ij)])`` and, per channel c,
    a graph convolution ``h_i += W_o[ Σ_j softmax_j(w_c·E_c,ij) W_c h_j ]_c`` (``W_o`` zero-init)."""

    def __init__(self, dim: int, channels: Sequence[str], num_pos: int, pair_dim: int = 32,
                 max_distance: int = 8, max_offset: int = 16, dropout: float = 0.1):
        super().__init__()
        self.channels = list(channels)
        self.num_pos, self.max_distance, self.max_offset = num_pos, max_distance, max_offset
        emb: dict[str, nn.Module] = {}
        if "pos" in self.channels:
            emb["pos"] = nn.Embedding(num_pos * num_pos, pair_dim)
        if "distance" in self.channels:
            emb["distance"] = nn.Embedding(max_distance + 1, pair_dim)
            self.offset = nn.Embedding(2 * max_offset + 1, pair_dim)
        if "cooccurrence" in self.channels:
            emb["cooccurrence"] = nn.Embedding(NUM_PMI_BUCKETS, pair_dim)
        self.embeddings = nn.ModuleDict(emb)
        k = max(len(self.channels), 1)
        self.out_dim = pair_dim
        self.mix = nn.Sequential(nn.Linear(k * pair_dim, pair_dim), nn.GELU(), nn.Dropout(dropout))
        self.edge_score = nn.Linear(pair_dim, len(self.channels))  # one scalar per channel and cell
        self.node_proj = nn.Linear(dim, dim // 4 * len(self.channels)) if self.channels else None
        self.node_out = nn.Linear(dim // 4 * len(self.channels), dim) if self.channels else None
        if self.node_out is not None:
            nn.init.zeros_(self.node_out.weight)
            nn.init.zeros_(self.node_out.bias)

    def forward(self, h: Tensor, mask: Tensor, pos: Tensor, distance: Tensor, pmi: Tensor) -> tuple[Tensor, Tensor]:
        # h [B,n,d]; mask [B,n] bool; pos [B,n]; distance, pmi [B,n,n] -> (h' [B,n,d], P [B,n,n,p])
        B, n, _ = h.shape
        if not self.channels:
            return h, h.new_zeros(B, n, n, self.out_dim)
        feats = []
        for name in self.channels:
            if name == "pos":
                pair = pos.unsqueeze(2) * self.num_pos + pos.unsqueeze(1)
                feats.append(self.embeddings["pos"](pair))
            elif name == "distance":
                d = distance.clamp(min=0, max=self.max_distance)
                d = torch.where(distance < 0, torch.full_like(d, self.max_distance), d)  # unreachable: far
                idx = torch.arange(n, device=h.device)
                offset = (idx.view(1, -1) - idx.view(-1, 1)).clamp(-self.max_offset, self.max_offset) + self.max_offset
                feats.append(self.embeddings["distance"](d) + self.offset(offset).unsqueeze(0))
            else:
                feats.append(self.embeddings["cooccurrence"](pmi))
        pair = self.mix(torch.cat(feats, -1))  # [B,n,n,p]
        # channel graph convolutions: attention weights from the channel embeddings
        scores = self.edge_score(pair)  # [B,n,n,C]
        keep = (mask.unsqueeze(1) & mask.unsqueeze(2)).unsqueeze(-1)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=2) * keep  # over neighbours j
        C = len(self.channels)
        values = self.node_proj(h).view(B, n, C, -1)  # [B,n,C,d/4]
        conv = torch.einsum("bijc,bjcf->bicf", weights, values).reshape(B, n, -1)
        return h + self.node_out(conv) * mask.unsqueeze(-1), pair
