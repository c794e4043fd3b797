"""Spatial predicates on hand-made boxes, at and around the documented thresholds."""

import pytest

from parsers.image.predicates import CONTAIN_THRESHOLD, NEAR_RATIO, OVERLAP_IOU, box_relation, spatial_predicates


def test_documented_defaults():
    assert (CONTAIN_THRESHOLD, OVERLAP_IOU, NEAR_RATIO) == (0.9, 0.1, 0.5)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((0, 0, 10, 10), (12, 0, 22, 10), [("left of", "right of"), ("near", "near")]),   # gap 2
        ((40, 0, 50, 10), (0, 0, 10, 10), [("right of", "left of")]),                     # gap 30: not near
        ((0, 0, 10, 10), (0, 15, 10, 25), [("above", "below"), ("near", "near")]),         # gap 5 ≤ 0.5·14.1
        ((0, 30, 10, 40), (0, 0, 10, 10), [("below", "above")]),
        ((0, 0, 100, 100), (10, 10, 20, 20), [("contains", "inside")]),
        ((10, 10, 20, 20), (0, 0, 100, 100), [("inside", "contains")]),
        ((0, 0, 10, 10), (5, 0, 15, 10), [("overlaps", "overlaps")]),                       # IoU 1/3
        ((0, 0, 10, 10), (9, 0, 19, 10), [("left of", "right of"), ("near", "near")]),     # IoU 0.05 < 0.1
    ],
)
def test_box_relation(a, b, expected):
    assert box_relation(a, b) == expected


def test_thresholds_are_inclusive_and_configurable():
    # Exactly 90% of the small box inside the large one → contains.
    assert box_relation((0, 0, 100, 100), (91, 0, 101, 10)) == [("contains", "inside")]
    assert box_relation((0, 0, 100, 100), (92, 0, 102, 10))[0] != ("contains", "inside")
    # Gap of exactly near × mean diagonal (10·√2·0.5 ≈ 7.07): near; just beyond: not.
    assert ("near", "near") in box_relation((0, 0, 10, 10), (17.07, 0, 27.07, 10))
    assert ("near", "near") not in box_relation((0, 0, 10, 10), (17.2, 0, 27.2, 10))
    assert ("near", "near") in box_relation((0, 0, 10, 10), (17.2, 0, 27.2, 10), near=1.0)
    assert box_relation((0, 0, 10, 10), (5, 0, 15, 10), overlap=0.5)[0] == ("left of", "right of")


def test_spatial_predicates_edges_are_paired_inverses_with_offset():
    edges = spatial_predicates([(0, 0, 10, 10), None, (50, 0, 60, 10), (52, 2, 58, 8)], offset=1)
    triples = {(e.subject, e.predicate, e.object) for e in edges}
    assert (1, "left of", 3) in triples and (3, "right of", 1) in triples
    assert (3, "contains", 4) in triples and (4, "inside", 3) in triples
    assert all(e.subject != 2 and e.object != 2 for e in edges)  # the box-less node
    assert len(edges) % 2 == 0
