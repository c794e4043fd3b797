"""The JSON configuration of a :class:`~graphie.models.GraphieModel`: which parts, how big, which labels."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import InvalidInputError

TASKS = ("jmere", "mnre", "ner")
HEADS = ("grid", "crf")
PAIR_CHANNELS = ("pos", "distance", "cooccurrence")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model before its weights are loaded.

    ``task`` says what the head predicts: ``jmere`` (entities and directed relations),
    ``mnre`` (relation labels of given entity pairs) or ``ner`` (entities only).
    ``relation_labels`` never contains the no-relation label; ``none_label`` names it.
    """

    task: str = "jmere"
    encoder: str = "minilm"
    pooling: str = "first"  # sub-word states to word states: "first" or "mean"
    max_length: int = 128  # sub-word budget of the post (plus context) per sequence
    max_context_length: int = 96  # sub-words of auxiliary context kept at most
    gnn_layers: int = 1
    gnn_heads: int = 4
    dep_label_dim: int = 100
    pair_channels: list[str] = field(default_factory=lambda: list(PAIR_CHANNELS))
    pair_dim: int = 32
    max_distance: int = 8  # dependency distances >= this share one bucket
    grid_dim: int = 128
    max_entity_len: int = 8  # entity cells are scored only within this band of the diagonal
    relation_cells: str = "block"  # gold relation label on the head x tail block, or "first" words only
    nested_entities: bool = False  # decode nested spans of different types (the benchmarks are flat)
    head: str = "grid"
    dropout: float = 0.1
    mark_given_entities: bool = True  # mnre: add an embedding to words of the given entities
    none_weight: float = 1.0  # loss weight of the no-relation class (class imbalance)
    entity_pos_weight: float = 1.0  # loss weight of positive entity cells
    alignment: str = "none"
    alignment_options: dict[str, Any] = field(default_factory=dict)
    scene_options: dict[str, Any] = field(default_factory=dict)
    max_objects: int = 10
    graph_loss_weight: float = 0.6  # EEGA's lambda
    entity_types: list[str] = field(default_factory=list)
    relation_labels: list[str] = field(default_factory=list)
    none_label: str = "None"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first field with an unsupported value."""
        checks = [
            (self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}"),
            (self.head in HEADS, f"head must be one of {HEADS}, got {self.head!r}"),
            (self.pooling in ("first", "mean"), f"pooling must be 'first' or 'mean', got {self.pooling!r}"),
            (self.relation_cells in ("block", "first"), "relation_cells must be 'block' or 'first'"),
            (not (self.head == "crf" and self.task != "ner"), "the crf head only tags entities (task 'ner')"),
            (all(c in PAIR_CHANNELS for c in self.pair_channels), f"pair_channels must be among {PAIR_CHANNELS}"),
            (self.max_length >= 8, "max_length must be at least 8"),
            (self.gnn_layers >= 0 and self.gnn_heads >= 1, "gnn_layers >= 0 and gnn_heads >= 1 needed"),
            (self.none_label not in self.relation_labels, "relation_labels must not contain the none label"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"model config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """The object :meth:`to_dict` wrote (missing optional keys take their defaults)."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"model config must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"model config: unknown keys {unknown}")
        return cls(**d)
