r"""Typed entity markers: relation classification of a given pair from the marker states
(Zhou & Chen, "An Improved Baseline for Sentence-level Relation Extraction", AACL 2022;
the input scheme of OpenNRE, MEGA, HVPNet and MKGformer on MNRE).

Each given pair becomes its own sequence, its entities wrapped in punctuation the encoder
already knows: ``@ * type * head @`` and ``# ^ type ^ tail #`` (the type words are left out
when the data gives none, as MNRE does). Then

.. math::
    p(r \mid x, h, t) = \mathrm{softmax}\big(W [\,H_{@} ; H_{\#}\,] + b\big)

where :math:`H_{@}` and :math:`H_{\#}` are the encoder states of the opening markers.

Shapes:
    - **h:** :math:`(P, n, d)` word states of P marked sequences
    - **marker_index:** :math:`(P, 2)` word positions of the two opening markers
    - **output:** logits :math:`(P, R + 1)`, class 0 = none

Deviations from the paper: markers are words of the pre-split post, so they pass through the
same word pooling as every word (first sub-word by default). With an alignment configured, each
marked sequence is aligned with its post's scene graph (the dependency arcs carried over to the
marked words, markers without arcs) before :math:`H_{@}, H_{\#}` are read.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

HEAD_MARK, HEAD_TYPE_MARK, TAIL_MARK, TAIL_TYPE_MARK = "@", "*", "#", "^"
UNTYPED = ("", "ENT")  # MNRE gives spans without entity types


def mark_pair(words: Sequence[str], head: tuple[int, int, str], tail: tuple[int, int, str]) -> tuple[list[str], int, int]:
    """``words`` with the head and tail entities wrapped in typed markers, and the positions of
    the two opening markers. Spans are ``(start, end, type)`` word ranges, end exclusive; head and
    tail must not overlap."""
    out, head_at, tail_at, _ = mark_pair_positions(words, head, tail)
    return out, head_at, tail_at


def mark_pair_positions(words: Sequence[str], head: tuple[int, int, str],
                        tail: tuple[int, int, str]) -> tuple[list[str], int, int, list[int]]:
    """:func:`mark_pair`, and where each of ``words`` went in the marked sequence (so that word
    graphs, e.g. dependency arcs for an alignment, can be carried over to the marked words)."""
    inserts: dict[int, list[str]] = {}

    def wrap(span: tuple[int, int, str], mark: str, type_mark: str) -> None:
        start, end, type_ = span
        typed = [type_mark, type_.lower(), type_mark] if type_ not in UNTYPED else []
        inserts.setdefault(start, []).extend([mark, *typed])
        inserts.setdefault(end, []).insert(0, mark)

    wrap(head, HEAD_MARK, HEAD_TYPE_MARK)
    wrap(tail, TAIL_MARK, TAIL_TYPE_MARK)
    out: list[str] = []
    positions: list[int] = []
    head_at = tail_at = -1
    for i in range(len(words) + 1):
        for piece in inserts.get(i, []):
            # Opening markers sit at a span's start; closing ones at its end (inserted first).
            if i == head[0] and piece == HEAD_MARK and head_at < 0:
                head_at = len(out)
            elif i == tail[0] and piece == TAIL_MARK and tail_at < 0:
                tail_at = len(out)
            out.append(piece)
        if i < len(words):
            positions.append(len(out))
            out.append(words[i])
    return out, head_at, tail_at, positions


class MarkerHead(nn.Module):
    """``logits = W [H_@ ; H_#] + b`` over the none class and the relation labels."""

    def __init__(self, dim: int, num_relations: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * dim, num_relations + 1)

    def forward(self, h: Tensor, marker_index: Tensor) -> Tensor:
        rows = torch.arange(h.size(0), device=h.device).unsqueeze(1)  # [P, 1]
        pair = h[rows, marker_index].flatten(1)  # [P, 2d]
        return self.out(self.dropout(pair))
