"""Training a :class:`GraphieModel` from a JSON config, selecting on validation only.

A config file has three sections::

    {"data": {"format": "mnre", "train": "../shared/data/mnre/mnre_train.txt",
              "dev": "../shared/data/mnre/mnre_val.txt"},
     "model": {"task": "mnre", "encoder": "minilm", ...},          # ModelConfig fields
     "training": {"epochs": 3, "batch_size": 32, ...}}              # TrainingOptions fields

Data formats: ``mnre``, ``jmere`` (EEGA json), ``jmere_from_mnre`` (MNRE file, merged per
sentence), ``twitter`` (+ ``captions``), ``pgim``. ``scene`` chooses the image evidence:
``"none"``, ``"caption"`` (a scene graph parsed from each post's caption), ``"image"``
(the image parser on ``data["images"]/<post.image>``) or ``"precomputed"`` (``data["scene_graphs"]``,
a JSON object of scene graphs keyed by image file name). ``data["extra"]`` lists more training
sets, each a data section of its own (``format``, ``train``, ``captions``, ``scene``,
``max_train``); with
``"entities_only": true`` its posts teach entities but not relations (NER data in a joint model),
with ``"relations_only": true`` relations, and entities only partially (JMERE annotates only the
entities that take part in a relation; see :func:`graphie.models.batching.partial_mask`).
``"image_context": true`` appends the scene graph's words (caption, OCR text, object labels and
tags) to each post's ``context`` (image as text, ITA style).

The recipe: every encoder layer trained (unless ``freeze_encoder_layers``), AdamW without
weight decay on biases and LayerNorm weights, linear warmup and decay over exactly the steps
that run (a ``time_budget_minutes`` shortens the run *and* its schedule, measured from the
first steps' speed; it never cuts a schedule midway), gradient clipping, early stopping and
model selection on validation F1 only.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence, get_args

import numpy as np
import torch

from pydantic import Field, model_validator

from ..datasets.stats import DATASET_FORMATS
from ..errors import InvalidInputError
from ..models.config import ModelConfig, StrictConfig
from ..models.precision import autocast_dtype, cpu_supports_bf16, dtype_name  # noqa: F401 (re-exported)
from ..types import Post
from ..models.batching import length_batches, make_examples, parse_posts
from .evaluate import evaluate

if TYPE_CHECKING:
    from ..models import GraphieModel

log = logging.getLogger("graphie.train")

NER_FORMATS = ("twitter", "pgim")  # data formats with entities only
DATA_FORMATS: tuple[str, ...] = tuple(DATASET_FORMATS)  # the formats graphie.datasets reads, listed there once
DataFormat = Literal[DATA_FORMATS]
SceneSource = Literal["none", "caption", "image", "precomputed"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
SCENE_SOURCES: tuple[str, ...] = get_args(SceneSource)


class TrainingOptions(StrictConfig):
    """The ``training`` section of a config: optimisation, seed, early stopping, run size."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-5, gt=0)  # encoder
    head_lr: float = Field(1e-3, gt=0)  # everything after the encoder
    weight_decay: float = Field(0.01, ge=0)  # not applied to biases and LayerNorm weights
    warmup: float = Field(0.1, ge=0, lt=1)  # fraction of all steps
    grad_clip: float = Field(1.0, gt=0)
    patience: int = Field(2, ge=1)  # epochs without a better validation F1 before stopping
    seed: int = 13
    max_train: int | None = Field(None, ge=1)  # first N training posts (size a run to the machine)
    max_dev: int | None = Field(None, ge=1)
    num_threads: int = Field(2, ge=1)
    amp: bool = True  # precision "auto": bf16 autocast on CUDA (False: fp32 there too)
    precision: Precision = "auto"  # "fp32", "bf16" (autocast, CPU or CUDA), "fp16" (CUDA, grad scaler), "auto"
    context_dropout: float = Field(0.0, ge=0.0, le=1.0)  # chance a training post is shown without its context
    eval_batch_size: int = Field(64, ge=1)
    time_budget_minutes: float | None = Field(None, gt=0)  # size the run (and its schedule) to this much training
    freeze_encoder_layers: int = Field(0, ge=0)  # keep the embeddings and the lowest k layers fixed (cheaper steps)
    freeze_word_embeddings: bool = False  # keep the word-piece embedding table fixed (a smaller shipped model)
    # a saved model (folder, or a shipped name such as "default") whose weights, co-occurrence
    # statistics and relation threshold the run starts from; with model.context_adapter only the
    # adapter is trained, so posts without context keep that model's answers
    init_from: str | None = None
    checkpoints: bool = True  # keep OUTPUT/checkpoint/ up to date while training, so that --resume can go on
    checkpoint_minutes: float | None = Field(10.0, gt=0)  # write it this often (and at each epoch end)
    checkpoint_every_steps: int | None = Field(None, ge=1)  # and every N optimiser steps


