r"""Spatial predicates between detected objects, from their labels and boxes.

Boxes are pixels ``(x0, y0, x1, y1)``, y grows downwards. For a pair of objects the first
rule that holds gives its relation; a pair gets at most one relation. ``A`` is the subject,
the weight (in brackets) enters the salience below:

1. ``A wearing B`` (1.0): A is a person, B a worn item (:data:`WORN`: tie, backpack), at
   least 70% of B inside A.
2. ``A holding B`` / ``A carrying B`` (1.0): A is a person, B a hand-held object
   (:data:`HELD`) or a bag (:data:`CARRIED`), B at most half of A's area, at least half of B
   inside A's box widened by 10% a side (hands reach past the box).
3. ``A riding B`` (1.0): A is a person, B a ridden animal, vehicle or board (:data:`RIDDEN`);
   A's centre above B's, A's top above B's top, A's bottom below B's top, horizontal overlap
   at least half the narrower box. On a board (:data:`BOARDS`) the feet may end up to 10% of
   A's height above the board's top (a tight person box stops at the soles); on ``skis`` the
   relation is ``A on B`` / ``B under A``.
4. ``A on B`` and ``B under A`` (0.9): B is a support (:data:`SUPPORTS`: furniture,
   vehicles, boards), A smaller than B and not a face or text line; horizontal overlap at
   least half of A's width, A's centre above B's, A's bottom between B's top (less 10% of
   B's height) and B's bottom.
5. ``A contains B`` and ``B inside A`` (0.9): at least 90% of the smaller box B inside the
   larger A (a face in a person, a text line on a truck).
6. ``A in front of B`` and ``B behind A`` (0.6): the boxes overlap (intersection at least 20%
   of the smaller) and their bottom edges differ by at least 10% of the taller box; A's
   reaches lower, so A stands nearer the camera (ground-plane rule). Faces and text lines
   are not ordered.
7. ``A beside B`` both ways (0.5): no such overlap, vertical overlap at least half the
   shorter box, heights within a factor 2, horizontal gap at most half the mean width. Faces
   and text lines excluded.

Salience of a relation = weight × strength (the rule's fraction: B's share inside A, the
horizontal overlap, the overlap share, or 1 − gap / allowed gap for ``beside``) × the
geometric mean of the two detection scores. :func:`spatial_predicates` keeps, greedily by
salience, a relation when both its objects have fewer than ``k`` (3) relations so far: no
object has more than ``k`` neighbours, so a crowd of 40 people gives at most 60 related
pairs (120 edges), not 780 pairs.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from ..scene import Box, SceneEdge, SceneObject, box_area

#: Default ``k`` of :func:`spatial_predicates`: related objects kept per object.
MAX_RELATIONS_PER_OBJECT = 3
#: Worn by a person (rule 1).
WORN = frozenset({"tie", "backpack"})
#: Carried by a person (rule 2).
CARRIED = frozenset({"handbag", "suitcase"})
#: Held by a person (rule 2).
HELD = frozenset({
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "cell phone", "remote", "book", "umbrella",
    "frisbee", "sports ball", "kite", "baseball bat", "baseball glove", "tennis racket", "teddy bear",
    "hair drier", "toothbrush", "scissors", "mouse", "laptop",
})
#: Ridden by a person (rule 3).
RIDDEN = frozenset({"bicycle", "motorcycle", "horse", "elephant", "cow", "skateboard", "surfboard", "snowboard",
                    "skis"})
#: Boards a person stands on (rule 3); a rider's box may stop just above theirs.
BOARDS = frozenset({"skateboard", "surfboard", "snowboard", "skis"})
#: What other objects rest on (rule 4).
SUPPORTS = frozenset({
    "bed", "couch", "chair", "bench", "dining table", "toilet", "sink", "tv", "laptop", "refrigerator", "oven",
    "car", "truck", "bus", "train", "boat", "airplane", "bicycle", "motorcycle", "horse", "elephant", "cow",
    "suitcase", "skateboard", "surfboard", "snowboard", "skis",
})
#: Overlays and parts, never on a support, not ordered in depth, not beside anything (rules 4, 6, 7).
UNORDERED = frozenset({"face", "text"})
#: Rule weights in the salience.
WEIGHTS = {"wearing": 1.0, "holding": 1.0, "carrying": 1.0, "riding": 1.0, "on": 0.9, "contains": 0.9,
           "inside": 0.9, "in front of": 0.6, "behind": 0.6, "beside": 0.5}


class Relation(NamedTuple):
    """``subject --forward--> object`` and, when not ``None``, ``object --backward--> subject``."""

    forward: str
    backward: str | None
    strength: float  # the rule's geometric fraction in [0, 1]


def _intersection(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _h_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0]))


def _v_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _directed(a: SceneObject, b: SceneObject) -> Relation | None:
    """The rules with a fixed subject (wearing, holding / carrying, riding, on): ``a`` → ``b``."""
    ba, bb = a.box, b.box
    wa, ha, wb, hb = ba[2] - ba[0], ba[3] - ba[1], bb[2] - bb[0], bb[3] - bb[1]
    if a.label == "person" and b.label in WORN:
        inside = _intersection(ba, bb) / max(box_area(bb), 1e-9)
        if inside >= 0.7:
            return Relation("wearing", None, inside)
    if a.label == "person" and (b.label in HELD or b.label in CARRIED) and box_area(bb) <= 0.5 * box_area(ba):
        reach = (ba[0] - 0.1 * wa, ba[1] - 0.1 * ha, ba[2] + 0.1 * wa, ba[3] + 0.1 * ha)
        inside = _intersection(reach, bb) / max(box_area(bb), 1e-9)
        if inside >= 0.5:
            return Relation("holding" if b.label in HELD else "carrying", None, inside)
    cya, cyb = (ba[1] + ba[3]) / 2, (bb[1] + bb[3]) / 2
    if a.label == "person" and b.label in RIDDEN:
        overlap = _h_overlap(ba, bb) / max(min(wa, wb), 1e-9)
        feet = ba[3] + (0.1 * ha if b.label in BOARDS else 0.0)
        if cya < cyb and ba[1] < bb[1] < feet and overlap >= 0.5:
            return Relation("on", "under", overlap) if b.label == "skis" else Relation("riding", None, overlap)
    if b.label in SUPPORTS and a.label not in UNORDERED and box_area(ba) < box_area(bb):
        overlap = _h_overlap(ba, bb) / max(wa, 1e-9)
        if overlap >= 0.5 and cya < cyb and bb[1] - 0.1 * hb <= ba[3] <= bb[3]:
            return Relation("on", "under", overlap)
    return None


def relation(a: SceneObject, b: SceneObject) -> tuple[int, Relation] | None:
    """The relation of a pair by the module's rules, as ``(0, r)`` when ``a`` is its subject or
    ``(1, r)`` when ``b`` is; ``None`` when no rule holds or a box is missing."""
    if a.box is None or b.box is None:
        return None
    for order, (s, o) in enumerate(((a, b), (b, a))):
        found = _directed(s, o)
        if found is not None:
            return order, found
    ba, bb = a.box, b.box
    inter, smaller = _intersection(ba, bb), min(box_area(ba), box_area(bb))
    if smaller <= 0:
        return None
    if inter / smaller >= 0.9:
        return (0 if box_area(ba) >= box_area(bb) else 1), Relation("contains", "inside", inter / smaller)
    if a.label in UNORDERED or b.label in UNORDERED:
        return None
    ha, hb = ba[3] - ba[1], bb[3] - bb[1]
    if inter / smaller >= 0.2:
        if abs(ba[3] - bb[3]) >= 0.1 * max(ha, hb):
            return (0 if ba[3] > bb[3] else 1), Relation("in front of", "behind", inter / smaller)
        return None
    gap = max(0.0, max(ba[0], bb[0]) - min(ba[2], bb[2]))
    allowed = 0.5 * ((ba[2] - ba[0]) + (bb[2] - bb[0])) / 2
    if _v_overlap(ba, bb) >= 0.5 * min(ha, hb) and min(ha, hb) >= 0.5 * max(ha, hb) and gap <= allowed:
        return 0, Relation("beside", "beside", 1.0 - gap / allowed if allowed > 0 else 1.0)
    return None


def spatial_predicates(objects: Sequence[SceneObject], offset: int = 0,
                       k: int = MAX_RELATIONS_PER_OBJECT) -> list[SceneEdge]:
    """Directed edges between ``objects`` by the module's rules, at most ``k`` related objects
    each, the most salient kept (objects without a box are skipped).

    Node ids are the positions in ``objects`` plus ``offset`` (pass 1 when the objects are
    ``graph.objects[1:]``, after the whole-image node). Edges come ordered by salience.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    candidates = []
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            found = relation(objects[i], objects[j])
            if found is None:
                continue
            order, r = found
            s, o = (i, j) if order == 0 else (j, i)
            confidence = math.sqrt(max(0.0, objects[i].score) * max(0.0, objects[j].score))
            candidates.append((WEIGHTS[r.forward] * r.strength * confidence, s, o, r))
    candidates.sort(key=lambda c: -c[0])  # stable: ties keep pair order
    degree = [0] * len(objects)
    edges: list[SceneEdge] = []
    for _, s, o, r in candidates:
        if degree[s] >= k or degree[o] >= k:
            continue
        degree[s] += 1
        degree[o] += 1
        edges.append(SceneEdge(s + offset, r.forward, o + offset))
        if r.backward is not None:
            edges.append(SceneEdge(o + offset, r.backward, s + offset))
    return edges
