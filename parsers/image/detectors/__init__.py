"""Detector backends, registered by name in :data:`parsers.registry.detectors`:
``default``, ``ssd_coco``, ``torchvision``, ``detectron2``, ``onnx``, ``precomputed`` and ``caption``.
Heavy packages are imported when a backend is created, not here."""

from . import caption, coco, default, detectron2, onnx, precomputed, torchvision  # noqa: F401  (registration)
from .base import Detector, GraphSource
from .caption import caption_scene_graph

__all__ = ["Detector", "GraphSource", "caption_scene_graph"]