def dev_task(data_format: str, task: str | None = None) -> str | None:
    """What validation scores (and so what selects the best epoch): entities on NER data (a joint
    model whose context adapter learns from tweets), else the model's own task (``None``: the
    model's task, for :func:`graphie.training.evaluate.evaluate`)."""
    return "ner" if data_format in NER_FORMATS else task


class DataConfig(StrictConfig):
    """The ``data`` section: which files, in which format, with which image evidence. Each
    entry of ``extra`` is a training set of the same kind (no ``dev`` and no ``extra`` of its
    own). The trainer reads this object as it is (the defaults live here and nowhere else);
    :meth:`from_dict` raises :class:`~graphie.errors.InvalidInputError` naming an unknown or
    bad key (``data.extra.0.scene: ...``)."""

    format: DataFormat
    train: str | None = None
    dev: str | None = None
    captions: str | list[str] | None = None  # one file, or several captioners' (joined per image)
    notes: list[str] = Field(default_factory=list)  # PGIM files: their LLM note of each tweet (joined on tokens) is the context
    context_provider: str | None = None  # a graphie.context provider (e.g. "retrieval") whose text joins each post's context
    context_options: dict[str, Any] = Field(default_factory=dict)  # its options, e.g. {"k": 2}
    scene: SceneSource = "none"
    images: str | None = None
    scene_graphs: str | None = None
    other_as_misc: bool = True
    entities_only: bool = False  # extra sets: teach entities, not relations
    relations_only: bool = False  # entities annotated only inside relations (JMERE): partial entity loss
    image_context: bool = False  # the scene graph's words as the post's context
    max_train: int | None = Field(None, ge=1)  # an extra set's first N posts (data.train: training.max_train)
    extra: list["DataConfig"] = Field(default_factory=list)

    @model_validator(mode="after")
    def _extras_are_training_sets(self) -> "DataConfig":
        for i, spec in enumerate(self.extra):
            for name in ("dev", "extra"):
                if getattr(spec, name):
                    raise ValueError(f"extra.{i}.{name}: an extra set is training data only (validation is data.dev)")
        return self


