"""The box matching of ``benchmarks/bench_evidence.py`` on hand-made boxes (no data, no models)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from parsers.scene import SceneGraph, SceneObject

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_evidence", ROOT / "benchmarks" / "bench_evidence.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # dataclasses look their module up
_spec.loader.exec_module(bench)


def test_best_match_takes_the_highest_iou_over_all_true_boxes():
    true = [(0, 0, 10, 10), (100, 100, 120, 140)]
    found = [(5, 0, 15, 10),        # IoU 50 / 150 = 1/3 with the first true box
             None,                  # a boxless object never matches
             (100, 100, 120, 130),  # IoU 600 / 800 = 0.75 with the second
             (0, 0, 10, 10.5)]      # IoU 100 / 105 with the first: the best
    index, iou = bench.best_match(true, found)
    assert index == 3 and iou == pytest.approx(100 / 105)
    assert bench.best_match(true, found[:3]) == (2, pytest.approx(0.75))
    assert bench.best_match(true, [(50, 50, 60, 60), None]) == (None, 0.0)
    assert bench.best_match([], found) == (None, 0.0)


def test_matches_at_the_half_iou_threshold():
    true = [(0, 0, 10, 10)]
    assert bench.matches(true, (0, 0, 10, 20))          # IoU exactly 0.5 counts
    assert not bench.matches(true, (0, 0, 10, 20.5))    # just under
    assert not bench.matches(true, (2, 2, 8, 8))        # a face inside a person: IoU 0.36 ...
    assert bench.share_inside((2, 2, 8, 8), true) == 1.0  # ... but wholly inside the box
    assert not bench.matches(true, None)


def test_scale_box_maps_a_downscaled_decode_back_to_original_pixels():
    assert bench.scale_box((10, 20, 30, 40), (100, 200), (200, 400)) == (20, 40, 60, 80)


def test_own_box_evidence_judges_the_top_evidence_object_only():
    # Decoded at half size: the person box is (20, 10, 60, 90) in original pixels.
    graph = SceneGraph([SceneObject("image", 1.0, (0, 0, 50, 50)),
                        SceneObject("person", 0.9, (10, 5, 30, 45)),
                        SceneObject("dog", 0.8, (35, 35, 50, 50))], [], 50, 50)
    true = [(20, 10, 60, 90)]
    size = (100, 100)
    top, iou, own = bench.own_box_evidence([{"object": 1, "label": "person", "weight": 0.7},
                                            {"object": 2, "label": "dog", "weight": 0.4}], graph, true, size)
    assert top["object"] == 1 and iou == pytest.approx(1.0) and own
    # The right box second is not enough: only the top evidence counts.
    _, iou, own = bench.own_box_evidence([{"object": 2, "label": "dog", "weight": 0.7},
                                          {"object": 1, "label": "person", "weight": 0.4}], graph, true, size)
    assert iou == 0.0 and not own
    # The whole-image node never counts as the entity's own box, even over a box that fills the photo.
    _, iou, own = bench.own_box_evidence([{"object": 0, "label": "image", "weight": 0.9}], graph,
                                         [(0, 0, 100, 95)], size)
    assert iou == pytest.approx(0.95) and not own
    assert bench.own_box_evidence([], graph, true, size) == (None, 0.0, False)


def test_char_span_and_ocr_names():
    tokens = ["RT", "@x", ":", "Chris", "Paul", "tonight"]
    start, end = bench.char_span(tokens, 3, 5)
    assert " ".join(tokens)[start:end] == "Chris Paul"
    ocr = [SceneObject("text", 0.9, (0, 0, 5, 5), text="R"), SceneObject("text", 0.9, (0, 0, 5, 5), text="CHRISPAULBE LIKE")]
    assert bench.ocr_names("Chris Paul", ocr) is ocr[1]
    assert bench.ocr_names("Garth Brooks", ocr) is None  # "R" is too short to count
