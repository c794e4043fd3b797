"""``onnx``: a user-supplied YOLO-style ONNX detector and its labels file.

Input: one float32 tensor [1, 3, S, S], RGB in [0, 1], letterboxed (aspect kept, grey
padding). Output, either layout (told apart by the number of labels C):
YOLOv5-style [1, N, 5 + C] = (cx, cy, w, h, objectness, class scores) or
YOLOv8-style [1, 4 + C, N] = (cx, cy, w, h, class scores), in input pixels.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ...errors import InvalidInputError, MissingDependencyError, ModelLoadError
from ...registry import detectors
from ...scene import SceneObject
from .base import coco_labels, nms, read_labels, to_objects

PAD_VALUE = 114  # YOLO's letterbox grey


def letterbox(image: Image.Image, size: int) -> tuple[np.ndarray, float, float, float]:
    """(tensor [1, 3, size, size], scale, pad_x, pad_y): ``image`` scaled to fit, centred."""
    w, h = image.size
    r = size / max(w, h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    canvas = Image.new("RGB", (size, size), (PAD_VALUE,) * 3)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas.paste(image.resize((nw, nh), Image.BILINEAR), (px, py))
    x = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    return np.ascontiguousarray(x), r, float(px), float(py)


def decode_yolo(output: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [N, 4] x0y0x1y1, class ids [N], scores [N]) in input pixels from a raw head."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        out = out[0]
    if out.ndim != 2:
        raise InvalidInputError(f"ONNX detector output has shape {output.shape}; expected [1, N, 5+C] or [1, 4+C, N]")
    if out.shape[1] not in (4 + num_classes, 5 + num_classes) and out.shape[0] in (4 + num_classes, 5 + num_classes):
        out = out.T  # YOLOv8 puts the attributes first
    if out.shape[1] == 5 + num_classes:
        cls = out[:, 5:] * out[:, 4:5]
    elif out.shape[1] == 4 + num_classes:
        cls = out[:, 4:]
    else:
        raise InvalidInputError(
            f"ONNX detector output has rows of {out.shape[1]} values; with {num_classes} labels expected "
            f"{5 + num_classes} (YOLOv5) or {4 + num_classes} (YOLOv8): does the labels file match the model?"
        )
    ids = cls.argmax(axis=1)
    scores = cls[np.arange(len(cls)), ids]
    cx, cy, w, h = out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, ids, scores


@detectors.register("onnx")
class OnnxDetector:
    """``model``: path of the .onnx file; ``labels``: a text file with one class per line
    (default: the 80 COCO classes); ``input_size`` used when the model's is dynamic."""

    name = "onnx"

    def __init__(self, model: str | os.PathLike, labels: str | os.PathLike | None = None, threshold: float = 0.25,
                 iou: float = 0.45, input_size: int = 640, max_candidates: int = 300, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("the onnx detector needs onnxruntime: `pip install onnxruntime`") from exc
        self.model_path = os.fspath(model)
        if not os.path.isfile(self.model_path):
            raise ModelLoadError(f"ONNX detector model {self.model_path!r} does not exist")
        self.labels = read_labels(labels) if labels is not None else coco_labels(with_background=False)
        self.labels_path = os.fspath(labels) if labels is not None else None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(self.model_path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"cannot load ONNX detector {self.model_path!r}: {exc}") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        side = inp.shape[-1] if len(inp.shape) == 4 else None
        self.input_size = side if isinstance(side, int) and side > 0 else input_size
        self.threshold, self.iou, self.max_candidates = threshold, iou, max_candidates

    def settings(self) -> dict:
        return {"model": self.model_path, "labels": self.labels_path, "threshold": self.threshold, "iou": self.iou,
                "input_size": self.input_size}

    def detect(self, image: Image.Image) -> list[SceneObject]:
        x, r, px, py = letterbox(image, self.input_size)
        boxes, ids, scores = decode_yolo(self.session.run(None, {self.input_name: x})[0], len(self.labels))
        keep = np.argsort(-scores)[: self.max_candidates]
        keep = keep[scores[keep] >= self.threshold]
        boxes = (boxes[keep] - np.array([px, py, px, py], dtype=np.float32)) / r
        objects = to_objects(boxes, ids[keep], scores[keep], self.labels, self.threshold, image.width, image.height,
                             source=f"onnx:{os.path.basename(self.model_path)}")
        return nms(objects, self.iou)
