"""Spatial predicates between boxes.

For every pair of boxes a, b (pixels, ``(x0, y0, x1, y1)``, y grows downwards) exactly one
of three cases holds, tested in this order:

1. containment: the intersection covers at least ``contain`` (0.9) of the smaller box's
   area → ``a contains b`` and ``b inside a`` (the larger box contains the smaller);
2. overlap: intersection over union at least ``overlap`` (0.1) → ``overlaps`` both ways;
3. otherwise a direction, from the centre offset along its dominant axis:
   ``a left of b`` / ``b right of a`` when |dx| ≥ |dy|, else ``a above b`` / ``b below a``;
   and, in addition, ``near`` both ways when the gap between the boxes (the shortest
   distance between their edges) is at most ``near`` (0.5) × the mean of the two boxes'
   diagonals.

Each pair so gives two to four directed edges that are each other's inverse, so a graph
built from them reads the same from either end.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..scene import Box, SceneEdge

CONTAIN_THRESHOLD = 0.9
OVERLAP_IOU = 0.1
NEAR_RATIO = 0.5


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def box_relation(
    a: Box, b: Box, contain: float = CONTAIN_THRESHOLD, overlap: float = OVERLAP_IOU, near: float = NEAR_RATIO
) -> list[tuple[str, str]]:
    """The predicates ``(a→b, b→a)`` for one pair of boxes, as documented in this module."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a, area_b = _area(a), _area(b)
    smaller = min(area_a, area_b)
    if smaller > 0 and inter / smaller >= contain:
        return [("contains", "inside")] if area_a >= area_b else [("inside", "contains")]
    union = area_a + area_b - inter
    if union > 0 and inter / union >= overlap:
        return [("overlaps", "overlaps")]
    dx = (b[0] + b[2] - a[0] - a[2]) / 2
    dy = (b[1] + b[3] - a[1] - a[3]) / 2
    if abs(dx) >= abs(dy):
        out = [("left of", "right of") if dx >= 0 else ("right of", "left of")]
    else:
        out = [("above", "below") if dy >= 0 else ("below", "above")]
    gap_x = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    gap_y = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    diag = (math.hypot(a[2] - a[0], a[3] - a[1]) + math.hypot(b[2] - b[0], b[3] - b[1])) / 2
    if math.hypot(gap_x, gap_y) <= near * diag:
        out.append(("near", "near"))
    return out


def spatial_predicates(
    boxes: Sequence[Box | None],
    offset: int = 0,
    contain: float = CONTAIN_THRESHOLD,
    overlap: float = OVERLAP_IOU,
    near: float = NEAR_RATIO,
) -> list[SceneEdge]:
    """Directed spatial edges between all pairs of ``boxes`` (``None`` boxes are skipped).

    Node ids are the positions in ``boxes`` plus ``offset`` (pass 1 when the boxes are
    ``graph.objects[1:]``, after the whole-image node).
    """
    edges: list[SceneEdge] = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if a is None or b is None:
                continue
            for forward, backward in box_relation(a, b, contain, overlap, near):
                edges.append(SceneEdge(i + offset, forward, j + offset))
                edges.append(SceneEdge(j + offset, backward, i + offset))
    return edges
