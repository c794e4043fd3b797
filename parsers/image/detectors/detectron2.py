"""``detectron2``: a detectron2 model (any config + weights) through ``DefaultPredictor``."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ...errors import MissingDependencyError, ModelLoadError
from ...registry import detectors
from ...scene import SceneObject
from .base import coco_labels, read_labels, to_objects


@detectors.register("detectron2")
class Detectron2Detector:
    """``config``: a YAML file or a model-zoo name (``COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml``);
    ``weights``: a checkpoint path or URL; ``labels``: class names (a file, a list, or taken
    from the config's test dataset metadata, else COCO)."""

    name = "detectron2"
    requires = ("detectron2",)

    def __init__(self, config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml", weights: str | None = None,
                 labels: str | list[str] | None = None, threshold: float = 0.5, device: str = "cpu"):
        try:
            from detectron2 import model_zoo
            from detectron2.config import get_cfg
            from detectron2.data import MetadataCatalog
            from detectron2.engine import DefaultPredictor
        except ImportError as exc:
            raise MissingDependencyError(
                "detectron2 is not installed and has no PyPI wheels: "
                "`pip install 'git+https://github.com/facebookresearch/detectron2.git'` (needs a C++ compiler), "
                "or use detector='default' / 'torchvision' / 'onnx'"
            ) from exc
        self.config, self.weights, self.threshold = config, weights, threshold
        cfg = get_cfg()
        try:
            cfg.merge_from_file(config if os.path.exists(config) else model_zoo.get_config_file(config))
            cfg.MODEL.WEIGHTS = weights or model_zoo.get_checkpoint_url(config)
        except (OSError, RuntimeError, KeyError) as exc:
            raise ModelLoadError(f"cannot load detectron2 config {config!r}: {exc}") from exc
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = threshold
        cfg.MODEL.DEVICE = device
        try:
            self.predictor = DefaultPredictor(cfg)
        except Exception as exc:  # checkpoint download/parse failures surface as many types
            raise ModelLoadError(f"cannot load detectron2 weights {cfg.MODEL.WEIGHTS!r}: {exc}") from exc
        self.input_format = cfg.INPUT.FORMAT
        if isinstance(labels, (str, os.PathLike)):
            self.labels = read_labels(labels)
        elif labels is not None:
            self.labels = list(labels)
        else:
            meta = MetadataCatalog.get(cfg.DATASETS.TEST[0]) if cfg.DATASETS.TEST else None
            self.labels = list(getattr(meta, "thing_classes", None) or coco_labels(with_background=False))

    def settings(self) -> dict:
        return {"config": self.config, "weights": self.weights, "threshold": self.threshold}

    def detect(self, image: Image.Image) -> list[SceneObject]:
        a = np.asarray(image)
        inst = self.predictor(a[:, :, ::-1] if self.input_format == "BGR" else a)["instances"].to("cpu")
        return to_objects(inst.pred_boxes.tensor, inst.pred_classes, inst.scores, self.labels, self.threshold,
                          image.width, image.height, source="detectron2")
