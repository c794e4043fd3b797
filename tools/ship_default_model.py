"""Copy a trained model into the package as a shipped model, compactly.

    graphie train configs/default.json --output runs/default
    python benchmarks/sweep_relation_threshold.py runs/default      # pick the threshold on validation
    python tools/ship_default_model.py runs/default graphie/pretrained/default --relation-threshold T
    python tools/ship_default_model.py runs/default_adapter graphie/pretrained/default --context notes
    python tools/ship_default_model.py runs/notes_adapter graphie/pretrained/default     # an adapter that reads notes only

Writes config.json, model.safetensors (only the weights that differ from the packaged encoder,
in float16) and cooccurrence.json, plus training.json: the training summary (config, best
epoch, validation figures) for the model card; for a run trained on a saved model
(``training.init_from``, e.g. a context adapter on the shipped default), that model's own summary
is kept in it under ``init_from``. Then checks that the shipped copy predicts as
the trained model does on the validation posts it was selected on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trained", type=Path, help="model folder written by graphie train")
    ap.add_argument("target", type=Path, help="folder inside graphie/pretrained/")
    ap.add_argument("--check-posts", type=int, default=200, help="validation posts to compare (0: skip)")
    ap.add_argument("--relation-threshold", type=float,
                    help="decoding default to store, chosen on validation (benchmarks/sweep_relation_threshold.py)")
    ap.add_argument("--context", nargs="*", choices=["caption", "notes"],
                    help="what the shipped model reads in its context segment, when it should read less than it "
                         "learnt (e.g. notes but not captions, where captions were measured to cost F1)")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from graphie.models import GraphieModel
    from graphie.training.evaluate import evaluate
    from graphie.training.trainer import dev_task, load_posts

    if not (args.trained / "metrics.json").is_file():
        raise SystemExit(f"{args.trained}: no metrics.json, so not a finished run of graphie train "
                         "(an interrupted one goes on with graphie train CONFIG --output DIR --resume)")
    model = GraphieModel.from_pretrained(args.trained)
    if args.relation_threshold is not None:
        model.config.relation_threshold = args.relation_threshold
    if args.context is not None:
        if not set(args.context) <= set(model.config.context):
            raise SystemExit(f"--context {args.context}: the model learnt to read {model.config.context} only")
        model.config.context = list(args.context)
    summary = json.loads((args.trained / "metrics.json").read_text(encoding="utf-8"))
    record = {k: summary[k] for k in ("best_epoch", "dev", "history", "config", "train_posts", "dev_posts")}
    base = summary["config"].get("training", {}).get("init_from")
    if base:  # an adapter trained on a saved model: keep that model's own summary beside its own
        folder = Path(base) if Path(base).is_dir() else ROOT / "graphie" / "pretrained" / base
        if (folder / "training.json").is_file():
            start = json.loads((folder / "training.json").read_text(encoding="utf-8"))
            if model.config.context_adapter and "init_from" in start:
                # a new adapter replaced the saved model's own (left behind by start_from): what
                # the shipped model holds besides it is the model that one was trained on
                start = start["init_from"]
            record["init_from"] = start
    if args.target.exists():
        shutil.rmtree(args.target)
    model.save_pretrained(args.target, compact=True)
    (args.target / "training.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    size = sum(f.stat().st_size for f in args.target.iterdir()) / 2**20
    print(f"wrote {args.target} ({size:.1f} MiB)")

    if args.check_posts:
        data = summary["config"]["data"]
        posts = load_posts(data, "dev", ROOT)[: args.check_posts]
        shipped = GraphieModel.from_pretrained(args.target)
        task = dev_task(data.get("format"))  # what the run was selected on
        before, _ = evaluate(model, posts, task)
        after, _ = evaluate(shipped, posts, task)
        print(json.dumps({"trained": {k: round(before[k], 2) for k in ("precision", "recall", "f1")},
                          "shipped": {k: round(after[k], 2) for k in ("precision", "recall", "f1")},
                          "posts": len(posts)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
