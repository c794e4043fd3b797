"""ImageNet tags (EfficientNet-Lite3 int8 through LiteRT, the real packaged weights) and the
issue-12 acceptance photos through ``graphie parse-image``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from graphie.cli import main
from parsers.errors import InvalidInputError, UnknownComponentError
from parsers.image import Tagger, get_tagger, parse_image, tag_scene_graph
from parsers.image.tags import crop_candidates, readable
from parsers.registry import taggers
from parsers.scene import IMAGE_LABEL, SceneGraph, SceneObject

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) ships the sample photos")
MNRE_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnre_images"


@pytest.fixture(scope="module")
def tagger():
    return get_tagger("default", threads=1)


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return Image.fromarray(skimage_data.chelsea())


def test_registry_and_protocol(tagger):
    assert {"default", "efficientnet_lite3"} <= set(taggers.names())
    assert isinstance(tagger, Tagger) and tagger.name == "efficientnet_lite3"
    with pytest.raises(UnknownComponentError, match="efficientnet_lite3"):
        get_tagger("clip")
    with pytest.raises(InvalidInputError, match="top_k"):
        get_tagger("default", top_k=0)
    with pytest.raises(InvalidInputError, match="threshold"):
        get_tagger("default", threshold=1.5)


def test_readable_names():
    assert readable("harvester, reaper") == "harvester" and readable("Siamese cat, Siamese") == "Siamese cat"
    assert readable("ballplayer, baseball player") == "ballplayer"


def test_cat_photo_tags(tagger, chelsea):
    (tags,) = tagger.tag([chelsea])
    assert next(iter(tags)) in {"Egyptian cat", "tabby", "tiger cat"} and tags[next(iter(tags))] > 0.5
    assert all("," not in name for name in tags) and len(tagger.labels) == 1000
    scores = list(tags.values())
    assert scores == sorted(scores, reverse=True) and all(0.05 <= p <= 1 for p in scores)


def test_top_k_and_threshold(chelsea):
    one = get_tagger("default", top_k=1, threshold=0.0, threads=1).tag([chelsea])[0]
    many = get_tagger("default", top_k=10, threshold=0.0, threads=1).tag([chelsea])[0]
    assert len(one) == 1 and len(many) == 10 and next(iter(many)) == next(iter(one))
    strict = get_tagger("default", top_k=10, threshold=0.5, threads=1).tag([chelsea])[0]
    assert 1 <= len(strict) < 10 and min(strict.values()) >= 0.5


def test_crop_tags_go_to_the_best_eligible_objects(tagger, chelsea):
    w, h = chelsea.size
    objects = [
        SceneObject(IMAGE_LABEL, 1.0, (0, 0, w, h), "image"),
        SceneObject("face", 0.99, (150, 50, 300, 200)),       # faces are never tagged
        SceneObject("cat", 0.9, (10, 0, 410, 297)),
        SceneObject("dog", 0.8, (0, 0, 20, 20)),              # under 32 px: not tagged
        SceneObject("cat", 0.5, (100, 50, 300, 250)),
    ]
    graph = SceneGraph(objects, [], w, h)
    assert crop_candidates(graph, 5) == [2, 4] and crop_candidates(graph, 1) == [2]
    tag_scene_graph(chelsea, graph, tagger, crops=1)
    assert graph.objects[0].tags and graph.objects[2].tags
    assert graph.objects[1].tags is None and graph.objects[3].tags is None and graph.objects[4].tags is None
    assert any("cat" in name for name in graph.objects[2].tags)
    with pytest.raises(InvalidInputError, match="crop_tags"):
        tag_scene_graph(chelsea, graph, tagger, crops=-1)


def test_parse_image_tags_and_their_json(chelsea):
    graph = parse_image(chelsea, features=False, threads=1)
    cat = next(o for o in graph.objects if o.label == "cat")
    assert graph.objects[0].tags and cat.tags
    again = SceneGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert again.objects[0].tags == graph.objects[0].tags and list(again.objects[0].tags) == list(graph.objects[0].tags)
    assert parse_image(chelsea, features=False, tagger=None, threads=1).objects[0].tags is None


ACCEPTANCE = [
    # issue 12: file, an object label that must be found, tags of which one must be on some node
    ("twitter_19_31_14_34.jpg", "cat", None),
    ("twitter_stream_2018_07_23_3_0_2_87.jpg", "truck", {"harvester", "tractor"}),
    ("twitter_stream_2018_10_10_13_0_2_142.jpg", "bird", None),
    ("twitter_stream_2018_09_04_13_0_2_48.jpg", "person", {"ballplayer"}),
]


@pytest.mark.skipif(not MNRE_IMAGES.is_dir(), reason=f"the MNRE sample photos are not at {MNRE_IMAGES}")
@pytest.mark.parametrize("name, label, tags", ACCEPTANCE)
def test_parse_image_cli_on_the_mnre_photos(capsys, name, label, tags):
    assert main(["parse-image", str(MNRE_IMAGES / name), "--no-features", "--option", "threads=1"]) == 0
    graph = json.loads(capsys.readouterr().out)
    assert label in {o["label"] for o in graph["objects"][1:]}
    if tags:
        found = {t for o in graph["objects"] for t in o.get("tags", {})}
        assert tags & found, found


def test_loading_the_tagger_prints_nothing():
    """LiteRT's native "Created TensorFlow Lite XNNPACK delegate" line must not reach a user's stderr."""
    code = ("from PIL import Image; from parsers.image.tags import EfficientNetLite3Tagger as T; "
            "T().tag([Image.new('RGB', (64, 64))])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout == ""
