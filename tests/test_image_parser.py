"""The default offline backend end to end: real packaged weights on images that scikit-image
ships (a photo of a person, a cat, a coffee cup), on text rendered here with PIL, and on the
MNRE sample photos in ../shared/data/mnre_images when that folder is there."""

import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from graphie.errors import InvalidInputError
from graphie.registry import detectors
from parsers.image import (Detector, SceneGraphCache, content_hash, draw_scene_graph, get_detector, parse_image,
                           spatial_predicates)
from parsers.image.detectors.default import drop_group_boxes
from parsers.image.features import FEATURE_DIM, RegionFeatureExtractor
from parsers.image.parse import GRAPH_VERSION
from parsers.scene import IMAGE_LABEL, SceneGraph, SceneObject

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) ships the sample photos")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The CI machine is small and shared: MobileNetV2 on one thread avoids oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def default():
    return get_detector("default", threads=1)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def text_image() -> Image.Image:
    image = Image.new("RGB", (640, 240), "white")
    ImageDraw.Draw(image).text((40, 70), "GRAPHIE NEWS", fill="black", font=ImageFont.load_default(size=72))
    return image


def test_all_backends_registered():
    assert {"default", "ssd_coco", "torchvision", "detectron2", "onnx", "precomputed", "caption"} <= set(detectors.names())


def test_default_finds_the_person_and_face(default, astronaut):
    assert isinstance(default, Detector)
    objects = default.detect(astronaut)
    person = [o for o in objects if o.label == "person"]
    face = [o for o in objects if o.label == "face"]
    assert len(person) == 1 and person[0].score > 0.8 and person[0].source in ("ssdlite", "ssd_coco")
    x0, y0, x1, y1 = person[0].box
    assert x1 - x0 > 250 and y1 - y0 > 350  # she fills most of the 512×512 frame
    assert len(face) == 1
    fx0, fy0, fx1, fy1 = face[0].box
    assert x0 <= fx0 and fx1 <= x1 + 40 and fy1 < 250  # a face in the upper part of the person


@pytest.mark.parametrize("name, expected", [("chelsea", {"cat"}), ("coffee", {"cup", "dining table"})])
def test_default_finds_coco_objects_and_no_people(default, name, expected):
    objects = default.detect(Image.fromarray(getattr(skimage_data, name)()))
    labels = {o.label for o in objects if o.label != "text"}
    assert expected <= labels and "person" not in labels
    assert all(o.source == "ssd_coco" for o in objects if o.label in expected)


def test_coco_duplicates_across_classes_are_dropped(default):
    # the coffee cup is also read as a bowl (IoU ~0.9) by the network; one box is kept
    objects = default.detect(Image.fromarray(skimage_data.coffee()))
    assert {o.label for o in objects} & {"cup", "bowl"} == {"cup"}


def test_group_boxes_are_dropped():
    group = SceneObject("person", 0.9, (0, 0, 300, 200))
    people = [SceneObject("person", 0.6, (10 + 100 * i, 10, 90 + 100 * i, 190)) for i in range(3)]
    car = SceneObject("car", 0.8, (0, 0, 300, 200))  # other labels are never groups
    assert drop_group_boxes([group, *people, car]) == [*people, car]
    assert drop_group_boxes([group, people[0]]) == [group, people[0]]  # one person inside: kept


def test_default_reads_text(default, text_image):
    texts = [o for o in default.detect(text_image) if o.label == "text"]
    assert texts, "no text found"
    assert "GRAPHIE" in "".join(o.text for o in texts).replace(" ", "").upper()
    x0, y0, x1, y1 = texts[0].box
    assert 20 <= x0 and y0 >= 50 and y1 <= 200


def test_parse_image_graph_structure(astronaut):
    graph = parse_image(astronaut, threads=1)
    assert graph.objects[0].label == IMAGE_LABEL and graph.objects[0].box == (0, 0, 512, 512)
    assert (graph.width, graph.height) == (512, 512)
    labels = [o.label for o in graph.objects]
    p, f = labels.index("person"), labels.index("face")
    triples = {(e.subject, e.predicate, e.object) for e in graph.edges}
    assert (p, "contains", f) in triples and (f, "inside", p) in triples
    assert (0, "contains", p) in triples
    assert all(o.feature is not None and len(o.feature) == FEATURE_DIM for o in graph.objects)
    data = graph.to_pyg()
    assert data.x.shape == (len(graph), FEATURE_DIM)


def test_max_objects_and_bad_options(astronaut):
    assert len(parse_image(astronaut, max_objects=1, features=False, threads=1)) == 2
    assert len(parse_image(astronaut, max_objects=0, features=False, threads=1)) == 1
    with pytest.raises(InvalidInputError):
        parse_image(astronaut, max_objects=-1)
    with pytest.raises(InvalidInputError):
        parse_image(astronaut, features="pixels", threads=1)
    with pytest.raises(InvalidInputError, match="ocr"):
        get_detector("default", ocr="sometimes")
    with pytest.raises(InvalidInputError, match="crop_tags"):
        parse_image(astronaut, crop_tags=-1, threads=1)
    with pytest.raises(InvalidInputError, match="relations"):
        parse_image(astronaut, relations=-2, threads=1)


