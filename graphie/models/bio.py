r"""BIO token classification, optionally scored by a linear-chain CRF (Lample et al., NAACL 2016).

.. math::
    E = W h + b, \qquad
    p(y \mid h) = \mathrm{softmax}(E) \text{ per word, or }
    \frac{\exp(\sum_i E_{i, y_i} + A_{y_{i-1}, y_i})}{Z(h)} \text{ with the CRF}

This is the ``bio`` head: the tagging scheme the entity metric scores (exact span + type), so
training and evaluation agree, unlike independent grid cells.

Shapes:
    - **h:** :math:`(B, n, d)` word states, **mask:** :math:`(B, n)` (True = real word)
    - **emissions:** :math:`(B, n, 2T + 1)` over ``bio_labels(types)``
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
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


class BIOTagger(nn.Module):
    """Emissions ``E = W h`` over BIO tags, trained by per-word cross-entropy or, with ``crf=True``,
    by the CRF's sequence likelihood (Viterbi decoding)."""

    def __init__(self, dim: int, types: Sequence[str], dropout: float = 0.1, crf: bool = False):
        super().__init__()
        self.types = list(types)
        self.dropout = nn.Dropout(dropout)
        self.emissions = nn.Linear(dim, len(bio_labels(types)))
        self.crf = None
        if crf:
            try:
                from torchcrf import CRF
            except ImportError as exc:
                raise MissingDependencyError("the crf option needs `pip install pytorch-crf==0.7.2`") from exc
            self.crf = CRF(len(bio_labels(types)), batch_first=True)

    def forward(self, h: Tensor) -> Tensor:
        return self.emissions(self.dropout(h))  # [B, n, 2T + 1]

    def loss(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood: per post with the CRF, per word without."""
        if self.crf is None:
            return F.cross_entropy(emissions.float()[mask], tags[mask])
        return -self.crf(emissions.float(), tags, mask=mask, reduction="mean")

    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[tuple[int, int, str, float]]]:
        """Viterbi-best entities ``(start, end, type)`` of each post from emissions ``[B, n, tags]``
        under ``mask [B, n]``: Viterbi with the CRF (in float32, also under autocast), else the
        best tag of each word. Scores are the mean probability of the span's tags."""
        probs = torch.softmax(emissions.float(), -1)
        if self.crf is None:
            paths = [row[: int(m.sum())] for row, m in zip(probs.argmax(-1).tolist(), mask)]
        else:
            with torch.autocast(device_type=emissions.device.type, enabled=False):
                paths = self.crf.decode(emissions.float(), mask=mask)
        out = []
        for b, path in enumerate(paths):
            tag_probs = probs[b, torch.arange(len(path)), torch.tensor(path, dtype=torch.long)].tolist() if path else []
            out.append([(s, e, t, sum(tag_probs[s:e]) / (e - s)) for s, e, t in bio_to_entities(path, self.types)])
        return out
