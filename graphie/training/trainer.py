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
``"entities_only": true`` its posts teach entities but not relations (NER data in a joint model).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InvalidInputError
from ..types import Post
from .batching import length_batches, make_examples, parse_posts
from .evaluate import evaluate

log = logging.getLogger("graphie.train")

DATA_FORMATS = ("mnre", "jmere", "jmere_from_mnre", "twitter", "pgim")
SCENE_SOURCES = ("none", "caption", "image", "precomputed")


@dataclass
class TrainingOptions:
    """The ``training`` section of a config: optimisation, seed, early stopping, run size."""
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5  # encoder
    head_lr: float = 1e-3  # everything after the encoder
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of all steps
    grad_clip: float = 1.0
    patience: int = 2  # epochs without a better validation F1 before stopping
    seed: int = 13
    max_train: int | None = None  # first N training posts (size a run to the machine)
    max_dev: int | None = None
    num_threads: int = 2
    amp: bool = True  # bf16 autocast on CUDA
    eval_batch_size: int = 64
    time_budget_minutes: float | None = None  # stop (evaluate, keep the best) once training took this long
    freeze_encoder_layers: int = 0  # keep the embeddings and the lowest k transformer layers fixed (cheaper steps)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidInputError(f"training options: unknown keys {unknown}")
        return cls(**d)


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


def load_posts(data: dict[str, Any], split: str, base: Path | None = None) -> list[Post]:
    """Gold posts of ``data[split]`` in ``data["format"]``."""
    from .. import datasets

    fmt = data.get("format")
    if fmt not in DATA_FORMATS:
        raise InvalidInputError(f"data format must be one of {DATA_FORMATS}, got {fmt!r}")
    if not data.get(split):
        raise InvalidInputError(f"data: no {split!r} path")
    path = resolve_path(data[split], base)
    if fmt == "mnre":
        return datasets.read_mnre(path)
    if fmt == "jmere_from_mnre":
        return datasets.jmere_from_mnre(datasets.read_mnre(path))
    if fmt == "jmere":
        return datasets.read_jmere(path)
    if fmt == "pgim":
        return datasets.read_pgim(path)
    captions = datasets.read_captions(resolve_path(data["captions"], base)) if data.get("captions") else None
    return datasets.read_twitter(path, other_as_misc=data.get("other_as_misc", True), captions=captions)


def scene_graphs_for(posts: Sequence[Post], source: str = "none", max_objects: int = 10,
                     images: str | os.PathLike | None = None,
                     scene_graphs: str | os.PathLike | None = None) -> list[Any] | None:
    """Per-post scene graphs for the alignment: ``None`` for source ``"none"``; else one
    :class:`parsers.scene.SceneGraph` per post (``None`` where a post has none) parsed from its
    ``"caption"``, from its ``"image"`` file in the folder ``images``, or looked up by image
    file name in the JSON object ``scene_graphs`` (``"precomputed"``)."""
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
        out.append(parse_image(path, max_objects=max_objects, image_id=p.image) if path and path.is_file() else None)
    return out


def _scenes(posts: Sequence[Post], data: dict[str, Any], max_objects: int, base: Path | None) -> list[Any] | None:
    source = data.get("scene", "none")
    if source in ("none", "caption"):
        return scene_graphs_for(posts, source, max_objects)
    paths = {k: resolve_path(data[k], base) for k in ("images", "scene_graphs") if data.get(k)}
    return scene_graphs_for(posts, source, max_objects, **paths)


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