class RunConfig(StrictConfig):
    """A whole training config file: ``data``, ``model`` and ``training`` sections. Its JSON
    schema (``RunConfig.model_json_schema()``) is published in the docs."""

    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingOptions = Field(default_factory=TrainingOptions)

    @model_validator(mode="after")
    def _main_set_sized_by_training(self) -> "RunConfig":
        if self.data.max_train is not None:  # it sizes data.extra sets; ignoring it here would train on everything
            raise ValueError("data.max_train sizes the data.extra sets; data.train is sized by training.max_train")
        return self


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and CUDA) for a reproducible run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_path(path: str, base: Path | None = None) -> Path:
    """``path`` as given if it exists (relative to the working directory), else relative to ``base``."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or base is None:
        return p
    alt = base / p
    return alt if alt.exists() else p


def load_posts(data: DataConfig | dict[str, Any], split: str, base: Path | None = None) -> list[Post]:
    """Gold posts of the ``split`` (``"train"`` or ``"dev"``) file of a data section, in its
    format, with its captions, notes and provided context; ``data`` a :class:`DataConfig` or
    the dict of one (checked as the config's ``data`` section).

    Raises:
        InvalidInputError: a bad data section, or no path for ``split``.
    """
    from .. import datasets

    if not isinstance(data, DataConfig):
        data = DataConfig.from_dict(data, "data")
    if split not in ("train", "dev"):
        raise InvalidInputError(f"split must be 'train' or 'dev', got {split!r}")
    if not getattr(data, split):
        raise InvalidInputError(f"data: no {split!r} path")
    path = resolve_path(getattr(data, split), base)
    caption_files = [resolve_path(c, base) for c in
                     ([data.captions] if isinstance(data.captions, str) else data.captions or [])]
    captions = datasets.read_captions(caption_files) if caption_files else None
    if data.format == "twitter":
        posts = datasets.read_twitter(path, other_as_misc=data.other_as_misc, captions=captions)
        notes = [resolve_path(n, base) for n in data.notes]
        if notes:
            datasets.attach_notes(posts, notes)
    else:
        kw = {"other_as_misc": data.other_as_misc} if data.format == "pgim" else {}
        posts = datasets.read_dataset(data.format, path, **kw)
        if captions is not None:
            datasets.attach_captions(posts, captions, " + ".join(map(str, caption_files)))
    if data.context_provider:
        add_provided_context(posts, data.context_provider, data.context_options)
    return posts


def add_provided_context(posts: Sequence[Post], name: str, options: dict[str, Any]) -> None:
    """Append the text of the :mod:`graphie.context` provider ``name`` (e.g. ``"retrieval"``:
    BM25 passages for the post's text, MoRe's text retrieval) to each post's context, after the
    notes it may already have (``"<notes> | <passages>"``).

    Raises:
        InvalidInputError: the provider failed on a post (training data must be complete; the
            message names the post and the failure).
    """
    from ..context import ContextFailure, contexts_for, create, join_context

    outcomes = contexts_for(posts, create(name, **options))
    for post, outcome in zip(posts, outcomes):
        if isinstance(outcome, ContextFailure):
            raise InvalidInputError(f"context provider {name!r} failed on post {post.id or '?'}: {outcome.message}")
        post.context = join_context(post.context, outcome)


def scene_graphs_for(posts: Sequence[Post], source: str = "none", max_objects: int = 10,
                     images: str | os.PathLike | None = None,
                     scene_graphs: str | os.PathLike | None = None, pixels: str | None = None) -> list[Any] | None:
    """Per-post scene graphs for the alignment: ``None`` for source ``"none"``; else one
    :class:`parsers.scene.SceneGraph` per post (``None`` where a post has none) parsed from its
    ``"caption"``, from its ``"image"`` file in the folder ``images``, or looked up by image
    file name in the JSON object ``scene_graphs`` (``"precomputed"``). ``pixels``: the feature map
    (a name in :data:`parsers.registry.feature_maps`) whose grid each ``"image"`` graph gets as its
    ``pixels`` (a model that reads the source ``pixels``); precomputed graphs carry their own."""
    if source not in SCENE_SOURCES:
        raise InvalidInputError(f"scene source must be one of {SCENE_SOURCES}, got {source!r}")
    if source == "none":
        return None
    if source == "caption":
        from parsers.image.detectors.caption import caption_scene_graph

        return [caption_scene_graph(p.caption, max_objects=max_objects, image_id=p.image) if p.caption else None
                for p in posts]
    if source == "precomputed":
        from parsers.scene import SceneGraph

        if scene_graphs is None or not Path(scene_graphs).is_file():
            raise InvalidInputError(f"scene source 'precomputed' needs a JSON file of scene graphs, got {scene_graphs!r}")
        table = json.loads(Path(scene_graphs).read_text(encoding="utf-8"))
        if not isinstance(table, dict):
            raise InvalidInputError(f"{scene_graphs}: expected a JSON object keyed by image file name")
        return [SceneGraph.from_dict(table[p.image]) if p.image in table else None for p in posts]
    if images is None or not Path(images).is_dir():
        raise InvalidInputError(f"scene source 'image' needs a folder of images, got {images!r}")
    from parsers.image.parse import parse_image

    out = []
    for p in posts:
        path = Path(images) / p.image if p.image else None
        out.append(parse_image(path, max_objects=max_objects, image_id=p.image, pixels=pixels or False)
                   if path and path.is_file() else None)
    return out


def _scenes(posts: Sequence[Post], data: DataConfig, model_cfg: ModelConfig, base: Path | None) -> list[Any] | None:
    if data.scene in ("none", "caption"):
        return scene_graphs_for(posts, data.scene, model_cfg.max_objects)
    paths = {k: resolve_path(getattr(data, k), base) for k in ("images", "scene_graphs") if getattr(data, k)}
    pixels = model_cfg.pixel_features if model_cfg.reads_pixels else None
    return scene_graphs_for(posts, data.scene, model_cfg.max_objects, pixels=pixels, **paths)


def labels_from(posts: Sequence[Post], task: str, none_label: str) -> tuple[list[str], list[str]]:
    """(entity types, relation labels) seen in training posts."""
    types = sorted({e.type for p in posts for e in p.entities}) if task != "mnre" else []
    labels = sorted({r.label for p in posts for r in p.relations} - {none_label}) if task != "ner" else []
    return types, labels


def freeze_encoder_layers(encoder: Any, k: int) -> None:
    """Fix the embeddings and the lowest ``k`` layers of a BERT-style encoder (no gradients for them)."""
    if k <= 0:
        return
    base = encoder.model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not hasattr(base, "embeddings"):
        raise InvalidInputError(f"freeze_encoder_layers needs a BERT-style encoder, not {type(base).__name__}")
    if k > len(layers):
        raise InvalidInputError(f"freeze_encoder_layers={k} but the encoder has {len(layers)} layers")
    for module in [base.embeddings, *layers[:k]]:
        for p in module.parameters():
            p.requires_grad_(False)


def _setup_logging(output: Path) -> logging.Handler:
    handler = logging.FileHandler(output / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in log.handlers):
        log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    return handler


def parameter_groups(model: Any, lr: float, head_lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: encoder at ``lr``, the rest at ``head_lr``; biases and LayerNorm weights
    (1-d tensors) without weight decay, as in BERT's recipe."""
    enc_ids = {id(p) for p in model.encoder.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in enc_ids, p.ndim > 1), []).append(p)
    return [{"params": params, "lr": lr if enc else head_lr, "weight_decay": weight_decay if decay else 0.0}
            for (enc, decay), params in groups.items()]


