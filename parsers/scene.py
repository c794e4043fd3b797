"""Scene graphs: the objects detected in an image (or named in its caption), the predicates
between them, and (optionally) a grid of feature vectors from the image's pixels."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InvalidInputError

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels, x1 > x0, y1 > y0

IMAGE_LABEL = "image"  # label of the whole-image node, always object 0

SPATIAL_PREDICATES: tuple[str, ...] = (
    "left of", "right of", "above", "below", "overlaps", "contains", "inside", "near",
)
# Predicates the caption parser produces most (lemmatised verbs, verb + preposition, and
# bare prepositions), the vocabulary of scene-graph benchmarks (near, holding, wearing, ...).
CAPTION_PREDICATES: tuple[str, ...] = (
    "on", "in", "with", "of", "at", "by", "for", "from", "to", "under", "over", "behind",
    "in front of", "on top of", "next to", "beside", "between", "into", "through", "along", "across", "around",
    "against", "during", "and",
    "have", "hold", "wear", "carry", "ride", "sit on", "sit in", "stand on", "stand in",
    "stand next to", "walk on", "walk in", "walk down", "lie on", "lay on", "play", "play with",
    "play in", "look at", "watch", "eat", "drink", "use", "pose with", "pose for", "talk to",
    "speak at", "perform on", "hang on", "cover", "show", "feature", "read", "write", "give",
    "hug", "kiss", "shake", "meet", "celebrate", "attend",
)
#: The predicate vocabulary, whose positions are the edge-type ids (padding, spatial, caption predicates, ``other``).
PREDICATES: tuple[str, ...] = ("<pad>", *SPATIAL_PREDICATES, *CAPTION_PREDICATES, "other")
_PREDICATE_INDEX = {p: i for i, p in enumerate(PREDICATES)}
#: The image parser's person-centred predicates read as participles ("person holding cup"); they
#: share the ids of the caption parser's lemmas, so the table (and trained models) stay the same.
PREDICATE_ALIASES: dict[str, str] = {"holding": "hold", "carrying": "carry", "riding": "ride", "wearing": "wear"}


def box_area(b: Box) -> float:
    """Area of a box in square pixels (0 for a degenerate one)."""
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def predicate_id(name: str) -> int:
    """Index of ``name`` in :data:`PREDICATES` (case and spacing ignored; the participles of
    :data:`PREDICATE_ALIASES` take their lemma's id). An unknown verb + preposition backs off to its preposition part (``"stand in front of"`` → ``"in
    front of"``), then its verb (``"hold up"`` → ``"hold"``), then its last word, then ``"other"``."""
    words = name.lower().split()
    if " ".join(words) in PREDICATE_ALIASES:
        return _PREDICATE_INDEX[PREDICATE_ALIASES[" ".join(words)]]
    candidates = [" ".join(words), " ".join(words[1:]), words[0], words[-1]] if words else []
    for candidate in candidates:
        if candidate in _PREDICATE_INDEX and candidate != "<pad>":
            return _PREDICATE_INDEX[candidate]
    return _PREDICATE_INDEX["other"]


@dataclass
class SceneObject:
    """One node: a detected object (or the whole image, or a caption noun phrase).

    ``text`` holds the string OCR read inside the box; ``feature`` a region feature vector
    (e.g. 1280-d MobileNetV2) when the detector computes one; ``tags`` ImageNet class names
    with their probabilities, highest first (scene tags on the whole-image node, crop tags on
    an object), when a tagger ran.
    """

    label: str
    score: float = 1.0
    box: Box | None = None
    source: str = ""
    text: str | None = None
    feature: list[float] | None = None
    tags: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {"label": self.label, "score": round(float(self.score), 6), "source": self.source}
        if self.box is not None:
            d["box"] = [round(float(v), 2) for v in self.box]
        if self.text is not None:
            d["text"] = self.text
        if self.tags is not None:
            d["tags"] = {name: round(float(p), 4) for name, p in self.tags.items()}
        if self.feature is not None:
            d["feature"] = [round(float(v), 5) for v in self.feature]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneObject":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        box = d.get("box")
        return cls(
            label=d["label"],
            score=float(d.get("score", 1.0)),
            box=tuple(float(v) for v in box) if box is not None else None,
            source=d.get("source", ""),
            text=d.get("text"),
            tags={str(k): float(v) for k, v in d["tags"].items()} if d.get("tags") is not None else None,
            feature=list(d["feature"]) if d.get("feature") is not None else None,
        )


@dataclass(frozen=True)
class SceneEdge:
    """A directed predicate ``objects[subject] --predicate--> objects[object]``."""

    subject: int
    predicate: str
    object: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneEdge":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(int(d["subject"]), d["predicate"], int(d["object"]))


@dataclass(eq=False)
class FeatureGrid:
    """A spatial grid of feature vectors computed from an image's pixels (a CNN's last
    convolutional map, :mod:`parsers.image.features`): ``values`` is ``[rows, cols, channels]``,
    kept in float16 (so that a grid read back from JSON equals the one computed, bit for bit);
    ``extractor`` names what computed it.

    :meth:`to_dict` writes the values as base64 of zlib-compressed little-endian float16 bytes:
    the 9×9×1280 EfficientNet-Lite3 grid (mostly zeros after its ReLU6) took 32–57 KB of JSON on
    the 29 tweet photos (median 44 KB, ``benchmarks/bench_pixel_features.py``), not the megabyte
    of a list of numbers.
    """

    values: np.ndarray
    extractor: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.ndim != 3 or 0 in values.shape:
            raise InvalidInputError(f"a feature grid is [rows, cols, channels], got shape {values.shape}")
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise InvalidInputError(f"a feature grid holds real numbers, got dtype {values.dtype}")
        values = values.astype(np.float16)
        if not np.isfinite(values).all():
            raise InvalidInputError("a feature grid holds finite numbers (float16: |x| < 65504)")
        self.values = values

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(rows, cols, channels)``."""
        return tuple(int(v) for v in self.values.shape)  # type: ignore[return-value]

    def vectors(self) -> np.ndarray:
        """The cells' vectors in row-major order, ``[rows * cols, channels]`` float32."""
        return self.values.reshape(-1, self.values.shape[-1]).astype(np.float32)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureGrid):
            return NotImplemented
        return self.extractor == other.extractor and np.array_equal(self.values, other.values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back exactly."""
        raw = np.ascontiguousarray(self.values, dtype="<f2").tobytes()
        return {"extractor": self.extractor, "shape": list(self.shape), "dtype": "float16", "encoding": "zlib+base64",
                "data": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureGrid":
        """The grid :meth:`to_dict` wrote.

        Raises:
            InvalidInputError: another dtype or encoding, or data that do not fill the shape.
        """
        if d.get("dtype") != "float16" or d.get("encoding") != "zlib+base64":
            raise InvalidInputError(f"feature grid: float16 in zlib+base64 expected, got {d.get('dtype')!r} in {d.get('encoding')!r}")
        shape = tuple(int(v) for v in d["shape"])
        try:
            raw = zlib.decompress(base64.b64decode(d["data"], validate=True))
        except (zlib.error, ValueError) as exc:
            raise InvalidInputError(f"feature grid: unreadable data ({exc})") from None
        if len(shape) != 3 or len(raw) != 2 * int(np.prod(shape)):
            raise InvalidInputError(f"feature grid: {len(raw)} bytes do not fill shape {shape} of float16")
        return cls(np.frombuffer(raw, dtype="<f2").reshape(shape), str(d.get("extractor", "")))


@dataclass
class SceneGraph:
    """Objects (``objects[0]`` is the whole image) and directed predicate edges between them;
    ``pixels``, when computed (``parse_image(..., pixels=True)``), the image's
    :class:`FeatureGrid`."""

    objects: list[SceneObject] = field(default_factory=list)
    edges: list[SceneEdge] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    image_id: str | None = None
    pixels: FeatureGrid | None = None

    def __len__(self) -> int:
        return len(self.objects)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return {
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "objects": [o.to_dict() for o in self.objects],
            "edges": [e.to_dict() for e in self.edges],
            **({"pixels": self.pixels.to_dict()} if self.pixels is not None else {}),
        }

    def top(self, max_objects: int = 10) -> "SceneGraph":
        """The whole-image node plus the ``max_objects`` highest-scoring other objects (by
        score, ties in input order), with edges remapped and edges to dropped objects removed."""
        if max_objects < 0:
            raise ValueError(f"max_objects must be >= 0, got {max_objects}")
        if not self.objects:
            return SceneGraph([], [], self.width, self.height, self.image_id, self.pixels)
        rest = sorted(range(1, len(self.objects)), key=lambda i: -float(self.objects[i].score))
        keep = [0, *rest[:max_objects]]
        new_index = {old: new for new, old in enumerate(keep)}
        edges = [
            SceneEdge(new_index[e.subject], e.predicate, new_index[e.object])
            for e in self.edges
            if e.subject in new_index and e.object in new_index
        ]
        return SceneGraph([self.objects[i] for i in keep], edges, self.width, self.height, self.image_id, self.pixels)

    def to_networkx(self):
        """A ``networkx.MultiDiGraph``: node ``i`` carries the object's fields, each edge its
        ``predicate`` (a pair of objects can hold several predicates, e.g. left of + near)."""
        import networkx as nx

        g = nx.MultiDiGraph(image_id=self.image_id, width=self.width, height=self.height)
        for i, o in enumerate(self.objects):
            g.add_node(i, label=o.label, score=o.score, box=o.box, source=o.source, text=o.text, tags=o.tags,
                       feature=o.feature)
        for e in self.edges:
            g.add_edge(e.subject, e.object, predicate=e.predicate)
        return g

    def to_pyg(self):
        """A ``torch_geometric.data.Data``: ``x`` the region features ([N, D]; objects without
        one get zeros) or ``None`` when no object has one; ``box`` [N, 4] in pixels (the image
        node gets the full frame, box-less caption nodes zeros) with ``has_box`` [N];
        ``score`` [N]; ``edge_index`` [2, E]; ``edge_type`` [E] ids into :data:`PREDICATES`;
        ``labels``, ``texts`` and ``tags`` as lists."""
        import torch
        from torch_geometric.data import Data

        n = len(self.objects)
        dims = {len(o.feature) for o in self.objects if o.feature is not None}
        if len(dims) > 1:
            raise ValueError(f"scene graph {self.image_id!r} mixes feature sizes {sorted(dims)}")
        x = None
        if dims:
            x = torch.zeros(n, dims.pop())
            for i, o in enumerate(self.objects):
                if o.feature is not None:
                    x[i] = torch.tensor(o.feature, dtype=torch.float32)
        box = torch.zeros(n, 4)
        has_box = torch.zeros(n, dtype=torch.bool)
        for i, o in enumerate(self.objects):
            b = o.box
            if b is None and i == 0 and self.width and self.height:
                b = (0.0, 0.0, float(self.width), float(self.height))
            if b is not None:
                box[i] = torch.tensor(b, dtype=torch.float32)
                has_box[i] = True
        if self.edges:
            edge_index = torch.tensor([[e.subject for e in self.edges], [e.object for e in self.edges]], dtype=torch.long)
        else:
            edge_index = torch.zeros(2, 0, dtype=torch.long)
        edge_type = torch.tensor([predicate_id(e.predicate) for e in self.edges], dtype=torch.long)
        return Data(
            x=x,
            box=box,
            has_box=has_box,
            score=torch.tensor([float(o.score) for o in self.objects], dtype=torch.float32),
            edge_index=edge_index,
            edge_type=edge_type,
            labels=[o.label for o in self.objects],
            texts=[o.text for o in self.objects],
            tags=[o.tags for o in self.objects],
            num_nodes=n,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneGraph":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        return cls(
            objects=[SceneObject.from_dict(o) for o in d.get("objects", [])],
            edges=[SceneEdge.from_dict(e) for e in d.get("edges", [])],
            width=d.get("width"),
            height=d.get("height"),
            image_id=d.get("image_id"),
            pixels=FeatureGrid.from_dict(d["pixels"]) if d.get("pixels") is not None else None,
        )
