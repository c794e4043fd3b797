"""``graphie train CONFIG`` (``--resume``: go on from the checkpoint of an interrupted run) and
``graphie evaluate MODEL_DIR``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InvalidInputError
from . import json_object


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate``."""
    p = subparsers.add_parser("train", help="train a model from a JSON config (configs/*.json)")
    p.add_argument("config", help="training config: data, model and training sections")
    p.add_argument("--output", help="model folder to write (default runs/<config name>)")
    p.add_argument("--train", help="training data path (overrides the config)")
    p.add_argument("--dev", help="validation data path (overrides the config)")
    p.add_argument("--captions", nargs="+", metavar="FILE",
                   help="captions file, or several captioners' files joined per image (overrides the config)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-train", type=int, help="use only the first N training posts")
    p.add_argument("--max-dev", type=int, help="use only the first N validation posts")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                   help="override any config value, e.g. --set model.gnn_layers=2 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to the log file)")
    p.add_argument("--resume", action="store_true",
                   help="go on from OUTPUT/checkpoint/ of an interrupted run (same config and overrides); "
                        "it is written every training.checkpoint_minutes and at each epoch end")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser("evaluate", help="score a trained model on gold data (one JSON object)")
    e.add_argument("model", help="model folder written by `graphie train`, or a shipped model name (default)")
    e.add_argument("--task", required=True, choices=["mnre", "jmere", "twitter"])
    e.add_argument("--data", required=True, help="gold data file")
    e.add_argument("--relation-threshold", type=float, default=None,
                   help="least score a decoded relation needs (default: the model's own, chosen on validation; 0: any whose vote beats None)")
    e.add_argument("--format", help="data format (default: mnre->mnre, jmere->jmere_from_mnre, twitter->twitter)")
    e.add_argument("--images", help="folder of the posts' images (image scene graphs, when the model aligns them)")
    e.add_argument("--captions", nargs="+", metavar="FILE",
                   help="captions file (image file name :caption), or several joined per image as in training; "
                        "a model that learnt to read captions reads them in its context")
    e.add_argument("--notes", nargs="+", metavar="PGIM_FILE",
                   help="PGIM files whose LLM note of each tweet (joined on its tokens) is the post's context")
    e.add_argument("--context-provider", metavar="NAME",
                   help="a graphie.context provider (e.g. retrieval) whose text joins each post's context, as "
                        "data.context_provider does in training")
    e.add_argument("--context-options", type=json_object, default={}, metavar="JSON",
                   help='its options as a JSON object, e.g. \'{"k": 2, "max_chars": 400}\' (data.context_options)')
    e.add_argument("--scene-graphs", help="JSON object of precomputed scene graphs keyed by image file name")
    e.add_argument("--scene", choices=["none", "caption", "image", "precomputed"],
                   help="image evidence to align (default: image with --images, caption with --captions, "
                        "for models that align; else none)")
    e.add_argument("--predictions", help="write one JSON line per sentence with gold and predicted annotations")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: cuda when available)")
    e.add_argument("--dtype", default=None, choices=("auto", "fp32", "bf16", "fp16", "float32", "bfloat16", "float16"),
                   help="precision of prediction (default auto: bf16 on CUDA, fp32 on CPU; bf16 on a CPU without native bf16 falls back to fp32)")
    e.set_defaults(func=run_evaluate)


def _override(config: dict, dotted: str) -> None:
    key, sep, value = dotted.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot or section not in ("data", "model", "training"):
        raise InvalidInputError(f"--set {dotted!r}: expected SECTION.KEY=VALUE with SECTION data, model or training")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a bare string
    config.setdefault(section, {})[name] = parsed


def load_config(args: argparse.Namespace) -> dict:
    """The training config of ``graphie train``: the file's, with the command line's overrides."""
    path = Path(args.config)
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise InvalidInputError(f"{path}: a training config must be a JSON object")
    data, training = config.setdefault("data", {}), config.setdefault("training", {})
    for name in ("train", "dev"):
        if getattr(args, name):
            data[name] = getattr(args, name)
    if args.captions:  # one file stays a string: the config (and a checkpoint's resume key) as before
        data["captions"] = args.captions[0] if len(args.captions) == 1 else args.captions
    for name, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("max_train", "max_train"),
                      ("max_dev", "max_dev"), ("seed", "seed")):
        if getattr(args, name) is not None:
            training[key] = getattr(args, name)
    for dotted in args.set:
        _override(config, dotted)
    return config


def run_train(args: argparse.Namespace) -> int:
    """``graphie train``: train from a config and save the model selected on validation."""
    from ..training.trainer import train

    path = Path(args.config)
    config = load_config(args)
    output = Path(args.output) if args.output else Path("runs") / path.stem
    summary = train(config, output, base=path.resolve().parent.parent, progress=not args.no_progress,
                    resume=args.resume)
    from . import print_json

    print_json({"output": str(output), "best_epoch": summary["best_epoch"], "dev": summary["dev"]})
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """``graphie evaluate``: score a saved model on a labelled file and print P, R, F1."""
    from ..api import resolve_model, select_device
    from ..models import GraphieModel
    from ..models.precision import autocast_dtype, autocast_forward
    from ..training.evaluate import TASK_ALIASES, can_score, evaluate, prediction_record
    from ..training.trainer import load_dev_posts, scene_graphs_for
    from . import print_json

    model = GraphieModel.from_pretrained(resolve_model(args.model), device=select_device(args.device))
    if not can_score(model.config.task, TASK_ALIASES[args.task]):
        raise InvalidInputError(f"{args.model} was trained for task {model.config.task!r}, not {args.task!r}")
    fmt = args.format or {"mnre": "mnre", "jmere": "jmere_from_mnre", "twitter": "twitter"}[args.task]
    data = {"format": fmt, "dev": args.data, "captions": args.captions, "notes": args.notes or [],
            "context_provider": args.context_provider, "context_options": args.context_options}
    posts = load_dev_posts(data, model.config.context)
    scene, cfg = args.scene, model.config
    if cfg.reads_pixels and not (args.images or args.scene_graphs):  # else scored as if it had no image
        raise InvalidInputError(f"{args.model} reads the pixels of the posts' images (fusion_sources "
                                f"{cfg.fusion_sources}): pass --images FOLDER (or --scene-graphs saved with their pixels)")
    if scene is None:
        aligns = cfg.reads_scene or cfg.reads_pixels
        scene = ("precomputed" if aligns and args.scene_graphs else "image" if aligns and args.images
                 else "caption" if aligns and args.captions else "none")
    scenes = scene_graphs_for(posts, scene, cfg.max_objects, args.images, args.scene_graphs,
                              pixels=cfg.pixel_features if cfg.reads_pixels else None)
    with autocast_forward(model, autocast_dtype(args.dtype, model.device)):
        scores, preds = evaluate(model, posts, args.task, scenes, batch_size=args.batch_size,
                                 relation_threshold=args.relation_threshold)
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as f:
            for gold, pred in zip(posts, preds):
                f.write(json.dumps(prediction_record(gold, pred), ensure_ascii=False) + "\n")
    print_json(scores)
    return 0
