"""Scene graphs: the objects detected in an image (or named in its caption) and the
predicates between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels, x1 > x0, y1 > y0

IMAGE_LABEL = "image"  # label of the whole-image node, always object 0


@dataclass
class SceneObject:
    """One node: a detected object (or the whole image, or a caption noun phrase).

    ``text`` holds the string OCR read inside the box; ``feature`` a region feature vector
    (e.g. 1280-d MobileNetV2) when the detector computes one.
    """

    label: str
    score: float = 1.0
    box: Box | None = None
    source: str = ""
    text: str | None = None
    feature: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label, "score": round(float(self.score), 6), "source": self.source}
        if self.box is not None:
            d["box"] = [round(float(v), 2) for v in self.box]
        if self.text is not None:
            d["text"] = self.text
        if self.feature is not None:
            d["feature"] = [round(float(v), 5) for v in self.feature]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneObject":
        box = d.get("box")
        return cls(
            label=d["label"],
            score=float(d.get("score", 1.0)),
            box=tuple(float(v) for v in box) if box is not None else None,
            source=d.get("source", ""),
            text=d.get("text"),
            feature=list(d["feature"]) if d.get("feature") is not None else None,
        )


@dataclass(frozen=True)
class SceneEdge:
    """A directed predicate ``objects[subject] --predicate--> objects[object]``."""

    subject: int
    predicate: str
    object: int

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneEdge":
        return cls(int(d["subject"]), d["predicate"], int(d["object"]))


@dataclass
class SceneGraph:
    """Objects (``objects[0]`` is the whole image) and directed predicate edges between them."""

    objects: list[SceneObject] = field(default_factory=list)
    edges: list[SceneEdge] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    image_id: str | None = None

    def __len__(self) -> int:
        return len(self.objects)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "width": self.width,
            "height": self.height,
            "objects": [o.to_dict() for o in self.objects],
            "edges": [e.to_dict() for e in self.edges],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneGraph":
        return cls(
            objects=[SceneObject.from_dict(o) for o in d.get("objects", [])],
            edges=[SceneEdge.from_dict(e) for e in d.get("edges", [])],
            width=d.get("width"),
            height=d.get("height"),
            image_id=d.get("image_id"),
        )
