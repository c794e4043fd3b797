"""The typed configuration of a :class:`~graphie.models.GraphieModel`: which parts, how big, which labels.

One pydantic schema: unknown keys and wrong types are errors naming the key's path, and
``ModelConfig.model_json_schema()`` is the published schema (docs/api/models.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInputError

#: The word-pair channels a model uses unless its config says otherwise (names in :data:`graphie.registry.pair_channels`).
PAIR_CHANNELS: tuple[str, ...] = ("pos", "distance", "cooccurrence")


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(dotted key path, message)`` of each problem of a config section.

    A section validated inside another (pydantic calls :class:`StrictConfig`'s ``__init__`` for
    nested sections too) has already turned its problems into an :class:`InvalidInputError`;
    its problems are carried up under the section's key, so that a problem reads
    ``RunConfig: model.head: ...`` once rather than ``Value error, RunConfig: model: Value error, ...``."""
    problems = []
    for err in exc.errors():
        path = ".".join(str(x) for x in err["loc"])
        inner = (err.get("ctx") or {}).get("error") if err["type"] == "value_error" else None
        if getattr(inner, "problems", None):
            problems.extend((".".join(x for x in (path, sub) if x), msg) for sub, msg in inner.problems)
        else:
            problems.append((path, str(inner) if inner is not None else err["msg"]))
    return problems


def validation_message(where: str, exc: ValidationError) -> str:
    """One line for all problems, each naming the key's dotted path under ``where``:
    ``model.head: Input should be ...``."""
    return "; ".join(f"{p}: {m}" if p else m
                     for p, m in ((".".join(x for x in (where, sub) if x), msg) for sub, msg in validation_problems(exc)))


def _section_error(label: str, where: str, exc: ValidationError) -> InvalidInputError:
    """``InvalidInputError("label: path: problem; ...")`` that keeps its problems for an
    enclosing section."""
    error = InvalidInputError(f"{label}: {validation_message(where, exc)}")
    error.problems = [(".".join(x for x in (where, p) if x), m) for p, m in validation_problems(exc)]
    return error


class StrictConfig(BaseModel):
    """Base of graphie's config sections: unknown keys are errors, values are type-checked on
    assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _section_error(type(self).__name__, "", exc) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of plain types; :meth:`from_dict` reads it back."""
        return self.model_dump()

    @classmethod
    def from_dict(cls, d: Any, where: str = ""):
        """The section ``d`` (missing keys take their defaults).

        Raises:
            InvalidInputError: ``d`` is not an object, has an unknown key or a wrong value
                (the message names each key's path under ``where``).
        """
        if not isinstance(d, dict):
            raise InvalidInputError(f"{where or cls.__name__} must be a JSON object, got {type(d).__name__}")
        try:
            return cls.model_validate(d)
        except ValidationError as exc:
            raise _section_error(where or cls.__name__, where, exc) from None


