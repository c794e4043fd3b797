"""The detector protocol and helpers shared by the backends."""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ...scene import Box, SceneGraph, SceneObject

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "assets")


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and ``detect(image) -> list[SceneObject]`` (boxes in pixels of
    the image it is given, the whole-image node not included)."""

    name: str

    def detect(self, image: Image.Image) -> list[SceneObject]:
        """Objects found in an RGB image, with boxes in its pixel coordinates and scores in [0, 1]."""
        ...


@runtime_checkable
class GraphSource(Protocol):
    """A backend that returns whole scene graphs by image file name (``precomputed`` files,
    ``caption`` files): :func:`~parsers.image.parse.parse_image` asks it before decoding any pixels."""

    name: str

    def graph_for(self, image_id: str) -> SceneGraph | None:
        """The ready scene graph of an image (by file name or id), or ``None`` when it has none."""
        ...


def detector_settings(detector: Any) -> dict:
    """What identifies a detector's output, for cache keys: its name plus ``settings()``."""
    settings = detector.settings() if hasattr(detector, "settings") else {}
    return {"detector": getattr(detector, "name", type(detector).__name__), **settings}


def clip_box(box: Box, width: int, height: int) -> Box | None:
    """``box`` clipped to the image; ``None`` when nothing of it is left."""
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1)


def nms(objects: list[SceneObject], iou: float = 0.5) -> list[SceneObject]:
    """Greedy non-maximum suppression within each label (highest score first)."""
    kept: list[SceneObject] = []
    for o in sorted(objects, key=lambda o: -o.score):
        if o.box is None or all(k.label != o.label or k.box is None or box_iou(k.box, o.box) < iou for k in kept):
            kept.append(o)
    return kept


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes, 0 when they do not meet."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_labels(path: str | os.PathLike) -> list[str]:
    """One class name per line (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def coco_labels(with_background: bool = True) -> list[str]:
    """COCO class names: torchvision's 91 ids (``__background__`` and ``N/A`` gaps included),
    or the 80 contiguous classes of YOLO models."""
    labels = read_labels(os.path.join(ASSETS, "coco91_labels.txt"))
    return labels if with_background else [l for l in labels if l not in ("__background__", "N/A")]


def to_objects(boxes: Any, class_ids: Any, scores: Any, names: list[str], threshold: float,
               width: int, height: int, source: str) -> list[SceneObject]:
    """Detector outputs (boxes [N, 4] as x0, y0, x1, y1 pixels; class ids [N]; scores [N];
    numpy arrays or tensors) → :class:`SceneObject` s above ``threshold``, clipped to the image."""
    def as_numpy(a):
        return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)

    boxes, class_ids, scores = as_numpy(boxes).reshape(-1, 4), as_numpy(class_ids).reshape(-1), as_numpy(scores).reshape(-1)
    if not len(boxes) == len(class_ids) == len(scores):
        raise ValueError(f"detector returned {len(boxes)} boxes, {len(class_ids)} labels, {len(scores)} scores")
    out = []
    for box, c, s in zip(boxes, class_ids, scores):
        c = int(c)
        if float(s) < threshold:
            continue
        label = names[c] if 0 <= c < len(names) else f"class_{c}"
        clipped = clip_box(tuple(float(v) for v in box), width, height)
        if clipped is not None and label not in ("__background__", "N/A"):
            out.append(SceneObject(label, float(s), clipped, source=source))
    return out
