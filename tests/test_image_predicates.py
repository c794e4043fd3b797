"""Spatial predicates, one constructed layout per documented rule, and the k-neighbour cap."""

import pytest

from parsers.image.predicates import MAX_RELATIONS_PER_OBJECT, relation, spatial_predicates
from parsers.scene import PREDICATES, SceneObject, predicate_id


def obj(label, box, score=1.0):
    return SceneObject(label, score, box, "test")


def triples(objects, **kw):
    return {(objects[e.subject].label, e.predicate, objects[e.object].label) for e in spatial_predicates(objects, **kw)}


PERSON = (100, 100, 200, 400)  # 100 wide, 300 tall, standing on y = 400


@pytest.mark.parametrize(
    "a, b, expected",
    [
        # a tie inside the person's torso
        (obj("person", PERSON), obj("tie", (140, 180, 160, 260)), {("person", "wearing", "tie")}),
        # a cup at the hand, half outside the person box but within the 10% reach
        (obj("person", PERSON), obj("cup", (185, 250, 215, 280)), {("person", "holding", "cup")}),
        (obj("handbag", (80, 250, 130, 320)), obj("person", PERSON), {("person", "carrying", "handbag")}),
        # a rider whose head is above the horse's back and whose legs reach into it
        (obj("person", (150, 50, 230, 250)), obj("horse", (100, 150, 300, 400)), {("person", "riding", "horse")}),
        # a cat lying on a bed: on, and the bed under it
        (obj("cat", (150, 180, 250, 260)), obj("bed", (50, 200, 450, 400)),
         {("cat", "on", "bed"), ("bed", "under", "cat")}),
        # a face inside a person
        (obj("person", PERSON), obj("face", (130, 110, 170, 150)), {("person", "contains", "face"), ("face", "inside", "person")}),
        # two overlapping people, the one whose feet are lower stands in front
        (obj("person", (100, 100, 200, 300)), obj("person", (150, 140, 260, 400)),
         {("person", "behind", "person"), ("person", "in front of", "person")}),
        # a dog beside a person: same height band, small gap
        (obj("person", PERSON), obj("dog", (220, 250, 350, 400)), {("person", "beside", "dog"), ("dog", "beside", "person")}),
    ],
)
def test_each_rule_on_a_constructed_layout(a, b, expected):
    assert triples([a, b]) == expected


def test_in_front_of_names_the_lower_box():
    back, front = obj("person", (100, 100, 200, 300)), obj("car", (170, 140, 400, 400))  # 30% overlap: not on
    edges = spatial_predicates([back, front])
    assert [(e.subject, e.predicate, e.object) for e in edges] == [(1, "in front of", 0), (0, "behind", 1)]


@pytest.mark.parametrize(
    "a, b, rule",
    [
        (obj("person", PERSON), obj("tie", (190, 180, 260, 260)), "wearing"),     # tie mostly outside the person
        (obj("person", PERSON), obj("cup", (260, 250, 290, 280)), "holding"),     # cup out of reach
        (obj("person", (150, 200, 230, 400)), obj("horse", (100, 150, 300, 400)), "riding"),  # head below the back
        (obj("cat", (150, 300, 250, 400)), obj("bed", (50, 200, 450, 380)), "on"),  # reaches below the bed
        (obj("cat", (150, 180, 250, 260)), obj("person", (50, 200, 450, 400)), "on"),  # a person is no support
        (obj("person", (100, 100, 200, 400)), obj("person", (120, 110, 230, 405)), "in front of"),  # same depth
        (obj("person", PERSON), obj("dog", (400, 250, 530, 400)), "beside"),      # too far apart
        (obj("person", PERSON), obj("dog", (220, 360, 250, 400)), "beside"),      # heights differ > 2x
        (obj("face", (0, 0, 20, 20)), obj("text", (25, 0, 45, 20)), "beside"),    # faces and text: no order
    ],
)
def test_rules_do_not_fire_just_outside_their_conditions(a, b, rule):
    found = relation(a, b)
    assert found is None or found[1].forward != rule


def test_a_pair_gets_the_first_matching_rule():
    # the horse contains the rider whose head is below its back: containment, not riding
    assert relation(obj("person", (150, 200, 230, 400)), obj("horse", (100, 150, 300, 400)))[1].forward == "contains"
    # a cat overlapping a bed it reaches below: depth order, the cat's feet lower, so in front
    found = relation(obj("cat", (150, 300, 250, 400)), obj("bed", (50, 200, 450, 380)))
    assert found[0] == 0 and found[1].forward == "in front of"


def test_box_less_objects_are_skipped_and_offset_applies():
    objects = [obj("person", PERSON), SceneObject("dog", 1.0, None), obj("tie", (140, 180, 160, 260))]
    edges = spatial_predicates(objects, offset=1)
    assert [(e.subject, e.predicate, e.object) for e in edges] == [(1, "wearing", 3)]


def test_crowd_of_40_is_capped_at_k_neighbours():
    # 4 rows of 10 people, each row standing lower (nearer) than the one behind it and overlapping it.
    crowd = [obj("person", (x * 60, 40 * r, x * 60 + 70, 40 * r + 200), score=0.9) for r in range(4) for x in range(10)]
    edges = spatial_predicates(crowd)
    neighbours = {i: set() for i in range(len(crowd))}
    for e in edges:
        neighbours[e.subject].add(e.object)
        neighbours[e.object].add(e.subject)
    assert max(len(n) for n in neighbours.values()) <= MAX_RELATIONS_PER_OBJECT
    pairs = {frozenset((e.subject, e.object)) for e in edges}
    assert len(pairs) <= 40 * MAX_RELATIONS_PER_OBJECT // 2 and len(edges) == 2 * len(pairs)
    assert {e.predicate for e in edges} == {"beside", "in front of", "behind"}
    assert min(len(n) for n in neighbours.values()) >= 1  # everyone keeps a neighbour
    assert len(spatial_predicates(crowd, k=1)) <= 40  # k=1: a matching, one edge pair each at most


def test_most_salient_relations_win():
    # A person wearing a tie and standing beside three others: with k=1 the tie stays.
    people = [obj("person", (x, 100, x + 100, 400)) for x in (220, 340, 460)]
    objects = [obj("person", PERSON), *people, obj("tie", (140, 180, 160, 260))]
    kept = spatial_predicates(objects, k=1)
    assert ("wearing" in {e.predicate for e in kept if e.subject == 0})
    # detection confidence scales salience: the confident neighbour wins over the weak one
    weak, strong = obj("person", (220, 100, 320, 400), 0.3), obj("person", (-20, 100, 80, 400), 0.9)
    first = spatial_predicates([obj("person", PERSON), weak, strong], k=1)[0]
    assert {first.subject, first.object} == {0, 2}


def test_predicates_map_into_the_vocabulary():
    produced = ["wearing", "holding", "carrying", "riding", "on", "under", "contains", "inside", "in front of",
                "behind", "beside"]
    ids = [predicate_id(p) for p in produced]
    assert PREDICATES[predicate_id("holding")] == "hold" and PREDICATES[predicate_id("riding")] == "ride"
    assert len(set(ids)) == len(produced) and PREDICATES.index("other") not in ids