class ModelConfig(StrictConfig):
    """Everything needed to rebuild a model before its weights are loaded.

    ``task`` says what is predicted: ``jmere`` (entities and directed relations), ``mnre``
    (relation labels of given entity pairs) or ``ner`` (entities only). ``head`` says how:
    ``bio`` (token classification, ``crf`` optional) for entities, with the grid's relation
    channel for ``jmere``; ``grid`` (word-pair tagging of entities and relations); ``marker``
    (typed entity markers in the encoder input, ``mnre`` only).
    ``relation_labels`` never contains the no-relation label; ``none_label`` names it.
    """

    task: Literal["jmere", "mnre", "ner"] = "jmere"
    head: str = "grid"  # a name in graphie.registry.heads: "grid", "bio", "marker" or one registered by the user
    head_options: dict[str, Any] = Field(default_factory=dict)  # what the head takes (Head.options), e.g. queries' questions
    crf: bool = False  # bio head: a linear-chain CRF over the BIO tags
    encoder: str = "minilm"  # "minilm" (packaged), "mpnet-base" (graphie[base]) or a local folder
    lora_rank: int = Field(0, ge=0)  # > 0: train low-rank adapters instead of the encoder's weights (peft)
    # > 0: a LoRA adapter of this rank that only posts with a context pass through (see
    # graphie.models.encoder.TransformerEncoder); posts without one read the encoder as it was
    context_adapter: int = Field(0, ge=0)
    pooling: Literal["first", "mean"] = "first"  # sub-word states to word states
    max_length: int = Field(128, ge=8)  # sub-word budget of the post (plus context) per sequence
    max_context_length: int = Field(96, ge=0)  # sub-words of auxiliary context kept at most
    # What the model learnt to read in its context segment: "caption" (the image's caption, written
    # "caption: ..." in front) and/or "notes" (LLM notes, retrieved passages). The front door writes
    # a post's caption into the context only for a model that reads captions.
    context: list[Literal["caption", "notes"]] = Field(default_factory=list)
    gnn_layers: int = Field(1, ge=0)
    gnn_heads: int = Field(4, ge=1)
    dep_label_dim: int = Field(100, ge=1)
    pair_channels: list[str] = Field(default_factory=lambda: list(PAIR_CHANNELS))  # registry names, in order
    pair_dim: int = Field(32, ge=1)
    max_distance: int = Field(8, ge=1)  # dependency distances >= this share one bucket
    grid_dim: int = Field(128, ge=1)
    max_entity_len: int = Field(8, ge=1)  # entity cells are scored only within this band of the diagonal
    relation_cells: Literal["block", "first"] = "block"  # gold relation label on the head x tail block, or first words
    nested_entities: bool = False  # grid head: decode nested spans of different types (the benchmarks are flat)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    none_weight: float = Field(1.0, gt=0.0)  # loss weight of the no-relation class (class imbalance)
    entity_pos_weight: float = Field(1.0, gt=0.0)  # grid head: loss weight of positive entity cells
    alignment: str = "none"
    alignment_options: dict[str, Any] = Field(default_factory=dict)
    # keywords of graphie.models.scene_encoder.SceneEncoder: num_layers, heads, edge_dim, dropout,
    # feature_dim, phrase_grad (false: object phrases embedded without gradient into the encoder)
    scene_options: dict[str, Any] = Field(default_factory=dict)
    max_objects: int = Field(10, ge=1)
    scene_tags: int = Field(2, ge=0)  # ImageNet tags (p >= 0.3) added to each object's phrase; 0: labels only
    graph_loss_weight: float = Field(0.6, ge=0.0)  # EEGA's lambda
    # A fusion component (a name in graphie.registry.fusions, graphie.fusion) where the word states
    # meet the post's image representation: the scene graph's objects, the context segment's
    # sub-words and/or the cells of the image's feature grid (fusion_sources). Its options
    # (auxiliary loss weights included) in fusion_options.
    fusion: str = "none"
    fusion_options: dict[str, Any] = Field(default_factory=dict)
    fusion_sources: list[Literal["objects", "context", "pixels"]] = Field(default_factory=lambda: ["objects", "context"])
    # The source "pixels": the feature-map extractor (a name in parsers.registry.feature_maps) whose
    # grid the model reads; training and graphie.extract compute the grids with it.
    pixel_features: str = "default"
    entity_types: list[str] = Field(default_factory=list)
    relation_labels: list[str] = Field(default_factory=list)
    none_label: str = "None"
    relation_threshold: float = Field(0.0, ge=0.0, le=1.0)  # decoding default: least score a relation needs

    @field_validator("scene_options")
    @classmethod
    def _scene_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Each key a keyword of :class:`~graphie.models.scene_encoder.SceneEncoder`, each value of
        its default's type (``phrase_grad``: true or false)."""
        import inspect

        from .scene_encoder import SceneEncoder

        defaults = {name: p.default for name, p in inspect.signature(SceneEncoder).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        for key, value in options.items():
            if key not in defaults:
                raise ValueError(f"unknown scene option {key!r}; known: {', '.join(defaults)}")
            kind = type(defaults[key])
            if kind is bool:
                ok, want = isinstance(value, bool), "true or false"
            elif kind is int:
                ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
            else:
                ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
            if not ok:
                raise ValueError(f"scene option {key!r} must be {want}, got {value!r}")
        return options

    @model_validator(mode="after")
    def _consistent(self) -> "ModelConfig":
        from ..registry import fusions, heads

        checks = [
            (self.head in heads, f"head {self.head!r} is not registered; known: {', '.join(heads.names())}"),
            (self.fusion in fusions, f"fusion {self.fusion!r} is not registered; known: {', '.join(fusions.names())}"),
            (len(set(self.fusion_sources)) == len(self.fusion_sources) and (self.fusion == "none" or self.fusion_sources),
             "fusion_sources names no source or one twice: use one or more of \"objects\", \"context\", \"pixels\""),
            (self.head != "marker" or self.task == "mnre", "head 'marker' labels given pairs: task must be 'mnre'"),
            (self.head != "marker" or self.gnn_layers == 0,
             "head 'marker' reads the marked sequence: set gnn_layers 0"),
            (not self.crf or self.head == "bio", "crf applies to the 'bio' head only"),
            (self.head != "bio" or self.task != "mnre", "head 'bio' tags entities: use it for task 'ner' or 'jmere'"),
            (self.none_label not in self.relation_labels, "relation_labels must not contain the none label"),
            (len(set(self.pair_channels)) == len(self.pair_channels), "pair_channels names a channel twice"),
            (not self.context_adapter or self.context, "context_adapter reads a context: set context, e.g. [\"notes\"]"),
            (not (self.context_adapter and self.lora_rank), "context_adapter and lora_rank are two adapters: set one"),
            (not (self.context_adapter and self.fusion_enters_encoder),
             f"fusion {self.fusion!r} puts prefixes into the encoder's attention, which context_adapter reads in "
             "two passes with the adapter on and off: set one"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.reads_pixels:
            self._check_pixel_features()
        return self

    def check(self) -> None:
        """Re-run the cross-field checks after fields were assigned (labels filled in from data).

        Raises:
            InvalidInputError: naming the inconsistency.
        """
        try:
            type(self).model_validate(self.model_dump())
        except ValidationError as exc:
            raise InvalidInputError(f"model config: {validation_message('model', exc)}") from None

    @property
    def uses_pairs(self) -> bool:
        """Whether the word-pair features and grid run: the grid head, or the relation channel of a
        joint ``bio`` model."""
        return self.head == "grid" or (self.head == "bio" and self.task == "jmere")

    @property
    def fusion_enters_encoder(self) -> bool:
        """Whether the fusion acts inside the encoder (``visual_prefix``: per-layer prefixes;
        :attr:`Fusion.enters_encoder <graphie.fusion.base.Fusion.enters_encoder>`)."""
        from ..registry import fusions

        return self.fusion in fusions and bool(getattr(fusions.get(self.fusion), "enters_encoder", False))

    @property
    def reads_pixels(self) -> bool:
        """Whether the model reads the posts' pixel feature grids: a fusion with the source ``pixels``."""
        return self.fusion != "none" and "pixels" in self.fusion_sources

    @property
    def pixel_shape(self) -> tuple[int, int, int]:
        """``(rows, cols, channels)`` of the grids of ``pixel_features`` (the extractor class's ``shape``)."""
        from parsers.registry import feature_maps

        return tuple(int(v) for v in feature_maps.get(self.pixel_features).shape)  # type: ignore[return-value]

    def _check_pixel_features(self) -> None:
        """``pixel_features`` names a registered feature map whose class declares its grid's ``shape``."""
        from parsers.registry import feature_maps

        if self.pixel_features not in feature_maps:
            raise ValueError(f"pixel_features {self.pixel_features!r} is not a registered feature map; "
                             f"known: {', '.join(feature_maps.names())}")
        shape = getattr(feature_maps.get(self.pixel_features), "shape", None)
        if not (isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
            raise ValueError(f"feature map {self.pixel_features!r} declares no grid shape (rows, cols, channels): "
                             f"got {shape!r}")

    @property
    def reads_scene(self) -> bool:
        """Whether the model encodes the posts' scene graphs: an alignment, or a fusion that reads objects."""
        return self.alignment != "none" or (self.fusion != "none" and "objects" in self.fusion_sources)
