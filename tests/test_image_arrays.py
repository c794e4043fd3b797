"""Images as numpy arrays wherever a PIL image is accepted (H×W×3 uint8, H×W grey, ...), and a URL
as a one-line ImageError that says graphie does not download and what to do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from parsers.errors import ImageError
from parsers.image import content_hash, load_image, parse_image

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) ships the sample photos")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def test_rgb_grey_rgba_and_float_arrays(astronaut):
    assert np.array_equal(np.asarray(load_image(astronaut)), astronaut)
    grey = astronaut[:, :, 1]
    for a in (grey, grey[:, :, None]):
        image = load_image(a)
        assert image.mode == "RGB" and image.size == (512, 512)
        assert np.array_equal(np.asarray(image)[:, :, 0], grey)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    assert np.array_equal(np.asarray(load_image(rgba)), astronaut)
    assert np.array_equal(np.asarray(load_image(astronaut / 255.0)), astronaut)
    assert load_image(grey.astype(np.uint16) * 257).getpixel((0, 0))[0] == grey[0, 0]
    assert load_image(np.ones((4, 4), bool)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("make, message", [
    (lambda a: a.transpose(2, 0, 1), "channels-first"),
    (lambda a: a[:, :, :2], "H×W×3"),
    (lambda a: a[0, 0], "H×W×3"),
    (lambda a: a[:0], "no pixels"),
    (lambda a: a.astype(np.int64), "uint8"),
    (lambda a: a.astype(np.float32), r"\[0, 1\]"),
])
def test_bad_arrays_are_one_line_image_errors(astronaut, make, message):
    with pytest.raises(ImageError, match=message) as info:
        load_image(make(astronaut))
    assert "\n" not in str(info.value)


def test_an_array_gives_the_graph_of_the_same_pil_image(astronaut, tmp_path):
    from_array = parse_image(astronaut, features=False, tagger=None, threads=1)
    from_pil = parse_image(Image.fromarray(astronaut), features=False, tagger=None, threads=1)
    assert from_array.to_dict() == from_pil.to_dict()
    assert [o.label for o in from_array.objects[1:]] == ["person", "face"]
    grey = parse_image(astronaut.mean(axis=2).astype(np.uint8), features=False, tagger=None, threads=1)
    assert "person" in [o.label for o in grey.objects]
    assert content_hash(astronaut) == content_hash(astronaut.copy()) != content_hash(astronaut[::-1])
    cached = parse_image(astronaut, features=False, tagger=None, threads=1, cache_dir=tmp_path)
    assert parse_image(astronaut, features=False, tagger=None, threads=1, cache_dir=tmp_path).to_dict() == cached.to_dict()


@pytest.mark.parametrize("url", ["https://example.org/photo.jpg", "http://x/y.png", " HTTPS://X/Y.JPG",
                                 b"https://example.org/photo.jpg"])
def test_a_url_says_graphie_does_not_download(url):
    with pytest.raises(ImageError) as info:
        load_image(url)
    message = str(info.value)
    assert "\n" not in message and "does not download" in message and "download it first" in message


def test_the_front_door_takes_arrays_and_refuses_urls(astronaut):
    import graphie

    extractor = graphie.load("default", device="cpu")
    result = extractor.extract("Astronaut Eileen Collins of NASA", astronaut)
    assert [o.label for o in result.scene_graph.objects[1:]] == ["person", "face"]
    with pytest.raises(graphie.ImageError, match="does not download"):
        extractor.extract("Astronaut Eileen Collins of NASA", "https://example.org/astronaut.jpg")
    outcome = list(extractor.extract_many([{"text": "NASA", "image": astronaut[:, :, 0]}], progress=False))[0]
    assert isinstance(outcome, graphie.Extraction) and "person" in [o.label for o in outcome.scene_graph.objects]
