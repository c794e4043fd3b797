"""``parse_image``: image (or its file name) → scene graph, with any registered detector, tagger and
feature-map extractor."""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

from PIL import Image

from ..errors import GraphieError, InvalidInputError
from ..registry import detectors
from ..scene import IMAGE_LABEL, SceneEdge, SceneGraph, SceneObject
from .cache import SceneGraphCache, content_hash
from .detectors.base import Detector, GraphSource, detector_settings
from .features import FeatureMapExtractor, RegionFeatureExtractor, feature_map_settings, get_feature_map
from .loading import DEFAULT_MAX_PIXELS, ImageSource, load_image
from .predicates import MAX_RELATIONS_PER_OBJECT, spatial_predicates
from .tags import Tagger, get_tagger, tag_scene_graph, tagger_settings

logger = logging.getLogger(__name__)

#: Part of every cache key; raised whenever the same settings would give different graphs
#: (2: COCO objects, ImageNet tags, label-aware predicates with ``k`` neighbours; 3: faces
#: searched in the three largest people only).
GRAPH_VERSION = 3

def get_detector(name: str, **options: Any) -> Any:
    """The registered detector ``name`` built with ``options``, created once per process
    (models load on first use, not on every image)."""
    return detectors.shared(name, **options)


def _image_id(src: ImageSource, image_id: str | None) -> str | None:
    if image_id is not None:
        return image_id
    if isinstance(src, (str, os.PathLike)):
        return os.path.basename(os.fspath(src))
    return None


def build_scene_graph(
    image: Image.Image,
    objects: list[SceneObject],
    max_objects: int = 10,
    image_id: str | None = None,
    image_edges: bool = True,
    relations: int = MAX_RELATIONS_PER_OBJECT,
) -> SceneGraph:
    """Whole-image node + the ``max_objects`` best ``objects`` + spatial predicates between
    them (at most ``relations`` related objects each, see :mod:`parsers.image.predicates`);
    with ``image_edges`` also ``image contains o`` / ``o inside image`` for each object (so
    every object is connected, as MEGA's and EEGA's image node)."""
    w, h = image.size
    whole = SceneObject(IMAGE_LABEL, 1.0, (0.0, 0.0, float(w), float(h)), source="image")
    graph = SceneGraph([whole, *objects], [], w, h, image_id).top(max_objects)
    edges = spatial_predicates(graph.objects[1:], offset=1, k=relations)
    if image_edges:
        for i in range(1, len(graph.objects)):
            edges += [SceneEdge(0, "contains", i), SceneEdge(i, "inside", 0)]
    graph.edges = edges
    return graph