def saved_labels(name: str, base: Path | None = None) -> tuple[list[str], list[str]]:
    """(entity types, relation labels) of the saved model ``name`` (a folder, or a model shipped
    in the package), read from its ``config.json``: a run with ``training.init_from`` predicts
    exactly these, whatever labels its own training data shows."""
    from ..api import resolve_model

    path = resolve_path(name, base)
    folder = path if path.is_dir() else resolve_model(name)
    try:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))["model"]
        return list(saved["entity_types"]), list(saved["relation_labels"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"training.init_from {name!r}: {folder / 'config.json'} is not a "
                                f"graphie model config ({exc})") from None


def start_from(config: ModelConfig, name: str, path: Path | None = None) -> "GraphieModel":
    """A model for ``config`` whose weights, co-occurrence statistics and relation threshold are
    those of the saved model ``name`` (a folder, or a model shipped in the package); parameters
    the saved model lacks (a context adapter) start as their layers initialise them. With
    ``config.context_adapter`` the adapter starts afresh (a saved model's own adapter is left
    behind) and every other parameter is frozen: the adapter is all that learns.

    Raises:
        ModelLoadError: no such model.
        InvalidInputError: the saved model predicts other labels, or its weights do not fit ``config``.
    """
    from ..api import resolve_model
    from ..models import GraphieModel
    from ..models.encoder import plain_key

    folder = path if path is not None and path.is_dir() else resolve_model(name)
    saved = GraphieModel.from_pretrained(folder)
    for key in ("task", "head", "encoder", "entity_types", "relation_labels", "pair_channels"):
        if getattr(saved.config, key) != getattr(config, key):
            raise InvalidInputError(f"training.init_from {name!r}: its {key} is {getattr(saved.config, key)!r}, "
                                    f"the config's {getattr(config, key)!r}")
    config.relation_threshold = saved.config.relation_threshold
    model = GraphieModel(config, saved.cooccurrence)
    # A context adapter always starts afresh: the saved model's own adapter (the shipped default
    # has one) is not carried over, so a config trains the same adapter from either model.
    state = {plain_key(k): v for k, v in saved.state_dict().items()
             if not (config.context_adapter and "lora_" in k)}
    own = model.state_dict()
    missing = [k for k in own if plain_key(k) not in state and "lora_" not in k]
    wrong = [k for k in own if plain_key(k) in state and state[plain_key(k)].shape != own[k].shape]
    if missing or wrong:
        raise InvalidInputError(f"training.init_from {name!r}: its weights do not fit the config "
                                f"(missing {missing[:3]}, wrong shape {wrong[:3]})")
    model.load_state_dict({k: state[plain_key(k)] for k in own if plain_key(k) in state}, strict=False)
    if config.context_adapter:
        for key, param in model.named_parameters():
            param.requires_grad_("lora_" in key)
    return model


def drop_context(examples: Sequence[Any], rate: float, rng: random.Random) -> list[Any]:
    """Context dropout: each example whose post has a context loses it with probability ``rate``
    (a copy is shown; the stored example keeps its context), so that a model that reads context
    stays good on posts that come without one."""
    if rate <= 0:
        return list(examples)
    out = []
    for ex in examples:
        if ex.post.context and rng.random() < rate:
            ex = dataclasses.replace(ex, post=dataclasses.replace(ex.post, context=None))
        out.append(ex)
    return out


def measure_step_seconds(model: Any, batches: Sequence[Any], dtype: torch.dtype | None) -> float:
    """Seconds per training step (forward + backward, no update) on a few batches, to size a
    time-budgeted schedule before it starts; gradients are discarded."""
    device = model.device
    times = []
    for batch in batches:
        start = time.time()
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(batch.to(device))
        out.loss.backward()
        times.append(time.time() - start)
    model.zero_grad(set_to_none=True)
    return float(np.median(times)) * 1.1  # the optimizer step and collation on top


def _image_evidence(posts: list[Post], spec: DataConfig, model_cfg: ModelConfig,
                    base: Path | None) -> list[Any] | None:
    """The scene graphs of one data section's posts; with ``image_context`` also written, as
    text, into each post's context."""
    scenes = _scenes(posts, spec, model_cfg, base)
    if spec.image_context:
        add_image_context(posts, scenes)
    return scenes


def _examples_for(posts: list[Post], spec: DataConfig, model_cfg: ModelConfig,
                  base: Path | None) -> tuple[list[Any], list[Any]]:
    """(examples, text graphs) of one data section's posts."""
    graphs = parse_posts(posts)
    scenes = _image_evidence(posts, spec, model_cfg, base)
    examples = make_examples(posts, graphs, scenes, merge_pairs=model_cfg.task == "mnre",
                             relations_known=not spec.entities_only, entities_known=not spec.relations_only)
    return examples, graphs


def load_dev_posts(data: DataConfig | dict[str, Any], context: Sequence[str]) -> list[Post]:
    """The ``dev`` posts of a data section as a model whose ``config.context`` is ``context``
    reads them: the image's caption in front of the notes when it reads captions, as in training.
    """
    posts = load_posts(data, "dev")
    if "caption" in context:
        add_image_context(posts, None)
    return posts


def add_image_context(posts: Sequence[Post], scenes: Sequence[Any] | None) -> None:
    """Put each post's image as text (its caption and scene graph, see
    :func:`graphie.image_context.image_context`) in front of its ``context`` (notes follow the
    image's words, so that a context cut to ``max_context_length`` keeps the image), in the one
    format the front door writes too (:func:`graphie.context.given.format_context`)."""
    from ..context.given import format_context

    for i, post in enumerate(posts):
        text = format_context(post.caption, post.context, scenes[i] if scenes is not None else None)
        if text is not None:
            post.context = text


# ---------------------------------------------------------------- resumable runs
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_FORMAT = 1
# Options a resumed run may change: they do not alter what is computed (threads: up to float rounding).
RESUME_FREE = ("num_threads", "checkpoints", "checkpoint_minutes", "checkpoint_every_steps")


def resume_key(run: RunConfig) -> dict[str, Any]:
    """What a checkpoint must agree on with the run that resumes it: the whole config as given
    (before labels are read from the data), except the options in ``RESUME_FREE``."""
    key = run.model_dump(mode="json")
    for name in RESUME_FREE:
        key["training"].pop(name, None)
    return key


def _as_current(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's resume key read by this version's config: options added to graphie since
    the checkpoint was written take their defaults (which the run computed with), so a run
    resumes after an upgrade that only added options; a key this version no longer reads is
    compared as it was (and reported as a change)."""
    try:
        return resume_key(RunConfig.from_dict(saved))
    except (InvalidInputError, ValueError, TypeError):
        return saved


def find_checkpoint(output: str | os.PathLike) -> Path | None:
    """The complete checkpoint of the run in ``output``, or ``None``. ``state.json`` is written
    last, so a folder without it is incomplete; a crash between the two renames of
    :func:`save_checkpoint` leaves the previous checkpoint as ``.checkpoint.old``, which is used then."""
    output = Path(output)
    for folder in (output / CHECKPOINT_DIR, output / f".{CHECKPOINT_DIR}.old"):
        if (folder / "state.json").is_file():
            return folder
    return None


def remove_checkpoint(output: str | os.PathLike) -> None:
    """Delete the checkpoint of a finished run (and any half-written one)."""
    import shutil

    for name in (CHECKPOINT_DIR, f".{CHECKPOINT_DIR}.old", f".{CHECKPOINT_DIR}.tmp"):
        shutil.rmtree(Path(output) / name, ignore_errors=True)


def _rng_states() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON part, tensor part) of the Python, NumPy and torch (CPU and CUDA) generators."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return ({"python": [version, list(internal), gauss],
             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}, tensors)


def _set_rng_states(saved: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(output: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: Any, state: dict[str, Any], dropout_rng: random.Random) -> Path:
    """Write ``output/checkpoint/`` atomically: everything a run needs to go on exactly where it was.

    ``model.safetensors`` holds the weights; ``state.safetensors`` the optimiser's tensors and
    torch's generator states; ``state.json`` the rest: ``state`` (epoch, position inside it, step,
    best-so-far, history, ...), the optimiser's settings, the scheduler, the fp16 grad scaler, the
    Python and NumPy generators and the context-dropout generator. Nothing is pickled. The
    folder is written as ``.checkpoint.tmp`` and renamed into place, so a run killed while
    writing leaves the previous checkpoint whole.
    """
    import shutil

    from safetensors.torch import save_file

    output = Path(output)
    final, tmp, old = output / CHECKPOINT_DIR, output / f".{CHECKPOINT_DIR}.tmp", output / f".{CHECKPOINT_DIR}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    opt_state: dict[str, dict[str, Any]] = {}
    for idx, entries in opt["state"].items():
        opt_state[str(idx)] = {}
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer/{idx}/{name}"] = value.detach().cpu().contiguous()
            else:
                opt_state[str(idx)][name] = value
    rng, rng_tensors = _rng_states()
    tensors.update(rng_tensors)
    save_file(tensors, str(tmp / "state.safetensors"))
    version, internal, gauss = dropout_rng.getstate()
    meta = {"format": CHECKPOINT_FORMAT, **state,
            "optimizer": {"state": opt_state, "param_groups": opt["param_groups"]},
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {**rng, "context_dropout": [version, list(internal), gauss]}}
    (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
    for name in ("model.safetensors", "state.safetensors", "state.json", "."):
        _fsync(tmp / name)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    _fsync(output)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any) -> tuple[dict[str, Any], Any]:
    """Load a :func:`save_checkpoint` folder into ``model``, ``optimizer``, ``scheduler`` and
    ``scaler``; returns (its ``state.json``, a callable that restores the random generators
    and returns the context-dropout generator: call it last, right before training goes on).

    Raises:
        InvalidInputError: an unreadable checkpoint or one that does not fit the model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "model.safetensors"))
        tensors = load_file(str(folder / "state.safetensors"))
    except (OSError, ValueError, SafetensorError) as exc:
        raise InvalidInputError(f"{folder}: unreadable checkpoint ({exc})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise InvalidInputError(f"{folder}: checkpoint format {meta.get('format')!r} is not {CHECKPOINT_FORMAT}")
    try:
        model.load_state_dict(weights)
        opt = meta["optimizer"]
        state = {int(idx): {**entries, **{key.split("/")[2]: t for key, t in tensors.items()
                                          if key.startswith(f"optimizer/{idx}/")}}
                 for idx, entries in opt["state"].items()}
        groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in opt["param_groups"]]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        scheduler.load_state_dict(meta["scheduler"])
        if scaler is not None and meta["scaler"]:
            scaler.load_state_dict(meta["scaler"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"{folder}: the checkpoint does not fit this run's model ({str(exc).splitlines()[0]})") from None

    def restore_generators() -> random.Random:
        _set_rng_states(meta["rng"], tensors)
        version, internal, gauss = meta["rng"]["context_dropout"]
        rng = random.Random()
        rng.setstate((version, tuple(internal), gauss))
        return rng

    return meta, restore_generators


def _config_changes(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs."""
    keys = sorted(set(saved) | set(now))
    out = []
    for k in keys:
        a, b = saved.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_changes(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def train(config: dict[str, Any], output: str | os.PathLike, base: Path | None = None,
          progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Train, keep the checkpoint with the best validation F1 in ``output``; returns its scores.

    While it runs, ``output/checkpoint/`` holds everything needed to go on (see
    :func:`save_checkpoint`), written every ``training.checkpoint_minutes`` (and every
    ``training.checkpoint_every_steps``) and at each epoch end, and removed when the run ends.
    ``resume=True`` goes on from it exactly: the same batches in the same order, the same
    random draws, so the result equals an uninterrupted run's (up to float rounding when the
    number of threads differs).

    Raises:
        InvalidInputError: a bad config; with ``resume``, no checkpoint in ``output`` or one
            written with another config.
    """
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    from ..models import CooccurrenceStats, GraphieModel

    run = RunConfig.from_dict(config)
    opts, model_cfg = run.training, run.model
    key = resume_key(run)
    data = run.data
    output = Path(output)
    checkpoint = find_checkpoint(output)
    saved: dict[str, Any] | None = None
    if resume:
        if checkpoint is None:
            finished = " (the run there has finished: metrics.json)" if (output / "metrics.json").is_file() else ""
            raise InvalidInputError(f"{output}: no checkpoint to resume from, {output / CHECKPOINT_DIR} "
                                    f"is missing{finished}")
        try:
            saved = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{checkpoint}: unreadable checkpoint ({exc})") from None
        changed = _config_changes(_as_current(saved.get("config", {})), key)
        if changed:
            raise InvalidInputError(f"{output}: the checkpoint was written with another config "
                                    f"(changed: {', '.join(changed[:5])}); resume with the same config and overrides")
    output.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(output)
    try:
        if checkpoint is not None and not resume:
            log.warning("%s holds the checkpoint of an unfinished run; starting afresh (it will be replaced; "
                        "resume it with --resume instead)", checkpoint)
        seed_everything(opts.seed)
        torch.set_num_threads(opts.num_threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        train_posts = load_posts(data, "train", base)[: opts.max_train]
        dev_posts = load_posts(data, "dev", base)[: opts.max_dev]
        # Extra training sets, e.g. Twitter NER mixed into a joint model ("entities_only": no relation loss).
        extra = [(load_posts(spec, "train", base)[: spec.max_train], spec) for spec in data.extra]
        if opts.init_from:  # a run that goes on from a saved model predicts that model's labels
            types, labels = saved_labels(opts.init_from, base)
        else:
            types, labels = labels_from(train_posts + [p for posts, _ in extra for p in posts],
                                        model_cfg.task, model_cfg.none_label)
        model_cfg.entity_types = model_cfg.entity_types or types
        model_cfg.relation_labels = model_cfg.relation_labels or labels
        model_cfg.check()
        log.info("task %s, head %s: %d train / %d dev posts, %d entity types, %d relation labels, device %s",
                 model_cfg.task, model_cfg.head, len(train_posts), len(dev_posts), len(model_cfg.entity_types),
                 len(model_cfg.relation_labels), device)
        t0 = time.time()
        examples, all_graphs = _examples_for(train_posts, data, model_cfg, base)
        dev_graphs = parse_posts(dev_posts)
        selected_on = dev_task(data.format, model_cfg.task)
        dev_scenes = _image_evidence(dev_posts, data, model_cfg, base)
        for posts, spec in extra:
            more, graphs = _examples_for(posts, spec, model_cfg, base)
            examples += more
            all_graphs += graphs
            log.info("extra training set %s: %d posts%s", spec.train, len(posts),
                     " (entities only)" if spec.entities_only else "")
        log.info("parsed in %.1fs", time.time() - t0)
        if model_cfg.reads_pixels and not any(ex.scene_graph is not None and ex.scene_graph.pixels is not None
                                              for ex in examples):
            raise InvalidInputError("model.fusion_sources has \"pixels\" but no training post has a pixel feature "
                                    "grid: set data.scene \"image\" with data.images, or \"precomputed\" scene "
                                    "graphs saved with their pixels")
        if opts.init_from:  # the saved model's co-occurrence statistics, not refitted ones
            model = start_from(model_cfg, opts.init_from, resolve_path(opts.init_from, base)).to(device)
        else:
            cooccurrence = (CooccurrenceStats.fit([g.tokens for g in all_graphs])
                            if model_cfg.uses_pairs and "cooccurrence" in model_cfg.pair_channels else None)
            model = GraphieModel(model_cfg, cooccurrence).to(device)
        collate = model.collator()
        freeze_encoder_layers(model.encoder, opts.freeze_encoder_layers)
        if opts.freeze_word_embeddings:
            model.encoder.model.get_input_embeddings().weight.requires_grad_(False)
        # The fused kernel does the same AdamW update in one pass over all parameters instead of
        # the default per-tensor loop, whose step was a large share of a MiniLM step on one CPU thread.
        optimizer = torch.optim.AdamW(parameter_groups(model, opts.lr, opts.head_lr, opts.weight_decay),
                                      fused=device.type in ("cpu", "cuda"))
        steps_per_epoch = math.ceil(len(examples) / opts.batch_size)
        total = steps_per_epoch * opts.epochs
        dtype = autocast_dtype(opts.precision, device, opts.amp, warn=log.warning)
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        precision = dtype_name(dtype)
        log.info("precision: %s (autocast)" if dtype is not None else "precision: %s", precision)
        dropout_rng = random.Random(opts.seed)
        if saved is not None:
            total = saved["total"]  # as the interrupted run sized it (a time budget is not measured again)
        elif opts.time_budget_minutes:
            probe = [collate(c) for c in list(length_batches(examples, opts.batch_size, True, opts.seed))[:3]]
            seconds = measure_step_seconds(model, probe, dtype)
            fits = max(1, int(opts.time_budget_minutes * 60 / seconds))
            if fits < total:
                log.info("time budget %.1f min at %.2f s/step: %d of %d steps (%.2f epochs), schedule sized to them",
                         opts.time_budget_minutes, seconds, fits, total, fits / steps_per_epoch)
                total = fits
        epochs = math.ceil(total / steps_per_epoch)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(opts.warmup * total), total)
        best, best_epoch, history, stale, step = None, -1, [], 0, 0
        first_epoch, position, losses, seconds_before = 0, 0, [], 0.0
        if saved is not None:
            assert checkpoint is not None
            saved, restore_generators = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
            best, best_epoch, history, stale, step = (saved["best"], saved["best_epoch"], saved["history"],
                                                      saved["stale"], saved["step"])
            first_epoch, position, losses, seconds_before = (saved["epoch"], saved["position"], saved["losses"],
                                                             saved["epoch_seconds"])
            dropout_rng = restore_generators()  # last: nothing may draw between here and the next batch
            log.info("resumed from %s: epoch %d, batch %d, step %d of %d", checkpoint, first_epoch + 1, position,
                     step, total)

        def checkpoint_now(epoch: int, position: int, losses: list[float], epoch_seconds: float) -> None:
            state = {"config": key, "epoch": epoch, "position": position, "step": step, "total": total,
                     "losses": losses, "epoch_seconds": round(epoch_seconds, 3), "best": best,
                     "best_epoch": best_epoch, "history": history, "stale": stale}
            t = time.time()
            save_checkpoint(output, model, optimizer, scheduler, scaler, state, dropout_rng)
            log.info("checkpoint: epoch %d, batch %d, step %d (%.1fs)", epoch + 1, position, step, time.time() - t)

        last_checkpoint = time.monotonic()
        for epoch in range(first_epoch, epochs):
            model.train()
            if epoch > first_epoch:
                position, losses, seconds_before = 0, [], 0.0
            start = time.time()
            n_steps = min(steps_per_epoch, total - (step - len(losses)))
            batches = length_batches(examples, opts.batch_size, shuffle=True, seed=opts.seed + epoch)
            bar = tqdm(itertools.islice(batches, position, None), total=n_steps, initial=len(losses),
                       desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
            for chunk in bar:
                if len(losses) == n_steps:
                    break
                position += 1
                batch = collate(drop_context(chunk, opts.context_dropout, dropout_rng)).to(device)
                with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    out = model(batch)
                if out.loss is None:  # nothing to learn in this batch (e.g. all posts unlabelled)
                    continue
                if not torch.isfinite(out.loss):
                    raise FloatingPointError(f"loss became {out.loss.item()} at epoch {epoch + 1}")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(out.loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    out.loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
                    optimizer.step()
                scheduler.step()
                step += 1
                losses.append(out.loss.item())
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
                if not progress and len(losses) % 50 == 0:  # a heartbeat in the log instead of the bar
                    log.info("epoch %d step %d/%d loss %.4f (%.0fs)", epoch + 1, len(losses), n_steps,
                             np.mean(losses[-50:]), time.time() - start)
                due = ((opts.checkpoint_every_steps and step % opts.checkpoint_every_steps == 0)
                       or (opts.checkpoint_minutes and time.monotonic() - last_checkpoint >= opts.checkpoint_minutes * 60))
                if opts.checkpoints and due and len(losses) < n_steps:  # at the epoch's end one follows anyway
                    checkpoint_now(epoch, position, losses, seconds_before + time.time() - start)
                    last_checkpoint = time.monotonic()
            train_time = seconds_before + time.time() - start
            t1 = time.time()
            scores, _ = evaluate(model, dev_posts, selected_on, dev_scenes, dev_graphs, opts.eval_batch_size)
            record = {"epoch": epoch + 1, "steps": len(losses), "loss": float(np.mean(losses)) if losses else None,
                      "lr_end": scheduler.get_last_lr()[0], "train_seconds": round(train_time, 1),
                      "eval_seconds": round(time.time() - t1, 1),
                      **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}}
            history.append(record)
            log.info("epoch %d: loss %.4f, dev P %.2f R %.2f F1 %.2f (%d predicted), %.0fs", epoch + 1,
                     record["loss"] or 0.0, scores["precision"], scores["recall"], scores["f1"], scores["n_pred"],
                     train_time)
            if scores["n_pred"] == 0:
                log.warning("the model predicts nothing on the validation set (collapsed to 'no entity/relation'); "
                            "raise none_weight/entity_pos_weight, the learning rate or the number of epochs")
            if best is None or scores["f1"] > best["f1"]:
                best, best_epoch, stale = scores, epoch + 1, 0
                model.save_pretrained(output)
            else:
                stale += 1
                if stale >= opts.patience:
                    log.info("early stop: no better validation F1 for %d epochs", stale)
                    break
            if opts.checkpoints and epoch + 1 < epochs:
                checkpoint_now(epoch + 1, 0, [], 0.0)
                last_checkpoint = time.monotonic()
        summary = {"best_epoch": best_epoch, "dev": best, "history": history, "steps": step,
                   "config": {**config, "model": model_cfg.to_dict(), "training": opts.to_dict()},
                   "device": str(device), "precision": precision, "train_posts": len(train_posts), "dev_posts": len(dev_posts)}
        (output / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        remove_checkpoint(output)  # the run is complete: the best model and metrics.json are what stays
        return summary
    finally:
        log.removeHandler(handler)
        handler.close()