def test_region_features_roi_and_crop(astronaut):
    box = (100.0, 50.0, 300.0, 300.0)
    whole, (roi,) = RegionFeatureExtractor("roi")(astronaut, [box])
    _, (crop, none) = RegionFeatureExtractor("crop")(astronaut, [box, None])
    assert len(whole) == len(roi) == len(crop) == FEATURE_DIM and none is None
    roi, crop, whole = map(np.asarray, (roi, crop, whole))
    assert (roi >= 0).all() and roi.std() > 0  # ReLU6 features, not constant
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos(roi, crop) > 0.5  # both describe the same region
    other = np.asarray(RegionFeatureExtractor("roi")(Image.fromarray(skimage_data.coffee()), [])[0])
    assert cos(whole, other) < cos(roi, crop)


class CountingDetector:
    """A real detector (two fixed boxes) that counts how often it runs."""

    name = "counting"

    def __init__(self):
        self.calls = 0

    def settings(self):
        return {"version": 1}

    def detect(self, image):
        self.calls += 1
        return [SceneObject("a", 0.9, (0, 0, 10, 10), "test"), SceneObject("b", 0.8, (14, 0, 24, 10), "test")]


def test_cache_is_keyed_by_content_and_settings(tmp_path, astronaut):
    path = tmp_path / "a.png"
    astronaut.save(path)
    det = CountingDetector()
    first = parse_image(path, det, cache_dir=tmp_path / "cache", features=False, tagger=None)
    again = parse_image(path, det, cache_dir=tmp_path / "cache", features=False, tagger=None)
    assert det.calls == 1 and again.to_dict() == first.to_dict()
    assert len(SceneGraphCache(tmp_path / "cache")) == 1
    # Same pixels under another name: same content hash, a hit, named after the new file.
    (tmp_path / "b.png").write_bytes(path.read_bytes())
    assert parse_image(tmp_path / "b.png", det, cache_dir=tmp_path / "cache", features=False,
                       tagger=None).image_id == "b.png"
    assert det.calls == 1
    # Any setting changes the key.
    parse_image(path, det, max_objects=1, cache_dir=tmp_path / "cache", features=False, tagger=None)
    assert det.calls == 2
    # A corrupt record is a miss, then rewritten.
    settings = {"detector": "counting", "version": 1, "max_objects": 10, "features": None, "tags": None,
                "relations": 3, "graph_version": GRAPH_VERSION}
    record = SceneGraphCache(tmp_path / "cache").path(content_hash(path), settings)
    assert os.path.exists(record)
    with open(record, "w") as f:
        f.write("{not json")
    parse_image(path, det, cache_dir=tmp_path / "cache", features=False, tagger=None)
    assert det.calls == 3 and json.load(open(record))["image_id"] == "a.png"


def test_graphs_cached_by_the_old_parser_are_not_reused(tmp_path, astronaut):
    """A record stored under the version-1 settings (person-only detector, no tags, no graph
    version) is a miss for today's parser: the new graph is computed and stored beside it."""
    path = tmp_path / "a.png"
    astronaut.save(path)
    cache = SceneGraphCache(tmp_path / "cache")
    old_settings = {"detector": "default", "person_threshold": 0.4, "faces": "persons", "ocr": "fast",
                    "text_threshold": 0.5, "max_objects": 10, "features": None}
    stale = SceneGraph([SceneObject(IMAGE_LABEL, 1.0, (0, 0, 512, 512), "image"), SceneObject("stale", 1.0, (0, 0, 9, 9))])
    cache.put(content_hash(path), old_settings, stale)
    graph = parse_image(path, cache_dir=tmp_path / "cache", features=False, threads=1)
    assert "stale" not in {o.label for o in graph.objects} and "person" in {o.label for o in graph.objects}
    assert len(cache) == 2


def test_content_hash_of_pixels_and_bytes(astronaut):
    assert content_hash(astronaut) == content_hash(astronaut.copy())
    assert content_hash(astronaut) != content_hash(astronaut.transpose(Image.FLIP_LEFT_RIGHT))
    assert content_hash(b"abc") != content_hash(b"abd")


def test_draw_scene_graph(tmp_path, astronaut):
    det = CountingDetector()
    graph = parse_image(astronaut, det, features=False)
    graph.objects[1].text = "hello"
    out = tmp_path / "drawn.png"
    picture = draw_scene_graph(astronaut, graph, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.width > astronaut.width  # image + edge panel
    # The first box's outline is drawn in its colour at (0..10, 0) where the photo is not.
    assert picture.getpixel((5, 0)) != astronaut.getpixel((5, 0))
    caption_only = draw_scene_graph(None, graph)
    assert caption_only.size[0] > 0


def test_spatial_edges_match_parse_image():
    det = CountingDetector()
    graph = parse_image(Image.new("RGB", (40, 20)), det, features=False, tagger=None)
    expected = {(e.subject, e.predicate, e.object) for e in spatial_predicates(det.detect(None), 1)}
    assert expected <= {(e.subject, e.predicate, e.object) for e in graph.edges}
    assert (1, "beside", 2) in expected
