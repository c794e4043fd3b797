"""Per-class score floors of the COCO stage (chosen on the real photos by
benchmarks/bench_score_floor.py) and the rider predicates: the README's astronaut shows her and
her face, not her helmet as a mouse; the objects the other tests check stay."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from parsers.image import get_detector, load_image, parse_image
from parsers.image.detectors.coco import CLASS_FLOORS, CocoSSD
from parsers.image.predicates import relation, spatial_predicates
from parsers.scene import SceneObject

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) ships the sample photos")
README_PHOTO = Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg"


@pytest.fixture(scope="module")
def photos():
    return {"README jpeg": load_image(README_PHOTO), "scikit-image png": Image.fromarray(skimage_data.astronaut())}


@pytest.mark.parametrize("which", ["README jpeg", "scikit-image png"])
def test_the_astronaut_is_a_person_with_a_face_and_no_mouse(photos, which):
    image = photos[which]
    unfloored = CocoSSD(floors={}).detect(image)
    mouse = [o for o in unfloored if o.label == "mouse"]
    assert mouse and max(o.score for o in mouse) < CLASS_FLOORS["mouse"]  # what the floor is for
    labels = sorted(o.label for o in get_detector("default", threads=1).detect(image) if o.label != "text")
    assert labels == ["face", "person"]


def test_the_first_command_shows_person_and_face():
    graph = parse_image(README_PHOTO, features=False, tagger=None, threads=1)
    assert [o.label for o in graph.objects[1:]] == ["person", "face"]


def test_floors_are_part_of_the_settings_and_can_be_lifted():
    assert CocoSSD().settings()["floors"] == dict(sorted(CLASS_FLOORS.items()))
    assert CocoSSD(floors={}).settings()["floors"] == {}  # another cache key
    lifted = get_detector("default", threads=1, object_floors={})
    assert lifted.objects.floors == {}
    assert "mouse" in {o.label for o in lifted.detect(load_image(README_PHOTO))}


@pytest.mark.parametrize("name, expected", [("chelsea", {"cat"}), ("coffee", {"cup", "dining table"})])
def test_true_objects_are_above_their_floors(name, expected):
    found = {o.label for o in CocoSSD().detect(Image.fromarray(getattr(skimage_data, name)()))}
    assert expected <= found


def obj(label, box, score=1.0):
    return SceneObject(label, score, box, "test")


@pytest.mark.parametrize("rider, ridden, expected", [
    # a skateboarder whose box stops at her soles, 2 px above the board's top
    (obj("person", (100, 50, 160, 298)), obj("skateboard", (90, 300, 180, 330)), "riding"),
    # a surfer standing in the board's box
    (obj("person", (200, 40, 260, 220)), obj("surfboard", (150, 200, 400, 240)), "riding"),
    # a cyclist: head above the frame, legs down into it
    (obj("person", (120, 20, 220, 300)), obj("bicycle", (90, 150, 260, 360)), "riding"),
    # a rider on a horse
    (obj("person", (150, 30, 230, 250)), obj("horse", (80, 140, 320, 420)), "riding"),
    # a skier on skis
    (obj("person", (100, 40, 170, 300)), obj("skis", (60, 290, 220, 320)), "on"),
])
def test_a_person_on_a_horse_bike_or_board(rider, ridden, expected):
    order, found = relation(rider, ridden)
    assert order == 0 and found.forward == expected
    edges = {(e.subject, e.predicate, e.object) for e in spatial_predicates([rider, ridden])}
    assert (0, expected, 1) in edges


def test_feet_well_above_a_board_are_not_riding():
    # the person's box ends 40 px (more than 10% of her height) above the board: she is not on it
    found = relation(obj("person", (100, 50, 160, 260)), obj("skateboard", (90, 300, 180, 330)))
    assert found is None or found[1].forward != "riding"
