"""BIO sequence tagging with a linear-chain CRF (pytorch-crf), for NER-only data."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import MissingDependencyError


def bio_labels(types: Sequence[str]) -> list[str]:
    """``["O", "B-T1", "I-T1", ...]``."""
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def spans_to_bio(entities: Sequence[tuple[int, int, str]], types: Sequence[str], n: int) -> list[int]:
    """Tag ids of n words; overlapping spans keep the first one given (BIO cannot nest)."""
    index = {t: k for k, t in enumerate(types)}
    tags = [0] * n
    for s, e, t in entities:
        if e > n or any(tags[s:e]):
            continue
        tags[s] = 1 + 2 * index[t]
        for i in range(s + 1, e):
            tags[i] = 2 + 2 * index[t]
    return tags


def bio_to_entities(tags: Sequence[int], types: Sequence[str]) -> list[tuple[int, int, str]]:
    """Spans of a tag-id sequence; an ``I-`` that does not continue its type starts a new span."""
    spans, start, cur = [], None, None
    for i, tag in enumerate([*tags, 0]):
        kind = None if tag == 0 else ("B" if tag % 2 == 1 else "I")
        t = None if tag == 0 else types[(tag - 1) // 2]
        if start is not None and (kind != "I" or t != cur):
            spans.append((start, i, cur))
            start = cur = None
        if kind == "B" or (kind == "I" and start is None):
            start, cur = i, t
    return spans


class CRFTagger(nn.Module):
    """Emissions ``E = W h`` scored by a CRF over BIO tags."""

    def __init__(self, dim: int, types: Sequence[str], dropout: float = 0.1):
        super().__init__()
        try:
            from torchcrf import CRF
        except ImportError as exc:
            raise MissingDependencyError("the crf head needs `pip install pytorch-crf==0.7.2`") from exc
        self.types = list(types)
        self.dropout = nn.Dropout(dropout)
        self.emissions = nn.Linear(dim, len(bio_labels(types)))
        self.crf = CRF(len(bio_labels(types)), batch_first=True)

    def forward(self, h: Tensor) -> Tensor:
        return self.emissions(self.dropout(h))  # [B, n, 2T + 1]

    def loss(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood per post."""
        return -self.crf(emissions.float(), tags, mask=mask, reduction="mean")

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[tuple[int, int, str]]]:
        """Viterbi-best entities ``(start, end, type)`` of each post from emissions ``[B, n, tags]``
        under ``mask [B, n]`` (always in float32, also under autocast)."""
        with torch.autocast(device_type=emissions.device.type, enabled=False):
            paths = self.crf.decode(emissions.float(), mask=mask)
        return [bio_to_entities(p, self.types) for p in paths]
