"""``precomputed``: scene graphs made elsewhere, read from JSON and looked up by image file name.

Accepted files (one JSON document, or a directory of ``<image file name>.json``):

* graphie's own: ``{image file name: SceneGraph.to_dict()}``, a list of graph dicts
  (each with ``image_id``), or one graph dict;
* Scene-Graph-Benchmark style (``custom_prediction.json``): ``{key: {"bbox": [[x0, y0, x1, y1],
  ...], "bbox_labels": [...], "bbox_scores": [...], "rel_pairs": [[s, o], ...], "rel_labels":
  [...], "rel_scores": [...]}}`` (``boxes``/``labels``/``scores`` also accepted), where
  labels are names or ids; with ``info`` (``custom_data_info.json``: ``idx_to_files``,
  ``ind_to_classes``, ``ind_to_predicates``) ids become names and numeric keys file names.
  The ``max_relations`` highest-scoring relations are kept (SGB scores every pair).
"""

from __future__ import annotations

import json
import os
from typing import Any

from PIL import Image

from ...errors import DatasetFormatError, InvalidInputError
from ...registry import detectors
from ...scene import IMAGE_LABEL, SceneEdge, SceneGraph, SceneObject


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from exc


def _name(names: list[str] | None, value: Any) -> str:
    if isinstance(value, str):
        return value
    i = int(value)
    return names[i] if names is not None and 0 <= i < len(names) else str(i)


def sgb_graph(entry: dict[str, Any], image_id: str, classes: list[str] | None = None,
              predicates: list[str] | None = None, max_relations: int = 20) -> SceneGraph:
    """One Scene-Graph-Benchmark prediction → :class:`SceneGraph` (image node first)."""
    boxes = entry.get("bbox", entry.get("boxes", []))
    labels = entry.get("bbox_labels", entry.get("labels", []))
    scores = entry.get("bbox_scores", entry.get("scores", [1.0] * len(boxes)))
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"{len(boxes)} boxes, {len(labels)} labels, {len(scores)} scores")
    w, h = entry.get("width"), entry.get("height")
    whole = SceneObject(IMAGE_LABEL, 1.0, (0.0, 0.0, float(w), float(h)) if w and h else None, source="image")
    objects = [whole] + [
        SceneObject(_name(classes, l), float(s), tuple(float(v) for v in b), source="precomputed")
        for b, l, s in zip(boxes, labels, scores)
    ]
    pairs = entry.get("rel_pairs", [])
    rel_labels = entry.get("rel_labels", [])
    rel_scores = entry.get("rel_scores", [1.0] * len(pairs))
    if not len(pairs) == len(rel_labels) == len(rel_scores):
        raise ValueError(f"{len(pairs)} rel_pairs, {len(rel_labels)} rel_labels, {len(rel_scores)} rel_scores")
    order = sorted(range(len(pairs)), key=lambda k: -float(rel_scores[k]))[:max_relations]
    edges = []
    for k in order:
        s, o = int(pairs[k][0]), int(pairs[k][1])
        if not (0 <= s < len(boxes) and 0 <= o < len(boxes)):
            raise ValueError(f"relation {k} refers to object {max(s, o)} of {len(boxes)}")
        edges.append(SceneEdge(s + 1, _name(predicates, rel_labels[k]), o + 1))
    return SceneGraph(objects, edges, w, h, image_id)


@detectors.register("precomputed")
class PrecomputedDetector:
    """Scene graphs from ``path`` (file or directory; see the module docstring)."""

    name = "precomputed"

    def __init__(self, path: str | os.PathLike, info: str | os.PathLike | None = None, max_relations: int = 20):
        self.path = os.fspath(path)
        self.max_relations = max_relations
        info_data = _load_json(os.fspath(info)) if info is not None else {}
        self.classes = info_data.get("ind_to_classes")
        self.predicates = info_data.get("ind_to_predicates")
        files = info_data.get("idx_to_files")
        self.file_of = {str(i): os.path.basename(f) for i, f in enumerate(files)} if files else {}
        self._entries: dict[str, Any] | None = None
        if not os.path.exists(self.path):
            raise InvalidInputError(f"precomputed scene graphs {self.path!r} do not exist")
        if os.path.isfile(self.path):
            self._entries = self._index(_load_json(self.path))

    def settings(self) -> dict:
        return {"path": self.path, "max_relations": self.max_relations}

    def _index(self, data: Any) -> dict[str, Any]:
        if isinstance(data, list):
            return {d.get("image_id") or str(i): d for i, d in enumerate(data)}
        if isinstance(data, dict) and "objects" in data:
            return {data.get("image_id") or "": data}
        if isinstance(data, dict):
            return {self.file_of.get(str(k), str(k)): v for k, v in data.items()}
        raise DatasetFormatError(self.path, None, f"expected a JSON object or list, got {type(data).__name__}")

    def graph_for(self, image_id: str) -> SceneGraph | None:
        if self._entries is None:  # a directory of per-image files
            path = os.path.join(self.path, image_id + ".json")
            if not os.path.isfile(path):
                return None
            entry, where = _load_json(path), path
        else:
            entry, where = self._entries.get(image_id), self.path
            if entry is None:
                return None
        try:
            if "objects" in entry:
                graph = SceneGraph.from_dict(entry)
                graph.image_id = image_id
                return graph
            return sgb_graph(entry, image_id, self.classes, self.predicates, self.max_relations)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetFormatError(where, None, f"bad scene graph for {image_id!r}: {exc}") from exc

    def detect(self, image: Image.Image) -> list[SceneObject]:
        name = os.path.basename(getattr(image, "filename", "") or "")
        graph = self.graph_for(name) if name else None
        if graph is None:
            raise InvalidInputError(f"no precomputed scene graph for image {name or '<unnamed>'!r} in {self.path}")
        return graph.objects[1:]