def _schedule(warmup_steps: int, total: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    return factor


def _setup_logging(output: Path) -> logging.Handler:
    handler = logging.FileHandler(output / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in log.handlers):
        log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    return handler


def train(config: dict[str, Any], output: str | os.PathLike, base: Path | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train, keep the checkpoint with the best validation F1 in ``output``; returns its scores."""
    from tqdm import tqdm

    from ..models import CooccurrenceStats, GraphieModel, ModelConfig

    if not isinstance(config, dict) or not {"data", "model"} <= set(config):
        raise InvalidInputError("a training config needs 'data' and 'model' sections")
    unknown = sorted(set(config) - {"data", "model", "training"})
    if unknown:
        raise InvalidInputError(f"training config: unknown sections {unknown}")
    opts = TrainingOptions.from_dict(config.get("training", {}))
    data = dict(config["data"])
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    handler = _setup_logging(output)
    try:
        seed_everything(opts.seed)
        torch.set_num_threads(opts.num_threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model_cfg = ModelConfig.from_dict(dict(config["model"]))
        train_posts = load_posts(data, "train", base)[: opts.max_train]
        dev_posts = load_posts(data, "dev", base)[: opts.max_dev]
        # Extra training sets, e.g. Twitter NER mixed into a joint model ("entities_only": no relation loss).
        extra = [(load_posts(spec, "train", base)[: spec.get("max_train")], spec) for spec in data.get("extra", [])]
        types, labels = labels_from(train_posts + [p for posts, _ in extra for p in posts],
                                    model_cfg.task, model_cfg.none_label)
        model_cfg.entity_types = model_cfg.entity_types or types
        model_cfg.relation_labels = model_cfg.relation_labels or labels
        model_cfg.validate()
        log.info("task %s: %d train / %d dev posts, %d entity types, %d relation labels, device %s",
                 model_cfg.task, len(train_posts), len(dev_posts), len(model_cfg.entity_types),
                 len(model_cfg.relation_labels), device)
        t0 = time.time()
        train_graphs, dev_graphs = parse_posts(train_posts), parse_posts(dev_posts)
        train_scenes = _scenes(train_posts, data, model_cfg.max_objects, base)
        dev_scenes = _scenes(dev_posts, data, model_cfg.max_objects, base)
        log.info("parsed in %.1fs", time.time() - t0)
        examples = make_examples(train_posts, train_graphs, train_scenes, merge_pairs=model_cfg.task == "mnre")
        all_graphs = list(train_graphs)
        for posts, spec in extra:
            graphs = parse_posts(posts)
            scenes = scene_graphs_for(posts, spec.get("scene", "none"), model_cfg.max_objects, spec.get("images"))
            examples += make_examples(posts, graphs, scenes, relations_known=not spec.get("entities_only", False))
            all_graphs += graphs
            log.info("extra training set %s: %d posts%s", spec.get("train"), len(posts),
                     " (entities only)" if spec.get("entities_only") else "")
        cooccurrence = (CooccurrenceStats.fit([g.tokens for g in all_graphs])
                        if "cooccurrence" in model_cfg.pair_channels else None)
        model = GraphieModel(model_cfg, cooccurrence).to(device)
        collate = model.collator()
        freeze_encoder_layers(model.encoder, opts.freeze_encoder_layers)
        enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
        enc_ids = {id(p) for p in model.encoder.parameters()}
        rest = [p for p in model.parameters() if id(p) not in enc_ids]
        optimizer = torch.optim.AdamW(
            [{"params": enc_params, "lr": opts.lr}, {"params": rest, "lr": opts.head_lr}],
            weight_decay=opts.weight_decay)
        steps_per_epoch = math.ceil(len(examples) / opts.batch_size)
        total = steps_per_epoch * opts.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(max(1, int(opts.warmup * total)), total))
        amp = opts.amp and device.type == "cuda"
        best, best_epoch, history, stale = None, -1, [], 0
        budget = opts.time_budget_minutes * 60 if opts.time_budget_minutes else math.inf
        trained_seconds, out_of_time = 0.0, False
        for epoch in range(opts.epochs):
            model.train()
            start, losses = time.time(), []
            bar = tqdm(length_batches(examples, opts.batch_size, shuffle=True, seed=opts.seed + epoch),
                       total=steps_per_epoch, desc=f"epoch {epoch + 1}/{opts.epochs}", disable=not progress)
            for chunk in bar:
                batch = collate(chunk).to(device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    out = model(batch)
                if not torch.isfinite(out.loss):
                    raise FloatingPointError(f"loss became {out.loss.item()} at epoch {epoch + 1}")
                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(out.loss.item())
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
                if not progress and len(losses) % 50 == 0:  # a heartbeat in the log instead of the bar
                    log.info("epoch %d step %d/%d loss %.4f (%.0fs)", epoch + 1, len(losses), steps_per_epoch,
                             np.mean(losses[-50:]), time.time() - start)
                if trained_seconds + time.time() - start > budget:
                    out_of_time = True
                    log.info("time budget of %.1f min reached after %d steps of epoch %d",
                             opts.time_budget_minutes, len(losses), epoch + 1)
                    break
            train_time = time.time() - start
            trained_seconds += train_time
            t1 = time.time()
            scores, _ = evaluate(model, dev_posts, model_cfg.task, dev_scenes, dev_graphs, opts.eval_batch_size)
            record = {"epoch": epoch + 1, "steps": len(losses), "loss": float(np.mean(losses)),
                      "train_seconds": round(train_time, 1),
                      "eval_seconds": round(time.time() - t1, 1),
                      **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}}
            history.append(record)
            log.info("epoch %d: loss %.4f, dev P %.2f R %.2f F1 %.2f (%d predicted), %.0fs", epoch + 1,
                     record["loss"], scores["precision"], scores["recall"], scores["f1"], scores["n_pred"], train_time)
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
            if out_of_time:
                break
        summary = {"best_epoch": best_epoch, "dev": best, "history": history,
                   "config": {**config, "model": model_cfg.to_dict(), "training": asdict(opts)},
                   "device": str(device), "train_posts": len(train_posts), "dev_posts": len(dev_posts)}
        (output / "metrics.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return summary
    finally:
        log.removeHandler(handler)
        handler.close()
