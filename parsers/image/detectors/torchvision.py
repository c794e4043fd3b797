"""``torchvision``: Faster R-CNN / Mask R-CNN / RetinaNet / SSD (COCO) through torchvision's
weights API. Needs ``torchvision`` and a network (or ``$TORCH_HOME``) for the weights."""

from __future__ import annotations

from PIL import Image

from ...errors import MissingDependencyError
from ...registry import detectors
from ...scene import SceneObject
from .base import coco_labels, to_objects


TORCHVISION_MISSING = (
    "the torchvision detector needs a torchvision built for the installed CPU torch 2.13; the torchvision "
    "wheels on graphie's offline package index are CUDA builds that fail to import with it. Where a network "
    "is available: `pip install torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu` "
    "(then the weights download once into $TORCH_HOME); offline, use detector='default'"
)


@detectors.register("torchvision")
class TorchvisionDetector:
    """``model`` is a torchvision detection model name (e.g. ``fasterrcnn_resnet50_fpn_v2``,
    ``maskrcnn_resnet50_fpn``); ``weights`` a member of its weights enum (``"DEFAULT"``) or
    ``None`` for a randomly initialised model (for tests)."""

    name = "torchvision"
    requires = ("torchvision",)

    def __init__(self, model: str = "fasterrcnn_resnet50_fpn_v2", weights: str | None = "DEFAULT",
                 threshold: float = 0.5, device: str = "cpu"):
        try:
            import torchvision
        except (ImportError, OSError, RuntimeError) as exc:  # a CUDA build fails on its libraries or ops
            raise MissingDependencyError(TORCHVISION_MISSING + f" ({type(exc).__name__}: {exc})") from exc
        self.model_name, self.weights_name, self.threshold, self.device = model, weights, threshold, device
        try:
            weights_enum = torchvision.models.get_model_weights(model)
        except ValueError as exc:
            raise MissingDependencyError(f"torchvision has no detection model {model!r}: {exc}") from exc
        self.weights = None if weights is None else weights_enum[weights] if weights != "DEFAULT" else weights_enum.DEFAULT
        self.categories = list(self.weights.meta["categories"]) if self.weights is not None else coco_labels()
        try:
            net = torchvision.models.get_model(model, weights=self.weights, weights_backbone=None)
        except Exception as exc:  # URLError, RuntimeError, hash mismatch: all mean "no weights"
            raise MissingDependencyError(
                f"cannot get torchvision weights {model}/{weights}: {exc}; download them once with network access "
                "(they are cached under $TORCH_HOME) or use detector='default'"
            ) from exc
        self.model = net.eval().to(device)

    def settings(self) -> dict:
        return {"model": self.model_name, "weights": self.weights_name, "threshold": self.threshold}

    def detect(self, image: Image.Image) -> list[SceneObject]:
        import numpy as np
        import torch

        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).to(self.device)
        with torch.inference_mode():
            out = self.model([x])[0]  # {"boxes": [N, 4] x0y0x1y1 pixels, "labels": [N], "scores": [N], ...}
        return to_objects(out["boxes"], out["labels"], out["scores"], self.categories, self.threshold,
                          image.width, image.height, source=f"torchvision:{self.model_name}")