def parse_image(
    image: ImageSource,
    detector: str | Detector = "default",
    max_objects: int = 10,
    cache_dir: str | os.PathLike | None = None,
    *,
    features: bool | str = True,
    tagger: str | Tagger | None = "default",
    crop_tags: int = 1,
    relations: int = MAX_RELATIONS_PER_OBJECT,
    pixels: bool | str | FeatureMapExtractor | None = False,
    image_id: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    device: str = "cpu",
    **detector_options: Any,
) -> SceneGraph:
    """Scene graph of one image: the whole-image node, the ``max_objects`` highest-scoring
    detections, spatial predicates (at most ``relations`` related objects each), ImageNet tags
    (``tagger``, a registered name or any :class:`~parsers.image.tags.Tagger`, ``None`` for
    none: scene tags on the image node and crop tags on the ``crop_tags`` best objects),
    (``features=True`` or ``"roi"``/``"crop"``) 1280-d MobileNetV2 region features, and
    (``pixels``, off by default) the image's feature grid as the graph's ``pixels``: ``True`` for
    the ``default`` extractor of :data:`~parsers.registry.feature_maps` (EfficientNet-Lite3's
    9×9×1280 map, about 25 ms of one core an image), a registered name, or any
    :class:`~parsers.image.features.FeatureMapExtractor`.

    ``image`` is a local path, encoded bytes, a PIL image or a numpy array (H×W×3 or H×W, see
    :func:`~parsers.image.loading.load_image`). ``detector`` is a registered
    name (options go to its constructor) or any :class:`Detector`. Backends that look
    graphs up by file name (``precomputed``, ``caption``) use ``image_id`` (default: the
    path's base name) and do not decode the image: their graphs carry ``pixels`` only if they were
    stored with them. With ``cache_dir`` results are stored
    on disk keyed by the image content and all these settings, and reused. ``device``
    runs the feature network there (``"cuda"``); detector backends take their own.
    """
    if max_objects < 0:
        raise InvalidInputError(f"max_objects must be >= 0, got {max_objects}")
    det = get_detector(detector, **detector_options) if isinstance(detector, str) else detector
    if detector_options and not isinstance(detector, str):
        raise InvalidInputError("detector options are only accepted with a detector name")
    image_id = _image_id(image, image_id)

    if isinstance(det, GraphSource):
        if image_id is None:
            raise InvalidInputError(f"detector {det.name!r} looks graphs up by file name: pass a path or image_id")
        graph = det.graph_for(image_id)
        if graph is None:
            raise InvalidInputError(f"detector {det.name!r} has no scene graph for image {image_id!r}")
        return graph.top(max_objects)

    if features is True or features is False:
        feature_mode = "roi" if features else None
    elif features in ("roi", "crop"):
        feature_mode = features
    else:
        raise InvalidInputError(f"features must be True, False, 'roi' or 'crop', got {features!r}")
    if crop_tags < 0 or relations < 0:
        raise InvalidInputError(f"crop_tags and relations must be >= 0, got {crop_tags} and {relations}")
    tag_with = get_tagger(tagger) if isinstance(tagger, str) else tagger
    grid_with = _feature_map(pixels)
    settings = {**detector_settings(det), "max_objects": max_objects, "features": feature_mode,
                "tags": {**tagger_settings(tag_with), "crops": crop_tags} if tag_with is not None else None,
                "relations": relations, "graph_version": GRAPH_VERSION}
    if grid_with is not None:  # only then: the keys of graphs cached without pixels stay what they were
        settings["pixels"] = feature_map_settings(grid_with)
    cache = SceneGraphCache(cache_dir) if cache_dir is not None else None
    key = None
    if cache is not None:
        key = content_hash(image)
        hit = cache.get(key, settings)
        if hit is not None:
            hit.image_id = image_id
            return hit

    rgb = load_image(image, max_pixels=max_pixels)
    graph = build_scene_graph(rgb, det.detect(rgb), max_objects, image_id, relations=relations)
    if tag_with is not None:
        tag_scene_graph(rgb, graph, tag_with, crop_tags)
    if feature_mode:
        extractor = RegionFeatureExtractor(feature_mode, device=device)
        whole, regions = extractor(rgb, [o.box for o in graph.objects[1:]])
        graph.objects[0].feature = whole
        for o, f in zip(graph.objects[1:], regions):
            o.feature = f
    if grid_with is not None:
        graph.pixels = grid_with.grid(rgb)
    if cache is not None:
        cache.put(key, settings, graph)
    return graph


def _feature_map(pixels: Any) -> Any:
    """The extractor ``parse_image``'s ``pixels`` asks for: ``None`` (off), the ``default`` one
    (``True``), a registered name, or the object given."""
    if pixels is None or pixels is False:
        return None
    if pixels is True:
        return get_feature_map("default")
    if isinstance(pixels, str):
        return get_feature_map(pixels)
    if isinstance(pixels, FeatureMapExtractor):
        return pixels
    raise InvalidInputError(f"pixels must be True, False, a feature-map name or an extractor with grid(), got {pixels!r}")


def parse_images(
    images: Iterable[ImageSource], detector: str | Detector = "default", on_error: str = "skip", **kwargs: Any
) -> list[SceneGraph | None]:
    """:func:`parse_image` over many images. A bad image (any :class:`GraphieError`) gives
    ``None`` and a logged warning with ``on_error="skip"``, or stops with ``"raise"``."""
    if on_error not in ("skip", "raise"):
        raise InvalidInputError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    out: list[SceneGraph | None] = []
    for src in images:
        try:
            out.append(parse_image(src, detector, **kwargs))
        except GraphieError as exc:
            if on_error == "raise":
                raise
            logger.warning("skipping image: %s", exc)
            out.append(None)
    return out
