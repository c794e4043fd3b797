"""Image → scene graph: robust loading, detector and tagger backends chosen by name, spatial
predicates, ImageNet tags, region features, feature grids, caching and drawing.

    from parsers.image import parse_image
    graph = parse_image("photo.jpg")                      # offline default backend
    graph = parse_image("photo.jpg", detector="torchvision")
    graph = caption_scene_graph("a man holding a dog on a beach")
"""

from .cache import SceneGraphCache, content_hash
from .detectors import Detector, GraphSource, caption_scene_graph
from .draw import draw_scene_graph
from .features import FeatureMapExtractor, RegionFeatureExtractor, get_feature_map
from .loading import DEFAULT_MAX_PIXELS, load_image
from .parse import build_scene_graph, get_detector, parse_image, parse_images
from .predicates import relation, spatial_predicates
from .tags import Tagger, get_tagger, tag_scene_graph

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Detector",
    "FeatureMapExtractor",
    "GraphSource",
    "RegionFeatureExtractor",
    "SceneGraphCache",
    "Tagger",
    "build_scene_graph",
    "caption_scene_graph",
    "content_hash",
    "draw_scene_graph",
    "get_detector",
    "get_feature_map",
    "get_tagger",
    "load_image",
    "parse_image",
    "parse_images",
    "relation",
    "spatial_predicates",
    "tag_scene_graph",
]
